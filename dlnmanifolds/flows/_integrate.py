"""One ODE driver for every deterministic flow: adaptive scipy Runge-Kutta or fixed steps.

Adaptive methods use the ``scipy.integrate`` ``OdeSolver`` classes that
``solve_ivp`` wraps, stepped one accepted step at a time so that the driver can
record, call back, show progress and stop at the first non-finite value with the
trajectory so far. Fixed-step methods are explicit Euler (on a gradient field this
is plain gradient descent with learning rate ``step``) and classical RK4, whose
stages can be mapped back onto a constraint set (``stage_map``, math.md §3.3).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import integrate
from tqdm.auto import tqdm

from dlnmanifolds.core._validate import check_positive_int
from dlnmanifolds.flows.result import FlowBlowUpError, FlowResult

ADAPTIVE_METHODS = {
    "RK45": integrate.RK45,
    "RK23": integrate.RK23,
    "DOP853": integrate.DOP853,
    "Radau": integrate.Radau,
    "BDF": integrate.BDF,
    "LSODA": integrate.LSODA,
}
FIXED_METHODS = ("euler", "rk4")
STANDARD_FIELDS = ("energy", "end_to_end", "invariants_norm", "distance_to_balanced")


class NonFiniteError(Exception):
    """Internal: a quantity became non-finite at time t."""

    def __init__(self, quantity: str, time: float):
        super().__init__(quantity, time)
        self.quantity = quantity
        self.time = time


def check_method(method: str, aliases: dict[str, str] | None = None) -> str:
    method = (aliases or {}).get(method, method)
    if not isinstance(method, str) or (
        method not in ADAPTIVE_METHODS and method not in FIXED_METHODS
    ):
        allowed = sorted(ADAPTIVE_METHODS) + list(FIXED_METHODS) + sorted(aliases or {})
        raise ValueError(f"method must be one of {allowed}, got {method!r}")
    return method


#: Default step budget of a flow: a run needing more steps is refused or stopped.
MAX_STEPS = 1_000_000
#: Consecutive non-finite stage evaluations after which an adaptive run is a blow-up
#: (each rejection shrinks the step at least 5-fold: 40 of them, by 1e28).
MAX_NONFINITE_STAGES = 40
#: Stability bound |h * rate| of the explicit Runge-Kutta methods on a decay rate.
_EXPLICIT_STABILITY = 3.0


class StepBudgetError(ValueError):
    """A flow needs more than ``max_steps`` steps; ``result`` holds the run so far."""

    def __init__(self, message: str, result: FlowResult | None = None):
        super().__init__(message)
        self.result = result


def check_tolerance(value, name: str) -> float:
    """rtol/atol: a finite number > 0."""
    return check_positive(value, name)


def check_positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a positive number, got {type(value).__name__}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value}")
    return float(value)


class Recorder:
    """Collects times, states and monitored quantities at record times."""

    def __init__(self, monitor: Callable, unpack: Callable):
        self.monitor = monitor
        self.unpack = unpack
        self.t: list[float] = []
        self.states: list = []
        self.values: dict[str, list] = {}

    def record(self, t: float, y: np.ndarray) -> None:
        state = self.unpack(np.array(y, copy=True))
        values = self.monitor(state)
        energy = values.get("energy")
        if energy is not None and not np.all(np.isfinite(energy)):
            raise NonFiniteError("energy E(phi(W))", t)
        self.t.append(float(t))
        self.states.append(state)
        for key, value in values.items():
            self.values.setdefault(key, []).append(value)

    def result(self, n_steps: int, n_evals: int, status: int, message: str) -> FlowResult:
        arrays = {k: np.array(v) for k, v in self.values.items()}
        standard = {k: arrays.pop(k, None) for k in STANDARD_FIELDS}
        return FlowResult(
            t=np.array(self.t),
            states=self.states,
            extras=arrays,
            n_steps=n_steps,
            n_gradient_evaluations=n_evals,
            status=status,
            message=message,
            **standard,
        )


def integrate_flow(
    rhs: Callable[[float, np.ndarray], np.ndarray],
    y0: np.ndarray,
    t_final: float,
    *,
    monitor: Callable,
    unpack: Callable,
    method: str = "RK45",
    rtol: float = 1e-8,
    atol: float = 1e-10,
    step: float | None = None,
    t_eval: np.ndarray | None = None,
    record_every: int = 1,
    callback: Callable | None = None,
    progress: bool = False,
    stage_map: Callable[[np.ndarray], np.ndarray] | None = None,
    max_steps: int = MAX_STEPS,
    rate: float = 0.0,
) -> FlowResult:
    """Integrate dy/dt = rhs(t, y) on [0, t_final] and record monitored quantities.

    ``monitor(state)`` returns a dict of quantities (``energy`` is checked for
    finiteness); ``unpack(y)`` turns the flat vector into a state. The callback
    ``callback(t, state)`` runs after every accepted step; a truthy return stops
    the run (status 1).

    Bounded time: the velocity is checked at t = 0 and at every stage; a run
    needing more than ``max_steps`` steps is refused before it starts when that
    is known (fixed steps: ceil(t_final / step); explicit adaptive methods on a
    field with decay ``rate`` (weight decay): about rate * t_final / 3) and is
    otherwise stopped with ``StepBudgetError`` after ``max_steps`` steps.
    """
    t_final = check_positive(t_final, "t_final")
    rtol = check_tolerance(rtol, "rtol")
    atol = check_tolerance(atol, "atol")
    max_steps = check_positive_int(max_steps, "max_steps")
    if step is not None:
        step = check_positive(step, "step")
    evals = [0]
    nonfinite = [0]

    adaptive = method in ADAPTIVE_METHODS
    explicit = method not in ("Radau", "BDF", "LSODA")
    if explicit and rate > 0 and rate * t_final / _EXPLICIT_STABILITY > max_steps:
        raise ValueError(
            f"weight_decay: the decay rate {rate:.3g} over t_final = {t_final:.3g} needs "
            f"about {rate * t_final / _EXPLICIT_STABILITY:.3g} steps of the explicit method "
            f"{method!r}, more than max_steps = {max_steps}; use a smaller weight_decay or "
            f"t_final, an implicit method ('Radau', 'BDF') or a larger max_steps"
        )

    def fun(t, y):
        evals[0] += 1
        with np.errstate(over="ignore", invalid="ignore"):
            dy = rhs(t, y)
        if not np.all(np.isfinite(dy)):
            nonfinite[0] += 1
            if adaptive and nonfinite[0] < MAX_NONFINITE_STAGES:
                # A trial stage overflowed: the step-size controller sees a NaN error,
                # rejects the step and shrinks it. A genuine blow-up keeps failing.
                return np.full_like(y, np.nan)
            raise NonFiniteError("velocity dW/dt (gradient of the energy)", t)
        nonfinite[0] = 0
        return dy

    if t_eval is not None and method not in ADAPTIVE_METHODS:
        raise ValueError(
            f"t_eval is only available with adaptive methods; with method={method!r} use "
            "record_every"
        )
    recorder = Recorder(monitor, unpack)
    eval_times = None if t_eval is None else np.sort(np.asarray(t_eval, dtype=float))
    if eval_times is not None and (eval_times[0] < 0 or eval_times[-1] > t_final):
        raise ValueError(f"t_eval must lie in [0, t_final = {t_final}]")
    bar = tqdm(total=t_final, disable=not progress, unit="t", leave=False)
    n_steps, status, message = 0, 0, "finished"
    y = np.array(y0, dtype=np.float64)
    try:
        if eval_times is None or eval_times[0] == 0.0:
            recorder.record(0.0, y)
        # A NaN velocity at the start is a blow-up at t = 0, not a reason to shrink
        # the first step forever.
        nonfinite[0] = MAX_NONFINITE_STAGES
        fun(0.0, y)
        evals[0] -= 1  # a check, not one of the method's evaluations
        if adaptive:
            options = {} if step is None else {"max_step": step}
            solver = ADAPTIVE_METHODS[method](fun, 0.0, y, t_final, rtol=rtol, atol=atol, **options)
            next_eval = 0 if eval_times is None else int(np.searchsorted(eval_times, 0.0, "right"))
            while solver.status == "running":
                # Out of budget, or hopeless: at a thousandfold the mean step so far the
                # rest would still not fit in the budget. (The mean, not the current
                # step: near a finite-time blow-up the step collapses, and that is
                # reported as a blow-up.)
                h_now = solver.t / n_steps if n_steps else 0.0
                hopeless = (
                    n_steps >= 100
                    and h_now > 0
                    and (t_final - solver.t) / h_now > 1000.0 * max_steps
                )
                if n_steps >= max_steps or hopeless:
                    raise StepBudgetError(
                        f"t_final = {t_final:.6g} is out of reach of max_steps = "
                        f"{max_steps}: after {n_steps} steps the flow is at t = "
                        f"{solver.t:.6g} (mean step {h_now:.3g}); use a smaller t_final "
                        f"or a larger max_steps",
                        recorder.result(n_steps, evals[0], -1, "step budget exhausted"),
                    )
                t_old = solver.t
                failure = solver.step()
                if solver.status == "failed":
                    raise NonFiniteError(
                        f"state W (the adaptive step size collapsed: {failure})", solver.t
                    )
                n_steps += 1
                y = solver.y
                if not np.all(np.isfinite(y)):
                    raise NonFiniteError("state W", solver.t)
                bar.update(solver.t - t_old)
                if eval_times is None:
                    if n_steps % record_every == 0 or solver.status == "finished":
                        recorder.record(solver.t, y)
                else:
                    dense = None
                    while next_eval < eval_times.size and eval_times[next_eval] <= solver.t:
                        dense = dense or solver.dense_output()
                        recorder.record(eval_times[next_eval], dense(eval_times[next_eval]))
                        next_eval += 1
                if callback is not None and callback(solver.t, unpack(np.array(y))):
                    status, message = 1, f"stopped by the callback at t = {solver.t:.6g}"
                    break
        else:
            h = check_positive(1e-3 if step is None else step, "step")
            steps_needed = t_final / h
            if steps_needed > max_steps:
                raise ValueError(
                    f"t_final = {t_final:.6g} with step = {h:.6g} needs {steps_needed:.3g} "
                    f"steps, more than max_steps = {max_steps}; use a smaller t_final, a "
                    f"larger step or a larger max_steps"
                )
            total = max(1, math.ceil(steps_needed - 1e-9))
            t = 0.0
            for k in range(total):
                dt = min(h, t_final - t) if k == total - 1 else h
                y = _fixed_step(fun, t, y, dt, method, stage_map)
                t = t_final if k == total - 1 else (k + 1) * h
                n_steps += 1
                if not np.all(np.isfinite(y)):
                    raise NonFiniteError("state W", t)
                bar.update(dt)
                if n_steps % record_every == 0 or k == total - 1:
                    recorder.record(t, y)
                if callback is not None and callback(t, unpack(np.array(y))):
                    status, message = 1, f"stopped by the callback at t = {t:.6g}"
                    if not recorder.t or recorder.t[-1] != t:
                        recorder.record(t, y)
                    break
    except NonFiniteError as exc:
        bar.close()
        partial = recorder.result(n_steps, evals[0], -1, f"{exc.quantity} blew up")
        raise FlowBlowUpError(exc.quantity, exc.time, partial) from None
    bar.close()
    return recorder.result(n_steps, evals[0], status, message)


def _fixed_step(fun, t, y, h, method, stage_map):
    if method == "euler":
        out = y + h * fun(t, y)
        return out if stage_map is None else stage_map(out)
    project = (lambda v: v) if stage_map is None else stage_map
    k1 = fun(t, y)
    k2 = fun(t + h / 2, project(y + h / 2 * k1))
    k3 = fun(t + h / 2, project(y + h / 2 * k2))
    k4 = fun(t + h, project(y + h * k3))
    return project(y + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4))
