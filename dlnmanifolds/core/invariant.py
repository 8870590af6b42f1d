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
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import scipy.linalg
from scipy.sparse.linalg import LinearOperator, cg

from dlnmanifolds.core.balanced_tangent import normal_generator, normal_generator_adjoint
from dlnmanifolds.core.network import _invariants

Layers = Sequence[np.ndarray]

#: Largest block dimension d(d+1)/2 solved with dense blocks; beyond it, CG.
DENSE_BLOCK_LIMIT = 500
#: Newton tolerance of the retraction: max |G_p(R) - G_p| <= NEWTON_RTOL * scale.
NEWTON_RTOL = 1e-14
NEWTON_MAX_ITERATIONS = 30
#: A normal-equation pivot block with reciprocal condition below this is singular.
SINGULAR_RCOND = 1e-13


class NotRegularError(ValueError):
    """DG(W) is not onto Sym^{N-1} here: M_G is not a regular level set at W."""


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _sym_basis(d: int) -> np.ndarray:
    """Orthonormal basis of Sym(d) (Frobenius), shape (d(d+1)/2, d, d)."""
    i, j = np.triu_indices(d)
    basis = np.zeros((i.size, d, d))
    k = np.arange(i.size)
    weight = np.where(i == j, 1.0, np.sqrt(0.5))
    basis[k, i, j] = weight
    basis[k, j, i] = weight
    return basis


def _coefficients(s: np.ndarray, basis: np.ndarray) -> np.ndarray:
    return np.tensordot(s, basis, axes=([-2, -1], [1, 2]))


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
    bases = [_sym_basis(weights[p].shape[0]) for p in range(n)]
    lower, diag, upper = [], [], []
    for p in range(n):
        w_p, w_next = weights[p], weights[p + 1]
        v_p, v_next = other[p], other[p + 1]
        e = bases[p]
        # row p, column p: S_p -> sym(S_p W_p V_p^T + V_{p+1}^T W_{p+1} S_p)
        image = _sym(e @ (w_p @ v_p.T) + (v_next.T @ w_next) @ e)
        diag.append(_coefficients(image, e).T)
        if p > 0:  # row p, column p - 1: S_{p-1} -> -sym(W_p S_{p-1} V_p^T)
            image = -_sym(w_p @ bases[p - 1] @ v_p.T)
            lower.append(_coefficients(image, e).T)
        else:
            lower.append(None)
        if p < n - 1:  # row p, column p + 1: S_{p+1} -> -sym(V_{p+1}^T S_{p+1} W_{p+1})
            image = -_sym(v_next.T @ bases[p + 1] @ w_next)
            upper.append(_coefficients(image, e).T)
        else:
            upper.append(None)
    return _BlockSystem(bases, lower, diag, upper)


