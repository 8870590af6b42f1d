"""Geometry benchmarks (issue 12): bounded, fast geodesics downstairs and on M.

1. ``DLNMetric.log`` on GL(3) with depth 3 and on GL(8) with depth 4: random pairs at g^N
   distance <= 1 (X = expm(B / 4), B Gaussian; Y = Exp_X(V), |V|_g uniform in (0, 1]).
   Median time, success rate (a result with max|Exp_X(Log) - Y| <= 1e-9 max(1, |Y|)), and the
   error of Log against V. Targets: median <= 30 ms, success >= 99 %, exp(log) to 1e-9.
   Baseline (independent, in this file): the Hamiltonian geodesic equation of the metric
   written from the cometric alone, H(x, p) = 1/2 <p, A_X p>, with dH/dx by central finite
   differences, integrated by scipy's ``solve_ivp`` (DOP853) and shot by
   ``scipy.optimize.root`` (MINPACK hybrid, its own finite-difference Jacobian). It is timed
   on the first pairs of the same draw, interleaved with ours, and the median of the per-pair
   ratios baseline / ours is printed.
2. ``BalancedSpace(3, 3).metric.dist`` on pairs of ``random_point``: pairs in different
   components of M (their Haar gauges give layers of different determinant signs; no geodesic)
   are rejected up front; the others are solved. Target: <= 1 s each, never hangs.
3. Geomstats' ``RiemannianKMeans`` (2 clusters) on 10 points of GL(3) with g^3. Target <= 2 s.

The baseline needs 15-30 s per pair at n = 3 (its finite-difference dH/dx is what a generic
metric-matrix geodesic solver has to do), so it runs on ``--baseline-pairs`` pairs only.

Times are wall clock and process CPU time (the CPU time is the one to read on a shared,
oversubscribed machine).

Run: ``python -u benchmarks/bench_geometry.py [--pairs 200] [--baseline-pairs 3] [--section ...]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _timing import median_time  # isort: skip  (sets single-threaded BLAS before numpy loads)
import numpy as np
from geomstats.geometry.general_linear import GeneralLinear
from scipy.integrate import solve_ivp
from scipy.linalg import expm
from scipy.optimize import root

from dlnmanifolds.core.dln_geodesic import GeodesicError
from dlnmanifolds.core.operator import dln_inner, dln_operator
from dlnmanifolds.geomstats import BalancedSpace, DLNMetric


def _space(n: int, depth: int):
    space = GeneralLinear(n, equip=False)
    space.equip_with_metric(DLNMetric, depth=depth)
    return space


def random_pairs(n: int, depth: int, count: int, seed: int = 0):
    """(X, Y, V) with Y = Exp_X(V), |V|_g uniform in (0, 1] (the issue's distribution)."""
    rng = np.random.default_rng(seed)
    metric = _space(n, depth).metric
    out = []
    while len(out) < count:
        x = expm(0.25 * rng.standard_normal((n, n)))
        v = rng.standard_normal((n, n))
        v *= rng.uniform(0.0, 1.0) / np.sqrt(dln_inner(x, v, v, depth))
        try:
            out.append((x, metric.exp(v, x), v))
        except GeodesicError:  # Exp_X(V) reaches a singular matrix: not a pair at all
            continue
    return out


# ---- independent baseline ----------------------------------------------------------------


def baseline_log(y: np.ndarray, x: np.ndarray, depth: int, rtol: float = 1e-10) -> np.ndarray:
    """Log_X(Y) from the cometric alone: solve_ivp on Hamilton's equations of
    H = 1/2 <p, A_X p> (dH/dx by central differences), scipy.optimize.root on the end point."""
    n = x.shape[0]
    k = n * n

    def hamiltonian(xf, pf):
        p = pf.reshape(n, n)
        return 0.5 * float(np.sum(p * dln_operator(xf.reshape(n, n), p, depth)))

    def field(_t, state):
        xf, pf = state[:k], state[k:]
        xdot = dln_operator(xf.reshape(n, n), pf.reshape(n, n), depth).ravel()
        grad = np.empty(k)
        for i in range(k):
            h = 1e-6 * max(1.0, abs(xf[i]))
            e = np.zeros(k)
            e[i] = h
            grad[i] = (hamiltonian(xf + e, pf) - hamiltonian(xf - e, pf)) / (2 * h)
        return np.concatenate([xdot, -grad])

    def end(pf):
        sol = solve_ivp(field, (0, 1), np.concatenate([x.ravel(), pf]), "DOP853", rtol=rtol)
        return sol.y[:k, -1]

    # Momentum start: P = A_X^{-1}(Y - X), solved from the cometric by a linear solve.
    cometric = np.stack([dln_operator(x, e.reshape(n, n), depth).ravel() for e in np.eye(k)])
    p0 = np.linalg.solve(cometric.T, (y - x).ravel())
    sol = root(lambda pf: end(pf) - y.ravel(), p0, method="hybr", options={"xtol": 1e-12})
    return dln_operator(x, sol.x.reshape(n, n), depth)


# ---- sections --------------------------------------------------------------------------------


def bench_dln_log(n: int, depth: int, pairs: int, baseline_pairs: int) -> None:
    metric = _space(n, depth).metric
    data = random_pairs(n, depth, pairs, seed=n * 10 + depth)
    times, cpu, ok, errors, exp_errors = [], [], 0, [], []
    ratios, base_times, our_times_b = [], [], []
    for index, (x, y, v) in enumerate(data):
        if index < baseline_pairs:
            # Interleaved: baseline, then ours on the same pair.
            start = time.perf_counter()
            base = baseline_log(y, x, depth)
            base_times.append(time.perf_counter() - start)
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            log = metric.log(y, x)
        except GeodesicError:
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            continue
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        cpu.append(time.process_time() - start_cpu)
        back = metric.exp(log, x)
        exp_err = float(np.max(np.abs(back - y)) / max(1.0, np.max(np.abs(y))))
        exp_errors.append(exp_err)
        errors.append(float(np.max(np.abs(log - v))))
        ok += exp_err <= 1e-9
        if index < baseline_pairs:
            our_times_b.append(elapsed)
            ratios.append(base_times[-1] / elapsed)
            errors_base = float(np.max(np.abs(base - v)))
            if errors_base > 1e-6:
                print(f"    (baseline pair {index}: |Log - V| = {errors_base:.1e})")
    print(
        f"[DLNMetric.log] GL({n}), depth {depth}, {pairs} pairs at g-distance <= 1: median "
        f"{statistics.median(times) * 1e3:.1f} ms wall, {statistics.median(cpu) * 1e3:.1f} ms CPU "
        f"(max {max(times) * 1e3:.0f} ms wall; target <= 30 ms), success "
        f"{100 * ok / pairs:.1f} % (target >= 99 %), max |exp(log) - Y| "
        f"{max(exp_errors):.1e} (target 1e-9), max |Log - V| {max(errors):.1e}"
    )
    if ratios:
        print(
            f"    baseline (solve_ivp + optimize.root on the cometric Hamiltonian) on "
            f"{len(ratios)} pairs: median {statistics.median(base_times) * 1e3:.0f} ms vs ours "
            f"{statistics.median(our_times_b) * 1e3:.1f} ms; median ratio baseline/ours "
            f"{statistics.median(ratios):.0f}x"
        )


def bench_balanced_dist(n: int = 3, depth: int = 3, pairs: int = 20) -> None:
    """``pairs`` pairs of random_point; those in different components are rejected up front
    and more are drawn until ``pairs`` same-component pairs have been solved."""
    space = BalancedSpace(n, depth, rng=1)
    rejected, reject_times, times, cpu, failures = 0, [], [], [], 0
    while len(times) < pairs:
        a, b = space.random_point(), space.random_point()
        start, start_cpu = time.perf_counter(), time.process_time()
        try:
            space.metric.dist(a, b)
        except GeodesicError:
            failures += 1
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
        except ValueError as exc:
            assert "different components" in str(exc)
            rejected += 1
            reject_times.append(time.perf_counter() - start)
        else:
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
    print(
        f"[BalancedSpace({n}, {depth}).metric.dist] {rejected + len(times)} random pairs: "
        f"{rejected} in different components, rejected in {1e3 * max(reject_times, default=0):.1f}"
        f" ms at most; {len(times) - failures} of {len(times)} same-component pairs solved, "
        f"{failures} GeodesicError; time median {statistics.median(times):.2f} s wall "
        f"({statistics.median(cpu):.2f} s CPU), max {max(times):.2f} s wall "
        f"({max(cpu):.2f} s CPU) (target <= 1 s each)"
    )


def bench_kmeans(n: int = 3, depth: int = 3, points: int = 10) -> None:
    from geomstats.learning.kmeans import RiemannianKMeans

    space = _space(n, depth)
    rng = np.random.default_rng(2)
    centres = [expm(0.3 * rng.standard_normal((n, n))) for _ in range(2)]
    data = np.stack(
        [centres[i % 2] @ expm(0.1 * rng.standard_normal((n, n))) for i in range(points)]
    )

    def run():
        kmeans = RiemannianKMeans(space, n_clusters=2, init="random", tol=1e-6)
        np.random.seed(0)
        return kmeans.fit(data)

    elapsed = median_time(run, repeats=3)
    print(
        f"[RiemannianKMeans] {points} points of GL({n}), g^{depth}: {elapsed:.2f} s (target <= 2 s)"
    )


# ---- upstairs (issue 12 part 2) --------------------------------------------------------------
# The balanced Langevin step (per-step scaling over d, memory at d = 100), the lifted gradient
# against a plain numpy loop and BalancedManifold.projection against its 4N frame products.


def bench_upstairs() -> None:
    import _bench_upstairs

    _bench_upstairs.main()


SECTIONS = {
    "log": lambda args: (
        bench_dln_log(3, 3, args.pairs, args.baseline_pairs),
        # The baseline's finite-difference dH/dx costs 2 n^2 = 128 operator evaluations per
        # field call at n = 8 (hours for one pair): timed at n = 3 only.
        bench_dln_log(8, 4, args.pairs, 0),
    ),
    "balanced": lambda args: bench_balanced_dist(pairs=args.balanced_pairs),
    "kmeans": lambda args: bench_kmeans(),
    "upstairs": lambda args: bench_upstairs(),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--baseline-pairs", type=int, default=3)
    parser.add_argument("--balanced-pairs", type=int, default=20)
    parser.add_argument("--section", choices=sorted(SECTIONS), action="append")
    args = parser.parse_args()
    for name in args.section or list(SECTIONS):
        SECTIONS[name](args)


if __name__ == "__main__":
    main()
