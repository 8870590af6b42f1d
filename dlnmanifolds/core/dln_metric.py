"""Riemannian geometry of (M_d, g^N), full rank, via the balanced lift (math.md §4).

phi: (M, Frobenius) -> (M_d, g^N) is a Riemannian submersion (Menon & Yu;
Menon 2024 Thm 10; math.md §4.2), so gradients, Hessians and a second-order
retraction downstairs are computed by lifting horizontally to any balanced W
over X, working upstairs, and mapping back with Dphi.
"""

from __future__ import annotations

import math

import numpy as np

from dlnmanifolds.core import _backend
from dlnmanifolds.core.balanced import balanced_factors
from dlnmanifolds.core.fixed_rank import _lifted_factors, _project_factored, _weights
from dlnmanifolds.core.network import (
    _dphi,
    _dphi_adjoint,
    _dphi_adjoint_derivative,
)
from dlnmanifolds.core.operator import _operator_in_frame, svd_frame


def canonical_lift(x: np.ndarray, depth: int) -> tuple[np.ndarray, ...]:
    """A balanced W over x with inner widths min(m, n) (canonical gauge).

    Every result below is independent of the lift (math.md §4.2; checked in math.md §10).
    """
    return balanced_factors(x, depth)


def riemannian_gradient(x: np.ndarray, egrad: np.ndarray, depth: int) -> np.ndarray:
    """grad_g E(X) = A_{N,X}(E'(X)) (math.md §4.1; Bah et al. 2019, Menon 2024 Thm 1).

    numpy or torch (internal: no validation)."""
    return _operator_in_frame(svd_frame(x), egrad, depth, 1.0)


def riemannian_hessian(
    x: np.ndarray, egrad: np.ndarray, ehess: np.ndarray, xi: np.ndarray, depth: int
) -> np.ndarray:
    """Hess_g E(X)[xi] = Dphi_W(grad^2 L(W)[xi^h]) with L = E∘phi (math.md §4.3).

    grad^2 L(W)[eta] = Dphi^*(E''(X)[Dphi eta]) + D_eta(Dphi^*)(E'(X)), and
    Dphi xi^h = xi, so Hess = A(ehess) + Dphi_W(D_{xi^h}(Dphi^*)(egrad)).
    """
    frame = svd_frame(x)
    weights = canonical_lift(x, depth)
    lift = _dphi_adjoint(weights, _operator_in_frame(frame, xi, depth, -1.0))
    curvature = _dphi(weights, _dphi_adjoint_derivative(weights, lift, egrad))
    return _operator_in_frame(frame, ehess, depth, 1.0) + curvature


def lifted_retraction(x: np.ndarray, xi: np.ndarray, depth: int) -> np.ndarray:
    """R_X(xi) = phi(W + xi^h): a straight horizontal step upstairs, projected.

    A retraction since Dphi xi^h = xi; second order because the straight line
    differs from the horizontal geodesic of M by an O(t^2) normal vector, which
    Dphi annihilates (N_W M ⊂ ker Dphi, math.md §8.3), and horizontal geodesics
    project to g^N geodesics (submersion, math.md §4.2).

    Evaluated on the rank lift of the thin SVD X = U diag(s) V^T with inner widths
    r = min(m, n) (``fixed_rank._lifted_factors``: one lift, gauge-independent,
    math.md §4.2): for full-rank X, T_X M_r is all of R^{m x n}, so xi in
    (U_p, M, V_p) form is exact, and the step costs one thin SVD plus
    O(N (m + n) r^2) products (no balanced_factors, no m x m or n x n frame).
    numpy or torch (internal: no validation).
    """
    xp = _backend.namespace(x, xi)
    u, s, vt = xp.linalg.svd(x, full_matrices=False)
    return lifted_retraction_svd(u, s, vt.swapaxes(-1, -2), xi, depth)


def lifted_retraction_svd(u, s, v, xi, depth: int):
    """``lifted_retraction`` from the thin SVD x = U diag(s) V^T (U [m, r], V [n, r],
    r = min(m, n)), for callers that hold it already (internal: no validation)."""
    tangent = _project_factored(u, v, xi)
    left, right = _lifted_factors(u, s, v, _weights(s, depth), depth, tangent)
    return left @ right.swapaxes(-1, -2)


def exp_fixed_singular_vectors(x: np.ndarray, delta: np.ndarray, depth: int) -> np.ndarray:
    """Exp_X(U diag(delta) V^T) = U (Lambda + diag(delta)/(N Lambda^{N-1}))^N V^T.

    Geodesics that keep the singular vectors (math.md §4.5; checked in math.md §10).
    ``depth=math.inf``: the limit U diag(sigma exp(delta / sigma)) V^T (g^inf is a
    constant multiple of lim g^N, and scaling a metric keeps its geodesics).
    """
    xp = _backend.namespace(x, delta, names=("x", "delta"))
    u, s, vt = xp.linalg.svd(x, full_matrices=False)
    if depth == math.inf:
        return (u * (s * xp.exp(delta / s))) @ vt
    lam = s ** (1.0 / depth)
    new = (lam + delta / (depth * lam ** (depth - 1))) ** depth
    return (u * new) @ vt


#: Largest Frobenius norm of X^{-1} xi in one infinite-depth retraction step.
INFINITE_DEPTH_STEP_CAP = 20.0


def infinite_depth_retraction(x: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """R_X(xi) = X expm(X^{-1} xi) for square invertible X, the retraction of g^inf.

    There is no balanced lift at depth inf; this is the limit N -> inf of
    phi(W + xi^h) along U diag(delta) V^T, where it is the exact geodesic
    U Sigma exp(delta / Sigma) V^T (``exp_fixed_singular_vectors``). It stays
    invertible and is first order. A unit g^inf step multiplies X by about e, so
    a line search's trial steps overflow expm: X^{-1} xi is scaled down to
    Frobenius norm ``INFINITE_DEPTH_STEP_CAP`` beyond it (exact below).
    """
    xp = _backend.namespace(x, xi)
    generator = xp.linalg.solve(x, xi)
    size = float(xp.sqrt(xp.sum(generator * generator)))
    if size > INFINITE_DEPTH_STEP_CAP:
        generator = generator * (INFINITE_DEPTH_STEP_CAP / size)
    return x @ _backend.expm(generator)
