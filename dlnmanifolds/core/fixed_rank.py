"""The DLN metric g^N on rank-r matrices M_r, in factored form (math.md §4.1 "Rank r").

A point is X = U diag(s) V^T with U in St(m, r), V in St(n, r), s > 0 (r values).
Tangent vectors use Pymanopt's fixed-rank form xi = U M V^T + U_p V^T + U V_p^T
with U_p^T U = 0 and V_p^T V = 0. With K_rr = [kappa(s_i, s_j)] (math.md §3.2)
and c_j = s_j^{2(N-1)/N}:

    g(xi, eta) = sum_ij M_ij M'_ij / K_ij + sum_j (<U_p[:, j], U'_p[:, j]>
                 + <V_p[:, j], V'_p[:, j]>) / c_j,

and the Riemannian gradient of E with Euclidean gradient G is

    M = K_rr ∘ (U^T G V),  U_p = (I - U U^T) G V diag(c),  V_p = (I - V V^T) G^T U diag(c)

(Bah, Rauhut, Terstiege & Westdickenberg 2019 = Menon 2024 Thm 3; math.md §4.1;
checked in math.md §10). Its embedding equals A_{N,X}(G) for N >= 2, the rank-r blocks of
math.md §3.2. Because the factored point stores exactly r singular values, no
round-off "zero" singular value can leak into K or c (the caveat of math.md §3.3).

Every function takes numpy arrays (float64) or torch tensors (float32/float64, one
device) and returns the same kind (``dlnmanifolds.core._backend``); ``egrad`` of
the Hessian may also be a scipy.sparse matrix (numpy only). In float32 the
weights 1/K and 1/c amplify round-off by sigma_max^{2(N-1)/N} / sigma_min^{2(N-1)/N}:
relative accuracy ~1e-6 times that ratio.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from dlnmanifolds.core import _backend
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
    if _backend.is_numpy(s) or not _backend._is_torch(s):
        s = np.asarray(s, dtype=np.float64)
    else:
        _backend.check_float_dtype(s, "s")
    if s.ndim != 1 or s.shape[0] == 0:
        raise ValueError(f"s must be a non-empty 1-d array, got shape {tuple(s.shape)}")
    if not _backend.all_finite(s) or bool((s <= 0).any()):
        raise ValueError(f"s must contain finite positive singular values, got {s}")
    depth = check_depth(depth)
    return _weights(s, depth)


def _as_float_s(s):
    """numpy (or list) s as float64; a tensor unchanged (validated by fixed_rank_weights)."""
    return s if _backend._is_torch(s) else np.asarray(s, dtype=float)


def _weights(s: np.ndarray, depth: int) -> FixedRankWeights:
    r = s.shape[0]
    return FixedRankWeights(kernel_matrix(s, (r, r), depth), s ** (2.0 * (depth - 1) / depth))


_NAMES_TANGENT = ("tangent.U_p", "tangent.M", "tangent.V_p")
_NAMES_INNER = (
    "s",
    *(f"tangent_a.{x}" for x in ("U_p", "M", "V_p")),
    *(f"tangent_b.{x}" for x in ("U_p", "M", "V_p")),
)


def _parts(tangent) -> tuple:
    """The three arrays of a factored tangent (or None placeholders, for the checks)."""
    if isinstance(tangent, (tuple, list)) and len(tangent) == 3:
        return tuple(tangent)
    return (None, None, None)


def _first_dim(array) -> int:
    return array.shape[0] if _backend._is_torch(array) else np.shape(array)[0]


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
    xp = _backend.namespace(weights.c)
    # einsum/matmul: the same sums without the np.sum wrappers (6-7 calls per CG step).
    side = xp.einsum("ij,ij->j", up_a, up_b) + xp.einsum("ij,ij->j", vp_a, vp_b)
    value = xp.einsum("ij,ij->", m_a, m_b / weights.k) + side @ (1.0 / weights.c)
    # numpy: a Python float; torch: a 0-d tensor (no host sync inside a training step).
    return float(value) if xp is np else value


def fixed_rank_inner(s: np.ndarray, tangent_a, tangent_b, depth: int) -> float:
    """g^N_X(xi, eta) on T_X M_r for xi, eta in (U_p, M, V_p) form (math.md §4.1).

    Parameters
    ----------
    s : array, shape=[r], singular values of X (positive).
    tangent_a, tangent_b : tuples (U_p [m, r], M [r, r], V_p [n, r]).
    depth : int, N >= 1.
    """
    _backend.namespace(s, *_parts(tangent_a), *_parts(tangent_b), names=_NAMES_INNER)
    weights = fixed_rank_weights(s, depth)
    r = weights.c.shape[0]
    a = tangent_a
    if not isinstance(a, (tuple, list)) or len(a) != 3:
        raise TypeError("tangent_a must be a tuple (U_p, M, V_p)")
    m, n = _first_dim(a[0]), _first_dim(a[2])
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
    """g^N Riemannian gradient on M_r from the Euclidean gradient G (math.md §4.1).

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
    _backend.namespace(u, s, v, euclidean_gradient, names=("u", "s", "v", "euclidean_gradient"))
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