def _dense(weights: Layers) -> bool:
    return max(w.shape[0] * (w.shape[0] + 1) // 2 for w in weights[:-1]) <= DENSE_BLOCK_LIMIT


class NormalSolver:
    """Factored normal operator S -> C_V^* C_W(S) at one point (V = ``other``, default W).

    Dense blocks: block Thomas, the LU factors of the Schur-complement pivots
    D'_p = D_p - L_p D'_{p-1}^{-1} U_{p-1} and D'_p^{-1} U_p kept, so each solve is
    two sweeps of small triangular solves (the factorization is reused for every
    projection at the same point). Large blocks: matrix-free conjugate gradients
    (V = W only, where the operator is symmetric positive definite).
    Raises ``NotRegularError`` where DG(W) is not onto (a singular pivot).
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
            with warnings.catch_warnings():  # a singular pivot is reported just below
                warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
                lu = scipy.linalg.lu_factor(d, check_finite=False)
            # LAPACK's 1-norm reciprocal condition estimate from the LU factors (O(s^2)).
            rcond, _ = scipy.linalg.lapack.dgecon(lu[0], np.linalg.norm(d, 1), norm="1")
            if not rcond >= SINGULAR_RCOND:
                raise NotRegularError(
                    f"DG(W) is not onto Sym^(N-1) at this point (normal-equation block {p + 1} "
                    f"is singular): the level set of the invariants is not a manifold here"
                )
            self.lu.append(lu)
            if p < self.n - 1:
                self.upper_solved.append(scipy.linalg.lu_solve(lu, system.upper[p]))

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
            z.append(scipy.linalg.lu_solve(self.lu[p], r))
        x = [None] * self.n
        x[-1] = z[-1]
        for p in range(self.n - 2, -1, -1):
            x[p] = z[p] - self.upper_solved[p] @ x[p + 1]
        return [np.tensordot(c, b, axes=1) for c, b in zip(x, self.bases)]

    def _solve_cg(self, rhs):
        weights, n = self.weights, self.n
        bases = [_sym_basis(w.shape[0]) for w in weights[:-1]]
        sizes = np.cumsum([0] + [b.shape[0] for b in bases])

        def unpack(vec):
            return [np.tensordot(vec[sizes[p] : sizes[p + 1]], bases[p], axes=1) for p in range(n)]

        def pack(mats):
            return np.concatenate([_coefficients(m, b) for m, b in zip(mats, bases)])

        def matvec(vec):
            return pack(_apply(weights, weights, unpack(vec)))

        op = LinearOperator((sizes[-1],) * 2, matvec=matvec)
        sol, info = cg(op, pack(rhs), rtol=1e-14, atol=0.0, maxiter=50 * sizes[-1])
        if info != 0:
            raise NotRegularError(
                f"conjugate gradients on the normal equations failed (info {info})"
            )
        return unpack(sol)


def normal_solve(weights: Layers, rhs: Sequence[np.ndarray], other: Layers | None = None):
    """S in Sym^{N-1} with C_V^* C_W(S) = rhs (V = ``other``, default W); internal."""
    return NormalSolver(weights, other).solve(rhs)


def invariant_tangent_projection(
    weights: Layers, xi: Layers, solver: NormalSolver | None = None
) -> list[np.ndarray]:
    """P_T xi = xi - C_W(S), C_W^* C_W(S) = C_W^*(xi): orthogonal projection onto ker DG(W).

    ``solver``: a ``NormalSolver(weights)`` to reuse (it caches the factorization).
    """
    s = invariant_normal_multipliers(weights, xi, solver)
    return [a - b for a, b in zip(xi, normal_generator(weights, s))]


def invariant_normal_multipliers(
    weights: Layers, vector: Layers, solver: NormalSolver | None = None
) -> list[np.ndarray]:
    """S with C_W(S) = P_N(vector), the normal part of ``vector``."""
    solver = NormalSolver(weights) if solver is None else solver
    return solver.solve(normal_generator_adjoint(weights, vector))


def invariant_hessian(
    weights: Layers, egrad: Layers, ehess: Layers, xi: Layers, solver: NormalSolver | None = None
):
    """Riemannian Hessian on M_G: P_T(E''[xi] - C_xi(S)), C_W(S) = P_N(egrad) (math.md §2.6)."""
    solver = NormalSolver(weights) if solver is None else solver
    s = invariant_normal_multipliers(weights, egrad, solver)
    curvature = normal_generator(weights, s, xi)
    return invariant_tangent_projection(weights, [h - c for h, c in zip(ehess, curvature)], solver)


def invariant_retraction(
    weights: Layers, xi: Layers, target: Sequence[np.ndarray] | None = None
) -> list[np.ndarray]:
    """R_W(xi) = W + xi + C_W(S) with G(R_W(xi)) = target (default G(W)), S by Newton.

    The Jacobian of S -> G(W + xi + C_W(S)) is dS -> DG(V)[C_W(dS)] = -2 C_V^* C_W(dS)
    at the iterate V: a block-tridiagonal solve per step (matrix-free CG with the
    fixed Jacobian at W when the blocks are large). Stops at max |G_p(V) - G_p| <=
    1e-14 (1 + max |W_p|^2); raises ``NotRegularError`` when Newton does not
    converge (a step too long for the level set, or DG not onto).
    """
    target = _invariants(weights) if target is None else list(target)
    n = len(weights) - 1
    moved = [w + v for w, v in zip(weights, xi)]
    if n == 0:
        return moved
    scale = 1.0 + max(float(np.max(np.abs(w))) for w in weights) ** 2
    scale = max(scale, max(float(np.max(np.abs(g))) for g in target) if target else 0.0)
    s = [np.zeros_like(g) for g in target]
    dense = _dense(weights)
    fixed = None if dense else NormalSolver(weights)
    for _ in range(NEWTON_MAX_ITERATIONS):
        current = [m + c for m, c in zip(moved, normal_generator(weights, s))]
        residual = [g - t for g, t in zip(_invariants(current), target)]
        if max(float(np.max(np.abs(r))) for r in residual) <= NEWTON_RTOL * scale:
            return current
        # G(V + C_W dS) = G(V) - 2 C_V^* C_W dS + O(dS^2) = target
        rhs = [0.5 * r for r in residual]
        step = NormalSolver(weights, current).solve(rhs) if dense else fixed.solve(rhs)
        s = [a + b for a, b in zip(s, step)]
    worst = max(float(np.max(np.abs(r))) for r in residual)
    raise NotRegularError(
        f"the retraction's Newton iteration did not reach the level set in "
        f"{NEWTON_MAX_ITERATIONS} steps (max residual {worst:.3g}); use a shorter step"
    )


def invariant_dimension(widths: Sequence[int]) -> int:
    """dim M_G = sum_p d_p d_{p-1} - sum_{p=1}^{N-1} d_p (d_p + 1)/2 (regular level set)."""
    layers = sum(widths[p + 1] * widths[p] for p in range(len(widths) - 1))
    return layers - sum(d * (d + 1) // 2 for d in widths[1:-1])
