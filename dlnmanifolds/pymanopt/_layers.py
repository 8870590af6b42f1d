"""Points and tangent vectors made of layer matrices (W_1, ..., W_N).

Modelled on Pymanopt's ``_ProductTangentVector`` and ``FixedRankEmbedded``
tuples: a list of arrays with the vector-space operations Pymanopt's
optimizers use (+, -, scalar *, /, unary -).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from pymanopt.manifolds.manifold import RiemannianSubmanifold
from pymanopt.tools import ndarraySequenceMixin

from dlnmanifolds.core.network import _end_to_end


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


class LayerSubmanifold(RiemannianSubmanifold):
    """Shared behaviour of manifolds of layer tuples embedded with the Frobenius metric.

    Subclasses set ``self._depth`` and ``self._rng`` and implement
    ``check_point``, ``projection``, ``retraction``, ``random_point`` and the
    Hessian. Pymanopt passes a depth-1 point as one array (point_layout = 1),
    so ``_layers``/``_out`` convert between that and a list of layers.
    """

    _depth: int
    _rng: np.random.Generator

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def typical_dist(self) -> float:
        return float(np.sqrt(self.dim))

    def _layers(self, value) -> list:
        if self._depth == 1 and isinstance(value, np.ndarray):
            return [value]
        return value

    def _out(self, layers):
        if self._depth == 1:
            return np.asarray(layers[0])
        return LayerTuple(layers)

    def check_point(self, point, atol: float = 1e-10):  # pragma: no cover - abstract
        raise NotImplementedError

    def belongs(self, point, atol: float = 1e-10) -> bool:
        """True when ``point`` lies on the manifold (see ``check_point``)."""
        try:
            self.check_point(point, atol)
        except (ValueError, TypeError):
            return False
        return True

    def inner_product(self, point, tangent_vector_a, tangent_vector_b) -> float:
        return layer_inner(self._layers(tangent_vector_a), self._layers(tangent_vector_b))

    def norm(self, point, tangent_vector) -> float:
        return float(np.sqrt(self.inner_product(point, tangent_vector, tangent_vector)))

    def to_tangent_space(self, point, vector):
        return self.projection(point, vector)

    def euclidean_to_riemannian_gradient(self, point, euclidean_gradient):
        return self.projection(point, euclidean_gradient)

    def transport(self, point_a, point_b, tangent_vector_a):
        """Vector transport by orthogonal projection onto the tangent space at point_b."""
        return self.projection(point_b, tangent_vector_a)

    def random_tangent_vector(self, point):
        """A unit-norm tangent vector: the projection of a standard Gaussian."""
        gaussian = [self._rng.standard_normal(np.shape(w)) for w in self._layers(point)]
        vector = self.projection(point, self._out(gaussian))
        return vector / self.norm(point, vector)

    def zero_vector(self, point):
        return self._out([np.zeros_like(w) for w in self._layers(point)])

    def end_to_end(self, point) -> np.ndarray:
        """phi(point) = W_N ... W_1."""
        return _end_to_end(self._layers(point))
