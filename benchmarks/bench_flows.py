"""Cost per step of each flow integrator, as a multiple of one energy-gradient evaluation.

Run: ``python benchmarks/bench_flows.py``. Single-threaded BLAS; every number is a
median over repeats, measured in this run. The energy is matrix completion
E(X) = 1/2 ||P_Omega(X - X*)||^2 (math.md §9), whose gradient is the baseline.
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import time  # noqa: E402

import numpy as np  # noqa: E402

from dlnmanifolds.core.balanced import balanced_factors  # noqa: E402
from dlnmanifolds.core.network import end_to_end  # noqa: E402
from dlnmanifolds.flows import (  # noqa: E402
    Energy,
    balancing_flow,
    end_to_end_flow,
    gradient_flow,
    langevin,
)


def median_seconds(fn, repeats=5):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def completion_energy(d, rng):
    target = rng.standard_normal((d, 2)) @ rng.standard_normal((2, d))
    mask = rng.random((d, d)) < 0.5
    return Energy(
        lambda x: 0.5 * np.sum((mask * (x - target)) ** 2, axis=(-2, -1)),
        lambda x: mask * (x - target),
        batched=True,
    )


def bench_size(d, depth, rng, steps):
    """Print the per-step cost of every integrator at square width d and depth N."""
    energy = completion_energy(d, rng)
    x0 = rng.standard_normal((d, d)) / np.sqrt(d)
    w0 = list(balanced_factors(x0, depth, rng=rng))
    unbalanced = [w + 0.1 * rng.standard_normal(w.shape) for w in w0]
    grad = median_seconds(lambda: [energy.gradient(x0) for _ in range(1000)]) / 1000
    h = 1e-3
    cases = {
        "gradient_flow gd (1 grad/step)": lambda: gradient_flow(
            energy, w0, steps * h, method="gd", step=h, record_every=steps
        ),
        "gradient_flow rk4": lambda: gradient_flow(
            energy, w0, steps * h, method="rk4", step=h, record_every=steps
        ),
        "end_to_end_flow gd": lambda: end_to_end_flow(
            energy, x0, depth, steps * h, method="gd", step=h, record_every=steps
        ),
        "end_to_end_flow rk4": lambda: end_to_end_flow(
            energy, x0, depth, steps * h, method="rk4", step=h, record_every=steps
        ),
        "balancing_flow l2 (rk4)": lambda: balancing_flow(
            unbalanced, "l2", steps * h, method="rk4", step=h, record_every=steps
        ),
        "balancing_flow moment_map (rk4)": lambda: balancing_flow(
            unbalanced, "moment_map", steps * h, method="rk4", step=h, record_every=steps
        ),
        "langevin balanced (1 path)": lambda: langevin(
            energy, w0, 10.0, step=h, t_final=steps * h, record_every=steps, rng=1
        ),
        "langevin end_to_end (1 path)": lambda: langevin(
            energy,
            x0,
            10.0,
            "end_to_end",
            depth=depth,
            step=h,
            t_final=steps * h,
            record_every=steps,
            rng=1,
        ),
        "langevin end_to_end (1000 paths, per path)": lambda: langevin(
            energy,
            x0,
            10.0,
            "end_to_end",
            depth=depth,
            step=h,
            t_final=steps * h,
            n_paths=1000,
            record_every=steps,
            rng=1,
        ),
    }
    for name, run in cases.items():
        per_step = median_seconds(run, repeats=3) / steps
        if "1000 paths" in name:
            per_step /= 1000
        print(f"{name:42s} {d:3d} {depth:3d} {per_step:10.2e} {per_step / grad:9.1f}")
    print(f"{'(one energy gradient)':42s} {d:3d} {depth:3d} {grad:10.2e} {1.0:9.1f}")


def main():
    rng = np.random.default_rng(0)
    steps = 300  # long enough to amortise the per-run set-up (validation, records)
    print(f"{'integrator':42s} {'d':>3s} {'N':>3s} {'s/step':>10s} {'x grad':>9s}")
    for d, depth in [(4, 3), (10, 3), (10, 6)]:
        bench_size(d, depth, rng, steps)
    # The adaptive solver: cost per accepted step (several stages each).
    energy = completion_energy(6, rng)
    w0 = list(balanced_factors(rng.standard_normal((6, 6)), 3, rng=rng))
    grad = median_seconds(lambda: [energy.gradient(end_to_end(w0)) for _ in range(1000)]) / 1000
    result = gradient_flow(energy, w0, 0.5, rtol=1e-8, atol=1e-10)
    seconds = median_seconds(lambda: gradient_flow(energy, w0, 0.5, rtol=1e-8, atol=1e-10), 3)
    print(
        f"gradient_flow RK45 d=6 N=3: {result.n_steps} steps, "
        f"{result.n_gradient_evaluations / result.n_steps:.1f} gradients/step, "
        f"{seconds / result.n_steps / grad:.1f} x grad per accepted step"
    )


if __name__ == "__main__":
    main()
