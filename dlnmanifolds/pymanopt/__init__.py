"""Pymanopt manifolds for the deep linear network geometry."""

from dlnmanifolds.pymanopt._layers import LayerTuple
from dlnmanifolds.pymanopt.balanced import BalancedManifold
from dlnmanifolds.pymanopt.dln_matrices import DLNMatrices

__all__ = ["BalancedManifold", "DLNMatrices", "LayerTuple"]
