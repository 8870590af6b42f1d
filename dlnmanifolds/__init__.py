"""dlnmanifolds: the geometry of the deep linear network for Riemannian optimization.

The core functions are re-exported here; manifolds live in
``dlnmanifolds.pymanopt`` and ``dlnmanifolds.geomstats``.
"""

from dlnmanifolds.core import (
    balanced_factors,
    balanced_frames,
    dln_inner,
    dln_kernel,
    dln_operator,
    dln_operator_inverse,
    dln_operator_sqrt,
    dphi,
    dphi_adjoint,
    end_to_end,
    imbalance,
    invariants,
    partial_products,
)

__version__ = "0.1.0"

__all__ = [
    "balanced_factors",
    "balanced_frames",
    "dln_inner",
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
