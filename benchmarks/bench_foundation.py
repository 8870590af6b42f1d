"""Foundation benchmarks (issue: core + BalancedManifold + DLNMatrices).

1. g^N Riemannian gradient at n = 256, N = 4 against one SVD of the point
   (the physical floor: A_{N,X} needs the singular frame).
2. Tangent projection on BalancedManifold at d = 64, N = 8: the SVD-frame
   (Jacobi tridiagonal) projection against a dense KKT solve
   (C_W^* C_W S = C_W^* xi assembled as a dense matrix) at the same size.

Run: ``python benchmarks/bench_foundation.py [--dense-size 64]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg
from _timing import median_time, paired_ratio  # noqa: I001  (sets BLAS threads first)

from dlnmanifolds.core.balanced import balanced_factors, balanced_frames
from dlnmanifolds.core.balanced_tangent import normal_generator, tangent_projection
from dlnmanifolds.pymanopt import BalancedManifold, DLNMatrices


def bench_gradient(n: int = 256, depth: int = 4, repeats: int = 15) -> None:
    rng = np.random.default_rng(0)
    manifold = DLNMatrices(n, n, depth, rng=rng)
    x = manifold.random_point()
    egrad = rng.standard_normal((n, n))

    def gradient():
        manifold._cache = None  # a fresh point each call: include the SVD
        return manifold.euclidean_to_riemannian_gradient(x, egrad)

    def svd():
        return np.linalg.svd(x)

    t_grad, t_svd, ratio = paired_ratio(gradient, svd, repeats)
    print(
        f"[g^N gradient] n={n}, N={depth}: gradient {t_grad * 1e3:.2f} ms, "
        f"one SVD {t_svd * 1e3:.2f} ms, ratio {ratio:.2f} (target <= ~1.5)"
    )


def duplication(d: int) -> np.ndarray:
    """Matrix D with vec(S) = D s for symmetric S and s its upper-triangle entries."""
    iu = np.triu_indices(d)
    mat = np.zeros((d * d, iu[0].size))
    for k, (i, j) in enumerate(zip(*iu)):
        mat[i * d + j, k] = 1.0
        mat[j * d + i, k] = 1.0
    return mat


def dense_kkt_projection(weights, xi):
    """P_T xi = xi - C_W(S), S from the dense normal equations C^*C S = C^*xi.

    Blocks of C^*C in row-major vec(S): diagonal (I ⊗ W_q W_q^T) + (W_{q+1}^T W_{q+1} ⊗ I),
    off-diagonal -(W_{q+1} ⊗ W_{q+1}) between S_{q+1} and S_q; assembled in the symmetric basis and
    Cholesky-solved (math.md §2.4, "KKT form").
    """
    depth = len(weights)
    d = weights[0].shape[0]
    dup = duplication(d)
    eye = np.eye(d)
    size = dup.shape[1]
    gram = np.zeros(((depth - 1) * size, (depth - 1) * size))
    rhs = np.zeros((depth - 1) * size)
    for q in range(depth - 1):
        w_q, w_next = weights[q], weights[q + 1]
        block = np.kron(eye, w_q @ w_q.T) + np.kron(w_next.T @ w_next, eye)
        gram[q * size : (q + 1) * size, q * size : (q + 1) * size] = dup.T @ block @ dup
        if q + 1 < depth - 1:
            # cross term -2 <S_{q+1} W, W S_q> with W = W_{q+1}: -(W ⊗ W)
            off = -dup.T @ np.kron(w_next, w_next) @ dup
            gram[(q + 1) * size : (q + 2) * size, q * size : (q + 1) * size] = off
            gram[q * size : (q + 1) * size, (q + 1) * size : (q + 2) * size] = off.T
        b = xi[q] @ w_q.T - w_next.T @ xi[q + 1]
        rhs[q * size : (q + 1) * size] = dup.T @ b.reshape(-1) / 2.0 + dup.T @ b.T.reshape(-1) / 2.0
    s = scipy.linalg.cho_solve(scipy.linalg.cho_factor(gram), rhs)
    mats = []
    for q in range(depth - 1):
        vec = dup @ s[q * size : (q + 1) * size]
        mats.append(vec.reshape(d, d))
    return [a - c for a, c in zip(xi, normal_generator(weights, mats))]


def bench_projection(d: int = 64, depth: int = 8, repeats: int = 15, dense_size: int = 64) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((d, d))
    weights = balanced_factors(x, depth, rng=rng)
    xi = [rng.standard_normal(w.shape) for w in weights]
    frames = balanced_frames(weights)
    manifold = BalancedManifold((d,) * (depth + 1))
    t_frame_cached = median_time(lambda: tangent_projection(frames, xi), repeats)

    def with_frames():
        manifold._cache = None
        return manifold.projection(weights, xi)

    t_frame_full = median_time(with_frames, repeats)
    print(
        f"[projection] d={d}, N={depth}: frame projection {t_frame_full * 1e3:.2f} ms "
        f"(incl. frames; {t_frame_cached * 1e3:.2f} ms with cached frames)"
    )
    if dense_size:
        dw = (
            weights
            if dense_size == d
            else balanced_factors(rng.standard_normal((dense_size, dense_size)), depth, rng=rng)
        )
        dxi = xi if dense_size == d else [rng.standard_normal(w.shape) for w in dw]
        start = time.perf_counter()
        dense = dense_kkt_projection(dw, dxi)
        t_dense = time.perf_counter() - start
        if dense_size == d:
            err = max(np.max(np.abs(a - b)) for a, b in zip(dense, tangent_projection(frames, xi)))
            print(
                f"  dense KKT projection (d={dense_size}): {t_dense:.2f} s, agrees to {err:.1e}; "
                f"speed-up of the frame projection {t_dense / t_frame_full:.0f}x (target >= 50x)"
            )
        else:
            print(f"  dense KKT projection at d={dense_size}: {t_dense:.2f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--dense-size",
        type=int,
        default=64,
        help="size d of the dense KKT reference (0 to skip; 64 takes minutes)",
    )
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    bench_gradient(repeats=args.repeats)
    bench_projection(repeats=args.repeats, dense_size=args.dense_size)


if __name__ == "__main__":
    main()
