"""phi: (M, Frobenius) -> (GL(n), g^N) as a Geomstats ``FiberBundle`` (math.md §4.2, §6).

phi|_M is a Riemannian submersion (Menon & Yu; Menon 2024 Thm 10): fibers are the orbits
O_X = phi^{-1}(X) ∩ M of O(n)^{N-1} acting by W_p -> Q_p W_p Q_{p-1}^T (math.md §6),
vertical = orbit tangent, horizontal = range Dphi^*, horizontal lift Dphi^*(A^{-1} zeta).
Registered with ``register_quotient`` so that ``BalancedSpace.equip_with_quotient()`` builds
it; the quotient GL(n) with Geomstats' ``QuotientMetric`` then agrees with ``DLNMetric``.
"""

from __future__ import annotations

import geomstats.backend as gs
import numpy as np
from geomstats.geometry.fiber_bundle import FiberBundle
from geomstats.geometry.group_action import GroupAction
from geomstats.geometry.manifold import register_quotient

from dlnmanifolds.core._validate import check_depth, check_positive_int
from dlnmanifolds.core.balanced_tangent import horizontal_lift, horizontal_projection
from dlnmanifolds.core.dln_geodesic import (
    DEFAULT_MAX_ITER,
    DEFAULT_MAX_TIME,
    GEODESIC_RTOL,
    _Budget,
    _check_max_iter,
    canonical_lift_stacked,
    check_balanced_stack,
    dln_log,
    horizontal_geodesic_end,
)
from dlnmanifolds.core.network import _dphi, _end_to_end
from dlnmanifolds.geomstats._arrays import (
    as_points,
    broadcast,
    common_batch,
    require_invertible,
)
from dlnmanifolds.geomstats.balanced_space import BalancedMetric, BalancedSpace


def _layers(stack: np.ndarray) -> list[np.ndarray]:
    return [stack[..., p, :, :] for p in range(stack.shape[-3])]


class LayerRotationAction(GroupAction):
    """O(n)^{N-1} acting on stacked layers: (Q . W)_p = Q_p W_p Q_{p-1}^T, Q_0 = Q_N = I.

    It preserves M and phi, and is free in the main case (math.md §6). Group elements have
    shape (..., N-1, n, n).

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds import end_to_end
    >>> from dlnmanifolds.geomstats import BalancedSpace, LayerRotationAction
    >>> space = BalancedSpace(2, depth=3, rng=0)
    >>> W = space.random_point()
    >>> c, s = np.cos(0.3), np.sin(0.3)
    >>> Q = np.stack([np.array([[c, -s], [s, c]]), np.eye(2)])  # (N - 1, n, n)
    >>> moved = LayerRotationAction(2, 3)(Q, W)
    >>> bool(np.allclose(end_to_end(list(moved)), end_to_end(list(W)))), bool(space.belongs(moved))
    (True, True)
    """

    def __init__(self, n: int, depth: int):
        self.n = check_positive_int(n, "n")
        self.depth = check_depth(depth)

    @property
    def group_elem_shape(self) -> tuple[int, int, int]:
        return (self.depth - 1, self.n, self.n)

    def __call__(self, group_elem, point):
        q = as_points(group_elem, "group_elem", self.group_elem_shape)
        w = as_points(point, "point", (self.depth, self.n, self.n))
        batch = common_batch(3, group_elem=q, point=w)
        q, w = broadcast(q, batch, 3), broadcast(w, batch, 3)
        eye = np.broadcast_to(np.eye(self.n), batch + (1, self.n, self.n))
        left = np.concatenate([q, eye], axis=-3)  # Q_1..Q_N
        right = np.concatenate([eye, q], axis=-3)  # Q_0..Q_{N-1}
        return left @ w @ np.swapaxes(right, -1, -2)


