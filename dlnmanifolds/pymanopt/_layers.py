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

from dlnmanifolds.core._validate import require_finite_arrays
from dlnmanifolds.core.layer_retraction import second_order_retraction
from dlnmanifolds.core.network import _end_to_end
from dlnmanifolds.pymanopt._membership import CheckedMembership


class LayerTuple(ndarraySequenceMixin, list):
    """A sequence (W_1, ..., W_N) of layer matrices supporting linear algebra.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.pymanopt import LayerTuple
    >>> a = LayerTuple([np.eye(2), np.ones((3, 2))])
    >>> b = 2 * a - a / 2
    >>> type(b).__name__, float(b[1][0, 0])
    ('LayerTuple', 1.5)
    """

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


class LayerSubmanifold(CheckedMembership, RiemannianSubmanifold):
    """Shared behaviour of manifolds of layer tuples embedded with the Frobenius metric.

    Subclasses set ``self._depth``, ``self._rng`` and ``self.retraction_order``
    and implement ``check_point``, ``projection``, ``_first_order_retraction``,
    ``random_point`` and the Hessian. Pymanopt passes a depth-1 point as one
    array (point_layout = 1), so ``_layers``/``_out`` convert between that and a
    list of layers.
    """

    _depth: int
    _rng: np.random.Generator
    _cache: tuple[list, object] | None = None
    #: Order of agreement of ``retraction`` with the exponential map (1 or 2).
    retraction_order: int = 2

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def typical_dist(self) -> float:
        return float(np.sqrt(self.dim))

    def _layers(self, value) -> list:
        if self._depth == 1:
            if isinstance(value, np.ndarray):
                return [value]
            # A nested list of numbers is one matrix, not a list of (row) layers.
            if isinstance(value, (list, tuple)) and value and all(np.ndim(v) <= 1 for v in value):
                return [np.asarray(value)]
        return value

    def _out(self, layers):
        if self._depth == 1:
            return np.asarray(layers[0])
        return LayerTuple(layers)

    def _cached(self, point, build):
        """Per-point data (frames, factored solvers), cached for the latest point.

        Pymanopt optimizers query one point many times; identity of the layer
        arrays (never mutated in place) identifies the point.
        """
        layers = self._layers(point)
        cache = self._cache
        if (
            cache is not None
            and len(cache[0]) == len(layers)
            and all(a is b for a, b in zip(cache[0], layers))
        ):
            return cache[1]
        require_finite_arrays(layers, "point")
        data = build(list(layers))
        self._cache = (list(layers), data)
        return data

    def check_point(self, point, atol: float = 1e-10):  # pragma: no cover - abstract
        raise NotImplementedError

    def _first_order_retraction(self, point, tangent_layers: list) -> list:
        raise NotImplementedError  # pragma: no cover - abstract

    def retraction(self, point, tangent_vector):
        """The subclass's first-order retraction R, made second order when
        ``retraction_order == 2`` by R(xi - P_T(R(xi) - W - xi))
        (``core.layer_retraction.second_order_retraction``, shared with Geoopt).
        """
        layers, xi = self._layers(point), self._layers(tangent_vector)
        require_finite_arrays(layers, "point")
        require_finite_arrays(xi, "tangent_vector")
        if self.retraction_order == 1:
            return self._out(self._first_order_retraction(point, xi))
        return self._out(
            second_order_retraction(
                layers,
                xi,
                lambda v: self._first_order_retraction(point, v),
                lambda v: self._layers(self.projection(point, self._out(v))),
            )
        )

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
        norm = self.norm(point, vector)
        return vector / norm if norm > 0 else vector

    def zero_vector(self, point):
        return self._out([np.zeros_like(w) for w in self._layers(point)])

    def end_to_end(self, point) -> np.ndarray:
        """phi(point) = W_N ... W_1."""
        return _end_to_end(self._layers(point))
