"""Upstairs (weight-space) geometry at O(N d^3): ratio tables for issue 12, part 2.

Run: ``python benchmarks/_bench_upstairs.py`` (``bench_geometry.py`` calls ``main()``).
Single-threaded BLAS; every baseline is timed in the same process, interleaved with
the measured call, and ratios are medians of pairwise ratios.

1. ``langevin(space="balanced")``: seconds per step over d = 8..64 (N = 3), the fitted
   exponent of d (target <= 3.3) and the tracemalloc peak of a d = 100 run (< 1 GB).
2. Depth-3 gradient step (``flows`` lifted gradient + Euler update; the ``factors``
   geometry's Euclidean gradient) against a plain numpy loop doing the 3(N-1) products
   by hand (target <= 1.3 at d = 100).
3. ``BalancedManifold.projection`` (frames cached, as within an optimizer iteration) at
   d = 64, N = 8 against its 4N frame matrix products (target <= 3).
"""

from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _timing import median_time, paired_ratio  # noqa: E402

from dlnmanifolds.core.balanced import balanced_factors, haar_stiefel  # noqa: E402
from dlnmanifolds.flows import langevin, quadratic_energy  # noqa: E402
from dlnmanifolds.flows.training import lifted_gradient  # noqa: E402
from dlnmanifolds.problems import Regression, make_problem  # noqa: E402
from dlnmanifolds.pymanopt import BalancedManifold, LayerTuple  # noqa: E402

LANGEVIN_DIMS = (8, 16, 32, 64)
LANGEVIN_BETA = 100.0
LANGEVIN_STEP = 1e-3


def _balanced_start(d: int, depth: int, rng: np.random.Generator) -> list[np.ndarray]:
    s = np.sort(rng.uniform(0.5, 2.0, d))[::-1]
    x = (haar_stiefel(d, d, rng) * s) @ haar_stiefel(d, d, rng).T
    return list(balanced_factors(x, depth, rng=rng))


def langevin_table(dims=LANGEVIN_DIMS, steps: int = 5, repeats: int = 3) -> dict:
    """Seconds per upstairs Langevin step (N = 3, one path) and the fitted d-exponent."""
    rng = np.random.default_rng(0)
    per_step = {}
    for d in dims:
        start = _balanced_start(d, 3, rng)
        energy = quadratic_energy(np.eye(d))

        def run(start=start, energy=energy):
            return langevin(
                energy,
                start,
                LANGEVIN_BETA,
                "balanced",
                step=LANGEVIN_STEP,
                t_final=steps * LANGEVIN_STEP,
                record_every=steps,
                rng=1,
            )

        per_step[d] = median_time(run, repeats=repeats) / steps
    logs = np.log([float(d) for d in dims])
    slope = float(np.polyfit(logs, np.log([per_step[d] for d in dims]), 1)[0])
    return {"per_step": per_step, "exponent": slope}


