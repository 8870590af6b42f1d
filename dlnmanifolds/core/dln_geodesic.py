"""Geodesics of (GL(d), g^N) and of the balanced manifold M: exp by ODE, log by shooting.

Two independent geodesic equations (square case, full rank; math.md §2.4, §4.2):

* **Downstairs, Hamiltonian form (used for g^N).** With momentum P = A_{N,X}^{-1}(Xdot), the
  g^N geodesics are the flow of H(X, P) = 1/2 <P, A_{N,X}(P)>. We integrate it on a balanced
  lift W of X, where <P, A P> = ||Dphi_W^*(P)||^2:

      Wdot = Dphi_W^*(P),    Pdot = -A_{N,phi(W)}^{-1}( Dphi_W[ D_{Wdot}(Dphi^*)(P) ] ).

  The P equation is -grad_X of 1/2<P, A_X P>: the Euclidean gradient of
  F(W) = 1/2||Dphi_W^* P||^2 is D_xi(Dphi^*)(P) with xi = Dphi_W^* P, its tangent part on M is
  Dphi^*(grad f) (F = f∘phi on M) and Dphi kills the normal space N_W M. W moves along the
  horizontal geodesic of M (Wdot = Dphi^* P is horizontal), and G(W) is conserved exactly by
  the continuous flow because DG∘Dphi^* = 0 (math.md §2.1). This is ours, built from the
  submersion theorem (Menon-Yu; Menon 2024 Thm 10; math.md §4.2).
* **Upstairs, Weingarten form (used for the induced metric of M).** A curve in
  M = {G = 0} is a geodesic iff Wddot is normal: Wddot = C_W(S) with
  C_W^* C_W(S) = G(Wdot), the invariants of the velocity (differentiate G(W(t)) = 0 twice and use
  DG = -2 C_W^*, math.md §2.4). We solve it as Wddot = P_N(eta) for any eta with
  C_W^*(eta) = G(Wdot): eta_N = 0, eta_q = (G_q + W_{q+1}^T eta_{q+1}) W_q^{-T}.

Both are integrated with scipy's DOP853 (explicit Runge-Kutta of order 8, adaptive) at relative
tolerance ``rtol`` (default 1e-12); batches are integrated as one system (one time grid).
Horizontal geodesics of M project to g^N geodesics, so the two forms check each other; they
agree to ~2e-13 and match the closed form U(Lambda + tD)^N V^T (math.md §4.5) to ~1e-13.

Logs are computed by Newton shooting with a forward-difference Jacobian whose columns are
integrated in the same batch as the base shot.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.integrate import solve_ivp

from dlnmanifolds.core._validate import as_matrix, check_depth
from dlnmanifolds.core.balanced import _balanced_frames, balanced_factors
from dlnmanifolds.core.balanced_tangent import tangent_projection
from dlnmanifolds.core.network import (
    _dphi,
    _dphi_adjoint,
    _dphi_adjoint_derivative,
    _end_to_end,
    _invariants,
)
from dlnmanifolds.core.operator import RANK_RTOL, _operator_in_frame, svd_frame

#: Default relative tolerance of the DOP853 geodesic integrator.
GEODESIC_RTOL = 1e-12
#: Give up an integration after this many field evaluations (about 400 steps).
MAX_FIELD_EVALUATIONS = 5000
#: Stop when the end-to-end matrix gets this close (relative) to singular: the g^N geodesics
#: reach the singular set in finite time (distance ~ integral of sigma^{1/N - 1}, finite).
SINGULAR_RTOL = 1e-8


class GeodesicError(ValueError):
    """A geodesic could not be integrated or shot (e.g. it reaches a singular matrix)."""


def _layers(stack: np.ndarray) -> list[np.ndarray]:
    """View a stacked network (..., N, d, d) as the list of its layers."""
    return [stack[..., p, :, :] for p in range(stack.shape[-3])]


def _integrate(
    field: Callable[..., tuple[np.ndarray, ...]],
    state: Sequence[np.ndarray],
    rtol: float,
) -> list[np.ndarray]:
    """Integrate ydot = field(*y) from t = 0 to 1 with DOP853; y is a tuple of arrays."""
    shapes = [s.shape for s in state]
    sizes = np.cumsum([s.size for s in state])[:-1]

    calls = [0]

    def rhs(_t, y):
        # An adaptive integrator creeping towards a singularity never fails by itself.
        calls[0] += 1
        if calls[0] > MAX_FIELD_EVALUATIONS:
            raise GeodesicError(
                f"the geodesic ODE needed more than {MAX_FIELD_EVALUATIONS} field "
                "evaluations; it probably approaches a singular matrix (shorten the vector)"
            )
        parts = [part.reshape(shape) for part, shape in zip(np.split(y, sizes), shapes)]
        return np.concatenate([np.ravel(d) for d in field(*parts)])

    y0 = np.concatenate([np.ravel(s) for s in state])
    with np.errstate(all="ignore"):
        sol = solve_ivp(rhs, (0.0, 1.0), y0, method="DOP853", rtol=rtol, atol=1e-2 * rtol)
    if sol.status != 0 or not np.all(np.isfinite(sol.y[:, -1])):
        raise GeodesicError(
            "the geodesic ODE could not be integrated to t = 1 (it probably reaches a "
            f"singular matrix; shorten the tangent vector): {sol.message}"
        )
    return [p.reshape(shape) for p, shape in zip(np.split(sol.y[:, -1], sizes), shapes)]


# --------------------------------------------------------------------------------------
# g^N geodesics (downstairs), integrated on a horizontal lift
# --------------------------------------------------------------------------------------


def _horizontal_geodesic_field(w: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(Wdot, Pdot) of the g^N geodesic flow lifted to M (module docstring); batched."""
    layers = _layers(w)
    depth = len(layers)
    xi = _dphi_adjoint(layers, p)
    grad_f = _dphi(layers, _dphi_adjoint_derivative(layers, xi, p))
    frame = svd_frame(_end_to_end(layers))
    if np.any(frame.s[..., -1] <= SINGULAR_RTOL * frame.s[..., 0]):
        raise GeodesicError(
            "the geodesic reaches a (numerically) singular matrix before t = 1; "
            "shorten the tangent vector"
        )
    return np.stack(xi, axis=-3), -_operator_in_frame(frame, grad_f, depth, -1.0)


