"""phi: (M, Frobenius) -> (M_r, g^N) as a Geomstats ``FiberBundle`` (math.md §4.2, §6).

phi|_M is a Riemannian submersion onto the full-rank m x n matrices with g^N (Menon & Yu;
Menon 2024 Thm 10; math.md §4.2, verified there for square and general widths); fibers are
the orbits O_X = phi^{-1}(X) ∩ M of O(d_1) x ... x O(d_{N-1}) acting by
W_p -> Q_p W_p Q_{p-1}^T (math.md §6), vertical = orbit tangent, horizontal = range Dphi^*,
horizontal lift Dphi^*(A^{-1} zeta). Registered with ``register_quotient`` so that
``BalancedSpace.equip_with_quotient()`` builds it; the base (GL(n), or FullRankMatrices(m, n))
with Geomstats' ``QuotientMetric`` then agrees with ``DLNMetric``.

Every map runs on the points' backend (numpy arrays or torch tensors, no copy) except
``align``, whose g^N log and horizontal geodesic are numpy/scipy solvers (square widths only;
``_arrays.via_numpy`` on tensors).
"""

from __future__ import annotations

from collections.abc import Sequence

import geomstats.backend as gs
from geomstats.geometry.fiber_bundle import FiberBundle
from geomstats.geometry.group_action import GroupAction
from geomstats.geometry.manifold import register_quotient

from dlnmanifolds.core import _backend
from dlnmanifolds.core.balanced_tangent import horizontal_lift, horizontal_projection
from dlnmanifolds.core.dln_geodesic import (
    DEFAULT_MAX_ITER,
    DEFAULT_MAX_TIME,
    GEODESIC_RTOL,
    _Budget,
    _check_max_iter,
    canonical_lift_layers,
    check_balanced_stack,
    dln_log,
    horizontal_geodesic_end,
)
from dlnmanifolds.core.network import _dphi, _end_to_end
from dlnmanifolds.geomstats._arrays import (
    as_points,
    block_packing,
    broadcast,
    common_batch,
    layer_packing,
    require_full_rank,
    via_numpy,
)
from dlnmanifolds.geomstats.balanced_space import (
    BalancedMetric,
    BalancedSpace,
    _resolve_widths,
)


