"""Points and tangent vectors made of layer matrices (W_1, ..., W_N).

Modelled on Pymanopt's ``_ProductTangentVector`` and ``FixedRankEmbedded``
tuples: a list of arrays with the vector-space operations Pymanopt's
optimizers use (+, -, scalar *, /, unary -).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from pymanopt.tools import ndarraySequenceMixin


class LayerTuple(ndarraySequenceMixin, list):
    """A sequence (W_1, ..., W_N) of layer matrices supporting linear algebra."""

    def __init__(self, layers: Iterable[np.ndarray] = ()):
        super().__init__(layers)

    def _check(self, other) -> None:
        if len(self) != len(other):
            raise ValueError(
                f"layer sequences must have the same length, got {len(self)} and {len(other)}"
            )

    def __add__(self, other):
        self._check(other)
        return LayerTuple(a + b for a, b in zip(self, other))

    def __sub__(self, other):
        self._check(other)
        return LayerTuple(a - b for a, b in zip(self, other))

    def __mul__(self, scalar):
        return LayerTuple(scalar * a for a in self)

    __rmul__ = __mul__

    def __truediv__(self, scalar):
        return LayerTuple(a / scalar for a in self)

    def __neg__(self):
        return LayerTuple(-a for a in self)


def layer_inner(a, b) -> float:
    """Frobenius inner product sum_p tr(a_p^T b_p)."""
    return float(sum(np.tensordot(x, y) for x, y in zip(a, b)))