def canonical_lift_stacked(x: np.ndarray, depth: int) -> np.ndarray:
    """Stacked canonical balanced lifts (..., N, d, d) of x (..., d, d): ``balanced_factors``
    applied to each matrix of the batch (math.md §2.2)."""
    flat = x.reshape((-1,) + x.shape[-2:])
    lifted = np.stack([np.stack(balanced_factors(m, depth)) for m in flat])
    return lifted.reshape(x.shape[:-2] + lifted.shape[-3:])


def _require_invertible(x: np.ndarray, name: str) -> None:
    s = np.linalg.svd(x, compute_uv=False)
    ratio = s[..., -1] / np.where(s[..., 0] > 0, s[..., 0], 1.0)
    if np.any(ratio <= RANK_RTOL) or np.any(s[..., 0] == 0):
        raise ValueError(
            f"{name} must be invertible (full rank); its smallest singular value is "
            f"{np.min(ratio):.3g} times its largest (need > {RANK_RTOL:g})"
        )


def _check_square_pair(a, b, name_a, name_b):
    a = as_matrix(a, name_a, batch=True)
    b = as_matrix(b, name_b, batch=True)
    if a.shape[-1] != a.shape[-2]:
        raise ValueError(f"{name_a} must be square (..., d, d), got shape {a.shape}")
    if b.shape[-2:] != a.shape[-2:]:
        raise ValueError(
            f"{name_b} must have matrix shape {a.shape[-2:]} like {name_a}, got {b.shape}"
        )
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    if batch_a and batch_b and batch_a != batch_b:
        raise ValueError(
            f"{name_a} and {name_b} have batch shapes {batch_a} and {batch_b}; they must be "
            "equal, or one of them must be a single matrix"
        )
    batch = batch_a or batch_b
    return (np.broadcast_to(a, batch + a.shape[-2:]), np.broadcast_to(b, batch + b.shape[-2:]))


