"""The balanced manifold M as a Geomstats ``LevelSet`` of networks (math.md §2).

M = {W = (W_1, ..., W_N) : G_p(W) = W_{p+1}^T W_{p+1} - W_p W_p^T = 0, rank phi(W) = r},
W_p in R^{d_p x d_{p-1}}, r = min(d_0, d_N) (full-rank end-to-end matrices; the leaf M_r of
math.md §2.2), embedded in the layer space with the Frobenius metric.

Points. Square case d_p = n (``BalancedSpace(n, depth)``): stacks of shape (..., N, n, n).
General widths (``BalancedSpace(widths=(d_0, ..., d_N))``, not all equal): the packed flat
vector of shape (..., sum_p d_p d_{p-1}), the layers' row-major entries, W_1 first (the
layout of ``dlnmanifolds.geoopt``'s ``LayerPacking``; ``space.unpack`` / ``space.pack``
convert). dim M_r = r + sum_p (d_p r - r(r+1)/2) (math.md §2.3), which is
n^2 + (N-1) n(n-1)/2 in the square case.

Backends: numpy arrays on Geomstats' numpy/autograd backends, torch tensors (CPU or CUDA,
float32/float64) on ``GEOMSTATS_BACKEND=pytorch``; every method except the geodesics runs on
the tensors themselves (``_arrays``). The induced metric is ``BalancedMetric``: exp by the
Weingarten geodesic ODE, log by shooting (core.dln_geodesic; square widths only, through
``_arrays.via_numpy`` on tensors).
"""

from __future__ import annotations

from collections.abc import Sequence

import geomstats.backend as gs
import numpy as np
from geomstats.geometry.base import LevelSet, VectorSpace
from geomstats.geometry.riemannian_metric import RiemannianMetric
from scipy.linalg import expm

from dlnmanifolds.core import _backend
from dlnmanifolds.core._validate import as_rng, check_depth, check_positive_int, check_widths
from dlnmanifolds.core.balanced import (
    _balanced_frames,
    _rebalance,
    balanced_dimension,
    balanced_factors,
    full_rank_widths,
    haar_stiefel,
)
from dlnmanifolds.core.balanced_tangent import normal_generator_adjoint, tangent_projection
from dlnmanifolds.core.dln_geodesic import (
    DEFAULT_MAX_ITER,
    DEFAULT_MAX_TIME,
    GEODESIC_RTOL,
    _Budget,
    _check_max_iter,
    balanced_exp_stacked,
    balanced_log_stacked,
    check_balanced_stack,
)
from dlnmanifolds.core.network import _end_to_end, _invariants
from dlnmanifolds.geomstats._arrays import (
    TORCH_BACKEND,
    as_backend_array,
    as_points,
    block_packing,
    broadcast,
    common_batch,
    from_numpy,
    layer_packing,
    require_full_rank,
    via_numpy,
)


def _resolve_widths(n, depth, widths) -> tuple[int, ...]:
    """(d_0, ..., d_N) from ``n, depth`` (square) or ``widths`` (exactly one of the two)."""
    if widths is None:
        if n is None or depth is None:
            raise TypeError("give n and depth (square layers) or widths=(d_0, ..., d_N)")
        n = check_positive_int(n, "n")
        return (n,) * (check_depth(depth) + 1)
    if n is not None or depth is not None:
        raise ValueError(
            f"give either n and depth or widths, not both (got n={n!r}, depth={depth!r}, "
            f"widths={widths!r})"
        )
    return check_widths(widths)


