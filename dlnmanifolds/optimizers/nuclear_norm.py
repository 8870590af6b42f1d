"""Nuclear-norm regularized least squares: soft-impute / proximal gradient.

Minimizes, over X in R^{m x n},

    F_lambda(X) = E(X) + lambda ||X||_*,

with E the problem's loss (for matrix completion E(X) = 1/2 ||P_Omega(X - X*)||^2) by the
proximal gradient step

    X_{k+1} = S_{lambda / L}(X_k - E'(X_k) / L),    S_tau(Y) = U max(Sigma - tau, 0) V^T,

the singular-value soft threshold of Y = U Sigma V^T (Cai, Candès & Shen 2010, Thm 2.1)
and L the Lipschitz constant of E' (the largest eigenvalue of the Hessian E''; E is
quadratic). For matrix completion L = 1 and the step is *soft-impute* of Mazumder, Hastie &
Tibshirani (2010, JMLR 11, Algorithm 1): X_{k+1} = S_lambda(P_Omega(X*) + P_Omega^perp(X_k)).
lambda follows a decreasing path lambda_max, lambda_max q, lambda_max q^2, ... down to
``lam`` with warm starts (their Section 4, "pathwise"); lambda_max = ||E'(0)||_op is the
smallest lambda whose solution is X = 0. As lambda -> 0 the solutions tend to the
minimum-nuclear-norm interpolant, the convex baseline of Arora, Cohen, Hu & Luo (2019).

Sparse-aware: for matrix completion Y = X_k + P_Omega(X* - X_k) is a low-rank matrix
plus a sparse one, so its leading singular triplets come from
``scipy.sparse.linalg.svds`` on a ``LinearOperator`` at cost O(|Omega| + (m + n) r) per
product, never forming an m x n matrix (``sparse=True``; the default switches it on
when min(m, n) > 300).

Optimality (the test): X solves min F_lambda iff G = -E'(X) is in lambda d||X||_*, i.e.
with X = U S V^T (compact SVD), U^T G V = lambda I and ||(I - UU^T) G (I - VV^T)||_op <=
lambda (Watson 1992). For matrix completion the dual is max over Lambda supported on
Omega with ||Lambda||_op <= lambda of <Lambda, X*> - 1/2 ||Lambda||^2, and
:func:`duality_gap` evaluates F_lambda(X) minus the dual at the scaled residual.

Example
-------
>>> import numpy as np
>>> from dlnmanifolds.problems import MatrixCompletion
>>> problem = MatrixCompletion.generate(30, 2, 400, rng=0)
>>> result = soft_impute(problem, lam=0.5)
>>> result.reason
'converged'
>>> gap = duality_gap(problem, result.matrix, 0.5)
>>> bool(0 <= gap < 1e-5 * problem.loss(result.matrix))
True
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import LinearOperator, svds

from dlnmanifolds.problems._objective import MatrixObjective
from dlnmanifolds.problems.matrix_completion import MatrixCompletion

#: Sizes above which matrix completion uses the sparse + low-rank SVD by default.
SPARSE_ABOVE = 300


@dataclass(frozen=True)
class NuclearNormResult:
    """The answer of :func:`soft_impute`.

    matrix : the final iterate X, shape (m, n).
    lam : the final lambda.
    rank : rank of X (number of singular values above the threshold).
    iterations : proximal steps done (over the whole lambda path).
    reason : "converged" (relative change below ``tol`` at the final lambda),
        "max-iterations" or "max-time".
    """

    matrix: np.ndarray = field(repr=False)
    lam: float
    rank: int
    iterations: int
    reason: str


def _lipschitz(objective: MatrixObjective, rng: np.random.Generator, steps: int = 50) -> float:
    """Largest eigenvalue of the (constant) Hessian E'' by power iteration (1 for Omega)."""
    if isinstance(objective, MatrixCompletion):
        return 1.0  # E'' = P_Omega, an orthogonal projection
    v = rng.standard_normal(objective.shape)
    zero = np.zeros(objective.shape)
    value = 0.0
    for _ in range(steps):
        v /= np.linalg.norm(v)
        w = objective.hessian(zero, v)
        value = float(np.vdot(v, w))
        v = w
        if not np.linalg.norm(v) > 0:
            break
    return max(value, 1e-300) * 1.01  # a hair above: power iteration approaches from below


def _threshold_dense(y: np.ndarray, tau: float):
    u, s, vt = np.linalg.svd(y, full_matrices=False)
    keep = int(np.sum(s > tau))
    return u[:, :keep], s[:keep] - tau, vt[:keep]


def _threshold_sparse(objective: MatrixCompletion, u, s, vt, tau, guess):
    """S_tau(X + P_Omega(X* - X)) for X = U diag(s) V^T, by svds on a LinearOperator."""
    m, n = objective.shape
    rows, cols = objective.rows, objective.cols
    # Entries of X on Omega: sum_k U[i, k] s_k V[k, j], O(|Omega| r).
    on_omega = np.einsum("ik,k,ki->i", u[rows], s, vt[:, cols]) if s.size else 0.0
    resid = sp.csr_matrix((objective.values - on_omega, (rows, cols)), shape=(m, n))
    resid_t = resid.T.tocsr()
    us = u * s

    def matvec(x):
        x = np.asarray(x).reshape(-1)
        return resid @ x + us @ (vt @ x)

    def rmatvec(x):
        x = np.asarray(x).reshape(-1)
        return resid_t @ x + vt.T @ (us.T @ x)

    def matmat(x):
        return resid @ x + us @ (vt @ x)

    def rmatmat(x):
        return resid_t @ x + vt.T @ (us.T @ x)

    op = LinearOperator(
        (m, n), matvec=matvec, rmatvec=rmatvec, matmat=matmat, rmatmat=rmatmat, dtype=float
    )
    k = max(1, guess)
    limit = min(m, n) - 1
    while True:
        k = min(k, limit)
        uu, ss, vvt = svds(op, k=k, random_state=0)
        order = np.argsort(ss)[::-1]
        uu, ss, vvt = uu[:, order], ss[order], vvt[order]
        # Enough triplets when the smallest one computed is already below the threshold.
        if ss[-1] <= tau or k == limit:
            break
        k *= 2
    if ss[-1] > tau and k == limit:  # every singular value may be above tau: go dense
        y = resid.toarray() + us @ vt
        return _threshold_dense(y, tau)
    keep = int(np.sum(ss > tau))
    return uu[:, :keep], ss[:keep] - tau, vvt[:keep]


def soft_impute(
    objective: MatrixObjective,
    lam: float | None = None,
    *,
    path: float = 0.5,
    tol: float = 1e-7,
    max_iterations: int = 10_000,
    max_time: float = math.inf,
    sparse: bool | None = None,
    callback: Callable[[np.ndarray], None] | None = None,
) -> NuclearNormResult:
    """Minimize E(X) + lam ||X||_* by proximal gradient along a decreasing lambda path.

    Parameters
    ----------
    objective : a ``MatrixObjective`` (``MatrixCompletion`` gets the sparse-aware step).
    lam : the final lambda > 0; default ``1e-4 * lambda_max`` (close to the
        minimum-nuclear-norm interpolant of noise-free data).
    path : ratio q in (0, 1] between consecutive lambdas (1: no path, start at ``lam``).
    tol : move to the next lambda (or stop, at the last) when
        ||X_{k+1} - X_k||_F <= tol * max(||X_k||_F, 1).
    max_iterations, max_time : budgets over the whole path.
    sparse : use the sparse + low-rank SVD (matrix completion only); default: when
        min(m, n) > 300.
    callback : called with the dense iterate X after every step (the comparison's
        recorder); it may raise to stop the solver.

    Returns
    -------
    NuclearNormResult
    """
    if not isinstance(objective, MatrixObjective):
        raise TypeError(
            f"objective must be a MatrixObjective (e.g. MatrixCompletion), got "
            f"{type(objective).__name__}"
        )
    for name, value in (("tol", tol), ("max_time", max_time)):
        if not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a number > 0, got {value!r}")
    if not isinstance(path, (int, float)) or not 0 < path <= 1:
        raise ValueError(f"path must be a number in (0, 1], got {path!r}")
    if not isinstance(max_iterations, int) or max_iterations < 1:
        raise ValueError(f"max_iterations must be an integer >= 1, got {max_iterations!r}")
    m, n = objective.shape
    if sparse is None:
        sparse = isinstance(objective, MatrixCompletion) and min(m, n) > SPARSE_ABOVE
    if sparse and not isinstance(objective, MatrixCompletion):
        raise ValueError("sparse=True needs a MatrixCompletion objective")
    if sparse and min(m, n) < 3:
        sparse = False
    step = 1.0 / _lipschitz(objective, np.random.default_rng(0))
    lam_max = float(np.linalg.norm(objective.residual_gradient(np.zeros((m, n))), 2))
    if lam is None:
        lam = 1e-4 * lam_max
    if not isinstance(lam, (int, float)) or not (lam > 0 and math.isfinite(lam)):
        raise ValueError(f"lam must be a finite number > 0, got {lam!r}")
    lam = float(lam)
    current = max(lam, lam_max * path) if path < 1 else lam

    u, s, vt = np.zeros((m, 0)), np.zeros(0), np.zeros((0, n))
    x = np.zeros((m, n))
    start = time.perf_counter()
    reason = "max-iterations"
    for k in range(max_iterations):
        if time.perf_counter() - start > max_time:
            reason = "max-time"
            break
        if sparse:
            # L = 1 for matrix completion: the step is the soft-impute one.
            u, s, vt = _threshold_sparse(objective, u, s, vt, current, s.size + 5)
        else:
            u, s, vt = _threshold_dense(x - step * objective.residual_gradient(x), step * current)
        new = (u * s) @ vt
        change = float(np.linalg.norm(new - x))
        scale = max(float(np.linalg.norm(x)), 1.0)
        x = new
        if callback is not None:
            callback(x)
        # Intermediate lambdas are only warm starts: a looser tolerance suffices.
        if change <= (tol if current <= lam else max(tol, 1e-4)) * scale:
            if current <= lam:
                reason = "converged"
                return NuclearNormResult(x, lam, int(s.size), k + 1, reason)
            current = max(lam, current * path)
    return NuclearNormResult(x, current, int(s.size), k + 1, reason)


def duality_gap(objective: MatrixCompletion, x: np.ndarray, lam: float) -> float:
    """F_lam(X) - D(Lambda) >= 0 for matrix completion, Lambda the scaled residual.

    Primal F(X) = 1/2 ||P_Omega(X - X*)||^2 + lam ||X||_*; dual
    D(Lambda) = <Lambda, P_Omega X*> - 1/2 ||Lambda||_F^2 over Lambda supported on Omega
    with ||Lambda||_op <= lam (Fenchel duality; the conjugate of lam ||.||_* is the
    indicator of the operator-norm ball of radius lam). Lambda = P_Omega(X* - X), scaled
    into the ball; the gap is 0 exactly at the minimizer.
    """
    if not isinstance(objective, MatrixCompletion):
        raise TypeError(f"objective must be a MatrixCompletion, got {type(objective).__name__}")
    residual = -objective.residual_gradient(x)
    primal = 0.5 * float(np.vdot(residual, residual)) + lam * float(
        np.sum(np.linalg.svd(x, compute_uv=False))
    )
    norm = float(np.linalg.norm(residual, 2))
    dual_point = residual * min(1.0, lam / norm) if norm > 0 else residual
    observed = objective.mask * 0.0
    observed[objective.rows, objective.cols] = objective.values
    dual = float(np.vdot(dual_point, observed)) - 0.5 * float(np.vdot(dual_point, dual_point))
    return primal - dual
