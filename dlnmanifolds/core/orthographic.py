"""Orthographic projection onto the balanced manifold, batched over paths (math.md §2.5).

Given a base point W in M and an ambient point Y near it, find S in Sym(d)^{N-1} with

    G(Y + C_W(S)) = 0,   C_W(S)_p = S_p W_p - W_p S_{p-1}  (S_0 = S_N = 0),

by Newton's method; the Jacobian is J_V: dS -> DG(V)[C_W(dS)] at the current iterate V.
Y + C_W(S) - W - P_T(Y - W) is normal, so this is the orthographic retraction when
Y - W is tangent and the constrained-step projection of the upstairs Langevin
scheme (math.md §8.2; checked in math.md §10). Main case: square widths, W of full rank.

Structure (issue 12): at the base point the Jacobian decouples in the frames
W_p = Q_p Lambda Q_{p-1}^T. With S~_p = Q_p^T S_p Q_p and G~_p = Q_p^T G_p Q_p,

    (Q_p^T DG(W)[C_W(S)]_p Q_p)[i, j] = -2 (T_ij s_ij)_p,

T_ij the (N-1) x (N-1) Jacobi matrix of math.md §2.4 (diagonal lam_i^2 + lam_j^2,
off-diagonal -lam_i lam_j), now for every i <= j (T_ii is SPD too). So J_W^{-1} is
d(d+1)/2 batched tridiagonal solves after O(N d^3) frame rotations. Each Newton
system J_V dS = -G(V) is solved by GMRES preconditioned with J_W^{-1}
(J_W^{-1} J_V = I + O(|V - W|), a few Krylov steps); every operator application
is O(N d^3) and memory is O(N d^2) per path, against the
O(((N-1) d(d+1)/2)^3) time and O(((N-1) d(d+1)/2)^2) memory of the dense system.

numpy arrays or torch tensors (CPU or CUDA, float32/float64), batched either way; the
Newton and Krylov loops test one Python number per step (the iteration caps hold).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from dlnmanifolds.core import _backend
from dlnmanifolds.core.balanced import _frame_stack
from dlnmanifolds.core.balanced_tangent import (
    _JacobiFactor,
    normal_generator,
    normal_generator_adjoint,
)
from dlnmanifolds.core.network import _invariants, _t

#: Smallest relative tolerance of the inner (Krylov) solve of a Newton system.
KRYLOV_RTOL = 1e-14
#: Krylov dimension cap of one Newton system.
KRYLOV_MAX = 60


class _FrameSystem:
    """Frame coordinates of Sym(d)^{N-1} at a balanced base point and J_W^{-1}."""

    def __init__(self, base: Sequence[np.ndarray]):
        d = base[0].shape[-1]
        self.q, lam = _frame_stack(base, d)
        self.inner = self.q[1:-1]
        self.iu, self.ju = _backend.triu_indices_like(lam, d, 0)
        self.size = int(self.iu.shape[0])
        self.jacobi = _JacobiFactor(lam[..., self.iu], lam[..., self.ju], len(base) - 1)
        self.d = d
        self.xp = _backend.namespace(lam)
        self.like = lam

    def to_coordinates(self, mats: Sequence[np.ndarray]) -> np.ndarray:
        """(S_1..S_{N-1}) symmetric -> upper entries of Q_p^T S_p Q_p, [..., N-1, d(d+1)/2]."""
        return self.xp.stack(
            [(_t(q) @ m @ q)[..., self.iu, self.ju] for q, m in zip(self.inner, mats)], axis=-2
        )

    def from_coordinates(self, vec: np.ndarray) -> list[np.ndarray]:
        out = []
        for k, q in enumerate(self.inner):
            s = _backend.zeros(vec, tuple(vec.shape[:-2]) + (self.d, self.d))
            s[..., self.iu, self.ju] = vec[..., k, :]
            s[..., self.ju, self.iu] = vec[..., k, :]
            out.append(q @ s @ _t(q))
        return out

    def base_jacobian_inverse(self, vec: np.ndarray) -> np.ndarray:
        """J_W^{-1} in coordinates: -(2 T_ij)^{-1} per entry (i <= j)."""
        rhs = self.xp.moveaxis(vec, -2, 0)
        return self.xp.moveaxis(-self.jacobi.solve(rhs), 0, -2)


def _gmres(apply, b: np.ndarray, x0: np.ndarray, rtol: float, max_dim: int) -> np.ndarray:
    """Batched GMRES (no restart) for apply(x) = b, vectors [..., n].

    Modified Gram-Schmidt Arnoldi with the Hessenberg matrix reduced by Givens
    rotations as it grows (Saad 2003, Alg. 6.9), all batch members in step; it stops
    when every member's residual is below rtol |b| (converged members only add
    negligible corrections meanwhile). numpy arrays or torch tensors; one Python bool
    per Krylov step (the stopping test).
    """
    xp = _backend.namespace(b)
    norm = xp.linalg.vector_norm
    r = b - apply(x0)
    beta = norm(r, axis=-1)
    target = rtol * xp.clip(norm(b, axis=-1), 1e-300, None)
    if bool(xp.all(beta <= target)):
        return x0
    batch = tuple(b.shape[:-1])
    max_dim = min(max_dim, b.shape[-1])  # exact after n steps in exact arithmetic
    basis = [r / xp.where(beta > 0, beta, 1.0)[..., None]]
    columns = []  # of the rotated (upper-triangular) Hessenberg matrix
    cs, sn = _backend.zeros(b, batch + (max_dim,)), _backend.zeros(b, batch + (max_dim,))
    g = _backend.zeros(b, batch + (max_dim + 1,))
    g[..., 0] = beta
    k = 0
    for k in range(max_dim):
        w = apply(basis[k])
        h = _backend.empty(b, batch + (k + 2,))
        for j in range(k + 1):
            h[..., j] = xp.sum(w * basis[j], axis=-1)
            w = w - h[..., j, None] * basis[j]
        h[..., k + 1] = norm(w, axis=-1)
        basis.append(w / xp.where(h[..., k + 1] > 0, h[..., k + 1], 1.0)[..., None])
        for j in range(k):  # previous rotations
            top = cs[..., j] * h[..., j] + sn[..., j] * h[..., j + 1]
            h[..., j + 1] = -sn[..., j] * h[..., j] + cs[..., j] * h[..., j + 1]
            h[..., j] = top
        radius = xp.hypot(h[..., k], h[..., k + 1])
        safe = xp.where(radius > 0, radius, 1.0)
        cs[..., k] = xp.where(radius > 0, h[..., k] / safe, 1.0)
        sn[..., k] = xp.where(radius > 0, h[..., k + 1] / safe, 0.0)
        h[..., k], h[..., k + 1] = radius, 0.0
        columns.append(h[..., : k + 1])
        g[..., k + 1] = -sn[..., k] * g[..., k]
        g[..., k] = cs[..., k] * g[..., k]
        if bool(xp.all(xp.abs(g[..., k + 1]) <= target)):
            break
    m = k + 1
    tri = _backend.zeros(b, batch + (m, m))
    for j, col in enumerate(columns):
        tri[..., : j + 1, j] = col
    diag = xp.linalg.diagonal(tri)
    tri = tri + xp.where(diag == 0, 1.0, 0.0)[..., None, :] * _backend.eye(b, m)  # breakdown
    y = xp.linalg.solve(tri, g[..., :m, None])[..., 0]
    return x0 + xp.einsum("...k,k...n->...n", y, xp.stack(basis[:m]))


def _fresh(a):
    """A writable copy of one layer (numpy ``np.array``, torch ``clone``)."""
    return np.array(a) if not _backend._is_torch(a) else a.clone()


def orthographic_projection(
    base: Sequence[np.ndarray],
    ambient: Sequence[np.ndarray],
    tol: float = 1e-12,
    max_iter: int = 20,
) -> tuple[list[np.ndarray], int, float]:
    """Project ``ambient`` onto M along range C_base (Newton on S); batched layers.

    Returns (V, iterations, max |G(V)| entry). ``tol`` is relative to
    max(1, max |W|^2). Layers have shape [..., d, d]; ``base`` is balanced with a
    full-rank end-to-end matrix. Cost per Newton step: a few preconditioned Krylov
    steps of O(N d^3) each (module docstring); memory O(N d^2) per path.
    numpy arrays or torch tensors (CPU or CUDA; one backend and device for ``base`` and
    ``ambient``, TypeError naming the layer otherwise); V is of their kind, the
    iteration count and residual are Python numbers (one float per Newton step). float32:
    the residual cannot fall below ~eps32 max|W|^2, so ``tol`` is raised to 10 eps32.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.core.balanced import balanced_factors
    >>> w = list(balanced_factors(np.diag([2.0, 1.0]), 3))
    >>> y = [a + 0.01 for a in w]
    >>> v, iterations, residual = orthographic_projection(w, y)
    >>> bool(residual <= 1e-12)
    True
    """
    xp = _backend.namespace_of_layers(base=base, ambient=ambient)
    depth = len(base)
    if depth == 1:
        return [_fresh(a) for a in ambient], 0, 0.0
    eps = _backend.dtype_eps(base[0])
    if eps > 1e-10:  # float32: below ~eps |W|^2 the residual is round-off
        tol = max(tol, 10.0 * eps)
    scale = max(1.0, max(float(xp.max(xp.abs(w))) for w in base) ** 2)
    system = _FrameSystem(base)
    shape = tuple(base[0].shape[:-2]) + (depth - 1, system.size)

    def flat(vec):
        return vec.reshape(tuple(vec.shape[:-2]) + (-1,))

    def unflat(vec):
        return vec.reshape(shape)

    coeffs = _backend.zeros(system.like, shape)
    v = [_fresh(a) for a in ambient]
    residual = float("inf")
    for iteration in range(max_iter + 1):
        g = _invariants(v)
        values = [float(xp.max(xp.abs(a))) for a in g]
        residual = math.nan if any(x != x for x in values) else max(values)  # NaN propagates
        if residual <= tol * scale:
            return v, iteration, residual
        if iteration == max_iter or not math.isfinite(residual):
            # non-finite: report failure at once (never hand NaN to LAPACK)
            break

        def preconditioned_jacobian(x, v=v):
            # J_V dS = DG(V)[C_W(dS)] = -2 C_V^*(C_W(dS)); the -2 is applied last, on
            # the (smaller) coordinate vector
            step = normal_generator(base, system.from_coordinates(unflat(x)))
            adjoint = system.to_coordinates(normal_generator_adjoint(v, step))
            return -2.0 * flat(system.base_jacobian_inverse(adjoint))

        rhs = flat(system.base_jacobian_inverse(-system.to_coordinates(g)))
        # Inexact Newton with forcing term eta = min(1e-2, |G|/scale) (Eisenstat &
        # Walker 1996): |J dS + G| <= eta |G| keeps the outer convergence quadratic
        # while the early, far-from-converged steps take few Krylov iterations.
        eta = min(1e-2, max(residual / scale, KRYLOV_RTOL))
        delta = _gmres(preconditioned_jacobian, rhs, rhs, eta, KRYLOV_MAX)
        coeffs = coeffs + unflat(delta)
        c = normal_generator(base, system.from_coordinates(coeffs))
        v = [a + ci for a, ci in zip(ambient, c)]
    return v, max_iter, residual
