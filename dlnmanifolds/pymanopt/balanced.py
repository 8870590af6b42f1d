"""Pymanopt manifold of balanced deep linear networks (math.md §2)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlnmanifolds.core._validate import as_weights
from dlnmanifolds.core.balanced import (  # balanced_dimension: re-exported (its old home)
    BalancedFrames,
    _balanced_frames,
    _rebalance,
    balanced_dimension,
    balanced_factors,
    full_rank_widths,
    haar_stiefel,
)
from dlnmanifolds.core.balanced_tangent import (
    horizontal_projection,
    riemannian_hessian,
    tangent_projection,
)
from dlnmanifolds.core.network import _end_to_end, _imbalance
from dlnmanifolds.core.operator import require_full_rank
from dlnmanifolds.pymanopt._layers import LayerSubmanifold
from dlnmanifolds.pymanopt.invariant import InvariantManifold


class BalancedManifold(InvariantManifold):
    """Balanced weights (W_1, ..., W_N) with full-rank end-to-end matrix.

    The G = 0 case of ``InvariantManifold`` (the balanced variety M_0), with its
    own fast frame path: outside the main case (square widths) G = 0 is not a
    regular level set and ker DG is larger than the tangent space (math.md §2.3),
    so the projection, Hessian and retraction use the balanced frames instead of
    the normal equations of M_G.

    M = {W : W_{p+1}^T W_{p+1} = W_p W_p^T, rank W_N...W_1 = min(d_0, d_N)},
    a Riemannian submanifold of the layer space with the Frobenius metric
    (math.md §2.2–2.6). Points are ``LayerTuple`` s; costs take
    ``cost(W1, ..., WN)`` (``point_layout = N``). At depth 1 a point is a single array.

    * projection: frame form with Jacobi tridiagonal solves, O(N d^3)
      (math.md §2.4; checked in math.md §10);
    * retraction: polar re-balancing of W + xi (``dlnmanifolds.core.balanced.
      _rebalance``), first order (``"polar"``) or with the tangential
      second-order correction of ``LayerSubmanifold.retraction``
      (``"second_order"``, default, twice the cost); both land exactly on M;
    * Hessian: Weingarten form (math.md §2.6; checked in math.md §10);
    * transport: projection onto the new tangent space.

    Parameters
    ----------
    widths : (d_0, ..., d_N); every inner width must be >= min(d_0, d_N).
    retraction : "second_order" or "polar".
    rng : Generator or seed used by ``random_point``/``random_tangent_vector``.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds import end_to_end, imbalance
    >>> from dlnmanifolds.pymanopt import BalancedManifold
    >>> M = BalancedManifold((3, 3, 3), rng=0)
    >>> M.dim  # d^2 + (N - 1) d (d - 1) / 2
    12
    >>> W = M.random_point()
    >>> v = M.projection(W, [np.ones((3, 3)), np.eye(3)])
    >>> bool(np.allclose(M.projection(W, v)[0], v[0]) and np.allclose(M.projection(W, v)[1], v[1]))
    True
    >>> bool(imbalance(M.retraction(W, 0.1 * v)) < 1e-12)  # the retraction stays balanced
    True
    """

    def __init__(
        self,
        widths: Sequence[int],
        retraction: str = "second_order",
        rng: np.random.Generator | int | None = None,
    ):
        widths, rank = full_rank_widths(widths)
        if retraction not in ("second_order", "polar"):
            raise ValueError(f"retraction must be 'second_order' or 'polar', got {retraction!r}")
        self._rank = rank
        zeros = [np.zeros((d, d)) for d in widths[1:-1]]
        self._setup(
            widths,
            zeros,
            rng,
            f"Balanced DLN manifold with widths {widths}",
            balanced_dimension(widths, rank),
        )
        self.retraction_order = 2 if retraction == "second_order" else 1
        self._base = None

    # -- structure -----------------------------------------------------------
    @property
    def rank(self) -> int:
        return self._rank

    def frames(self, point) -> BalancedFrames:
        """Frames of a point (cached for the most recent point)."""
        return self._cached(point, lambda layers: _balanced_frames(layers, self._rank))

    # -- membership ----------------------------------------------------------
    def check_point(self, point, atol: float = 1e-10):
        """Validate ``point``: widths, finiteness, balance (max |G_p| <= atol
        relative to max |W_p|^2) and full rank. Raises ValueError/TypeError."""
        layers = as_weights(self._layers(point), "point", self._widths)
        scale = max(1.0, max(float(np.max(np.abs(w))) for w in layers) ** 2)
        imbalance = _imbalance(layers)
        if imbalance > atol * scale:
            raise ValueError(
                f"point is not balanced: max |W_(p+1)^T W_(p+1) - W_p W_p^T| = "
                f"{imbalance:.3g} > {atol * scale:.3g}"
            )
        require_full_rank(_end_to_end(layers), "point", "a full-rank end-to-end matrix")
        return self._out(layers)

    # -- metric --------------------------------------------------------------
    def projection(self, point, vector):
        return self._out(tangent_projection(self.frames(point), self._layers(vector)))

    def horizontal_projection(self, point, vector):
        """P_H xi = Dphi^*(A^{-1} Dphi xi) (math.md §2.4)."""
        return self._out(horizontal_projection(self._layers(point), self._layers(vector)))

    def vertical_projection(self, point, vector):
        """P_V = P_T - P_H: the component along the group orbit (math.md §2.4)."""
        tangent = self.projection(point, vector)
        return tangent - self.horizontal_projection(point, tangent)

    def euclidean_to_riemannian_hessian(
        self, point, euclidean_gradient, euclidean_hessian, tangent_vector
    ):
        return self._out(
            riemannian_hessian(
                self._layers(point),
                self.frames(point),
                self._layers(euclidean_gradient),
                self._layers(euclidean_hessian),
                self._layers(tangent_vector),
            )
        )

    # -- maps ----------------------------------------------------------------
    #: Polar re-balancing (made second order by LayerSubmanifold), not M_G's Newton.
    retraction = LayerSubmanifold.retraction

    def _first_order_retraction(self, point, tangent_layers):
        return _rebalance([w + v for w, v in zip(self._layers(point), tangent_layers)])

    # -- sampling ------------------------------------------------------------
    def random_point(self):
        """A balanced point over X = U diag(s) V^T, s ~ U[0.5, 2], Haar frames and gauge."""
        m, n, r = self._widths[-1], self._widths[0], self._rank
        s = np.sort(self._rng.uniform(0.5, 2.0, r))[::-1]
        x = (haar_stiefel(m, r, self._rng) * s) @ haar_stiefel(n, r, self._rng).T
        return self._out(balanced_factors(x, self._depth, self._widths, self._rng))