class LayerStacks(VectorSpace):
    """The layer space R^{d_1 x d_0} x ... x R^{d_N x d_{N-1}} (the embedding space of M).

    Square layers (``LayerStacks(n, depth)``): points are stacks (..., N, n, n); general
    ``widths``: packed flat vectors (..., sum_p d_p d_{p-1}) (module docstring).

    Parameters
    ----------
    n : int, layer size; depth : int, N >= 1 (square layers), or
    widths : (d_0, ..., d_N) (keyword).
    rng : Generator or int seed for ``random_point``.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.geomstats import LayerStacks
    >>> space = LayerStacks(2, depth=3, rng=0)
    >>> space.dim, space.random_point().shape
    (12, (3, 2, 2))
    >>> LayerStacks(widths=(3, 2, 2), rng=0).shape  # packed: 2*3 + 2*2 entries
    (10,)
    """

    def __init__(
        self,
        n: int | None = None,
        depth: int | None = None,
        rng=None,
        equip: bool = True,
        *,
        widths: Sequence[int] | None = None,
    ):
        self.widths = _resolve_widths(n, depth, widths)
        self.depth = len(self.widths) - 1
        self.n = self.widths[0]
        self.packing = layer_packing(self.widths)
        self._rng = as_rng(rng)
        super().__init__(shape=self.packing.shape, equip=equip)

    @staticmethod
    def default_metric():
        return StackedFrobeniusMetric

    def _create_basis(self):
        return gs.reshape(gs.eye(self.dim), (self.dim,) + self.shape)

    def random_point(self, n_samples: int = 1, bound: float = 1.0):
        """Uniform samples in the box [-bound, bound]^dim, shape (n_samples, *shape)."""
        size = self.shape if n_samples == 1 else (n_samples,) + self.shape
        return from_numpy(bound * self._rng.uniform(-1.0, 1.0, size=size))


class _FrobeniusInnerProduct(RiemannianMetric):
    """Frobenius inner product sum_p tr(A_p^T B_p) of networks (math.md §1)."""

    def inner_product(self, tangent_vec_a, tangent_vec_b, base_point=None):
        """sum_p tr(A_p^T B_p); shape [...]."""
        shape = self._space.shape
        k = len(shape)
        a = as_points(tangent_vec_a, "tangent_vec_a", shape)
        b = as_points(tangent_vec_b, "tangent_vec_b", shape)
        arrays = {"tangent_vec_a": a, "tangent_vec_b": b}
        if base_point is not None:
            arrays["base_point"] = as_points(base_point, "base_point", shape)
        batch = common_batch(k, **arrays)
        xp = _backend.namespace(a)
        product = broadcast(a, batch, k) * broadcast(b, batch, k)
        return xp.sum(product, axis=tuple(range(-k, 0)))

    def _identity_matrix(self, base_point):
        size = int(np.prod(self._space.shape))
        if base_point is None:
            return gs.eye(size)
        base_point = as_points(base_point, "base_point", self._space.shape)
        eye = _backend.eye(base_point, size)
        batch = tuple(base_point.shape[: base_point.ndim - len(self._space.shape)])
        return broadcast(eye, batch, 2)


class StackedFrobeniusMetric(_FrobeniusInnerProduct):
    """The flat Frobenius metric of ``LayerStacks``: straight-line exp and log.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.geomstats import LayerStacks
    >>> metric = LayerStacks(2, depth=3, rng=0).metric  # a StackedFrobeniusMetric
    >>> a, b = np.ones((3, 2, 2)), np.zeros((3, 2, 2))
    >>> float(metric.inner_product(a, a)), bool(np.allclose(metric.exp(metric.log(a, b), b), a))
    (12.0, True)
    """

    def metric_matrix(self, base_point=None):
        """Identity (dim x dim) in the flattened standard basis."""
        return self._identity_matrix(base_point)

    def exp(self, tangent_vec, base_point):
        """base_point + tangent_vec."""
        return self._add(base_point, tangent_vec, 1.0)

    def log(self, point, base_point):
        """point - base_point."""
        return self._add(point, base_point, -1.0)

    def _add(self, a, b, sign):
        shape = self._space.shape
        k = len(shape)
        a = as_points(a, "point", shape)
        b = as_points(b, "base_point", shape)
        batch = common_batch(k, point=a, base_point=b)
        return broadcast(a, batch, k) + sign * broadcast(b, batch, k)


