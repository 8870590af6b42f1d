"""Orthogonal-group orbits O_W inside the balanced manifold (math.md §6).

O(d_1) x ... x O(d_{N-1}) acts by W_p -> Q_p W_p Q_{p-1}^T (Q_0 = Q_N = I). It
preserves the balanced manifold M and phi, and its orbit through a balanced W is
O_X = phi^{-1}(X) ∩ M in the main case (math.md §6; checked in math.md §10). With skew
generators Omega the orbit map has differential

    C_W(Omega)_p = Omega_p W_p - W_p Omega_{p-1}    (Omega_0 = Omega_N = 0),

whose range is the vertical space V_W (math.md §2.4). Everything here is solved
in the frames W_p = Q_p Lambda Q_{p-1}^T of a balanced point, where the Gram
operator G = C_W^* C_W on skew generators decouples (math.md §6):

* pair (i, j), i < j <= r: G acts on (Omega~_q[i, j])_q as the (N-1) x (N-1)
  Jacobi matrix T_ij (diagonal lam_i^2 + lam_j^2, off-diagonal -lam_i lam_j), the
  same matrix as the normal-space solve of the balanced tangent projection;
* (perp, r) block K_q of Omega~_q: G K = K Lambda^2;
* (perp, perp) blocks and diagonals: in the kernel (the stabiliser), dropped.

So the orbit projection, the generators of a tangent vector and the Weingarten
map all cost O(N d^3) (frame rotations) + O(N r^2) (tridiagonal solves).

Every function takes numpy arrays or torch tensors (CPU or CUDA, float32/float64;
``core._backend``) and returns the same kind. float32: the (perp, r) blocks are
divided by lam^2, so relative accuracy ~1e-7 lam_1^2 / lam_r^2 there (tested bounds in
tests/torch_backend/test_torch_fiber_orbit.py).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlnmanifolds.core import _backend
from dlnmanifolds.core._validate import as_weights
from dlnmanifolds.core.balanced import BalancedFrames, _balanced_frames
from dlnmanifolds.core.balanced_tangent import _thomas_jacobi, normal_generator
from dlnmanifolds.core.fiber import (
    _as_tangent,
    _check_group,
    _gl_action,
    _gl_generator_adjoint,
)
from dlnmanifolds.core.network import _imbalance, _t

Layers = Sequence[np.ndarray]

#: Tolerance for accepting a matrix as orthogonal / skew at the public boundary.
STRUCTURE_ATOL = 1e-10


def _skew(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a - _t(a))


def orbit_dimension(widths: Sequence[int], rank: int) -> int:
    """dim O_W = sum_{p=1}^{N-1} (d_p r - r(r+1)/2) (math.md §6; checked in math.md §10)."""
    return sum(int(d) * rank - rank * (rank + 1) // 2 for d in tuple(widths)[1:-1])


def orthogonal_action(weights: Layers, rotations: Sequence[np.ndarray]) -> list[np.ndarray]:
    """W_p -> Q_p W_p Q_{p-1}^T with Q_p in O(d_p), Q_0 = Q_N = I (math.md §6).

    The GL action restricted to orthogonal elements: it keeps phi and every
    invariant G_p up to conjugation, so balanced points stay balanced.

    Example
    -------
    Rotations of the inner layers keep phi and keep the network balanced:

    >>> import numpy as np
    >>> from dlnmanifolds import balanced_factors, end_to_end, imbalance, orthogonal_action
    >>> W = balanced_factors(np.diag([3.0, 1.0]), 3, rng=0)
    >>> c, s = np.cos(0.3), np.sin(0.3)
    >>> Q = [np.array([[c, -s], [s, c]]), np.array([[0.0, 1.0], [1.0, 0.0]])]
    >>> moved = orthogonal_action(W, Q)
    >>> bool(np.allclose(end_to_end(moved), end_to_end(W))), bool(imbalance(moved) < 1e-12)
    (True, True)
    """
    layers = as_weights(weights)
    rotations = _check_group(layers, rotations, "rotations")
    for p, q in enumerate(rotations):
        err = float(abs(_t(q) @ q - _backend.eye_batch(q, q.shape[0])).max())
        if err > STRUCTURE_ATOL:
            raise ValueError(
                f"rotations[{p}] must be orthogonal: max |Q^T Q - I| = {err:.3g} > "
                f"{STRUCTURE_ATOL:g}"
            )
    return _gl_action(layers, rotations, [_t(q) for q in rotations])


def orbit_generator(weights: Layers, skews: Sequence[np.ndarray]) -> list[np.ndarray]:
    """C_W(Omega)_p = Omega_p W_p - W_p Omega_{p-1}, Omega_p skew (math.md §2.4, §6)."""
    layers = as_weights(weights)
    skews = _check_group(layers, skews, "skews")
    for p, a in enumerate(skews):
        err = float(abs(a + _t(a)).max())
        if err > STRUCTURE_ATOL * max(1.0, float(abs(a).max())):
            raise ValueError(f"skews[{p}] must be skew-symmetric: max |A + A^T| = {err:.3g}")
    return normal_generator(layers, skews)


def _orbit_adjoint(weights: Layers, eta: Layers) -> list[np.ndarray]:
    """C_W^*(eta)_q = skew(eta_q W_q^T - W_{q+1}^T eta_{q+1}) on skew generators."""
    return [_skew(a) for a in _gl_generator_adjoint(weights, eta)]


def _gram_solve_in_frames(lam: np.ndarray, rt: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Omega~ = G^+ R~ for skew R~ given in the frames (module docstring)."""
    r = lam.shape[0]
    xp = _backend.namespace(lam)
    out = [xp.zeros_like(a) for a in rt]
    iu, ju = _backend.triu_indices_like(lam, r, 1)
    if rt and iu.shape[0]:
        rho = xp.stack([a[iu, ju] for a in rt])
        # T_ij omega = rho  <=>  2 T_ij omega = 2 rho (the Thomas sweep solves 2T c = rhs).
        omega = _thomas_jacobi(lam[iu], lam[ju], 2.0 * rho)
        for k, a in enumerate(out):
            a[iu, ju] = omega[k]
            a[ju, iu] = -omega[k]
    for a, b in zip(out, rt):
        a[r:, :r] = b[r:, :r] / lam**2
        a[:r, r:] = -_t(a[r:, :r])
    return out


