"""Riemannian Langevin equation (RLE) upstairs on M and downstairs on (M_d, g^N).

Upstairs, on the balanced manifold with the Frobenius metric (math.md §8.2; Menon &
Yu 2023; Menon 2024), stationary law exp(-beta L) vol_M with L = E∘phi:
    dW = -P_T nabla L dt + sqrt(2/beta) P_T ∘ dB.
Scheme (checked in math.md §10): an ambient Euler-Maruyama step
    Y = W_n - h nabla L(W_n) + sqrt(2h/beta) xi_n,   xi_n ~ N(0, I),
then the orthographic projection W_{n+1} = Y + C_{W_n}(S) onto M (Newton on S).
The curvature (mean-curvature) drift is produced by the projection, so none is added.

Downstairs, on full-rank square matrices with g^N (math.md §8.1, §8.3), in the global
chart X (an open subset of R^{d x d}, so the chart step is the retraction), Ito form:
    dX = [-A(E'(X)) + beta^{-1} Delta_g x (+ beta^{-1} grad_g S)] dt + sqrt(2/beta) A^{1/2} dB,
stationary law exp(-beta E) vol_g (potential="energy") or exp(-beta F) vol_g with the
free energy F = E - S/beta (potential="free_energy"), which is the law of phi(W) for
the upstairs RLE (checked in math.md §10). Drift pieces: ``core.free_energy``.

Both samplers advance P independent paths at once (leading path axis).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from tqdm.auto import tqdm

from dlnmanifolds.core._validate import as_matrix, as_rng, check_depth
from dlnmanifolds.core._validate import check_positive_int as _check_int
from dlnmanifolds.core.free_energy import POTENTIALS, _langevin_drift, check_beta
from dlnmanifolds.core.kernel import kernel_matrix
from dlnmanifolds.core.network import _end_to_end, _invariants, _lifted_gradient
from dlnmanifolds.core.operator import require_full_rank, svd_frame
from dlnmanifolds.core.orthographic import orthographic_projection
from dlnmanifolds.flows._common import check_callback
from dlnmanifolds.flows._integrate import MAX_STEPS, check_positive
from dlnmanifolds.flows.energy import Energy, as_energy
from dlnmanifolds.flows.result import FlowBlowUpError, FlowResult

SPACES = ("balanced", "end_to_end")
BALANCE_TOL = 1e-8  # a start with max |G| above this (relative) is not on M


def _path_imbalance(layers) -> np.ndarray:
    """max |G_p| entry per path."""
    gs = _invariants(layers)
    if not gs:
        return np.zeros(layers[0].shape[:-2])
    return np.max(np.stack([np.max(np.abs(g), axis=(-2, -1)) for g in gs]), axis=0)


def _balanced_start(start, depth, n_paths):
    if isinstance(start, np.ndarray) and start.ndim == 4:
        start = list(start.swapaxes(0, 1))  # [P, N, d, d] -> N layers [P, d, d]
    if not isinstance(start, (list, tuple)) or not start:
        raise TypeError(
            "start must be a sequence of layers (W_1, ..., W_N), each [d, d] or [P, d, d], "
            f"for space='balanced', got {type(start).__name__}"
        )
    layers = [as_matrix(w, f"start[{p}]", batch=True) for p, w in enumerate(start)]
    if any(w.ndim not in (2, 3) for w in layers) or len({w.shape for w in layers}) != 1:
        raise ValueError(
            "start layers must all have the same shape [d, d] or [P, d, d] (square widths, "
            f"the main case of math.md §8.2), got {[w.shape for w in layers]}"
        )
    if layers[0].shape[-1] != layers[0].shape[-2]:
        raise ValueError(f"start layers must be square, got shape {layers[0].shape[-2:]}")
    if depth is not None and check_depth(depth) != len(layers):
        raise ValueError(f"depth = {depth} does not match the {len(layers)} layers of start")
    single = layers[0].ndim == 2 and n_paths is None
    if layers[0].ndim == 2:
        reps = 1 if n_paths is None else n_paths
        layers = [np.repeat(w[None], reps, axis=0) for w in layers]
    elif n_paths is not None and n_paths != layers[0].shape[0]:
        raise ValueError(f"n_paths = {n_paths} but start has {layers[0].shape[0]} paths")
    scale = max(1.0, max(float(np.max(np.abs(w))) for w in layers) ** 2)
    if np.max(_path_imbalance(layers)) > BALANCE_TOL * scale:
        raise ValueError(
            "start must lie on the balanced manifold (max |G_p| entry "
            f"{np.max(_path_imbalance(layers)):.3g}); build it with balanced_factors"
        )
    require_full_rank(_end_to_end(layers), "start", "a full-rank end-to-end matrix, main case")
    return layers, single


def _matrix_start(start, depth, n_paths):
    if depth is None:
        raise ValueError("depth is required for space='end_to_end'")
    depth = check_depth(depth)
    x = as_matrix(start, "start", batch=True)
    if x.ndim not in (2, 3) or x.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"start must be a square matrix [d, d] or a batch [P, d, d] for space='end_to_end', "
            f"got shape {x.shape}"
        )
    single = x.ndim == 2 and n_paths is None
    if x.ndim == 2:
        x = np.repeat(x[None], 1 if n_paths is None else n_paths, axis=0)
    elif n_paths is not None and n_paths != x.shape[0]:
        raise ValueError(f"n_paths = {n_paths} but start has {x.shape[0]} paths")
    require_full_rank(x, "start", "g^N is defined on full-rank matrices")
    return x, depth, single


def langevin(
    energy,
    start,
    beta: float,
    space: str = "balanced",
    *,
    depth: int | None = None,
    potential: str = "energy",
    step: float = 1e-3,
    t_final: float = 1.0,
    n_paths: int | None = None,
    record_every: int | None = None,
    rng: np.random.Generator | int | None = None,
    callback: Callable | None = None,
    progress: bool = False,
    newton_tol: float = 1e-12,
    newton_max_iter: int = 50,
    _ito_correction: bool = True,
) -> FlowResult:
    """Sample the RLE at inverse temperature beta by geometric Euler-Maruyama.

    Parameters
    ----------
    energy : Energy (``batched=True`` advances all paths with one call), a pair
        (value, gradient) or a callable E(X).
    start : space="balanced": balanced layers (W_1, ..., W_N), each [d, d] or
        [P, d, d] (square widths, full-rank end-to-end map; math.md §8.2);
        space="end_to_end": a full-rank square X, [d, d] or [P, d, d].
    beta : inverse temperature > 0.
    space : "balanced" (upstairs on M) or "end_to_end" (downstairs on (M_d, g^N)).
    depth : N; required for "end_to_end".
    potential : downstairs only: "energy" (stationary exp(-beta E) vol_g) or
        "free_energy" (exp(-beta (E - S/beta)) vol_g, the push-forward of upstairs).
    step, t_final : step size h and final time (ceil(t_final/h) steps).
    n_paths : replicate an unbatched start into P independent paths.
    record_every : record every k steps (default: about 200 records).
    rng : Generator or seed for the Gaussian increments.
    callback : callback(t, state) after each step; return True to stop.
    newton_tol, newton_max_iter : the projection onto M (upstairs).
    _ito_correction : private ablation switch (tests only): False drops every beta^{-1}
        drift term downstairs, which does NOT sample the RLE (math.md §8.4).

    Returns
    -------
    FlowResult with t [K], states, energy [K, P], end_to_end [K, P, d, d] (the path
    axis is dropped for a single unbatched path), distance_to_balanced = max |G_p|
    entry per path (upstairs), and extras ``singular_values`` [K, P, d] and, upstairs,
    ``newton_iterations`` [K] (max over the steps since the previous record).

    Example
    -------
    Upstairs paths stay on the balanced manifold (one record per step and per path):

    >>> import numpy as np
    >>> from dlnmanifolds import balanced_factors
    >>> from dlnmanifolds.flows import langevin, spectral_quartic_energy
    >>> start = balanced_factors(np.eye(2), 2, rng=0)
    >>> result = langevin(spectral_quartic_energy(2.0), start, beta=20.0, step=1e-3,
    ...                   t_final=0.05, n_paths=20, rng=0)
    >>> result.end_to_end.shape  # [K, P, m, n]
    (51, 20, 2, 2)
    >>> bool(result.distance_to_balanced.max() < 1e-10)
    True
    """
    energy = as_energy(energy)
    beta = check_beta(beta)
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    if potential not in POTENTIALS:
        raise ValueError(f"potential must be one of {POTENTIALS}, got {potential!r}")
    if space == "balanced" and potential != "energy":
        raise ValueError(
            "potential='free_energy' is for space='end_to_end'; upstairs the RLE of E∘phi "
            "already produces the free energy downstairs"
        )
    h = check_positive(step, "step")
    t_final = check_positive(t_final, "t_final")
    newton_tol = check_positive(newton_tol, "newton_tol")
    newton_max_iter = _check_int(newton_max_iter, "newton_max_iter")
    if n_paths is not None:
        n_paths = _check_int(n_paths, "n_paths")
    check_callback(callback)
    gen = as_rng(rng)
    if t_final / h > MAX_STEPS:
        raise ValueError(
            f"t_final = {t_final:.6g} with step = {h:.6g} needs {t_final / h:.3g} steps, "
            f"more than max_steps = {MAX_STEPS}; use a smaller t_final or a larger step"
        )
    total = max(1, int(np.ceil(t_final / h - 1e-9)))
    if record_every is None:
        every = max(1, total // 200)
    else:
        every = _check_int(record_every, "record_every")
    noise = np.sqrt(2.0 * h / beta)

    if space == "balanced":
        state, single = _balanced_start(start, depth, n_paths)

        def to_x(w):
            return _end_to_end(w)

        def advance(w):
            grad = _lifted_gradient(w, energy.gradients)
            ambient = [a - h * g + noise * gen.standard_normal(a.shape) for a, g in zip(w, grad)]
            v, iters, residual = orthographic_projection(w, ambient, newton_tol, newton_max_iter)
            if iters >= newton_max_iter:
                raise _ProjectionFailure(residual)
            return v, iters
    else:
        state, depth, single = _matrix_start(start, depth, n_paths)

        def to_x(x):
            return x

        def advance(x):
            frame = svd_frame(x)
            drift = _langevin_drift(
                frame, energy.gradients(x), depth, beta, potential, _ito_correction
            )
            # A^{1/2} dB = U (sqrt(K) ∘ U^T dB V) V^T and U^T dB V ~ dB (rotation invariance).
            k = np.sqrt(_kernel(frame, depth))
            kick = frame.u @ (k * gen.standard_normal(x.shape)) @ np.swapaxes(frame.v, -1, -2)
            return x + h * drift + noise * kick, 0

    _check_energy_shape(energy, to_x(state))
    rec = _Recorder(energy, to_x, single, upstairs=space == "balanced")
    try:
        rec.record(0.0, state, 0)
    except _Stop:  # the start itself is invalid: nothing ran
        raise ValueError("start: the energy E(X) is not finite at the start point") from None
    bar = tqdm(total=total, disable=not progress, unit="step", leave=False)
    status, message, iters_max, n_done = 0, "finished", 0, 0
    try:
        for k in range(1, total + 1):
            t = t_final if k == total else k * h
            try:
                state, iters = advance(state)
            except _ProjectionFailure as exc:
                raise _Stop(
                    "projection onto the balanced manifold (Newton did not "
                    f"converge, max |G| = {exc.residual:.3g})",
                    t,
                ) from None
            n_done = k
            iters_max = max(iters_max, iters)
            x = to_x(state)
            if not np.all(np.isfinite(x)):
                raise _Stop("state (end-to-end matrix)", t)
            bar.update(1)
            if k % every == 0 or k == total:
                rec.record(t, state, iters_max)
                iters_max = 0
            if callback is not None and callback(t, rec.view(state)):
                status, message = 1, f"stopped by the callback at t = {t:.6g}"
                if rec.t[-1] != t:
                    rec.record(t, state, iters_max)
                break
    except _Stop as exc:
        bar.close()
        partial = rec.result(n_done, -1, f"{exc.quantity} blew up")
        raise FlowBlowUpError(exc.quantity, exc.time, partial) from None
    bar.close()
    return rec.result(n_done, status, message)


def _kernel(frame, depth):
    return kernel_matrix(frame.s, frame.shape, depth)


def _check_energy_shape(energy: Energy, x: np.ndarray) -> None:
    g = energy.gradients(x)
    if g.shape != x.shape:
        raise ValueError(
            f"energy.gradient must return the shape of its input {x.shape}, got {g.shape}"
        )


class _ProjectionFailure(Exception):
    def __init__(self, residual):
        super().__init__(residual)
        self.residual = residual


class _Stop(Exception):
    def __init__(self, quantity, time):
        super().__init__(quantity, time)
        self.quantity, self.time = quantity, time


class _Recorder:
    def __init__(self, energy, to_x, single, upstairs):
        self.energy, self.to_x, self.single, self.upstairs = energy, to_x, single, upstairs
        self.t, self.states, self.values = [], [], {}

    def view(self, state):
        if not self.single:
            return state
        return tuple(w[0] for w in state) if self.upstairs else state[0]

    def record(self, t, state, iters):
        x = self.to_x(state)
        e = self.energy.values(x)
        if not np.all(np.isfinite(e)):
            raise _Stop("energy E(X)", t)
        values = {
            "energy": e,
            "end_to_end": x,
            "singular_values": np.linalg.svd(x, compute_uv=False),
        }
        if self.upstairs:
            values["distance_to_balanced"] = _path_imbalance(state)
            values["newton_iterations"] = iters
        if self.single:
            values = {k: (v[0] if np.ndim(v) else v) for k, v in values.items()}
        self.t.append(float(t))
        state = tuple(np.array(w) for w in state) if self.upstairs else np.array(state)
        self.states.append(self.view(state))
        for key, value in values.items():
            self.values.setdefault(key, []).append(value)

    def result(self, n_steps, status, message):
        arrays = {k: np.array(v) for k, v in self.values.items()}
        return FlowResult(
            t=np.array(self.t),
            states=self.states,
            energy=arrays.pop("energy"),
            end_to_end=arrays.pop("end_to_end"),
            distance_to_balanced=arrays.pop("distance_to_balanced", None),
            extras=arrays,
            n_steps=n_steps,
            n_gradient_evaluations=n_steps,
            status=status,
            message=message,
        )
