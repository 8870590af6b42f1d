"""The result object every flow returns, and the error raised when a run blows up.

Modelled on scipy's ``OptimizeResult``: one object with named fields for a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class FlowResult:
    """Trajectory and monitored quantities of one integrator run.

    Attributes
    ----------
    t : array, shape=[K]
        Recorded times.
    states : list of K states
        A state is a tuple of layers ``(W_1, ..., W_N)`` upstairs or an end-to-end
        matrix downstairs (Langevin: with a leading path axis).
    energy : array, shape=[K] (Langevin: [K, P])
        E(phi(W)) or E(X) at the recorded times.
    end_to_end : array, shape=[K, m, n] (Langevin: [K, P, m, n])
    invariants_norm : array or None
        sqrt(sum_p ||G_p||_F^2), G_p = W_{p+1}^T W_{p+1} - W_p W_p^T (math.md §2.1);
        None for downstairs flows.
    distance_to_balanced : array or None
        Frobenius distance from W to the balanced point over the same end-to-end
        matrix given by the polar re-balancing map (an upper bound of dist(W, M),
        zero exactly on M); Langevin upstairs reports max |G_p| entries instead.
    extras : dict of arrays
        Flow-specific monitored quantities (e.g. the fast-slow decomposition of the
        balancing flows, math.md §7.4).
    status : 0 finished, 1 stopped by the callback, -1 blew up.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.flows import quadratic_energy, end_to_end_flow
    >>> result = end_to_end_flow(quadratic_energy(np.eye(2)), 0.1 * np.eye(2), depth=2, t_final=1.0)
    >>> result.success, result.message, float(result.t[-1])
    (True, 'finished', 1.0)
    >>> result.end_to_end.shape[1:], bool(np.allclose(result.final_state, result.end_to_end[-1]))
    ((2, 2), True)
    """

    t: np.ndarray
    states: list
    energy: np.ndarray | None
    end_to_end: np.ndarray
    invariants_norm: np.ndarray | None = None
    distance_to_balanced: np.ndarray | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    n_steps: int = 0
    n_gradient_evaluations: int = 0
    status: int = 0
    message: str = ""

    @property
    def success(self) -> bool:
        return self.status >= 0

    @property
    def final_state(self):
        return self.states[-1]


class FlowBlowUpError(FloatingPointError):
    """A monitored quantity became non-finite mid-run.

    ``result`` holds the trajectory up to the last finite record, ``time`` the
    time at which the blow-up was detected and ``quantity`` what blew up.

    Example
    -------
    Explicit Euler with too large a step on a quartic energy blows up; the trajectory
    up to the last finite record is kept:

    >>> import numpy as np
    >>> from dlnmanifolds.flows import FlowBlowUpError, gradient_flow, spectral_quartic_energy
    >>> try:
    ...     with np.errstate(over="ignore", invalid="ignore"):
    ...         gradient_flow(spectral_quartic_energy(), [3 * np.eye(2)] * 2, t_final=10.0,
    ...                       method="euler", step=0.5)
    ... except FlowBlowUpError as error:
    ...     print(error.quantity, "at t =", error.time, "; kept up to t =", error.result.t[-1])
    energy E(phi(W)) at t = 1.5 ; kept up to t = 1.0
    """

    def __init__(self, quantity: str, time: float, result: FlowResult):
        self.quantity = quantity
        self.time = float(time)
        self.result = result
        super().__init__(
            f"{quantity} became non-finite (NaN or inf) at t = {self.time:.6g}; the run was "
            f"stopped after {result.n_steps} steps. The trajectory up to t = "
            f"{(result.t[-1] if len(result.t) else float('nan')):.6g} is in this error's "
            "`result` attribute."
        )
