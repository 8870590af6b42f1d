"""Balanced varieties M_G: level sets of the conserved quantities (math.md §2.1, §2.4-2.6).

G_p(W) = W_{p+1}^T W_{p+1} - W_p W_p^T (p = 1..N-1) is constant along the gradient
flow of every E∘phi (Arora, Cohen & Hazan 2018; checked in math.md §10), so training from any
start moves on M_G = {W : G(W) = G} -- the leaves of the conic foliation of Menon
2024, Fig. 9.1; G = 0 is the balanced manifold M. Where DG(W) is onto Sym^{N-1}
(a regular level set), with C_W(S)_p = S_p W_p - W_p S_{p-1} and DG = -2 C_W^*
(math.md §2.4; checked in math.md §10):

* normal space N_W M_G = range C_W, tangent space T_W M_G = ker DG(W);
* projection P_T xi = xi - C_W(S), C_W^* C_W (S) = C_W^*(xi)      (normal equations);
* retraction W + xi + C_W(S) with G(W + xi + C_W(S)) = G, S by Newton (orthographic,
  second order: math.md §2.5 for G = 0; nothing there uses G = 0);
* Hessian P_T(E''[xi] - C_xi(S)) with C_W(S) = P_N(egrad)          (Weingarten, §2.6).

The normal operator is block-tridiagonal in p:
(C_V^* C_W S)_p = sym(S_p W_p V_p^T + V_{p+1}^T W_{p+1} S_p - W_p S_{p-1} V_p^T
                      - V_{p+1}^T S_{p+1} W_{p+1}),
so every solve is a block Thomas sweep over the N - 1 blocks Sym(d_p) (dense blocks in
an orthonormal basis of Sym(d_p), O(N d^6) at worst, never the dense KKT system of all
layers), or matrix-free conjugate gradients when a block would be large.

Every function takes numpy arrays or torch tensors (CPU or CUDA, float32/float64; one
backend and device per call, else a TypeError naming the layer, e.g. ``xi[1]``) and
returns the same kind. The only per-backend kernels are the LU factorization and solve
(``_backend.lu_factor`` / ``lu_solve``: scipy with LAPACK's condition estimate, or
torch.linalg); the conjugate-gradient solve is one implementation for both.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from dlnmanifolds.core import _backend
from dlnmanifolds.core.balanced_tangent import normal_generator, normal_generator_adjoint
from dlnmanifolds.core.network import _invariants, _t

Layers = Sequence[np.ndarray]

#: Largest block dimension d(d+1)/2 solved with dense blocks; beyond it, CG.
DENSE_BLOCK_LIMIT = 500
#: Newton tolerance of the retraction: max |G_p(R) - G_p| <= NEWTON_RTOL * scale.
NEWTON_RTOL = 1e-14
NEWTON_MAX_ITERATIONS = 30
#: A normal-equation pivot block with reciprocal condition below this is singular.
SINGULAR_RCOND = 1e-13
#: Relative residual of the conjugate-gradient solve (large blocks).
CG_RTOL = 1e-14


class NotRegularError(ValueError):
    """DG(W) is not onto Sym^{N-1} here: M_G is not a regular level set at W."""


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + _t(a))


def _sym_basis(d: int, like) -> np.ndarray:
    """Orthonormal basis of Sym(d) (Frobenius), shape (d(d+1)/2, d, d), built in the
    dtype and on the device of ``like`` (no host-to-device copy)."""
    i, j = _backend.triu_indices_like(like, d, 0)
    size = int(i.shape[0])
    basis = _backend.zeros(like, (size, d, d))
    k = _backend.arange_like(like, size)
    weight = _backend.zeros(like, (size,)) + math.sqrt(0.5)
    weight[i == j] = 1.0
    basis[k, i, j] = weight
    basis[k, j, i] = weight
    return basis


def _coefficients(s: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Coordinates <S, E_k> of symmetric S (..., d, d) in the basis (k, d, d)."""
    d = basis.shape[-1]
    return s.reshape(tuple(s.shape[:-2]) + (d * d,)) @ _t(basis.reshape(basis.shape[0], d * d))


