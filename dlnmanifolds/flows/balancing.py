"""Balancing flows on a fiber phi^{-1}(X): the L^2 flow and the squared-moment-map flow.

math.md §7 (Lindsey & Menon 2025, "Regularization implies balancedness"):

* L^2 flow, the gradient of R(W) = 1/2 sum_p ||W_p||^2 restricted to the fiber
  (induced Frobenius metric, math.md §7.2):
      dW/dt = -P_F(W) = -W + Dphi^*(A_W^{-1}(N X)),   A_W = Dphi Dphi^*.
  phi(W) is constant, G(t) = e^{-2t} G(0) exactly (the uniform rate; checked in math.md §10) and R
  decreases to R_min = (N/2) sum_i sigma_i^{2/N} (rate e^{-4t}, or
  e^{-2t} when some layer has a (perp, perp) block, min(d_p, d_{p-1}) > rank phi; checked in
  math.md §10, see ``l2_regularizer_rate``).
* Moment-map flow, the gradient flow of Phi_2(W) = 1/2 sum_p ||G_p||^2:
      dW/dt = -nabla Phi_2(W) = 2 C_W(G(W)),   C_W(S)_p = S_p W_p - W_p S_{p-1}
  (math.md §7.3; checked in math.md §10). It is GL-generated, hence tangent to the fiber, and
  converges to M from generic starts. Linearised at a balanced point,
  dG/dt = -4 C_W^* C_W(G), so ||G|| decays at the local rate 4 nu_min with
  nu_min = min {lam_i^2 + lam_j^2 - 2 lam_i lam_j cos(k pi/N)} (math.md §7.3 states
  2 nu_min for Phi = 1/4 sum ||G||^2, whose flow is half as fast).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.sparse.linalg import LinearOperator, cg

from dlnmanifolds.core._validate import check_positive_int, widths_of
from dlnmanifolds.core.balanced_tangent import normal_generator
from dlnmanifolds.core.fiber import _fiber_solver
from dlnmanifolds.core.network import (
    _dphi_adjoint,
    _end_to_end,
    _generic_operator,
    _invariants,
)
from dlnmanifolds.core.operator import numerical_rank
from dlnmanifolds.flows._common import (
    check_callback,
    invariants_norm,
    packer,
    start_weights,
    upstairs_monitor,
)
from dlnmanifolds.flows._integrate import check_method, integrate_flow
from dlnmanifolds.flows.result import FlowResult

KINDS = ("l2", "moment_map")
_DENSE_LIMIT = 400  # singular A_W: dense pseudo-inverse up to m n = 400 unknowns, else CG
_SURJECTIVE_RTOL = 1e-8  # sigma_min / sigma_max of phi(W) above which A_W is factored


def solve_generic_operator(weights: Sequence[np.ndarray], z: np.ndarray) -> np.ndarray:
    """Minimum-norm Y with A_W(Y) = Z, A_W = Dphi(W) Dphi(W)^* the generic operator (math.md §1).

    Full-rank phi(W) (Dphi surjective, A_W positive definite): the Cholesky solver of
    ``core.fiber``. Otherwise (a narrow inner layer, rank phi(W) < min(m, n)) A_W is
    singular and its pseudo-inverse is used; for Z = N X in range Dphi this still gives
    the orthogonal split of math.md §7.2 (the flow checked in math.md §10, widths 4x3x5): dense
    eigen-solve up to m n = 400 unknowns, conjugate gradients beyond.
    """
    s = np.linalg.svd(_end_to_end(weights), compute_uv=False)
    if s[0] > 0 and s[-1] > _SURJECTIVE_RTOL * s[0]:
        return _fiber_solver(weights).solve(z)
    m, n = z.shape
    size = m * n
    if size <= _DENSE_LIMIT:
        basis = np.eye(size).reshape(size, m, n)
        matrix = _generic_operator(weights, basis).reshape(size, size)
        vals, vecs = np.linalg.eigh(0.5 * (matrix + matrix.T))
        keep = vals > 1e-13 * max(vals[-1], np.finfo(float).tiny)
        y = vecs[:, keep] @ ((vecs[:, keep].T @ z.ravel()) / vals[keep])
        return y.reshape(m, n)
    op = LinearOperator(
        (size, size), matvec=lambda v: _generic_operator(weights, v.reshape(m, n)).ravel()
    )
    y, info = cg(op, z.ravel(), rtol=1e-13, atol=0.0, maxiter=20 * size)
    if info != 0:
        raise ValueError(f"conjugate gradients for A_W(Y) = Z did not converge (info = {info})")
    return y.reshape(m, n)


def horizontal_part(weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Dphi^*(A_W^{-1}(N X)): the part of W normal to the fiber (math.md §7.2; checked in §10).

    W = P_F(W) + horizontal_part(W) (the weight-decay split, math.md §7.4).
    """
    x = _end_to_end(weights)
    return _dphi_adjoint(weights, solve_generic_operator(weights, len(weights) * x))


