"""Solvers of our own, usable without ``dlnmanifolds.compare``.

``RankAdaptive``: matrix completion over matrices of unknown rank on (M_r, g^N),
with rank increase and reduction steps (Gao & Absil 2022) around any Pymanopt
first-order optimizer. ``soft_impute``: nuclear-norm minimization on the observed
entries (Mazumder, Hastie & Tibshirani 2010), the convex reference.
"""

from dlnmanifolds.optimizers.nuclear_norm import NuclearNormResult, duality_gap, soft_impute
from dlnmanifolds.optimizers.rank_adaptive import (
    RANK_ADAPTIVE_GEOMETRIES,
    STOPPING_REASONS,
    RankAdaptive,
    RankAdaptiveResult,
    rank_from_gap,
)

__all__ = [
    "RANK_ADAPTIVE_GEOMETRIES",
    "STOPPING_REASONS",
    "NuclearNormResult",
    "RankAdaptive",
    "RankAdaptiveResult",
    "duality_gap",
    "rank_from_gap",
    "soft_impute",
]
