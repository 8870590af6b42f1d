"""Backend-free mathematics of the deep linear network: pure numpy functions.

Every formula lives here once; the Pymanopt and Geomstats adapters call it.
"""

from dlnmanifolds.core.balanced import balanced_factors, balanced_frames
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