def _gram_pseudo_solve(frames: BalancedFrames, rhs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Omega = G^+ R for skew R, G = C_W^* C_W, in the frames of W (module docstring)."""
    inner = range(1, len(frames.q) - 1)
    rt = [_t(frames.full(q)) @ rhs[q - 1] @ frames.full(q) for q in inner]
    out = _gram_solve_in_frames(frames.lam, rt)
    return [frames.full(q) @ a @ _t(frames.full(q)) for q, a in zip(inner, out)]


def _times_lambda(a: np.ndarray, lam: np.ndarray, cols: int, left: bool) -> np.ndarray:
    """a @ W~ (left=False) or W~ @ a (left=True) for a frame-form layer W~ = [Lambda 0; 0 0]
    (W~ or its transpose, of the shape the product needs; ``cols`` is its free dimension)."""
    r = lam.shape[0]
    if left:  # W~ (rows x cols) @ a (cols x k): the first r rows of a scaled by lam
        out = _backend.zeros(a, (cols, a.shape[1]))
        out[:r] = lam[:, None] * a[:r]
        return out
    out = _backend.zeros(a, (a.shape[0], cols))
    out[:, :r] = a[:, :r] * lam
    return out


def _orbit_projection_in_frames(xt: Sequence[np.ndarray], lam: np.ndarray) -> list[np.ndarray]:
    """P_V in frame coordinates, where W~_p = [Lambda 0; 0 0] is exact.

    Working in the frames (rather than forming C_W^* xi with the ambient W and rotating)
    keeps the (perp, r) blocks, which are divided by lam^2, free of the eps |W| round-off
    of the ambient products: the result is the exact projector of the rebuilt point.
    """
    depth = len(xt)
    dims = [xt[0].shape[1]] + [x.shape[0] for x in xt]
    # C~^*(xi~)_q = skew(xi~_q W~_q^T - W~_{q+1}^T xi~_{q+1}), q = 1..N-1
    rt = []
    for q in range(1, depth):
        a = _times_lambda(xt[q - 1], lam, dims[q], left=False)  # xi~_q W~_q^T
        b = _times_lambda(xt[q], lam, dims[q], left=True)  # W~_{q+1}^T xi~_{q+1}
        rt.append(_skew(a - b))
    omega = _gram_solve_in_frames(lam, rt)
    # C~(Omega~) for layer p + 1 (1-based): Omega~_{p+1} W~_{p+1} - W~_{p+1} Omega~_p,
    # with Omega~_0 = Omega~_N = 0; omega[k] holds Omega~_{k+1}.
    xp = _backend.namespace(lam)
    out = []
    for p in range(depth):
        term = xp.zeros_like(xt[p])
        if p < depth - 1:
            term += _times_lambda(omega[p], lam, dims[p], left=False)
        if p > 0:
            term -= _times_lambda(omega[p - 1], lam, dims[p + 1], left=True)
        out.append(term)
    return out


def _orbit_generators(weights: Layers, frames: BalancedFrames, xi: Layers) -> list[np.ndarray]:
    """Minimum-norm skew Omega minimising |C_W(Omega) - xi| (= G^+ C_W^* xi)."""
    return _gram_pseudo_solve(frames, _orbit_adjoint(weights, xi))


def _orbit_projection(weights: Layers, frames: BalancedFrames, xi: Layers) -> list[np.ndarray]:
    del weights  # the frames determine the point; see _orbit_projection_in_frames
    return frames.from_frames(_orbit_projection_in_frames(frames.to_frames(xi), frames.lam))


def _frames(layers: Layers) -> BalancedFrames:
    # balanced_frames takes r = numerical rank of phi(W) (round-off zeros dropped).
    return _balanced_frames(layers)


def _check_balanced(layers: Layers, name: str, atol: float = 1e-10) -> None:
    eps = _backend.dtype_eps(layers[0])
    if eps > 1e-10:  # float32: balance holds to its own rounding only
        atol = max(atol, 100 * eps)
    scale = max(1.0, max(float(abs(w).max()) for w in layers) ** 2)
    imbalance = _imbalance(layers)
    if imbalance > atol * scale:
        raise ValueError(
            f"{name} must be balanced (W_(p+1)^T W_(p+1) = W_p W_p^T): measured "
            f"max |G_p| = {imbalance:.3g} > {atol * scale:.3g}"
        )


def orbit_projection(weights: Layers, tangent: Layers) -> list[np.ndarray]:
    """Orthogonal projection onto V_W = T_W O_W at a balanced W with full-rank phi(W).

    P_V xi = C_W(G^+ C_W^* xi) in frames (module docstring); equals P_T - P_H of
    math.md §2.4 (tested).

    Example
    -------
    The projection is idempotent and vertical (Dphi kills it):

    >>> import numpy as np
    >>> from dlnmanifolds import balanced_factors, dphi, orbit_projection
    >>> rng = np.random.default_rng(0)
    >>> W = balanced_factors(rng.standard_normal((3, 3)), 3, rng=0)
    >>> xi = [rng.standard_normal((3, 3)) for _ in range(3)]
    >>> V = orbit_projection(W, xi)
    >>> bool(np.allclose(dphi(W, V), 0, atol=1e-10))
    True
    >>> all(np.allclose(a, b) for a, b in zip(orbit_projection(W, V), V))
    True
    """
    layers = as_weights(weights)
    _check_balanced(layers, "weights")
    xi = _as_tangent(layers, tangent, "tangent")
    return _orbit_projection(layers, _frames(layers), xi)


def orbit_generators(weights: Layers, tangent: Layers) -> list[np.ndarray]:
    """Skew generators Omega (minimum norm) with C_W(Omega) = P_V xi at a balanced W."""
    layers = as_weights(weights)
    _check_balanced(layers, "weights")
    xi = _as_tangent(layers, tangent, "tangent")
    return _orbit_generators(layers, _frames(layers), xi)


def _orbit_retraction(weights: Layers, frames: BalancedFrames, xi: Layers) -> list[np.ndarray]:
    gens = _orbit_generators(weights, frames, xi)
    if not gens:
        return [_backend.copy(w) for w in weights]
    rotations = [_backend.expm(a) for a in gens]
    return _gl_action(weights, rotations, [_t(q) for q in rotations])


def orbit_retraction(weights: Layers, tangent: Layers) -> list[np.ndarray]:
    """R_W(xi)_p = e^{Omega_p} W_p e^{-Omega_{p-1}}, Omega the skew generators of xi.

    A group element acts on W, so the result is balanced and has the same phi to
    rounding for every step size (math.md §6). First order.
    """
    layers = as_weights(weights)
    _check_balanced(layers, "weights")
    xi = _as_tangent(layers, tangent, "tangent")
    return _orbit_retraction(layers, _frames(layers), xi)


def _orbit_weingarten(
    weights: Layers, frames: BalancedFrames, xi: Layers, normal: Layers
) -> list[np.ndarray]:
    """P_V(D_xi P_V [v]) for v normal to the orbit: C_W(G^+ skew(C_xi^*(v))).

    Derivation: P_V = C_W G^+ C_W^*; differentiating along xi and using C_W^* v = 0,
    only C_W G^+ (D_xi C_W)^* v survives, and D_xi C_W = C_xi (C is linear in W).
    """
    rhs = [_skew(a) for a in _gl_generator_adjoint(xi, normal)]
    return normal_generator(weights, _gram_pseudo_solve(frames, rhs))


def _orbit_hessian(
    weights: Layers, frames: BalancedFrames, egrad: Layers, ehess: Layers, xi: Layers
) -> list[np.ndarray]:
    tangential = _orbit_projection(weights, frames, egrad)
    normal = [g - t for g, t in zip(egrad, tangential)]
    curvature = _orbit_weingarten(weights, frames, xi, normal)
    return [h + c for h, c in zip(_orbit_projection(weights, frames, ehess), curvature)]


def orbit_hessian(
    weights: Layers, egrad: Layers, ehess: Layers, tangent: Layers
) -> list[np.ndarray]:
    """Riemannian Hessian on O_W (induced Frobenius metric), Weingarten form.

    Hess f(W)[xi] = P_V(grad^2 f[xi]) + C_W(G^+ skew(C_xi^*(egrad - P_V egrad))),
    with C_xi^*(v)_q = v_q xi_q^T - xi_{q+1}^T v_{q+1} (derived in
    ``_orbit_weingarten``; checked by Pymanopt's Taylor test, slope 3).
    """
    layers = as_weights(weights)
    _check_balanced(layers, "weights")
    egrad = _as_tangent(layers, egrad, "egrad")
    ehess = _as_tangent(layers, ehess, "ehess")
    xi = _as_tangent(layers, tangent, "tangent")
    return _orbit_hessian(layers, _frames(layers), egrad, ehess, xi)