def _tangent_coordinates(u, v, zv, ztu):
    """(U_p, M, V_p) of the Frobenius projection of Z onto T_X M_r from Z V and Z^T U.

    M = U^T Z V, U_p = Z V - U M, V_p = Z^T U - V V^T Z^T U (Vandereycken 2013, Sec. 2.1):
    every projection below differs only in how it forms the two thin products.
    """
    mm = u.T @ zv
    return zv - u @ mm, mm, ztu - v @ (v.T @ ztu)


def _project_factored(u: np.ndarray, v: np.ndarray, z: np.ndarray):
    """(U_p, M, V_p) of the Frobenius projection of an m x n matrix onto T_X M_r."""
    return _tangent_coordinates(u, v, z @ v, z.T @ u)


def tangent_part(u: np.ndarray, v: np.ndarray, tangent):
    """(U_p - U U^T U_p, M, V_p - V V^T V_p): the tangent part of (U_p, M, V_p).

    O((m + n) r^2); Pymanopt's ``FixedRankEmbedded.to_tangent_space`` evaluates
    ``u @ u.T @ Up`` left to right and so forms an m x m (and an n x n) array.
    """
    up, mm, vp = tangent
    return up - u @ (u.T @ up), mm, vp - v @ (v.T @ vp)


def project_low_rank(u: np.ndarray, v: np.ndarray, left: np.ndarray, right: np.ndarray):
    """(U_p, M, V_p) of the Frobenius projection of Z = left right^T onto T_X M_r.

    Z V = left (right^T V) and Z^T U = right (left^T U): O((m + n) k r) for k
    columns, no m x n array (Pymanopt's ``FixedRankEmbedded.projection`` of a
    factored (U, S, V) multiplies left to right and forms Z).
    """
    return _tangent_coordinates(u, v, left @ (right.T @ v), right @ (left.T @ u))


def rank_lift(u: np.ndarray, s: np.ndarray, v: np.ndarray, depth: int) -> list[np.ndarray]:
    """The balanced lift of X = U diag(s) V^T with inner widths r (math.md §2.2, M_r).

    W_1 = Lambda V^T (r x n), W_p = Lambda (r x r), W_N = U Lambda (m x r), with
    Lambda = diag(s^{1/N}); ``phi(W) = X``. Depth 1: (X,).
    """
    if depth == 1:
        return [(u * s) @ v.T]
    lam = s ** (1.0 / depth)
    middle = [_backend.diag(lam) for _ in range(depth - 2)]
    return [lam[:, None] * v.T, *middle, u * lam]


def _lift_tangent(u, s, v, weights: FixedRankWeights, tangent, depth: int):
    """xi^h = Dphi_W^*(A^+ xi): the horizontal lift of a tangent xi to ``rank_lift`` (N >= 2).

    With W_{>p} = U Lambda^{N-p} and W_{<p} = Lambda^{p-1} V^T on the rank lift, and
    A^+ xi = a b^T of rank <= 2r (a = [U M' + U_p', U], b = [V, V_p']), every layer
    W_{>p}^T a b^T W_{<p}^T is a product of thin factors: O((m + n) r^2), no m x n array.
    """
    up, mm, vp = tangent
    xp = _backend.namespace(u)
    a = xp.hstack([u @ (mm / weights.k) + up / weights.c, u])
    b = xp.hstack([v, vp / weights.c])
    lam = s ** (1.0 / depth)
    uta = u.T @ a
    btv = b.T @ v
    first = lam[:, None] ** (depth - 1) * (uta @ b.T)
    middle = [
        lam[:, None] ** (depth - p) * (uta @ btv) * lam[None, :] ** (p - 1) for p in range(2, depth)
    ]
    last = (a @ btv) * lam[None, :] ** (depth - 1)
    return [first, *middle, last]


