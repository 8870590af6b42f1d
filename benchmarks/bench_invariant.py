"""InvariantManifold: projection onto T_W M_G against a dense KKT baseline.

Run: ``python benchmarks/bench_invariant.py``. Single-threaded BLAS; medians of
interleaved ratios measured in this run. Baseline (hand-written numpy, independent
of ``core.invariant``): assemble the dense Jacobian of G as a (sum d_p(d_p+1)/2) x
(sum d_p d_{p-1}) matrix by applying DG(W) to every unit vector, then the projection
xi - J^T (J J^T)^{-1} J xi by Cholesky of J J^T (the "dense KKT" the block solver avoids).
Both are timed per new point (factorization included) and, for ours, also per
further projection at the same point (the cached factorization Pymanopt reuses).
"""

from __future__ import annotations

import _timing  # noqa: F401  (single-threaded BLAS before numpy loads)
import numpy as np
import scipy.linalg
from _timing import paired_ratio

from dlnmanifolds.core.invariant import NormalSolver, invariant_tangent_projection


def dense_kkt_projection(weights, xi):
    sizes = [w.size for w in weights]
    total = sum(sizes)
    rows = []
    eye = np.eye(total)
    for k in range(total):
        parts = np.split(eye[k], np.cumsum(sizes)[:-1])
        v = [p.reshape(w.shape) for p, w in zip(parts, weights)]
        dg = []
        for p in range(len(weights) - 1):
            a, b = weights[p], weights[p + 1]
            g = v[p + 1].T @ b + b.T @ v[p + 1] - v[p] @ a.T - a @ v[p].T
            dg.append(g[np.triu_indices(g.shape[0])])
        rows.append(np.concatenate(dg))
    jac = np.array(rows).T
    flat = np.concatenate([x.ravel() for x in xi])
    factor = scipy.linalg.cho_factor(jac @ jac.T)
    out = flat - jac.T @ scipy.linalg.cho_solve(factor, jac @ flat)
    return np.split(out, np.cumsum(sizes)[:-1])


def measure(w, xi) -> tuple[float, float, float, float, float]:
    """(ours, baseline, ratio, ours with the cached factorization, its ratio)."""
    ours = invariant_tangent_projection(w, xi)
    base = dense_kkt_projection(w, xi)
    err = max(np.max(np.abs(a.ravel() - b)) for a, b in zip(ours, base))
    assert err < 1e-9, err
    t_ours, t_base, ratio = paired_ratio(
        lambda: invariant_tangent_projection(w, xi), lambda: dense_kkt_projection(w, xi), 7
    )
    solver = NormalSolver(w)
    t_cached, _, ratio_cached = paired_ratio(
        lambda: invariant_tangent_projection(w, xi, solver),
        lambda: dense_kkt_projection(w, xi),
        7,
    )
    return t_ours, t_base, ratio, t_cached, ratio_cached


def main() -> None:
    rng = np.random.default_rng(0)
    print(
        f"{'widths':>18} {'ours new pt (ms)':>17} {'dense KKT (ms)':>15} {'ratio':>7} "
        f"{'ours cached (ms)':>17} {'ratio':>7}"
    )
    for d, depth in ((3, 3), (5, 4), (8, 6), (10, 10)):
        w = [rng.standard_normal((d, d)) for _ in range(depth)]
        xi = [rng.standard_normal((d, d)) for _ in range(depth)]
        t_ours, t_base, ratio, t_cached, ratio_cached = measure(w, xi)
        label = f"({d}, {d})x{depth}"
        print(
            f"{label:>18} {1e3 * t_ours:17.3f} {1e3 * t_base:15.3f} {ratio:7.3f} "
            f"{1e3 * t_cached:17.3f} {ratio_cached:7.4f}"
        )


if __name__ == "__main__":
    main()