class BalancedSpace(LevelSet):
    """Balanced networks (W_1, ..., W_N) with full-rank end-to-end matrix phi(W).

    A Geomstats ``LevelSet`` of ``LayerStacks`` defined by the invariants
    G_p = W_{p+1}^T W_{p+1} - W_p W_p^T = 0 (math.md §2.2; Arora, Cohen & Hazan 2018), with
    rank phi(W) = r = min(d_0, d_N). Default metric: ``BalancedMetric`` (induced Frobenius).
    Call ``equip_with_quotient()`` to get the fiber bundle ``DLNBundle`` and the base
    (GL(n), or the full-rank m x n matrices) with the quotient metric (= g^N).

    Outside the square case G = 0 is not a regular level set (ker DG is larger than T_W M,
    math.md §2.3), so ``is_tangent`` there tests P_T xi = xi instead of DG(W)[xi] = 0, and
    ``BalancedMetric``'s exp and log (square only) raise ``ValueError``.

    Parameters
    ----------
    n : int, layer size, and depth : int, N >= 1: the square case, points of shape
        (..., depth, n, n).
    widths : (d_0, ..., d_N) (keyword, instead of n and depth): every inner width >= r.
        Equal widths give the square case; otherwise points are packed flat vectors of
        shape (..., sum_p d_p d_{p-1}) (module docstring; ``unpack``/``pack``).
    rng : Generator or int seed used by ``random_point`` and ``random_tangent_vec``.
    equip : bool, equip with ``BalancedMetric`` and the ``LayerRotationAction``.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds import imbalance
    >>> from dlnmanifolds.geomstats import BalancedSpace
    >>> space = BalancedSpace(2, depth=3, rng=0)
    >>> space.dim  # n^2 + (N - 1) n (n - 1) / 2
    6
    >>> W = space.random_point()  # shape (N, n, n)
    >>> W.shape, bool(space.belongs(W)), bool(imbalance(list(W)) < 1e-12)
    ((3, 2, 2), True, True)
    >>> wide = BalancedSpace(widths=(3, 4, 2), rng=0)  # W_1: 4 x 3, W_2: 2 x 4
    >>> V = wide.random_point()
    >>> V.shape, wide.dim, [w.shape for w in wide.unpack(V)], bool(wide.belongs(V))
    ((20,), 11, [(4, 3), (2, 4)], True)
    """

    def __init__(
        self,
        n: int | None = None,
        depth: int | None = None,
        rng=None,
        equip: bool = True,
        *,
        widths: Sequence[int] | None = None,
    ):
        self.widths = _resolve_widths(n, depth, widths)
        self.rank = full_rank_widths(self.widths)[1]
        self.depth = len(self.widths) - 1
        self.n = self.widths[0]
        self.m = self.widths[-1]
        self.square = len(set(self.widths)) == 1
        self.packing = layer_packing(self.widths)
        self.blocks = block_packing(self.widths)
        self._rng = as_rng(rng)
        super().__init__(
            dim=balanced_dimension(self.widths, self.rank),
            shape=self.packing.shape,
            intrinsic=False,
            equip=equip,
        )
        if equip:
            from dlnmanifolds.geomstats.bundle import LayerRotationAction

            self.equip_with_group_action(LayerRotationAction(widths=self.widths))

    def new(self, equip: bool = True) -> BalancedSpace:
        """A space with the same parameters (and random generator)."""
        return BalancedSpace(widths=self.widths, rng=self._rng, equip=equip)

    @staticmethod
    def default_metric():
        return BalancedMetric

    def _define_embedding_space(self):
        return LayerStacks(widths=self.widths, rng=self._rng)

    def equip_with_quotient(self):
        """Equip with ``DLNBundle``; return the base equipped with Geomstats' ``QuotientMetric``.

        The base is ``GeneralLinear(n)`` for d_0 = d_N = n and ``FullRankMatrices(d_N, d_0)``
        otherwise; the quotient metric agrees with ``DLNMetric`` (phi|_M is a Riemannian
        submersion, math.md §4.2).
        """
        from geomstats.geometry.full_rank_matrices import FullRankMatrices
        from geomstats.geometry.general_linear import GeneralLinear
        from geomstats.geometry.quotient_metric import QuotientMetric

        super().equip_with_quotient()
        if self.m == self.n:
            self.quotient = GeneralLinear(self.n, equip=False)
        else:
            self.quotient = FullRankMatrices(self.m, self.n, equip=False)
        self.quotient.equip_with_metric(QuotientMetric, total_space=self)
        return self.quotient

    # -- layout -----------------------------------------------------------------------

    def unpack(self, point) -> list:
        """The layers W_p (..., d_p, d_{p-1}) of a point (views, numpy or torch)."""
        return self.packing.unpack(self._points(point, "point"))

    def pack(self, layers: Sequence):
        """The point (..., *shape) of layers W_p (..., d_p, d_{p-1})."""
        if len(layers) != self.depth:
            raise ValueError(f"layers: expected {self.depth} layers, got {len(layers)}")
        for p, (w, shape) in enumerate(zip(layers, self.packing.shapes)):
            if tuple(w.shape[-2:]) != shape:
                raise ValueError(
                    f"layers[{p}] must have shape {shape} for widths {self.widths}, got "
                    f"{tuple(w.shape)}"
                )
        return self.packing.pack(list(layers))

    # -- validation -------------------------------------------------------------------

    def _points(self, value, name):
        return as_points(value, name, self.shape)

    def _on_manifold(self, value, name):
        """Validated points whose end-to-end matrices have full rank r."""
        point = self._points(value, name)
        require_full_rank(
            _end_to_end(self.packing.unpack(point)), f"the end-to-end matrix of {name}"
        )
        return point

    def _batch_of(self, point) -> tuple[int, ...]:
        return tuple(point.shape[: point.ndim - self.packing.ndim])

    # -- level set --------------------------------------------------------------------

    def submersion(self, point):
        """G(W) = (W_{p+1}^T W_{p+1} - W_p W_p^T)_{p=1..N-1}: shape (..., N-1, n, n) (square)
        or packed (..., sum_{p=1}^{N-1} d_p^2)."""
        point = self._points(point, "point")
        g = _invariants(self.packing.unpack(point))
        return self.blocks.pack(g, like=point, batch=self._batch_of(point))

    def tangent_submersion(self, vector, point):
        """DG(W)[xi] = -2 C_W^*(xi), C_W^*(xi)_p = sym(xi_p W_p^T - W_{p+1}^T xi_{p+1}).

        (math.md §2.4; checked in math.md §10); the layout of ``submersion``.
        """
        vector = self._points(vector, "vector")
        point = self._points(point, "point")
        k = self.packing.ndim
        batch = common_batch(k, vector=vector, point=point)
        xi, w = broadcast(vector, batch, k), broadcast(point, batch, k)
        terms = normal_generator_adjoint(self.packing.unpack(w), self.packing.unpack(xi))
        return self.blocks.pack([-2.0 * t for t in terms], like=w, batch=batch)

    def belongs(self, point, atol: float = gs.atol):
        """Shape ``self.shape``, G(W) = 0 within atol and phi(W) of full rank r; shape [...].

        numpy backend: integer points are cast to float, complex ones do not belong. pytorch
        backend: ``point`` must be a float32/float64 tensor (TypeError otherwise).
        """
        if TORCH_BACKEND:
            point = as_backend_array(point, "point")
        else:
            point = np.asarray(point)
            if not np.issubdtype(point.dtype, np.floating) and not np.issubdtype(
                point.dtype, np.integer
            ):  # complex (or object) points are not real networks
                return np.zeros(point.shape[: max(point.ndim - len(self.shape), 0)], dtype=bool)
            point = point.astype(float)
        k = len(self.shape)
        if point.ndim < k or tuple(point.shape[point.ndim - k :]) != self.shape:
            batch = tuple(point.shape[: max(point.ndim - k, 0)])
            if TORCH_BACKEND:
                return _backend.zeros(point, batch) > 0
            return np.zeros(batch, dtype=bool)
        xp = _backend.namespace(point)
        # Non-finite entries do not belong; they are zeroed before the SVD (LAPACK may not
        # return on NaN or inf).
        finite = xp.all(xp.isfinite(point), axis=tuple(range(-k, 0)))
        point = xp.where(xp.isfinite(point), point, xp.zeros_like(point))
        balanced = self._all_small(self.submersion(point), atol, self.blocks.ndim)
        s = _backend.svdvals(_end_to_end(self.packing.unpack(point)))
        full_rank = s[..., -1] > max(atol, 1e-13) * xp.clip(s[..., 0], 1e-300, None)
        return xp.logical_and(xp.logical_and(finite, balanced), full_rank)

    @staticmethod
    def _all_small(values, atol, point_ndim):
        """|values| <= atol over the trailing ``point_ndim`` axes (Geomstats' isclose(v, 0),
        written so that float32 tensors are compared in float32)."""
        xp = _backend.namespace(values)
        return xp.all(xp.abs(values) <= atol, axis=tuple(range(-point_ndim, 0)))

    def is_tangent(self, vector, base_point, atol: float = gs.atol):
        """xi in T_W M: DG(W)[xi] = 0 (square case, a regular level set) or P_T xi = xi
        within atol (general widths, where ker DG is larger, math.md §2.3); shape [...]."""
        vector = self._points(vector, "vector")
        if self.square:
            return self._all_small(
                self.tangent_submersion(vector, base_point), atol, self.blocks.ndim
            )
        projected = self.to_tangent(vector, base_point)
        xp = _backend.namespace(vector)
        close = xp.isclose(broadcast(vector, self._batch_of(projected), 1), projected, atol=atol)
        return xp.all(close, axis=-1)

    def to_tangent(self, vector, base_point):
        """Orthogonal projection onto T_W M, frame form with Jacobi solves (math.md §2.4)."""
        vector = self._points(vector, "vector")
        base_point = self._on_manifold(base_point, "base_point")
        k = self.packing.ndim
        batch = common_batch(k, vector=vector, base_point=base_point)
        packing = self.packing
        # One batched call (the core's frames and pair sweeps take a batch of networks).
        layers = packing.unpack(broadcast(base_point, batch, k))
        frames = _balanced_frames(layers, rank=self.rank)
        projected = tangent_projection(frames, packing.unpack(broadcast(vector, batch, k)))
        return packing.pack(projected)

    def projection(self, point):
        """A point of M with the same end-to-end matrix: W_p = R_p P R_{p-1}^T (polar).

        P = (X^T X)^{1/(2N)}, R_p = polar(W_p ... W_1) (math.md §2.2, SVD-free form; the
        identity on M). ``point`` must have an end-to-end matrix of full rank r.
        """
        point = self._on_manifold(point, "point")
        return self.packing.pack(_rebalance(self.packing.unpack(point)))

    def random_point(self, n_samples: int = 1, bound: float = 1.0):
        """Balanced networks over X, with X = expm(B), B_ij ~ N(0, (bound/4)^2) (square) or
        X = U diag(exp(b)) V^T, U, V Haar Stiefel, b_i ~ N(0, (bound/4)^2) (m != n); so X has
        full rank and a moderate condition number. The inner frames Q_1..Q_{N-1} are Haar
        (``balanced_factors`` with ``rng``). Shape (n_samples, *shape) or ``shape``.
        """
        n_samples = check_positive_int(n_samples, "n_samples")
        points = []
        for _ in range(n_samples):
            if self.m == self.n:
                x = expm(0.25 * bound * self._rng.standard_normal((self.n, self.n)))
            else:
                r = self.rank
                u = haar_stiefel(self.m, r, self._rng)
                v = haar_stiefel(self.n, r, self._rng)
                x = (u * np.exp(0.25 * bound * self._rng.standard_normal(r))) @ v.T
            layers = balanced_factors(x, self.depth, widths=self.widths, rng=self._rng)
            points.append(self.packing.pack(list(layers)))
        return from_numpy(points[0] if n_samples == 1 else np.stack(points))

    def random_tangent_vec(self, base_point, n_samples: int = 1):
        """Projection of a standard Gaussian ambient vector onto T_W M (uses ``rng``)."""
        base_point = self._on_manifold(base_point, "base_point")
        batch = self._batch_of(base_point)
        if n_samples > 1:
            if batch and batch != (n_samples,):
                raise ValueError(f"n_samples = {n_samples} does not match the {batch} base points")
            batch = (n_samples,)
        vector = from_numpy(self._rng.standard_normal(batch + self.shape), base_point)
        return self.to_tangent(vector, base_point)