class LayerRotationAction(GroupAction):
    """O(d_1) x ... x O(d_{N-1}) acting on networks: (Q . W)_p = Q_p W_p Q_{p-1}^T,
    Q_0 = I, Q_N = I.

    It preserves M and phi, and is free in the main case (math.md §6). Group elements have
    shape (..., N-1, n, n) (square) or are packed flat (..., sum_{p=1}^{N-1} d_p^2) like
    ``BalancedSpace.submersion`` (general ``widths``).

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

    def __init__(
        self, n: int | None = None, depth: int | None = None, *, widths: Sequence[int] | None = None
    ):
        self.widths = _resolve_widths(n, depth, widths)
        self.depth = len(self.widths) - 1
        self.n = self.widths[0]
        self._layers = layer_packing(self.widths)
        self._blocks = block_packing(self.widths)

    @property
    def group_elem_shape(self) -> tuple[int, ...]:
        return self._blocks.shape

    def __call__(self, group_elem, point):
        q = as_points(group_elem, "group_elem", self._blocks.shape)
        w = as_points(point, "point", self._layers.shape)
        k = self._layers.ndim
        batch = common_batch(k, group_elem=q, point=w)
        qs = self._blocks.unpack(broadcast(q, batch, k))
        ws = self._layers.unpack(broadcast(w, batch, k))
        out = []
        for p, layer in enumerate(ws):
            if p < self.depth - 1:
                layer = qs[p] @ layer
            if p > 0:
                layer = layer @ qs[p - 1].swapaxes(-1, -2)
            out.append(layer)
        return self._layers.pack(out)


class DLNBundle(FiberBundle):
    """The DLN fiber bundle over (M_r, g^N) with total space a ``BalancedSpace``.

    The base is GL(n) (square widths) or the full-rank d_N x d_0 matrices (general widths:
    every inner width >= r = min(d_0, d_N), checked by ``BalancedSpace``).

    Parameters
    ----------
    total_space : BalancedSpace, equipped with ``BalancedMetric``.
    rtol : relative tolerance of the geodesic integrator used by ``align``.
    max_iter, max_time : caps of the g^N log and the horizontal geodesic used by ``align``
        (each; ``GeodesicError`` beyond).

    ``align`` needs square widths (its g^N log and horizontal geodesic are the GL(n) solvers
    of core.dln_geodesic) and raises ``ValueError`` otherwise; every other map works for
    every widths.

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
        self._widths, self._depth = total_space.widths, total_space.depth
        self._packing = total_space.packing
        self._base_shape = (total_space.m, total_space.n)

    # -- validation -------------------------------------------------------------------

    def _stack(self, value, name):
        return as_points(value, name, self._packing.shape)

    def _fiber_point(self, value, name):
        point = self._stack(value, name)
        require_full_rank(
            _end_to_end(self._packing.unpack(point)), f"the end-to-end matrix of {name}"
        )
        return point

    def _pair(self, vec, vec_name, point, point_name):
        vec = self._stack(vec, vec_name)
        point = self._fiber_point(point, point_name)
        k = self._packing.ndim
        batch = common_batch(k, **{vec_name: vec, point_name: point})
        return broadcast(vec, batch, k), broadcast(point, batch, k)

    def _close(self, a, b, atol):
        xp = _backend.namespace(a, b)
        k = self._packing.ndim
        return xp.all(xp.isclose(a, b, atol=atol), axis=tuple(range(-k, 0)))

    # -- maps -------------------------------------------------------------------------

    def riemannian_submersion(self, point):
        """phi(W) = W_N ... W_1, shape (..., d_N, d_0)."""
        return _end_to_end(self._packing.unpack(self._stack(point, "point")))

    def tangent_riemannian_submersion(self, tangent_vec, base_point):
        """Dphi(W)[xi] = sum_p W_{>p} xi_p W_{<p} (math.md §1), shape (..., d_N, d_0)."""
        xi, w = self._pair(tangent_vec, "tangent_vec", base_point, "base_point")
        return _dphi(self._packing.unpack(w), self._packing.unpack(xi))

    def lift(self, point):
        """Canonical balanced lift of X (..., d_N, d_0): W_1 = E_1 Lambda V^T,
        W_p = E_p Lambda E_{p-1}^T, W_N = U Lambda E_{N-1}^T (§2.2; ``canonical_lift_layers``).
        """
        x = as_points(point, "point", self._base_shape)
        require_full_rank(x, "point")
        return self._packing.pack(canonical_lift_layers(x, self._widths))

    def horizontal_lift(self, tangent_vec, base_point=None, fiber_point=None):
        """zeta^h = Dphi^*(A^{-1} zeta) at fiber_point (default: lift(base_point)) (§4.2)."""
        if fiber_point is None:
            if base_point is None:
                raise ValueError("horizontal_lift needs base_point or fiber_point")
            fiber_point = self.lift(base_point)
        zeta = as_points(tangent_vec, "tangent_vec", self._base_shape)
        w = self._fiber_point(fiber_point, "fiber_point")
        k = self._packing.ndim
        w_batch = tuple(w.shape[: w.ndim - k])
        batch = common_batch(2, tangent_vec=zeta, fiber_point=w.reshape(w_batch + (1, -1)))
        zeta, w = broadcast(zeta, batch, 2), broadcast(w, batch, k)
        layers = self._packing.unpack(w)
        return self._packing.pack(horizontal_lift(layers, zeta, self._depth))

    def horizontal_projection(self, tangent_vec, base_point):
        """P_H xi = Dphi^*(A^{-1} Dphi xi) (math.md §2.4)."""
        xi, w = self._pair(tangent_vec, "tangent_vec", base_point, "base_point")
        unpack = self._packing.unpack
        return self._packing.pack(horizontal_projection(unpack(w), unpack(xi)))

    def vertical_projection(self, tangent_vec, base_point):
        """P_V xi = P_T xi - P_H xi (math.md §2.4): the orbit-tangent part."""
        xi, w = self._pair(tangent_vec, "tangent_vec", base_point, "base_point")
        return self._total_space.to_tangent(xi, w) - self.horizontal_projection(xi, w)

    def is_horizontal(self, tangent_vec, base_point, atol: float = gs.atol):
        """xi == P_H xi within atol, over the point axes; shape [...]."""
        xi, w = self._pair(tangent_vec, "tangent_vec", base_point, "base_point")
        return self._close(xi, self.horizontal_projection(xi, w), atol)

    def is_vertical(self, tangent_vec, base_point, atol: float = gs.atol):
        """xi == P_V xi within atol, over the point axes; shape [...]."""
        xi, w = self._pair(tangent_vec, "tangent_vec", base_point, "base_point")
        return self._close(xi, self.vertical_projection(xi, w), atol)

    def align(self, point, base_point):
        """The point of the fiber of ``point`` joined to ``base_point`` by a horizontal geodesic.

        W' = Exp^M_{W0}((Log^g_{phi(W0)} phi(W))^h): the end of the horizontal geodesic over
        the g^N geodesic from phi(W0) to phi(W). It lies on the fiber phi^{-1}(phi(W)) ∩ M
        (one O(n)^{N-1} orbit, math.md §6) and Log^M_{W0}(W') is horizontal, so it is the
        distance-minimising representative whenever the g^N geodesic is minimising.

        Square widths only (``ValueError`` otherwise). On tensors it runs in numpy on CPU
        float64 copies and returns a tensor of the input's dtype and device
        (``_arrays.via_numpy``; the solvers are scipy's).
        """
        if not self._total_space.square:
            raise ValueError(
                f"DLNBundle.align needs equal widths (square layers); the total space has "
                f"widths {self._widths}. Its g^N log and horizontal geodesic are the GL(n) "
                "solvers of core.dln_geodesic"
            )
        w1 = self._fiber_point(point, "point")
        w0 = self._fiber_point(base_point, "base_point")
        batch = common_batch(3, point=w1, base_point=w0)

        def solve(w1, w0):
            w0 = check_balanced_stack(w0, "base_point")
            w1, w0 = broadcast(w1, batch, 3), broadcast(w0, batch, 3)
            v = dln_log(
                _end_to_end(self._packing.unpack(w1)),
                _end_to_end(self._packing.unpack(w0)),
                self._depth,
                max_iter=self.max_iter,
                rtol=self.rtol,
                max_time=self.max_time,
            )
            return horizontal_geodesic_end(w0, v, self.rtol, self.max_time)

        return via_numpy(solve, w1, w0)


register_quotient(
    Space=BalancedSpace,
    Metric=BalancedMetric,
    GroupAction=LayerRotationAction,
    FiberBundle=DLNBundle,
)
