"""Pymanopt manifold of an orthogonal-group orbit O_W in the balanced manifold (math.md §6)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlnmanifolds.core._validate import as_weights, widths_of
from dlnmanifolds.core.balanced import BalancedFrames, _balanced_frames, haar_stiefel
from dlnmanifolds.core.entropy import boltzmann_entropy
from dlnmanifolds.core.fiber import _gl_action
from dlnmanifolds.core.network import _end_to_end
from dlnmanifolds.core.operator import numerical_rank
from dlnmanifolds.core.orbit import (
    _check_balanced,
    _orbit_hessian,
    _orbit_projection,
    _orbit_retraction,
    _orbit_weingarten,
    orbit_dimension,
)
from dlnmanifolds.pymanopt.fiber import _PointSetBase


class GroupOrbit(_PointSetBase):
    """The orbit O_W = {(Q_p W_p Q_{p-1}^T)_p : Q_p in O(d_p), Q_0 = Q_N = I} of a
    balanced point W, with the induced Frobenius metric (math.md §6).

    O_W = phi^{-1}(X) ∩ M: every point is balanced and has end-to-end matrix X.
    Its dimension is sum_{p=1}^{N-1} (d_p r - r(r+1)/2) (r = rank X; checked in math.md §10)
    and its volume is e^{S(X)}, S the Boltzmann entropy (``log_volume``).

    * projection: skew generators Omega = G^+ C_W^* xi solved in the frames of W
      (Jacobi tridiagonal systems, O(N d^3)), P_V xi = C_W(Omega);
    * retraction: R_W(xi)_p = e^{Omega_p} W_p e^{-Omega_{p-1}} (exactly balanced,
      phi kept to rounding), first order (``"exponential"``) or with the
      tangential second-order correction (``"second_order"``, default);
    * Hessian: P_V(ehess) + Weingarten term C_W(G^+ skew(C_xi^* P_V^perp egrad));
    * transport: projection. No closed-form exp.

    Parameters
    ----------
    weights : (W_1, ..., W_N), a balanced point (max |G_p| <= 1e-10 relative).
    retraction : "second_order" or "exponential".
    rng : Generator or seed for ``random_point``/``random_tangent_vector``.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds import balanced_factors, end_to_end, imbalance
    >>> from dlnmanifolds.pymanopt import GroupOrbit
    >>> X = np.diag([2.0, 1.0, 0.5])
    >>> O = GroupOrbit(balanced_factors(X, 3, rng=0), rng=0)
    >>> O.dim  # (N - 1) d (d - 1) / 2: one O(3) per inner layer
    6
    >>> W = O.random_point()
    >>> bool(np.allclose(end_to_end(W), X)), bool(imbalance(W) < 1e-12)
    (True, True)
    """

    def __init__(
        self,
        weights: Sequence[np.ndarray],
        retraction: str = "second_order",
        rng: np.random.Generator | int | None = None,
    ):
        layers = as_weights(weights)
        _check_balanced(layers, "weights")
        s = np.linalg.svd(_end_to_end(layers), compute_uv=False)
        self._rank = numerical_rank(s)
        widths = widths_of(layers)
        super().__init__(
            f"Orthogonal-group orbit of a balanced DLN, widths {widths}, rank {self._rank}",
            layers,
            orbit_dimension(widths, self._rank),
            retraction,
            rng,
        )

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def typical_dist(self) -> float:
        # The orbit lies on the sphere of radius |W|_F (the action is isometric).
        return float(np.pi * np.sqrt(sum(np.sum(w**2) for w in self._base)))

    def log_volume(self) -> float:
        """log vol(O_W) = S(X), the Boltzmann entropy (math.md §6)."""
        return boltzmann_entropy(self._target, self._depth, self._widths)

    def frames(self, point) -> BalancedFrames:
        """Balanced frames of ``point`` (cached for the most recent point)."""
        return self._cached(point, lambda layers: _balanced_frames(layers, self._rank))

    def check_point(self, point, atol: float = 1e-10):
        """Validate widths, finiteness, phi(point) = X and balance (relative ``atol``)."""
        layers = self._check_layers(point, atol)
        _check_balanced(layers, "point", atol)
        return self._out(layers)

    def projection(self, point, vector):
        layers = self._layers(point)
        return self._out(_orbit_projection(layers, self.frames(point), self._layers(vector)))

    def weingarten(self, point, tangent_vector, normal_vector):
        return self._out(
            _orbit_weingarten(
                self._layers(point),
                self.frames(point),
                self._layers(tangent_vector),
                self._layers(normal_vector),
            )
        )

    def euclidean_to_riemannian_hessian(
        self, point, euclidean_gradient, euclidean_hessian, tangent_vector
    ):
        return self._out(
            _orbit_hessian(
                self._layers(point),
                self.frames(point),
                self._layers(euclidean_gradient),
                self._layers(euclidean_hessian),
                self._layers(tangent_vector),
            )
        )

    def _first_order_retraction(self, point, tangent_layers) -> list:
        return _orbit_retraction(self._layers(point), self.frames(point), tangent_layers)

    def random_point(self):
        """Q.W with Haar Q_p in O(d_p): the normalised volume measure of the orbit
        (the orbit map is equivariant with constant Jacobian, math.md §6)."""
        rotations = [haar_stiefel(d, d, self._rng) for d in self._widths[1:-1]]
        return self._out(_gl_action(self._base, rotations, [q.T for q in rotations]))