class BalancedMetric(_FrobeniusInnerProduct):
    """The metric induced on M by the Frobenius metric of the layers (math.md §2).

    exp: the geodesic ODE Wddot = C_W(S), C_W^*C_W(S) = G(Wdot) (normal acceleration),
    integrated by DOP853 at relative tolerance ``rtol``; log: Newton shooting on exp in an
    orthonormal basis of T_W M, to ``log_tol``, with continuation (core.dln_geodesic). Both
    check the points first (on M, same component) and stop after ``max_iter`` Newton
    iterations or ``max_time`` seconds with a ``GeodesicError``. ``metric_matrix`` is the
    identity of the embedding space (the metric is the restricted Frobenius one).

    exp and log exist for square widths only (the Weingarten field inverts the layers):
    other widths raise ``ValueError``. On the pytorch backend they run in numpy on CPU
    float64 copies (``_arrays.via_numpy``) and return tensors of the input's dtype and device
    (no autograd through them); the inner product and metric matrix run on the tensors.

    Example
    -------
    Geodesics of the induced metric stay on M, and log inverts exp:

    >>> import numpy as np
    >>> from dlnmanifolds.geomstats import BalancedSpace
    >>> space = BalancedSpace(2, depth=2, rng=0)
    >>> W = space.random_point()
    >>> v = 0.1 * space.random_tangent_vec(W)
    >>> W1 = space.metric.exp(v, W)
    >>> bool(space.belongs(W1)), bool(np.allclose(space.metric.log(W1, W), v, atol=1e-8))
    (True, True)
    """

    def __init__(
        self,
        space,
        rtol: float = GEODESIC_RTOL,
        log_tol: float = 1e-11,
        max_iter: int = DEFAULT_MAX_ITER,
        max_time: float = DEFAULT_MAX_TIME,
    ):
        super().__init__(space=space)
        self.rtol = float(rtol)
        self.log_tol = float(log_tol)
        self.max_iter = _check_max_iter(max_iter)
        self.max_time = _Budget(max_time, "BalancedMetric").max_time

    def metric_matrix(self, base_point=None):
        """Identity (dim x dim) in the flattened standard basis of the embedding space."""
        return self._identity_matrix(base_point)

    def inner_coproduct(self, cotangent_vec_a, cotangent_vec_b, base_point=None):
        """sum_p tr(a_p^T b_p): the cometric matrix is the identity too; shape [...]."""
        return self.inner_product(cotangent_vec_a, cotangent_vec_b, base_point)

    def _require_square(self, what: str) -> None:
        if not self._space.square:
            raise ValueError(
                f"BalancedMetric.{what} needs equal widths (square layers, "
                f"BalancedSpace(n, depth)); the space has widths {self._space.widths}. The "
                "geodesic solvers of core.dln_geodesic invert the layers; the inner product, "
                "projections and the bundle maps work for every widths"
            )

    def exp(self, tangent_vec, base_point):
        """Exp^M_W(xi); shapes (..., N, n, n) (square widths only)."""
        self._require_square("exp")
        space = self._space
        xi = space._points(tangent_vec, "tangent_vec")
        w = space._on_manifold(base_point, "base_point")
        batch = common_batch(3, tangent_vec=xi, base_point=w)

        def solve(w, xi):
            w = check_balanced_stack(w, "base_point")
            return balanced_exp_stacked(
                broadcast(w, batch, 3), broadcast(xi, batch, 3), self.rtol, self.max_time
            )

        return via_numpy(solve, w, xi)

    def log(self, point, base_point):
        """Log^M_W(point) by shooting; shapes (..., N, n, n) (square widths only)."""
        self._require_square("log")
        space = self._space
        w1 = space._on_manifold(point, "point")
        w0 = space._on_manifold(base_point, "base_point")
        batch = common_batch(3, point=w1, base_point=w0)

        def solve(w1, w0):
            return balanced_log_stacked(
                broadcast(w1, batch, 3),
                broadcast(w0, batch, 3),
                tol=self.log_tol,
                max_iter=self.max_iter,
                rtol=self.rtol,
                max_time=self.max_time,
            )

        return via_numpy(solve, w1, w0)