def l2_velocity(weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """-P_F(W) = -W + Dphi^*(A_W^{-1}(N X)) (math.md §7.2)."""
    return [h - w for w, h in zip(weights, horizontal_part(weights))]


def moment_map_velocity(weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """-nabla(1/2 sum ||G_p||^2) = 2 C_W(G(W)) (math.md §7.3; checked in math.md §10)."""
    return [2.0 * v for v in normal_generator(weights, _invariants(weights))]


def regularizer(weights: Sequence[np.ndarray]) -> float:
    """R(W) = 1/2 sum_p ||W_p||_F^2 (math.md §7.1)."""
    return 0.5 * float(sum(np.sum(w**2) for w in weights))


def regularizer_minimum(x: np.ndarray, depth: int) -> float:
    """min of R over the fiber phi^{-1}(X): (N/2) sum_{i<=r} sigma_i^{2/N} (math.md §7.1).

    Only the r = numerical rank of X singular values count (those above
    ``RANK_RTOL`` times the largest, as everywhere in core): a round-off "zero"
    sigma ~ 1e-16 of a rank-deficient X would otherwise add (N/2) sigma^{2/N},
    4e-4 at N = 8, and put R - R_min below zero (math.md §3.3).
    """
    s = np.linalg.svd(x, compute_uv=False)
    s = s[: numerical_rank(s)]
    return 0.5 * depth * float(np.sum(s ** (2.0 / depth)))


def l2_regularizer_rate(widths: Sequence[int], rank: int) -> float:
    """Asymptotic rate of R - R_min ~ e^{-rate t} under the L^2 flow (math.md §7.2).

    rate = 2 if some layer has min(d_p, d_{p-1}) > r = rank phi(W) (a (perp, perp)
    block), else 4. Why: the flow is the gradient flow of R on the fiber and
    converges to a balanced W_inf, where R has fiber Hessian 2 on the normal
    (symmetric-generator) directions and 0 on the orbit (math.md §7.1). A (perp,
    perp) block B of layer p (B = Q_p^perp B~ Q_{p-1}^perp^T) adds a direction
    W_p + t B that stays in the fiber (B W_{<p} = 0 and W_{>p} B = 0) along which
    R = R_inf + t^2 ||B||^2 / 2: Hessian 1. Near the limit each transverse
    component decays as e^{-h t} (h = Hessian eigenvalue) and R - R_min as
    e^{-2 h_min t}. N = 1: the fiber is a point, rate NaN.
    """
    widths = tuple(int(d) for d in widths)
    if len(widths) < 3:
        return float("nan")
    perp_perp = any(min(a, b) > rank for a, b in zip(widths[:-1], widths[1:]))
    return 2.0 if perp_perp else 4.0


def moment_map_spectrum_minimum(x: np.ndarray, depth: int) -> float:
    """nu_min = min spec C_W^* C_W at a balanced W over X (main case, math.md §7.3).

    spec = {lam_i^2 + lam_j^2 - 2 lam_i lam_j cos(k pi/N) : i <= j, k = 1..N-1}.
    """
    lam = np.linalg.svd(x, compute_uv=False) ** (1.0 / depth)
    i, j = np.triu_indices(lam.size)
    cos = np.cos(np.arange(1, depth) * np.pi / depth)
    li, lj = lam[i][:, None], lam[j][:, None]
    return float(np.min(li**2 + lj**2 - 2.0 * li * lj * cos))


def fitted_decay_rate(t: np.ndarray, values: np.ndarray, tail: float = 0.5, floor: float = 1e-8):
    """Exponential rate r of values ~ C e^{-r t}, least squares on the last ``tail`` of the run.

    Records below ``floor`` times the first value are dropped (round-off floor).
    Returns NaN with fewer than 3 usable records.
    """
    t = np.asarray(t, dtype=float)
    values = np.asarray(values, dtype=float)
    keep = values > floor * values[0]
    t, values = t[keep], values[keep]
    if t.size < 3:
        return float("nan")
    start = t[0] + (1.0 - tail) * (t[-1] - t[0])
    sel = t >= start
    if np.count_nonzero(sel) < 3:
        sel = slice(-3, None)
    return float(-np.polyfit(t[sel], np.log(values[sel]), 1)[0])


def balancing_flow(
    weights,
    kind: str = "l2",
    t_final: float = 5.0,
    *,
    method: str = "RK45",
    step: float | None = None,
    rtol: float = 1e-9,
    atol: float = 1e-12,
    t_eval: np.ndarray | None = None,
    record_every: int = 1,
    init_scale: float = 1.0,
    rng: np.random.Generator | int | None = None,
    callback: Callable | None = None,
    progress: bool = False,
) -> FlowResult:
    """Flow W along its fiber phi^{-1}(phi(W)) to the balanced manifold (math.md §7).

    Parameters
    ----------
    weights : layers (W_1, ..., W_N), any widths, or a
        widths tuple of ints for a Gaussian start (``init_scale``, ``rng``).
    kind : "l2" (gradient of 1/2 sum ||W_p||^2 on the fiber) or "moment_map"
        (gradient flow of 1/2 sum ||G_p||^2).
    method, step, rtol, atol, t_eval, record_every, callback, progress : as in
        ``gradient_flow``.

    Returns
    -------
    FlowResult. ``energy`` is the flow's own potential (R for "l2", 1/2 sum ||G||^2
    for "moment_map"). ``extras`` holds the fast-slow decomposition of math.md §7.4
    per record -- ``regularizer`` R, ``regularizer_gap`` R - R_min,
    ``fiber_part_norm`` ||P_F W||, ``horizontal_part_norm`` ||Dphi^* A_W^{-1}(NX)||,
    ``end_to_end_drift`` ||phi(W(t)) - phi(W(0))|| -- and the scalars
    ``rate_invariants`` (fitted decay rate of ||G||), ``rate_invariants_predicted``
    (2 for "l2", uniform; 4 nu_min for "moment_map", main case), ``rate_regularizer``
    and ``rate_regularizer_predicted`` (for "l2": 2 when some layer has
    min(d_p, d_{p-1}) > rank phi(W), a (perp, perp) block, else 4; see
    ``l2_regularizer_rate``).

    Example
    -------
    The L^2 flow keeps phi(W) and shrinks every invariant as G(t) = e^{-2t} G(0):

    >>> import numpy as np
    >>> from dlnmanifolds import end_to_end
    >>> from dlnmanifolds.flows import balancing_flow
    >>> rng = np.random.default_rng(0)
    >>> W0 = [rng.standard_normal((2, 2)) for _ in range(3)]
    >>> result = balancing_flow(W0, t_final=5.0)
    >>> bool(np.allclose(result.end_to_end[-1], end_to_end(W0)))
    True
    >>> ratio = result.invariants_norm[-1] / result.invariants_norm[0]
    >>> bool(np.isclose(ratio, np.exp(-10.0), rtol=1e-4))
    True
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    method = check_method(method)
    record_every = check_positive_int(record_every, "record_every")
    check_callback(callback)
    layers = start_weights(weights, rng, init_scale)
    depth = len(layers)
    x0 = _end_to_end(layers)
    velocity = l2_velocity if kind == "l2" else moment_map_velocity
    pack, unpack = packer(layers)
    r_min = regularizer_minimum(x0, depth)
    base = upstairs_monitor(None)

    def potential(w):
        if kind == "l2":
            return regularizer(w)
        return 0.5 * invariants_norm(w) ** 2

    def monitor(w):
        values = base(w)
        horizontal = horizontal_part(w)
        values["energy"] = potential(w)
        values["regularizer"] = regularizer(w)
        values["regularizer_gap"] = regularizer(w) - r_min
        values["fiber_part_norm"] = float(
            np.sqrt(sum(np.sum((a - h) ** 2) for a, h in zip(w, horizontal)))
        )
        values["horizontal_part_norm"] = float(np.sqrt(sum(np.sum(h**2) for h in horizontal)))
        values["end_to_end_drift"] = float(np.linalg.norm(values["end_to_end"] - x0))
        return values

    result = integrate_flow(
        lambda t, y: pack(velocity(unpack(y))),
        pack(layers),
        t_final,
        monitor=monitor,
        unpack=unpack,
        method=method,
        rtol=rtol,
        atol=atol,
        step=step,
        t_eval=t_eval,
        record_every=record_every,
        callback=callback,
        progress=progress,
    )
    widths = widths_of(layers)
    main_case = len(set(widths)) == 1
    if kind == "l2":
        predicted_g = 2.0
        rank = numerical_rank(np.linalg.svd(x0, compute_uv=False))
        predicted_r = l2_regularizer_rate(widths, rank)
    else:
        predicted_g = 4.0 * moment_map_spectrum_minimum(x0, depth) if main_case else float("nan")
        predicted_r = float("nan")
    result.extras["rate_invariants"] = fitted_decay_rate(result.t, result.invariants_norm)
    result.extras["rate_invariants_predicted"] = predicted_g
    result.extras["rate_regularizer"] = fitted_decay_rate(
        result.t, np.abs(result.extras["regularizer_gap"])
    )
    result.extras["rate_regularizer_predicted"] = predicted_r
    result.extras["regularizer_minimum"] = r_min
    return result