def langevin_peak_memory(d: int = 100, steps: int = 2) -> float:
    """tracemalloc peak (bytes) of a ``steps``-step upstairs run at width d, N = 3."""
    rng = np.random.default_rng(1)
    start = _balanced_start(d, 3, rng)
    energy = quadratic_energy(np.eye(d))
    tracemalloc.start()
    try:
        langevin(
            energy,
            start,
            LANGEVIN_BETA,
            "balanced",
            step=LANGEVIN_STEP,
            t_final=steps * LANGEVIN_STEP,
            record_every=steps,
            rng=2,
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return float(peak)


def _numpy_gradient_step(w1, w2, w3, target, h):
    """The baseline: one gradient step of 1/2 |W3 W2 W1 - T|^2, 6 products by hand."""
    p2 = w2 @ w1
    g = w3 @ p2 - target
    g3 = g @ p2.T
    y = w3.T @ g
    g2 = y @ w1.T
    g1 = w2.T @ y
    return w1 - h * g1, w2 - h * g2, w3 - h * g3


def gradient_table(d: int = 100, repeats: int = 41) -> dict:
    """Depth-3 gradient step: flows (lifted gradient + Euler) and the ``factors``
    geometry's Euclidean gradient, each over a plain numpy loop."""
    rng = np.random.default_rng(2)
    w = [rng.standard_normal((d, d)) / np.sqrt(d) for _ in range(3)]
    target = rng.standard_normal((d, d))
    energy = quadratic_energy(target)
    h = 1e-3

    def flows_step():
        return [a - h * g for a, g in zip(w, lifted_gradient(energy, w))]

    def numpy_step():
        return _numpy_gradient_step(*w, target, h)

    flows = paired_ratio(flows_step, numpy_step, repeats)

    inputs = rng.standard_normal((d, 2 * d))
    objective = Regression(inputs, rng.standard_normal((d, 2 * d)))
    built = make_problem(objective, "factors", depth=3, rng=3)
    point = [np.array(a) for a in built.initial_point]
    egrad = built.problem.euclidean_gradient
    scale = 2.0 / objective.count

    def numpy_factors():
        w1, w2, w3 = point
        p2 = w2 @ w1
        g = scale * objective.residual_gradient(w3 @ p2)
        y = w3.T @ g
        return g @ p2.T, y @ w1.T, w2.T @ y

    factors = paired_ratio(lambda: egrad(point), numpy_factors, repeats)
    return {"d": d, "flows": flows, "factors": factors}


def projection_table(d: int = 64, depth: int = 8, repeats: int = 41) -> dict:
    """BalancedManifold.projection (frames cached) over its 4N frame matrix products."""
    manifold = BalancedManifold((d,) * (depth + 1), rng=4)
    x = manifold.random_point()
    rng = np.random.default_rng(5)
    vector = LayerTuple([rng.standard_normal((d, d)) for _ in range(depth)])
    frames = manifold.frames(x)
    fulls = [frames.full(p) for p in range(depth + 1)]

    def products():  # the 4N products of P_T = F diag-solve F^T: to frames and back
        out = []
        for p, v in enumerate(vector):
            t = fulls[p + 1].T @ v @ fulls[p]
            out.append(fulls[p + 1] @ t @ fulls[p].T)
        return out

    ratio = paired_ratio(lambda: manifold.projection(x, vector), products, repeats)
    uncached = median_time(lambda: BalancedManifold((d,) * (depth + 1)).frames(x), repeats=5)
    return {"d": d, "depth": depth, "ratio": ratio, "frames_seconds": uncached}


def main() -> dict:
    """Print the three tables; returns the measured numbers."""
    t0 = time.perf_counter()
    lang = langevin_table()
    peak = langevin_peak_memory()
    grad = gradient_table()
    proj = projection_table()
    print(
        "== upstairs Langevin, space='balanced', N = 3, one path "
        f"(beta = {LANGEVIN_BETA:g}, h = {LANGEVIN_STEP:g})"
    )
    print(f"{'d':>5} {'ms/step':>10}")
    for d, sec in lang["per_step"].items():
        print(f"{d:>5} {1e3 * sec:>10.3f}")
    dims = tuple(lang["per_step"])
    print(
        f"fitted exponent of d over d = {dims[0]}..{dims[-1]}: {lang['exponent']:.2f} "
        "(target <= 3.3)"
    )
    print(f"peak traced memory at d = 100: {peak / 2**20:.1f} MiB (target < 1024 MiB)")
    print(f"\n== depth-3 gradient step at d = {grad['d']} over a plain numpy loop")
    print(f"{'path':>10} {'ms':>8} {'numpy ms':>9} {'ratio':>7}")
    for key in ("flows", "factors"):
        a, b, r = grad[key]
        print(f"{key:>10} {1e3 * a:>8.3f} {1e3 * b:>9.3f} {r:>7.2f}")
    print("(target <= 1.3)")
    a, b, r = proj["ratio"]
    print(f"\n== BalancedManifold.projection, d = {proj['d']}, N = {proj['depth']}, frames cached")
    print(
        f"projection {1e3 * a:.3f} ms, 4N frame products {1e3 * b:.3f} ms, ratio {r:.2f} "
        "(target <= 3)"
    )
    print(f"frames of a new point (N thin SVDs): {1e3 * proj['frames_seconds']:.3f} ms")
    print(f"[{time.perf_counter() - t0:.0f} s]")
    return {"langevin": lang, "peak_bytes": peak, "gradient": grad, "projection": proj}


if __name__ == "__main__":
    main()
