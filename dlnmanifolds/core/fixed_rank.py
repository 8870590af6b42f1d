"""The DLN metric g^N on rank-r matrices M_r, in factored form (math.md §4.1 "Rank r").

A point is X = U diag(s) V^T with U in St(m, r), V in St(n, r), s > 0 (r values).
Tangent vectors use Pymanopt's fixed-rank form xi = U M V^T + U_p V^T + U V_p^T
with U_p^T U = 0 and V_p^T V = 0. With K_rr = [kappa(s_i, s_j)] (math.md §3.2)
and c_j = s_j^{2(N-1)/N}:

    g(xi, eta) = sum_ij M_ij M'_ij / K_ij + sum_j (<U_p[:, j], U'_p[:, j]>
                 + <V_p[:, j], V'_p[:, j]>) / c_j,

and the Riemannian gradient of E with Euclidean gradient G is

    M = K_rr ∘ (U^T G V),  U_p = (I - U U^T) G V diag(c),  V_p = (I - V V^T) G^T U diag(c)

(Bah, Rauhut, Terstiege & Westdickenberg 2019 = Menon 2024 Thm 3; math.md §4.1,
verified C6). Its embedding equals A_{N,X}(G) for N >= 2, the rank-r blocks of
math.md §3.2. Because the factored point stores exactly r singular values, no
round-off "zero" singular value can leak into K or c (the caveat of math.md §3.3).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from dlnmanifolds.core._validate import as_matrix, check_depth
from dlnmanifolds.core.kernel import kernel_matrix


class FixedRankWeights(NamedTuple):
    """The eigenvalues of A_{N,X} on T_X M_r: ``k`` (r x r) on M, ``c`` (r,) on U_p, V_p."""

    k: np.ndarray
    c: np.ndarray


def fixed_rank_weights(s: np.ndarray, depth: int) -> FixedRankWeights:
    """K_rr = kappa(s_i, s_j) and c_j = s_j^{2(N-1)/N} (math.md §3.2 block table, §4.1).

    Parameters
    ----------
    s : array, shape=[r], the positive singular values of X.
    depth : int, N >= 1.
    """
    s = np.asarray(s, dtype=np.float64)
    if s.ndim != 1 or s.size == 0:
        raise ValueError(f"s must be a non-empty 1-d array, got shape {s.shape}")
    if not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise ValueError(f"s must contain finite positive singular values, got {s}")
    depth = check_depth(depth)
    return _weights(s, depth)


def _weights(s: np.ndarray, depth: int) -> FixedRankWeights:
    r = s.shape[0]
    return FixedRankWeights(kernel_matrix(s, (r, r), depth), s ** (2.0 * (depth - 1) / depth))


def _check_tangent(tangent, m: int, n: int, r: int, name: str):
    if not isinstance(tangent, (tuple, list)) or len(tangent) != 3:
        raise TypeError(f"{name} must be a tuple (U_p, M, V_p), got {type(tangent).__name__}")
    up = as_matrix(tangent[0], f"{name}.U_p")
    mm = as_matrix(tangent[1], f"{name}.M")
    vp = as_matrix(tangent[2], f"{name}.V_p")
    for arr, shape, label in ((up, (m, r), "U_p"), (mm, (r, r), "M"), (vp, (n, r), "V_p")):
        if arr.shape != shape:
            raise ValueError(f"{name}.{label} must have shape {shape}, got {arr.shape}")
    return up, mm, vp


def _inner(weights: FixedRankWeights, a, b) -> float:
    """g(a, b) in factored form (internal, no validation)."""
    up_a, m_a, vp_a = a
    up_b, m_b, vp_b = b
    # einsum/dot: the same sums without the np.sum wrappers (6-7 calls per CG step).
    side = np.einsum("ij,ij->j", up_a, up_b) + np.einsum("ij,ij->j", vp_a, vp_b)
    return float(np.einsum("ij,ij->", m_a, m_b / weights.k) + np.dot(side, 1.0 / weights.c))


def fixed_rank_inner(s: np.ndarray, tangent_a, tangent_b, depth: int) -> float:
    """g^N_X(xi, eta) on T_X M_r for xi, eta in (U_p, M, V_p) form (math.md §4.1, C6).

    Parameters
    ----------
    s : array, shape=[r], singular values of X (positive).
    tangent_a, tangent_b : tuples (U_p [m, r], M [r, r], V_p [n, r]).
    depth : int, N >= 1.
    """
    weights = fixed_rank_weights(s, depth)
    r = weights.c.shape[0]
    a = tangent_a
    if not isinstance(a, (tuple, list)) or len(a) != 3:
        raise TypeError("tangent_a must be a tuple (U_p, M, V_p)")
    m, n = np.shape(a[0])[0], np.shape(a[2])[0]
    a = _check_tangent(tangent_a, m, n, r, "tangent_a")
    b = _check_tangent(tangent_b, m, n, r, "tangent_b")
    return _inner(weights, a, b)


def _riemannian_gradient(
    u: np.ndarray, v: np.ndarray, weights: FixedRankWeights, gv: np.ndarray, gtu: np.ndarray
):
    """(U_p, M, V_p) of the g^N gradient from G V and G^T U (internal)."""
    utgv = u.T @ gv
    up = (gv - u @ utgv) * weights.c
    vp = (gtu - v @ (v.T @ gtu)) * weights.c
    return up, weights.k * utgv, vp


def fixed_rank_riemannian_gradient(
    u: np.ndarray, s: np.ndarray, v: np.ndarray, euclidean_gradient: np.ndarray, depth: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """g^N Riemannian gradient on M_r from the Euclidean gradient G (math.md §4.1, C6).

    M = K_rr ∘ (U^T G V), U_p = (I - U U^T) G V diag(c), V_p = (I - V V^T) G^T U diag(c),
    c_j = s_j^{2(N-1)/N}.

    Parameters
    ----------
    u : array, shape=[m, r], orthonormal columns.
    s : array, shape=[r], positive singular values.
    v : array, shape=[n, r], orthonormal columns (note: V, not V^T).
    euclidean_gradient : array, shape=[m, n].
    depth : int, N >= 1.

    Returns
    -------
    (U_p, M, V_p) with shapes [m, r], [r, r], [n, r].
    """
    u = as_matrix(u, "u")
    v = as_matrix(v, "v")
    g = as_matrix(euclidean_gradient, "euclidean_gradient")
    weights = fixed_rank_weights(s, depth)
    r = weights.c.shape[0]
    if u.shape[1] != r or v.shape[1] != r:
        raise ValueError(
            f"u and v must have r = {len(weights.c)} columns, got {u.shape} and {v.shape}"
        )
    if g.shape != (u.shape[0], v.shape[0]):
        raise ValueError(
            f"euclidean_gradient must have shape {(u.shape[0], v.shape[0])}, got {g.shape}"
        )
    return _riemannian_gradient(u, v, weights, g @ v, g.T @ u)


def embed_tangent(u: np.ndarray, v: np.ndarray, tangent) -> np.ndarray:
    """The m x n matrix U M V^T + U_p V^T + U V_p^T of a factored tangent vector."""
    up, mm, vp = tangent
    return (u @ mm + up) @ v.T + u @ vp.T


def transport_tangent(u_a, v_a, tangent, u_b, v_b):
    """Project the tangent vector ``tangent`` at X_a = U_a S_a V_a^T onto T_{X_b} M_r.

    The Frobenius projection (the vector transport of Vandereycken 2013, Sec. 2.4),
    evaluated in factored form in O((m + n) r^2): with Z = (U_a M + U_p) V_a^T + U_a V_p^T,
    Z V_b and Z^T U_b are products of thin factors, M_b = U_b^T Z V_b,
    U_p' = Z V_b - U_b M_b, V_p' = Z^T U_b - V_b M_b^T. Never forms the m x n Z
    (Pymanopt's ``FixedRankEmbedded.transport`` multiplies its factors left to right
    and does).

    Parameters
    ----------
    u_a, v_a : arrays, shape=[m, r], [n, r], orthonormal frames of X_a (V, not V^T).
    tangent : (U_p [m, r], M [r, r], V_p [n, r]) at X_a.
    u_b, v_b : arrays, shape=[m, r], [n, r], orthonormal frames of X_b.
    """
    up, mm, vp = tangent
    left = u_a @ mm + up
    zv = left @ (v_a.T @ v_b) + u_a @ (vp.T @ v_b)
    ztu = v_a @ (left.T @ u_b) + vp @ (u_a.T @ u_b)
    m_b = u_b.T @ zv
    return zv - u_b @ m_b, m_b, ztu - v_b @ m_b.T
