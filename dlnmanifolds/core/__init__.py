"""Backend-free mathematics of the deep linear network: pure numpy functions.

Every formula lives here once; the Pymanopt and Geomstats adapters call it.
"""

from dlnmanifolds.core.balanced import balanced_factors, balanced_frames
from dlnmanifolds.core.dln_geodesic import GeodesicError, dln_exp, dln_log
from dlnmanifolds.core.entropy import (
    boltzmann_entropy,
    entropy_gradient,
    orthogonal_group_volume,
    stiefel_volume,
)
from dlnmanifolds.core.fiber import fiber_projection, gl_action
from dlnmanifolds.core.free_energy import free_energy, langevin_drift
from dlnmanifolds.core.kernel import dln_kernel
from dlnmanifolds.core.network import (
    dphi,
    dphi_adjoint,
    end_to_end,
    imbalance,
    invariants,
    partial_products,
)
from dlnmanifolds.core.operator import (
    dln_inner,
    dln_operator,
    dln_operator_inverse,
    dln_operator_sqrt,
)
from dlnmanifolds.core.orbit import orbit_projection, orthogonal_action

__all__ = [
    "GeodesicError",
    "balanced_factors",
    "boltzmann_entropy",
    "entropy_gradient",
    "fiber_projection",
    "free_energy",
    "langevin_drift",
    "gl_action",
    "orbit_projection",
    "orthogonal_action",
    "orthogonal_group_volume",
    "stiefel_volume",
    "balanced_frames",
    "dln_exp",
    "dln_inner",
    "dln_log",
    "dln_kernel",
    "dln_operator",
    "dln_operator_inverse",
    "dln_operator_sqrt",
    "dphi",
    "dphi_adjoint",
    "end_to_end",
    "imbalance",
    "invariants",
    "partial_products",
]

# The public boundary: a numerical failure inside (overflow, a LAPACK error on
# entries near the ends of double range) is reported as a ValueError naming the
# argument to rescale. Internal callers use the unwrapped module functions.
from dlnmanifolds.core._validate import guard_numerics as _guard_numerics  # noqa: E402
from dlnmanifolds.core._validate import guard_scale as _guard_scale  # noqa: E402

dln_exp = _guard_scale(dln_exp, ("X", "V"), tolerances=("rtol",))
dln_log = _guard_scale(dln_log, ("X", "Y"), tolerances=("tol", "rtol"), counts=("max_iter",))

for _name in __all__:
    _value = globals()[_name]
    if callable(_value) and not isinstance(_value, type):
        globals()[_name] = _guard_numerics(_value)
del _name, _value
