"""Pymanopt manifold of a fiber phi^{-1}(X) of the end-to-end map (math.md §5).

Also home of ``_PointSetBase``, the machinery shared with ``GroupOrbit`` (both are
submanifolds through a given point, with the induced Frobenius metric and a
group-action retraction).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.linalg

from dlnmanifolds.core._validate import as_rng, as_weights, widths_of
from dlnmanifolds.core.balanced import haar_stiefel
from dlnmanifolds.core.fiber import (
    FiberSolver,
    _fiber_hessian,
    _fiber_retraction,
    _fiber_solver,
    _fiber_weingarten,
    _gl_action,
    _projective_fiber_retraction,
    fiber_dimension,
    orbit_is_open,
)
from dlnmanifolds.core.network import _end_to_end
from dlnmanifolds.core.operator import require_full_rank
from dlnmanifolds.pymanopt._layers import LayerSubmanifold

RETRACTIONS = ("second_order", "exponential")


class _PointSetBase(LayerSubmanifold):
    """Shared parts of ``Fiber`` and ``GroupOrbit``: submanifolds through a given
    point, with a group-action retraction (first order, ``"exponential"``, or
    second order, ``"second_order"``)."""

    def __init__(self, name: str, layers, dim: int, retraction: str, rng):
        if retraction not in RETRACTIONS:
            raise ValueError(f"retraction must be one of {RETRACTIONS}, got {retraction!r}")
        self._base = tuple(np.array(w, copy=True) for w in layers)
        self._widths = widths_of(layers)
        self._depth = len(layers)
        self._target = _end_to_end(self._base)
        self.retraction_order = 2 if retraction == "second_order" else 1
        self._rng = as_rng(rng)
        self._cache = None
        super().__init__(name, dim, point_layout=self._depth)

    @property
    def widths(self) -> tuple[int, ...]:
        return self._widths

    @property
    def base_point(self):
        """The point the manifold was built from (a copy)."""
        return self._out([w.copy() for w in self._base])

    @property
    def target(self) -> np.ndarray:
        """The end-to-end matrix X = phi(W) shared by every point."""
        return self._target.copy()

    def _check_layers(self, point, atol: float) -> list:
        """Widths, finiteness, and phi(point) = X to relative ``atol``."""
        layers = as_weights(self._layers(point), "point", self._widths)
        scale = max(1.0, float(np.max(np.abs(self._target))))
        err = float(np.max(np.abs(_end_to_end(layers) - self._target)))
        if err > atol * scale:
            raise ValueError(
                f"point is not on this manifold: max |phi(point) - X| = {err:.3g} > "
                f"{atol * scale:.3g}"
            )
        return list(layers)

    def exp(self, point, tangent_vector):
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form exponential map; use retraction"
        )


class Fiber(_PointSetBase):
    """The fiber F = phi^{-1}(X) through a point W with full-rank X = phi(W).

    All networks with one end-to-end matrix, a submanifold of the layer space with
    the induced Frobenius metric, of dimension sum_p d_p d_{p-1} - d_N d_0
    (math.md §5; checked in math.md §10). Points are ``LayerTuple`` s; costs take
    ``cost(W1, ..., WN)``.

    * projection: P_F = I - Dphi^* A_W^{-1} Dphi = I - Q Q^T from a thin QR of
      the matrix of Dphi^* (cached per point): O(D (mn)^2) per point, then
      O(D mn) per projection (D = sum_p d_p d_{p-1});
    * retraction: the GL action R_W(xi)_p = e^{A_p} W_p e^{-A_{p-1}} (math.md §5;
      checked in math.md §10), so phi is kept to rounding for any step; first order as such
      (``"exponential"``), second order with a tangential correction
      (``"second_order"``, default, two group steps);
    * Hessian: Weingarten form of math.md §5 (checked in math.md §10);
    * transport: projection. No closed-form exp.

    For non-square widths the fiber can contain several GL orbits (ranks of the
    W_p); ``random_point`` samples the orbit of the given point.

    Parameters
    ----------
    weights : (W_1, ..., W_N), a point with full-rank end-to-end matrix. Where its GL
        orbit is not open in the fiber (e.g. a balanced factorization with non-square
        widths: every layer has rank r < min(d_p, d_{p-1}), checked once here by
        ``core.fiber.orbit_is_open``), the group step cannot follow every tangent vector,
        and the first-order retraction is W + xi re-projected onto phi = X instead.
    retraction : "second_order" or "exponential".
    rng : Generator or seed for ``random_point``/``random_tangent_vector``.

    Example
    -------
    Every point of the fiber has the same end-to-end matrix:

    >>> import numpy as np
    >>> from dlnmanifolds import balanced_factors, end_to_end
    >>> from dlnmanifolds.pymanopt import Fiber
    >>> X = np.diag([2.0, 1.0, 0.5])
    >>> F = Fiber(balanced_factors(X, 3, rng=0), rng=0)
    >>> F.dim  # sum_p d_p d_{p-1} - d_N d_0
    18
    >>> bool(np.allclose(end_to_end(F.random_point()), X))
    True
    """

    def __init__(
        self,
        weights: Sequence[np.ndarray],
        retraction: str = "second_order",
        rng: np.random.Generator | int | None = None,
    ):
        layers = as_weights(weights)
        require_full_rank(
            _end_to_end(layers), "weights", "a full-rank end-to-end matrix: Dphi surjective"
        )
        widths = widths_of(layers)
        super().__init__(
            f"Fiber of the DLN end-to-end map, widths {widths}",
            layers,
            fiber_dimension(widths),
            retraction,
            rng,
        )
        self._open_orbit = orbit_is_open(layers)

    @property
    def typical_dist(self) -> float:
        return float(np.sqrt(max(self.dim, 1)))

    def solver(self, point) -> FiberSolver:
        """The factored A_W at ``point`` (cached for the most recent point)."""
        return self._cached(point, _fiber_solver)

    def check_point(self, point, atol: float = 1e-10):
        """Validate widths, finiteness and phi(point) = X (relative ``atol``)."""
        return self._out(self._check_layers(point, atol))

    def projection(self, point, vector):
        return self._out(self.solver(point).project(self._layers(vector)))

    def weingarten(self, point, tangent_vector, normal_vector):
        return self._out(
            _fiber_weingarten(
                self.solver(point), self._layers(tangent_vector), self._layers(normal_vector)
            )
        )

    def euclidean_to_riemannian_hessian(
        self, point, euclidean_gradient, euclidean_hessian, tangent_vector
    ):
        return self._out(
            _fiber_hessian(
                self.solver(point),
                self._layers(euclidean_gradient),
                self._layers(euclidean_hessian),
                self._layers(tangent_vector),
            )
        )

    def _first_order_retraction(self, point, tangent_layers) -> list:
        # Re-projected onto phi = X of the manifold, not of the (rounded) current point.
        if not self._open_orbit:
            return _projective_fiber_retraction(self._layers(point), tangent_layers, self._target)
        return _fiber_retraction(self._layers(point), tangent_layers, self._target)

    def random_point(self):
        """g.W for g_p = O_p e^{S_p}: O_p Haar in O(d_p), S_p symmetric with entries
        of size 0.3/sqrt(d_p) (bounded condition number, every component reached)."""
        group = []
        for d in self._widths[1:-1]:
            s = self._rng.standard_normal((d, d)) * (0.3 / np.sqrt(d))
            group.append(haar_stiefel(d, d, self._rng) @ scipy.linalg.expm(0.5 * (s + s.T)))
        return self._out(_gl_action(self._base, group))