def _normal_times(u, v, egrad, up, vp):
    """(P_N(E') V_p, P_N(E')^T U_p) with P_N(E') = (I - UU^T) E' (I - VV^T), factored.

    ``egrad`` is only applied to thin matrices (``@`` and ``.T @``), so a sparse E'
    costs O(|Omega| r) here.
    """
    gw = egrad @ (vp - v @ (v.T @ vp))
    gtw = egrad.T @ (up - u @ (u.T @ up))
    return gw - u @ (u.T @ gw), gtw - v @ (v.T @ gtw)


def _curvature(u, s, v, weights: FixedRankWeights, depth: int, egrad, tangent):
    """(U_p, M, V_p) of Dphi_W(D_{xi^h}(Dphi^*)(E')) on the rank lift (N >= 2), factored.

    On W_1 = Lambda V^T, W_p = Lambda, W_N = U Lambda (``rank_lift``) write
    W_{>p} = U Lambda^{N-p}, W_{<p} = Lambda^{p-1} V^T and, with xi^h = (eta_1..eta_N)
    (``_lift_tangent``), DA_p = D_eta W_{>p} (m x r) and DB_p = D_eta W_{<p} (r x n).
    Then Dphi_W(D_eta(Dphi^*)(Y)) = sum_p W_{>p} DA_p^T Y W_{<p}^T W_{<p}
    + W_{>p} W_{>p}^T Y DB_p^T W_{<p}, and on the lift

        C = U A + B V^T + U K V^T,   A = Lambda^{N-1} DA_1^T Y,  B = Y DB_N^T Lambda^{N-1},
        K = sum_{1<p<N} Lambda^{N-p} DA_p^T (Y V) Lambda^{2(p-1)}
                        + Lambda^{2(N-p)} (Y^T U)^T DB_p^T Lambda^{p-1},

    whose tangent coordinates are M = A V + U^T B + K, U_p = (I - UU^T) B,
    V_p = (I - VV^T) A^T. Y = E' enters only through Y [V, DB_N^T] and
    Y^T [U, DA_1] (Y DB_N^T and Y^T DA_1 at N = 2): two products with thin
    matrices, O(|Omega| r) for a sparse E'; the rest is O(N (m + n) r^2). No m x n
    array.
    """
    lam = s ** (1.0 / depth)
    eta = _lift_tangent(u, s, v, weights, tangent, depth)
    r = s.shape[0]
    # 0-based layer p: DA[p] = D W_{>p} for p <= N - 2, DB[p] = D W_{<p} for p >= 1.
    da = [None] * depth
    da[depth - 2] = eta[depth - 1]
    for p in range(depth - 3, -1, -1):
        da[p] = da[p + 1] * lam + u @ (lam[:, None] ** (depth - 2 - p) * eta[p + 1])
    db = [None] * depth
    db[1] = eta[0]
    for p in range(2, depth):
        db[p] = lam[:, None] * db[p - 1] + (eta[p - 1] * lam[None, :] ** (p - 1)) @ v.T
    if depth == 2:  # no middle layers: Y V and Y^T U are not needed
        right, left = egrad @ db[1].T, egrad.T @ da[0]
    else:
        xp = _backend.namespace(u)
        right = egrad @ xp.hstack([v, db[depth - 1].T])
        left = egrad.T @ xp.hstack([u, da[0]])
        yv, ytu = right[:, :r], left[:, :r]
        right, left = right[:, r:], left[:, r:]
    b = right * lam ** (depth - 1)
    at = left * lam ** (depth - 1)  # A^T, n x r
    k = _backend.zeros(u, (r, r))
    for p in range(1, depth - 1):
        k += lam[:, None] ** (depth - 1 - p) * (da[p].T @ yv) * lam[None, :] ** (2 * p)
        k += lam[:, None] ** (2 * (depth - 1 - p)) * (ytu.T @ db[p].T) * lam[None, :] ** p
    utb = u.T @ b
    vta = v.T @ at
    return b - u @ utb, vta.T + utb + k, at - v @ vta