def horizontal_geodesic_end(w0: np.ndarray, v: np.ndarray, rtol: float = GEODESIC_RTOL):
    """End point W(1) of the horizontal geodesic of M from w0 (..., N, d, d) over Exp_X(v).

    Dphi of its initial velocity is v (the velocity is the horizontal lift v^h), so
    phi(W(1)) = Exp_X(v) with X = phi(w0) (math.md §4.2). Internal: w0 balanced with
    invertible end-to-end matrix, v of shape (..., d, d) with the same batch shape.
    """
    depth = w0.shape[-3]
    p0 = _operator_in_frame(svd_frame(_end_to_end(_layers(w0))), v, depth, -1.0)
    w1, _ = _integrate(_horizontal_geodesic_field, (w0, p0), rtol)
    return w1


def _dln_exp(x: np.ndarray, v: np.ndarray, depth: int, rtol: float) -> np.ndarray:
    w1 = horizontal_geodesic_end(canonical_lift_stacked(x, depth), v, rtol)
    return _end_to_end(_layers(w1))


def dln_exp(X: np.ndarray, V: np.ndarray, depth: int, rtol: float = GEODESIC_RTOL) -> np.ndarray:
    """Riemannian exponential Exp_X(V) of (GL(d), g^N) (math.md §4; module docstring).

    Integrates the lifted Hamiltonian geodesic flow with DOP853 at relative tolerance
    ``rtol``. ``X``, ``V``: shape (..., d, d), X invertible; batch shapes must match or one of
    them must be unbatched. Raises ``GeodesicError`` (a ``ValueError``) if the geodesic
    reaches a singular matrix before t = 1.
    """
    X, V = _check_square_pair(X, V, "X", "V")
    depth = check_depth(depth)
    _require_invertible(X, "X")
    return _dln_exp(X, V, depth, rtol)


def _newton_shooting(
    shoot: Callable[[np.ndarray], np.ndarray],
    target: np.ndarray,
    coords: np.ndarray,
    tol: float,
    max_iter: int,
) -> np.ndarray:
    """Solve shoot(c) = target for c (batch, k) by Newton with forward-difference Jacobians.

    ``shoot`` maps coordinates (B, k) to flattened end points (B, m), m >= k. Each iteration
    shoots the current point and its k difference probes in one batch (one integration, one
    time grid, so the differences are smooth). The step is the least-squares Newton step; if
    the residual grew, the previous step is halved instead.
    """
    batch, k = coords.shape
    scale = max(1.0, float(np.max(np.abs(target))))
    eye = np.eye(k)
    best_err, best_coords, step = np.inf, coords, np.zeros_like(coords)
    err = np.inf
    for _ in range(max_iter):
        h = 1e-6 * np.maximum(1.0, np.max(np.abs(coords), axis=1))
        probes = np.concatenate(
            [coords[:, None, :], coords[:, None, :] + h[:, None, None] * eye], axis=1
        )
        try:
            ends = shoot(probes.reshape(batch * (k + 1), k)).reshape(batch, k + 1, -1)
            residual = ends[:, 0] - target
            err = float(np.max(np.abs(residual)))
        except GeodesicError:
            err = np.inf
        if err <= tol * scale:
            return coords
        if not np.isfinite(best_err) and not np.isfinite(err):
            # Not one successful shot yet (the guess runs into singular matrices): shorten it.
            coords = 0.5 * coords
            continue
        if err >= best_err:
            # The last full step overshot: retry half of it from the best point.
            step = 0.5 * step
            coords = best_coords + step
            continue
        best_err, best_coords = err, coords
        jac = (ends[:, 1:] - ends[:, :1]).transpose(0, 2, 1) / h[:, None, None]
        step = np.stack([np.linalg.lstsq(j, -r, rcond=None)[0] for j, r in zip(jac, residual)])
        coords = coords + step
    raise GeodesicError(
        f"shooting did not converge in {max_iter} Newton iterations (residual {best_err:.3g});"
        " the points may be too far apart, or in different components of GL(d)"
    )