def _combine(c: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """sum_k c_k E_k: the matrix of the coordinates c (k,)."""
    d = basis.shape[-1]
    return (c @ basis.reshape(basis.shape[0], d * d)).reshape(d, d)


class _BlockSystem(NamedTuple):
    """Block-tridiagonal normal operator S -> C_V^* C_W(S) in orthonormal Sym bases."""

    bases: list[np.ndarray]
    lower: list[np.ndarray]  # lower[p] maps S_{p-1} into row p (p >= 1)
    diag: list[np.ndarray]
    upper: list[np.ndarray]  # upper[p] maps S_{p+1} into row p (p <= n - 2)


def _apply(weights: Layers, other: Layers, s: Sequence[np.ndarray]) -> list[np.ndarray]:
    """C_V^* C_W (S) with V = ``other`` (matrix-free)."""
    return normal_generator_adjoint(other, normal_generator(weights, s))


def _build(weights: Layers, other: Layers) -> _BlockSystem:
    n = len(weights) - 1
    bases = [_sym_basis(weights[p].shape[0], weights[p]) for p in range(n)]
    lower, diag, upper = [], [], []
    for p in range(n):
        w_p, w_next = weights[p], weights[p + 1]
        v_p, v_next = other[p], other[p + 1]
        e = bases[p]
        # row p, column p: S_p -> sym(S_p W_p V_p^T + V_{p+1}^T W_{p+1} S_p)
        image = _sym(e @ (w_p @ _t(v_p)) + (_t(v_next) @ w_next) @ e)
        diag.append(_t(_coefficients(image, e)))
        if p > 0:  # row p, column p - 1: S_{p-1} -> -sym(W_p S_{p-1} V_p^T)
            image = -_sym(w_p @ bases[p - 1] @ _t(v_p))
            lower.append(_t(_coefficients(image, e)))
        else:
            lower.append(None)
        if p < n - 1:  # row p, column p + 1: S_{p+1} -> -sym(V_{p+1}^T S_{p+1} W_{p+1})
            image = -_sym(_t(v_next) @ bases[p + 1] @ w_next)
            upper.append(_t(_coefficients(image, e)))
        else:
            upper.append(None)
    return _BlockSystem(bases, lower, diag, upper)


def _dense(weights: Layers) -> bool:
    return max(w.shape[0] * (w.shape[0] + 1) // 2 for w in weights[:-1]) <= DENSE_BLOCK_LIMIT


def _conjugate_gradients(matvec, b: np.ndarray, rtol: float, maxiter: int):
    """x with matvec(x) = b (SPD operator) by conjugate gradients from x = 0.

    Stops when |b - matvec(x)| < rtol |b| (the criterion of ``scipy.sparse.linalg.cg``
    with atol = 0); returns (x, converged). One Python float per iteration.
    """
    xp = _backend.namespace(b)
    x = xp.zeros_like(b)
    target = rtol * float(xp.linalg.vector_norm(b))
    if target == 0.0:
        return x, True
    r = _backend.copy(b)
    p = None
    rho_prev = 1.0
    for _ in range(maxiter):
        norm = float(xp.linalg.vector_norm(r))
        if norm < target:
            return x, True
        if not math.isfinite(norm):
            return x, False
        rho = xp.sum(r * r)
        p = _backend.copy(r) if p is None else r + (rho / rho_prev) * p
        q = matvec(p)
        alpha = rho / xp.sum(p * q)
        x = x + alpha * p
        r = r - alpha * q
        rho_prev = rho
    return x, False


class NormalSolver:
    """Factored normal operator S -> C_V^* C_W(S) at one point (V = ``other``, default W).

    Dense blocks: block Thomas, the LU factors of the Schur-complement pivots
    D'_p = D_p - L_p D'_{p-1}^{-1} U_{p-1} and D'_p^{-1} U_p kept, so each solve is
    two sweeps of small triangular solves (the factorization is reused for every
    projection at the same point). Large blocks: matrix-free conjugate gradients
    (V = W only, where the operator is symmetric positive definite).
    Raises ``NotRegularError`` where DG(W) is not onto (a singular pivot).
    numpy arrays or torch tensors (CPU or CUDA; the LU kernels are
    ``_backend.lu_factor``/``lu_solve``).
    """

    def __init__(self, weights: Layers, other: Layers | None = None):
        self.weights = list(weights)
        self.other = self.weights if other is None else list(other)
        self.n = len(self.weights) - 1
        self.dense = self.n > 0 and _dense(self.weights)
        if not self.dense:
            return
        system = _build(self.weights, self.other)
        self.bases, self.lower = system.bases, system.lower
        self.lu, self.upper_solved = [], []
        for p in range(self.n):
            d = system.diag[p]
            if p > 0:
                d = d - system.lower[p] @ self.upper_solved[p - 1]
            lu, rcond = _backend.lu_factor(d)
            if not rcond >= SINGULAR_RCOND:
                raise NotRegularError(
                    f"DG(W) is not onto Sym^(N-1) at this point (normal-equation block {p + 1} "
                    f"is singular): the level set of the invariants is not a manifold here"
                )
            self.lu.append(lu)
            if p < self.n - 1:
                self.upper_solved.append(_backend.lu_solve(lu, system.upper[p]))

    def solve(self, rhs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """S with C_V^* C_W(S) = rhs (lists of N - 1 symmetric matrices)."""
        if self.n == 0:
            return []
        if not self.dense:
            return self._solve_cg(rhs)
        z = []
        for p in range(self.n):
            r = _coefficients(rhs[p], self.bases[p])
            if p > 0:
                r = r - self.lower[p] @ z[-1]
            z.append(_backend.lu_solve(self.lu[p], r))
        x = [None] * self.n
        x[-1] = z[-1]
        for p in range(self.n - 2, -1, -1):
            x[p] = z[p] - self.upper_solved[p] @ x[p + 1]
        return [_combine(c, b) for c, b in zip(x, self.bases)]

    def _solve_cg(self, rhs):
        weights, n = self.weights, self.n
        xp = _backend.namespace(weights[0])
        bases = [_sym_basis(w.shape[0], w) for w in weights[:-1]]
        sizes = [0]
        for b in bases:
            sizes.append(sizes[-1] + int(b.shape[0]))

        def unpack(vec):
            return [_combine(vec[sizes[p] : sizes[p + 1]], bases[p]) for p in range(n)]

        def pack(mats):
            return xp.concat([_coefficients(m, b) for m, b in zip(mats, bases)])

        def matvec(vec):
            return pack(_apply(weights, weights, unpack(vec)))

        sol, converged = _conjugate_gradients(matvec, pack(rhs), CG_RTOL, 50 * sizes[-1])
        if not converged:
            raise NotRegularError(
                f"conjugate gradients on the normal equations did not converge in "
                f"{50 * sizes[-1]} iterations"
            )
        return unpack(sol)


def normal_solve(weights: Layers, rhs: Sequence[np.ndarray], other: Layers | None = None):
    """S in Sym^{N-1} with C_V^* C_W(S) = rhs (V = ``other``, default W); internal.

    numpy arrays or torch tensors (one backend and device: TypeError naming the argument).
    """
    _backend.namespace_of_layers(weights=weights, rhs=rhs, other=other)
    return NormalSolver(weights, other).solve(rhs)


def invariant_tangent_projection(
    weights: Layers, xi: Layers, solver: NormalSolver | None = None
) -> list[np.ndarray]:
    """P_T xi = xi - C_W(S), C_W^* C_W(S) = C_W^*(xi): orthogonal projection onto ker DG(W).

    ``solver``: a ``NormalSolver(weights)`` to reuse (it caches the factorization).
    numpy arrays or torch tensors (CPU or CUDA, float32/float64), returned as the same kind.
    float32: the normal equations square the condition number of C_W, so the projection
    is accurate to about eps32 cond(C_W^* C_W) relative.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.core.network import invariants
    >>> rng = np.random.default_rng(0)
    >>> W = [rng.standard_normal((3, 3)) for _ in range(3)]
    >>> xi = [rng.standard_normal((3, 3)) for _ in range(3)]
    >>> p = invariant_tangent_projection(W, xi)
    >>> h = 1e-7  # DG(W)[P_T xi] = 0: G is constant to first order along P_T xi
    >>> moved = invariants([w + h * v for w, v in zip(W, p)])
    >>> bool(max(np.abs(a - b).max() for a, b in zip(moved, invariants(W))) < 1e-12)
    True
    """
    _backend.namespace_of_layers(weights=weights, xi=xi)
    s = invariant_normal_multipliers(weights, xi, solver)
    return [a - b for a, b in zip(xi, normal_generator(weights, s))]


def invariant_normal_multipliers(
    weights: Layers, vector: Layers, solver: NormalSolver | None = None
) -> list[np.ndarray]:
    """S with C_W(S) = P_N(vector), the normal part of ``vector`` (numpy or torch)."""
    _backend.namespace_of_layers(weights=weights, vector=vector)
    solver = NormalSolver(weights) if solver is None else solver
    return solver.solve(normal_generator_adjoint(weights, vector))


def invariant_hessian(
    weights: Layers, egrad: Layers, ehess: Layers, xi: Layers, solver: NormalSolver | None = None
):
    """Riemannian Hessian on M_G: P_T(E''[xi] - C_xi(S)), C_W(S) = P_N(egrad) (math.md §2.6).

    numpy arrays or torch tensors (one backend and device for all four sequences).
    """
    _backend.namespace_of_layers(weights=weights, egrad=egrad, ehess=ehess, xi=xi)
    solver = NormalSolver(weights) if solver is None else solver
    s = invariant_normal_multipliers(weights, egrad, solver)
    curvature = normal_generator(weights, s, xi)
    return invariant_tangent_projection(weights, [h - c for h, c in zip(ehess, curvature)], solver)


def _max_abs(arrays: Sequence[np.ndarray]) -> float:
    """max |entry| over a sequence of arrays, a Python float (NaN if any entry is NaN)."""
    xp = _backend.namespace(arrays[0])
    values = [float(xp.max(xp.abs(a))) for a in arrays]
    return math.nan if any(v != v for v in values) else max(values)


def invariant_retraction(
    weights: Layers, xi: Layers, target: Sequence[np.ndarray] | None = None
) -> list[np.ndarray]:
    """R_W(xi) = W + xi + C_W(S) with G(R_W(xi)) = target (default G(W)), S by Newton.

    The Jacobian of S -> G(W + xi + C_W(S)) is dS -> DG(V)[C_W(dS)] = -2 C_V^* C_W(dS)
    at the iterate V: a block-tridiagonal solve per step (matrix-free CG with the
    fixed Jacobian at W when the blocks are large). Stops at max |G_p(V) - G_p| <=
    1e-14 (1 + max |W_p|^2); raises ``NotRegularError`` when Newton does not
    converge (a step too long for the level set, or DG not onto). numpy arrays or torch
    tensors (one Python float per Newton step: the stopping test). float32 cannot reach
    the 1e-14 tolerance: there the iteration stops at the float32 round-off floor
    (``NEWTON_RTOL`` is raised to 10 eps of the dtype).
    """
    _backend.namespace_of_layers(weights=weights, xi=xi, target=target)
    target = _invariants(weights) if target is None else list(target)
    n = len(weights) - 1
    moved = [w + v for w, v in zip(weights, xi)]
    if n == 0:
        return moved
    xp = _backend.namespace(weights[0])
    rtol = max(NEWTON_RTOL, 10.0 * _backend.dtype_eps(weights[0]))
    scale = 1.0 + _max_abs(weights) ** 2
    scale = max(scale, _max_abs(target) if target else 0.0)
    s = [xp.zeros_like(g) for g in target]
    dense = _dense(weights)
    fixed = None if dense else NormalSolver(weights)
    for _ in range(NEWTON_MAX_ITERATIONS):
        current = [m + c for m, c in zip(moved, normal_generator(weights, s))]
        residual = [g - t for g, t in zip(_invariants(current), target)]
        worst = _max_abs(residual)
        if worst <= rtol * scale:
            return current
        if not math.isfinite(worst):  # never hand NaN or inf to LAPACK
            break
        # G(V + C_W dS) = G(V) - 2 C_V^* C_W dS + O(dS^2) = target
        rhs = [0.5 * r for r in residual]
        step = NormalSolver(weights, current).solve(rhs) if dense else fixed.solve(rhs)
        s = [a + b for a, b in zip(s, step)]
    raise NotRegularError(
        f"the retraction's Newton iteration did not reach the level set in "
        f"{NEWTON_MAX_ITERATIONS} steps (max residual {worst:.3g}); use a shorter step"
    )


def invariant_dimension(widths: Sequence[int]) -> int:
    """dim M_G = sum_p d_p d_{p-1} - sum_{p=1}^{N-1} d_p (d_p + 1)/2 (regular level set)."""
    layers = sum(widths[p + 1] * widths[p] for p in range(len(widths) - 1))
    return layers - sum(d * (d + 1) // 2 for d in widths[1:-1])