def _riemannian_hessian(u, s, v, weights: FixedRankWeights, depth, egrad, ehess, tangent):
    """Hess_g E(X)[xi] on M_r in (U_p, M, V_p) form (internal; see fixed_rank_hessian).

    ``egrad`` and ``ehess`` are any linear operators applied only to thin matrices
    (``@`` and ``.T @``): dense arrays, or scipy.sparse matrices for matrix
    completion, where everything costs O(|Omega| r + N (m + n) r^2).
    """
    hv = ehess @ v
    htu = ehess.T @ u
    if depth == 1:
        # Euclidean M_r: P_T(E''[xi]) + the Weingarten term of the normal part
        # P_N(E') = (I - UU^T) E' (I - VV^T) (Absil, Mahony & Trumpler 2008 §5.5;
        # Vandereycken 2013 Prop. 2.3).
        up, mm, vp = _tangent_coordinates(u, v, hv, htu)
        nv, ntu = _normal_times(u, v, egrad, tangent[0], tangent[2])
        return up + nv / s, mm, vp + ntu / s
    a_up, a_m, a_vp = _riemannian_gradient(u, v, weights, hv, htu)
    c_up, c_m, c_vp = _curvature(u, s, v, weights, depth, egrad, tangent)
    return a_up + c_up, a_m + c_m, a_vp + c_vp


def _as_operator(value, name: str, shape: tuple[int, int]):
    """A dense array (validated), a scipy.sparse matrix or a LinearOperator of ``shape``."""
    if scipy.sparse.issparse(value):
        if value.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {value.shape}")
        if not np.all(np.isfinite(value.data)):
            raise ValueError(f"{name} must be finite (it has NaN or inf entries)")
        return value
    if isinstance(value, scipy.sparse.linalg.LinearOperator):
        if value.shape != shape:
            raise ValueError(f"{name} must have shape {shape}, got {value.shape}")
        return value
    arr = as_matrix(value, name)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {arr.shape}")
    return arr