class DLNBundle(FiberBundle):
    """The DLN fiber bundle over (GL(n), g^N) with total space ``BalancedSpace(n, depth)``.

    Parameters
    ----------
    total_space : BalancedSpace, equipped with ``BalancedMetric``.
    rtol : relative tolerance of the geodesic integrator used by ``align``.
    max_iter, max_time : caps of the g^N log and the horizontal geodesic used by ``align``
        (each; ``GeodesicError`` beyond).

    Example
    -------
    phi is a Riemannian submersion: horizontal vectors keep their length downstairs in g^N:

    >>> import numpy as np
    >>> from dlnmanifolds import dln_inner, end_to_end
    >>> from dlnmanifolds.geomstats import BalancedSpace
    >>> space = BalancedSpace(2, depth=3, rng=0)
    >>> _ = space.equip_with_quotient()
    >>> bundle = space.fiber_bundle  # a DLNBundle
    >>> W = space.random_point()
    >>> X = bundle.riemannian_submersion(W)
    >>> bool(np.allclose(X, end_to_end(list(W))))
    True
    >>> h = bundle.horizontal_projection(space.random_tangent_vec(W), W)
    >>> dX = bundle.tangent_riemannian_submersion(h, W)
    >>> bool(np.isclose(space.metric.squared_norm(h, W), dln_inner(X, dX, dX, 3)))
    True
    """

    def __init__(
        self,
        total_space,
        rtol: float = GEODESIC_RTOL,
        max_iter: int = DEFAULT_MAX_ITER,
        max_time: float = DEFAULT_MAX_TIME,
    ):
        if not isinstance(total_space, BalancedSpace):
            raise TypeError(
                f"total_space must be a BalancedSpace, got {type(total_space).__name__}"
            )
        super().__init__(total_space=total_space, aligner=None)
        self.rtol = float(rtol)
        self.max_iter = _check_max_iter(max_iter)
        self.max_time = _Budget(max_time, "DLNBundle").max_time
        self._n, self._depth = total_space.n, total_space.depth

    # -- validation -------------------------------------------------------------------

    def _stack(self, value, name):
        return as_points(value, name, (self._depth, self._n, self._n))

    def _fiber_point(self, value, name):
        point = self._stack(value, name)
        require_invertible(_end_to_end(_layers(point)), f"the end-to-end matrix of {name}")
        return point

    def _pair(self, vec, vec_name, point, point_name):
        vec = self._stack(vec, vec_name)
        point = self._fiber_point(point, point_name)
        batch = common_batch(3, **{vec_name: vec, point_name: point})
        return broadcast(vec, batch, 3), broadcast(point, batch, 3)

    # -- maps -------------------------------------------------------------------------

    def riemannian_submersion(self, point):
        """phi(W) = W_N ... W_1, shape (..., n, n)."""
        return _end_to_end(_layers(self._stack(point, "point")))

    def tangent_riemannian_submersion(self, tangent_vec, base_point):
        """Dphi(W)[xi] = sum_p W_{>p} xi_p W_{<p} (math.md §1), shape (..., n, n)."""
        xi, w = self._pair(tangent_vec, "tangent_vec", base_point, "base_point")
        return _dphi(_layers(w), _layers(xi))

    def lift(self, point):
        """Canonical balanced lift of X (..., n, n): W_1 = S^{1/N} V^T, W_N = U S^{1/N} (§2.2)."""
        x = as_points(point, "point", (self._n, self._n))
        require_invertible(x, "point")
        return canonical_lift_stacked(x, self._depth)

    def horizontal_lift(self, tangent_vec, base_point=None, fiber_point=None):
        """zeta^h = Dphi^*(A^{-1} zeta) at fiber_point (default: lift(base_point)) (§4.2)."""
        if fiber_point is None:
            if base_point is None:
                raise ValueError("horizontal_lift needs base_point or fiber_point")
            fiber_point = self.lift(base_point)
        zeta = as_points(tangent_vec, "tangent_vec", (self._n, self._n))
        w = self._fiber_point(fiber_point, "fiber_point")
        batch = common_batch(2, tangent_vec=zeta, fiber_point=w[..., 0, :, :])
        zeta, w = broadcast(zeta, batch, 2), broadcast(w, batch, 3)
        return np.stack(horizontal_lift(_layers(w), zeta, self._depth), axis=-3)

    def horizontal_projection(self, tangent_vec, base_point):
        """P_H xi = Dphi^*(A^{-1} Dphi xi) (math.md §2.4)."""
        xi, w = self._pair(tangent_vec, "tangent_vec", base_point, "base_point")
        return np.stack(horizontal_projection(_layers(w), _layers(xi)), axis=-3)

    def vertical_projection(self, tangent_vec, base_point):
        """P_V xi = P_T xi - P_H xi (math.md §2.4): the orbit-tangent part."""
        xi, w = self._pair(tangent_vec, "tangent_vec", base_point, "base_point")
        return self._total_space.to_tangent(xi, w) - self.horizontal_projection(xi, w)

    def is_horizontal(self, tangent_vec, base_point, atol: float = gs.atol):
        """xi == P_H xi within atol, over the (N, n, n) axes; shape [...]."""
        xi, w = self._pair(tangent_vec, "tangent_vec", base_point, "base_point")
        close = np.isclose(xi, self.horizontal_projection(xi, w), atol=atol)
        return np.all(close, axis=(-3, -2, -1))

    def is_vertical(self, tangent_vec, base_point, atol: float = gs.atol):
        """xi == P_V xi within atol, over the (N, n, n) axes; shape [...]."""
        xi, w = self._pair(tangent_vec, "tangent_vec", base_point, "base_point")
        close = np.isclose(xi, self.vertical_projection(xi, w), atol=atol)
        return np.all(close, axis=(-3, -2, -1))

    def align(self, point, base_point):
        """The point of the fiber of ``point`` joined to ``base_point`` by a horizontal geodesic.

        W' = Exp^M_{W0}((Log^g_{phi(W0)} phi(W))^h): the end of the horizontal geodesic over
        the g^N geodesic from phi(W0) to phi(W). It lies on the fiber phi^{-1}(phi(W)) ∩ M
        (one O(n)^{N-1} orbit, math.md §6) and Log^M_{W0}(W') is horizontal, so it is the
        distance-minimising representative whenever the g^N geodesic is minimising.
        """
        w1 = self._fiber_point(point, "point")
        w0 = check_balanced_stack(self._fiber_point(base_point, "base_point"), "base_point")
        batch = common_batch(3, point=w1, base_point=w0)
        w1, w0 = broadcast(w1, batch, 3), broadcast(w0, batch, 3)
        v = dln_log(
            _end_to_end(_layers(w1)),
            _end_to_end(_layers(w0)),
            self._depth,
            max_iter=self.max_iter,
            rtol=self.rtol,
            max_time=self.max_time,
        )
        return horizontal_geodesic_end(w0, v, self.rtol, self.max_time)


register_quotient(
    Space=BalancedSpace,
    Metric=BalancedMetric,
    GroupAction=LayerRotationAction,
    FiberBundle=DLNBundle,
)