def dln_log(
    Y: np.ndarray,
    X: np.ndarray,
    depth: int,
    tol: float = 1e-11,
    max_iter: int = 30,
    rtol: float = GEODESIC_RTOL,
) -> np.ndarray:
    """Riemannian logarithm Log_X(Y) of (GL(d), g^N) by Newton shooting on ``dln_exp``.

    Returns V with max|Exp_X(V) - Y| <= tol * max(1, max|Y|). Starts from V = Y - X. Shapes
    (..., d, d). Raises ``GeodesicError`` if shooting does not converge (e.g. Y and X lie in
    different components of GL(d), or the geodesic would leave the full-rank set).
    """
    Y, X = _check_square_pair(Y, X, "Y", "X")
    depth = check_depth(depth)
    _require_invertible(X, "X")
    _require_invertible(Y, "Y")
    d = X.shape[-1]
    batch = X.shape[:-2]
    xs = X.reshape(-1, d, d)
    ys = Y.reshape(-1, d * d)
    k = d * d

    def shoot(coords):
        reps = coords.shape[0] // xs.shape[0]
        base = np.repeat(xs, reps, axis=0)
        return _dln_exp(base, coords.reshape(-1, d, d), depth, rtol).reshape(-1, k)

    coords = _newton_shooting(shoot, ys, (ys - xs.reshape(-1, k)), tol, max_iter)
    return coords.reshape(batch + (d, d))


# --------------------------------------------------------------------------------------
# Geodesics of the balanced manifold M with the induced Frobenius metric (upstairs)
# --------------------------------------------------------------------------------------


def _balanced_acceleration(weights: Sequence[np.ndarray], xi: Sequence[np.ndarray]):
    """Wddot = C_W(S) with C_W^*C_W(S) = G(xi), as P_N(eta) (module docstring); one network."""
    invariants = _invariants(list(xi))
    depth = len(weights)
    eta = [np.zeros_like(w) for w in weights]
    for q in range(depth - 2, -1, -1):
        rhs = invariants[q] + weights[q + 1].T @ eta[q + 1]
        eta[q] = np.linalg.solve(weights[q], rhs.T).T
    tangent = tangent_projection(_balanced_frames(list(weights)), eta)
    return [e - t for e, t in zip(eta, tangent)]


def _balanced_geodesic_field(w: np.ndarray, xi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat_w = w.reshape((-1,) + w.shape[-3:])
    flat_xi = xi.reshape(flat_w.shape)
    acc = np.stack([np.stack(_balanced_acceleration(a, b)) for a, b in zip(flat_w, flat_xi)])
    return xi, acc.reshape(w.shape)


def balanced_exp_stacked(w: np.ndarray, xi: np.ndarray, rtol: float = GEODESIC_RTOL) -> np.ndarray:
    """Exp^M_W(xi) for stacked balanced networks w (..., N, d, d), tangent xi (same shape).

    Geodesic of M with the induced Frobenius metric, Weingarten form (module docstring),
    DOP853. Internal: inputs are assumed validated, balanced, with invertible layers.
    """
    w1, _ = _integrate(_balanced_geodesic_field, (w, xi), rtol)
    return w1


def tangent_basis(w: np.ndarray) -> np.ndarray:
    """Orthonormal basis (N d^2, dim M) of T_W M at one stacked balanced network w (N, d, d)."""
    layers = list(w)
    frames = _balanced_frames(layers)
    size = w.size
    columns = [
        np.ravel(np.stack(tangent_projection(frames, list(e.reshape(w.shape)))))
        for e in np.eye(size)
    ]
    u, s, _ = np.linalg.svd(np.array(columns).T, full_matrices=False)
    return u[:, s > 1e-8 * s[0]]


def balanced_log_stacked(
    w1: np.ndarray,
    w0: np.ndarray,
    tol: float = 1e-11,
    max_iter: int = 30,
    rtol: float = GEODESIC_RTOL,
) -> np.ndarray:
    """Log^M_{w0}(w1) on the balanced manifold by Newton shooting on ``balanced_exp_stacked``.

    Unknowns are coordinates in an orthonormal basis of T_{w0}M, started at the projection of
    the chord w1 - w0. Stacked (..., N, d, d) inputs of equal batch shape (internal).
    """
    shape = w0.shape
    flat0 = w0.reshape((-1,) + shape[-3:])
    flat1 = w1.reshape(flat0.shape)
    out = []
    for a, b in zip(flat0, flat1):
        basis = tangent_basis(a)

        def shoot(coords, a=a, basis=basis):
            xi = (coords @ basis.T).reshape((-1,) + a.shape)
            base = np.broadcast_to(a, xi.shape)
            return balanced_exp_stacked(base, xi, rtol).reshape(coords.shape[0], -1)

        start = (np.ravel(b - a) @ basis)[None, :]
        coords = _newton_shooting(shoot, np.ravel(b)[None, :], start, tol, max_iter)
        out.append((coords @ basis.T).reshape(a.shape))
    return np.stack(out).reshape(shape)