def fixed_rank_hessian(
    u: np.ndarray,
    s: np.ndarray,
    v: np.ndarray,
    euclidean_gradient,
    euclidean_hessian,
    tangent,
    depth: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Riemannian Hessian of E on (M_r, g^N) in (U_p, M, V_p) form.

    Through the Riemannian submersion phi: (M_r^bal, Frobenius) -> (M_r, g^N)
    from the balanced rank-r weights with inner widths r (``rank_lift``; math.md
    §4.2): for N >= 2,

        Hess_g E(X)[xi] = Dphi_W(grad^2 L(W)[xi^h]),    xi^h = Dphi_W^*(A^+ xi),
                        = A_{N,X}(E''(X)[xi]) + Dphi_W(D_{xi^h}(Dphi^*)(E'(X))),

    the rank-r case of math.md §4.3. It holds because horizontal geodesics of
    the balanced leaf project to g^N geodesics and the lifted gradient
    Dphi^*(E') is tangent to that leaf (the balanced flow keeps the rank for
    N >= 2), so no Weingarten term enters upstairs, and Dphi annihilates the
    normal space there. Both terms lie in T_X M_r (inner widths r); the
    projection only changes coordinates. N = 1 is the Euclidean fixed-rank
    Hessian P_T(E''[xi]) + (P_N(E') V_p S^{-1}, M, P_N(E')^T U_p S^{-1})
    (Vandereycken 2013, Prop. 2.3).

    Everything is factored: E'(X) and E''(X)[xi] are only multiplied with thin
    matrices (n x 2r and m x 2r), and the curvature term is evaluated on the
    diagonal structure of the lift (``_curvature``), so a scipy.sparse E' (matrix
    completion: P_Omega(X - X*)) and E''[xi] = P_Omega(xi) cost
    O(|Omega| r + N (m + n) r^2) and no m x n array is formed.

    Parameters
    ----------
    u : array, shape=[m, r]; s : array, shape=[r] (positive); v : array, shape=[n, r].
    euclidean_gradient : E'(X), shape [m, n]: a dense array, a scipy.sparse matrix
        or a ``scipy.sparse.linalg.LinearOperator`` (the ambient gradient: the
        curvature term needs its normal block U_perp^T E' V_perp too).
    euclidean_hessian : E''(X)[xi] with xi embedded, shape [m, n], the same kinds.
    tangent : (U_p [m, r], M [r, r], V_p [n, r]).
    depth : int, N >= 1.

    Example
    -------
    >>> import numpy as np, scipy.sparse
    >>> u, v = np.eye(4, 1), np.eye(3, 1)
    >>> g = scipy.sparse.csr_matrix(np.ones((4, 3)))
    >>> xi = (np.zeros((4, 1)), np.ones((1, 1)), np.zeros((3, 1)))
    >>> up, mm, vp = fixed_rank_hessian(u, np.array([2.0]), v, g, g, xi, 2)
    >>> up.shape, mm.shape, vp.shape
    ((4, 1), (1, 1), (3, 1))
    """
    _backend.namespace(
        u,
        s,
        v,
        euclidean_gradient,
        euclidean_hessian,
        *_parts(tangent),
        names=("u", "s", "v", "euclidean_gradient", "euclidean_hessian", *_NAMES_TANGENT),
    )
    u = as_matrix(u, "u")
    v = as_matrix(v, "v")
    weights = fixed_rank_weights(s, depth)
    m, n, r = u.shape[0], v.shape[0], weights.c.shape[0]
    if u.shape[1] != r or v.shape[1] != r:
        raise ValueError(f"u and v must have r = {r} columns, got {u.shape} and {v.shape}")
    egrad = _as_operator(euclidean_gradient, "euclidean_gradient", (m, n))
    ehess = _as_operator(euclidean_hessian, "euclidean_hessian", (m, n))
    tangent = _check_tangent(tangent, m, n, r, "tangent")
    return _riemannian_hessian(
        u, _as_float_s(s), v, weights, check_depth(depth), egrad, ehess, tangent
    )


def _lifted_factors(u, s, v, weights: FixedRankWeights, depth, tangent):
    """(left [m, k], right [n, k]) with phi(W + xi^h) = left right^T (internal)."""
    xp = _backend.namespace(u)
    if depth == 1:
        # X + xi = [U S + U M + U_p, U] [V, V_p]^T: the rank-r SVD truncation from two
        # thin QRs and a 2r x 2r SVD (Pymanopt's FixedRankEmbedded retraction, factored).
        up, mm, vp = tangent
        left, right = xp.hstack([u * s + u @ mm + up, u]), xp.hstack([v, vp])
    else:
        layers = rank_lift(u, s, v, depth)
        moved = [w + e for w, e in zip(layers, _lift_tangent(u, s, v, weights, tangent, depth))]
        # phi = (W_N + e_N)(middle)(W_1 + e_1) with factors m x r, r x r, r x n.
        left = moved[-1]
        for w in moved[-2:0:-1]:
            left = left @ w
        right = moved[0].T
    return left, right


def _lifted_retraction(u, s, v, weights: FixedRankWeights, depth, tangent):
    """(U, s, V) of phi(W + xi^h) (internal; see fixed_rank_retraction)."""
    r = s.shape[0]
    xp = _backend.namespace(u)
    left, right = _lifted_factors(u, s, v, weights, depth, tangent)
    q_left, r_left = xp.linalg.qr(left)
    q_right, r_right = xp.linalg.qr(right)
    uu, ss, vt = xp.linalg.svd(r_left @ r_right.T)
    return q_left @ uu[:, :r], ss[:r], q_right @ vt[:r].T


def fixed_rank_retraction(
    u: np.ndarray, s: np.ndarray, v: np.ndarray, tangent, depth: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """R_X(xi) = phi(W + xi^h): a straight horizontal step from the rank-r lift.

    Second order for g^N (like ``DLNMatrices``' lifted retraction, math.md §4.2):
    the horizontal geodesic of the balanced leaf differs from W + t xi^h by an
    O(t^2) vector normal to the leaf, which Dphi annihilates. With inner widths
    r the result has rank <= r; it is returned as (U [m, r], s [r], V [n, r]).
    N = 1 is the rank-r SVD truncation of X + xi (Pymanopt's ``FixedRankEmbedded``).
    numpy or torch (one backend and device for all arguments).
    """
    _backend.namespace(u, s, v, *_parts(tangent), names=("u", "s", "v", *_NAMES_TANGENT))
    u = as_matrix(u, "u")
    v = as_matrix(v, "v")
    weights = fixed_rank_weights(s, depth)
    m, n, r = u.shape[0], v.shape[0], weights.c.shape[0]
    tangent = _check_tangent(tangent, m, n, r, "tangent")
    return _lifted_retraction(u, _as_float_s(s), v, weights, check_depth(depth), tangent)


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
    return _tangent_coordinates(u_b, v_b, zv, ztu)
