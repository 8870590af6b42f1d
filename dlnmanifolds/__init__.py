"""dlnmanifolds: the geometry of the deep linear network for Riemannian optimization.

The core functions are re-exported here; manifolds live in
``dlnmanifolds.pymanopt`` and ``dlnmanifolds.geomstats``.
"""

from dlnmanifolds.core import (
    GeodesicError,
    balanced_factors,
    balanced_frames,
    boltzmann_entropy,
    dln_exp,
    dln_inner,
    dln_kernel,
    dln_log,
    dln_operator,
    dln_operator_inverse,
    dln_operator_sqrt,
    dphi,
    dphi_adjoint,
    end_to_end,
    entropy_gradient,
    fiber_projection,
    free_energy,
    gl_action,
    imbalance,
    invariants,
    langevin_drift,
    orbit_projection,
    orthogonal_action,
    orthogonal_group_volume,
    partial_products,
    stiefel_volume,
)

__version__ = "0.1.0"

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
