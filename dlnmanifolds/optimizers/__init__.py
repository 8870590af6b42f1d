"""Optimizers built on the DLN geometries.

``RankAdaptive``: matrix completion over matrices of unknown rank on (M_r, g^N),
with rank increase and reduction steps (Gao & Absil 2022) around any Pymanopt
first-order optimizer.
"""

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
    "RankAdaptive",
    "RankAdaptiveResult",
    "rank_from_gap",
]
