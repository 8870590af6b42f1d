"""Pymanopt manifolds for the deep linear network geometry."""

from dlnmanifolds.pymanopt._layers import LayerTuple
from dlnmanifolds.pymanopt.balanced import BalancedManifold
from dlnmanifolds.pymanopt.dln_matrices import DLNMatrices
from dlnmanifolds.pymanopt.fiber import Fiber
from dlnmanifolds.pymanopt.fixed_rank import DLNFixedRank, MissingHessianError
from dlnmanifolds.pymanopt.invariant import InvariantManifold
from dlnmanifolds.pymanopt.orbit import GroupOrbit
from dlnmanifolds.pymanopt.validated import ValidatedManifold, validated

__all__ = [
    "BalancedManifold",
    "DLNFixedRank",
    "DLNMatrices",
    "Fiber",
    "GroupOrbit",
    "InvariantManifold",
    "LayerTuple",
    "MissingHessianError",
    "ValidatedManifold",
    "validated",
]
