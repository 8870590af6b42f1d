"""Solvers of our own, usable without ``dlnmanifolds.compare``."""

from dlnmanifolds.optimizers.nuclear_norm import NuclearNormResult, duality_gap, soft_impute

__all__ = ["NuclearNormResult", "duality_gap", "soft_impute"]
