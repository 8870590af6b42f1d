"""Runnable, verified integrators for the DLN dynamics (math.md §3, §7, §8).

* ``gradient_flow`` — training upstairs (gradient flow / gradient descent of E∘phi);
* ``end_to_end_flow`` — the Arora-Cohen-Hazan flow dX/dt = -A_{N,X}(E'(X));
* ``balancing_flow`` — L^2 and squared-moment-map flows on fibers;
* ``langevin`` — the Riemannian Langevin equation upstairs on M and downstairs on
  (M_d, g^N).
Each returns a ``FlowResult``; a non-finite value mid-run raises ``FlowBlowUpError``
carrying the trajectory so far.
"""

from dlnmanifolds.flows.balancing import balancing_flow
from dlnmanifolds.flows.energy import Energy, quadratic_energy, spectral_quartic_energy
from dlnmanifolds.flows.langevin import langevin
from dlnmanifolds.flows.result import FlowBlowUpError, FlowResult
from dlnmanifolds.flows.training import end_to_end_flow, gradient_flow

__all__ = [
    "Energy",
    "FlowBlowUpError",
    "FlowResult",
    "balancing_flow",
    "end_to_end_flow",
    "gradient_flow",
    "langevin",
    "quadratic_energy",
    "spectral_quartic_energy",
]
