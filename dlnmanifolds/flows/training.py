"""Training dynamics: gradient flow upstairs and the end-to-end (ACH) flow downstairs.

Upstairs (math.md §1, §2.1):  dW/dt = -nabla(E∘phi)(W) - lambda W,
    nabla(E∘phi)(W)_p = W_{>p}^T E'(X) W_{<p}^T.
Downstairs (Arora, Cohen & Hazan 2018, Thm 1; math.md §3.1):
    dX/dt = -A_{N,X}(E'(X)) - lambda N X.
From a balanced start phi(W(t)) = X(t) (checked in math.md §10); the invariants
G_p = W_{p+1}^T W_{p+1} - W_p W_p^T are conserved (lambda = 0) or decay as
e^{-2 lambda t} (checked in math.md §10).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from dlnmanifolds.core._validate import (
    as_matrix,
    as_rng,
    check_depth,
    check_positive_int,
    check_positive_number,
)
from dlnmanifolds.core.network import _end_to_end, _lifted_gradient
from dlnmanifolds.core.operator import _operator_in_frame, svd_frame
from dlnmanifolds.flows._common import (
    check_callback,
    check_weight_decay,
    is_widths,
    packer,
    start_weights,
    upstairs_monitor,
)
from dlnmanifolds.flows._integrate import (
    ADAPTIVE_METHODS,
    MAX_STEPS,
    check_method,
    integrate_flow,
)
from dlnmanifolds.flows.energy import Energy, as_energy
from dlnmanifolds.flows.result import FlowResult

_GD_ALIASES = {"gd": "euler"}


def _check_gradient_shape(energy: Energy, x: np.ndarray) -> None:
    g = np.asarray(energy.gradient(x))
    if g.shape != x.shape:
        raise ValueError(
            f"energy.gradient must return an array of the end-to-end shape {x.shape}, "
            f"got shape {g.shape}"
        )


def lifted_gradient(energy: Energy, weights: Sequence[np.ndarray]) -> list[np.ndarray]:
    """nabla(E∘phi)(W) = Dphi(W)^*(E'(phi(W))) (math.md §1). Batch axes allowed."""
    return _lifted_gradient(weights, energy.gradients)


def gradient_flow(
    energy,
    weights,
    t_final: float = 1.0,
    *,
    method: str = "RK45",
    step: float | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    weight_decay: float = 0.0,
    t_eval: np.ndarray | None = None,
    record_every: int = 1,
    init_scale: float = 1e-3,
    rng: np.random.Generator | int | None = None,
    callback: Callable | None = None,
    progress: bool = False,
    max_steps: int = MAX_STEPS,
) -> FlowResult:
    """Gradient flow of E(phi(W)) (+ weight decay) on the weights, from any start.

    dW_p/dt = -W_{>p}^T E'(X) W_{<p}^T - lambda W_p (math.md §1, §2.1).

    Parameters
    ----------
    energy : Energy, pair (value, gradient) or callable E(X) (autograd gradient)
    weights : layers (W_1, ..., W_N), W_p of shape [d_p, d_{p-1}]; or a widths
        tuple (d_0, ..., d_N) of ints for the Gaussian deep-matrix-factorization
        start of Arora et al. 2019 with ``init_scale`` and ``rng``.
    method : an adaptive scipy Runge-Kutta method ("RK45", "DOP853", ...; ``step``
        is then the maximum step), or fixed-step "gd" / "euler" (plain gradient
        descent with learning rate ``step``) or "rk4".
    weight_decay : lambda >= 0 (then G(t) = e^{-2 lambda t} G(0)).
    t_eval : record times (adaptive methods); otherwise every ``record_every`` steps.
    callback : callback(t, weights) after each step; return True to stop.
    progress : show a tqdm progress bar over t.
    max_steps : step budget; a run known to need more is refused (ValueError), one
        found to need more is stopped (``StepBudgetError``).

    Returns
    -------
    FlowResult with energy, end_to_end, invariants_norm, distance_to_balanced.

    Example
    -------
    From an unbalanced start the invariants G_p stay constant while E decreases:

    >>> import numpy as np
    >>> from dlnmanifolds.flows import gradient_flow, quadratic_energy
    >>> rng = np.random.default_rng(0)
    >>> W0 = [rng.standard_normal((2, 2)) for _ in range(3)]
    >>> result = gradient_flow(quadratic_energy(np.diag([2.0, 1.0])), W0, t_final=1.0)
    >>> bool(np.ptp(result.invariants_norm) < 1e-6), bool(result.energy[-1] < result.energy[0])
    (True, True)
    """
    energy = as_energy(energy)
    method = check_method(method, _GD_ALIASES)
    lam = check_weight_decay(weight_decay)
    record_every = check_positive_int(record_every, "record_every")
    check_callback(callback)
    layers = start_weights(weights, rng, init_scale)
    _check_gradient_shape(energy, _end_to_end(layers))
    pack, unpack = packer(layers)

    def rhs(t, y):
        w = unpack(y)
        grad = lifted_gradient(energy, w)
        return -pack(grad) - lam * y

    return integrate_flow(
        rhs,
        pack(layers),
        t_final,
        monitor=upstairs_monitor(energy),
        unpack=unpack,
        method=method,
        rtol=rtol,
        atol=atol,
        step=step,
        t_eval=t_eval,
        record_every=record_every,
        callback=callback,
        progress=progress,
        max_steps=max_steps,
        rate=lam,
    )


def end_to_end_velocity(
    energy: Energy, x: np.ndarray, depth: int, weight_decay: float = 0.0, rank: int | None = None
) -> np.ndarray:
    """-A_{N,X}(E'(X)) - lambda N X (math.md §3.1); ``rank`` zeros round-off sigmas (§3.3).

    depth = inf: the time-rescaled limit -A_inf(E'(X)) - lambda X (math.md §4.6).
    """
    frame = svd_frame(x, rank)
    scale = 1.0 if depth == math.inf else depth
    return -_operator_in_frame(frame, energy.gradients(x), depth, 1.0) - weight_decay * scale * x


def truncate_rank(x: np.ndarray, rank: int) -> np.ndarray:
    """Best rank-r approximation (truncated SVD): the stage map of math.md §3.3."""
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    return (u[..., :rank] * s[..., None, :rank]) @ vt[..., :rank, :]


def end_to_end_flow(
    energy,
    W,
    depth: int,
    t_final: float = 1.0,
    *,
    method: str = "RK45",
    step: float | None = None,
    rtol: float = 1e-8,
    atol: float = 1e-10,
    weight_decay: float = 0.0,
    rank: int | None = None,
    t_eval: np.ndarray | None = None,
    record_every: int = 1,
    init_scale: float = 1e-3,
    rng: np.random.Generator | int | None = None,
    callback: Callable | None = None,
    progress: bool = False,
    max_steps: int = MAX_STEPS,
) -> FlowResult:
    """The ACH flow dX/dt = -A_{N,X}(E'(X)) - lambda N X on end-to-end matrices.

    The g^N gradient flow of E (math.md §3.1, §4.1; Arora, Cohen & Hazan 2018
    Thm 1; Bah et al. 2019). Equal to phi of the upstairs gradient flow started
    at any balanced W over X(0) (checked in math.md §10).

    Parameters
    ----------
    W : array, shape=[m, n], the start X(0); or a shape (m, n) for a Gaussian
        start with entries N(0, init_scale^2 / n) drawn with ``rng``.
    depth : N >= 1, or ``math.inf`` for the infinite-depth limit of Cohen, Menon &
        Veraszto 2022 (math.md §4.6): dY/dtau = -A_inf(E'(Y)) - lambda Y, the limit
        of Y_N(tau) = X_N(tau / N) (time rescaled by depth; error O(1/N), math.md §4.6).
    rank : integrate on the rank-r matrices: fixed-step methods only, every RK
        stage is truncated to rank r (math.md §3.3: plain RK4 loses accuracy off
        M_r because the field is only Hoelder-2/N there; checked in math.md §10).
    Other parameters as in ``gradient_flow``; "gd"/"euler" is then the
    preconditioned step X <- X - h A_{N,X}(E'(X)).

    Example
    -------
    From a small start the flow learns Y; from a balanced start it is phi of the
    upstairs gradient flow (Arora, Cohen & Hazan 2018):

    >>> import numpy as np
    >>> from dlnmanifolds import balanced_factors
    >>> from dlnmanifolds.flows import end_to_end_flow, gradient_flow, quadratic_energy
    >>> E = quadratic_energy(np.diag([2.0, 1.0]))
    >>> np.round(end_to_end_flow(E, 0.01 * np.eye(2), depth=3, t_final=20.0).end_to_end[-1], 4)
    array([[2., 0.],
           [0., 1.]])
    >>> W0 = balanced_factors(np.array([[0.3, 0.1], [0.0, 0.2]]), 3, rng=0)
    >>> down = end_to_end_flow(E, W0[2] @ W0[1] @ W0[0], depth=3, t_final=2.0)
    >>> up = gradient_flow(E, W0, t_final=2.0)
    >>> bool(np.allclose(down.end_to_end[-1], up.end_to_end[-1], atol=1e-6))
    True
    """
    energy = as_energy(energy)
    depth = check_depth(depth, allow_inf=True)
    method = check_method(method, _GD_ALIASES)
    lam = check_weight_decay(weight_decay)
    record_every = check_positive_int(record_every, "record_every")
    check_callback(callback)
    if is_widths(W) and len(W) == 2:
        m, n = (check_positive_int(d, f"W[{k}]") for k, d in enumerate(W))
        init_scale = check_positive_number(init_scale, "init_scale")
        x0 = as_rng(rng).standard_normal((m, n)) * init_scale / np.sqrt(n)
    else:
        x0 = np.array(as_matrix(W, "W"))
    stage_map = None
    if rank is not None:
        rank = check_positive_int(rank, "rank")
        if rank > min(x0.shape):
            raise ValueError(f"rank must be at most min(m, n) = {min(x0.shape)}, got {rank}")
        if method in ADAPTIVE_METHODS:
            raise ValueError(
                f"rank={rank} needs a fixed-step method ('rk4' or 'euler') so that every stage "
                f"can be projected to rank r; got method={method!r}"
            )
        x0 = truncate_rank(x0, rank)

        def stage_map(y):
            return truncate_rank(y.reshape(shape), rank).ravel()

    _check_gradient_shape(energy, x0)
    shape = x0.shape

    def rhs(t, y):
        return end_to_end_velocity(energy, y.reshape(shape), depth, lam, rank).ravel()

    def monitor(x):
        return {
            "energy": float(energy.value(x)),
            "end_to_end": x,
            "singular_values": np.linalg.svd(x, compute_uv=False),
        }

    return integrate_flow(
        rhs,
        x0.ravel(),
        t_final,
        monitor=monitor,
        unpack=lambda y: y.reshape(shape),
        method=method,
        rtol=rtol,
        atol=atol,
        step=step,
        t_eval=t_eval,
        record_every=record_every,
        callback=callback,
        progress=progress,
        stage_map=stage_map,
        max_steps=max_steps,
        rate=lam * depth,
    )
