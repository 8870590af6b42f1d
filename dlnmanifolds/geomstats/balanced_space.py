"""The balanced manifold M as a Geomstats ``LevelSet`` of stacked layers (math.md §2).

M = {W = (W_1, ..., W_N) : G_p(W) = W_{p+1}^T W_{p+1} - W_p W_p^T = 0, phi(W) invertible},
square case d_p = n, embedded in the stacks R^{N x n x n} with the Frobenius metric; points have
shape (..., N, n, n). dim M = n^2 + (N-1) n(n-1)/2 (math.md §2.3). Its induced metric is
``BalancedMetric``: exp by the Weingarten geodesic ODE, log by shooting (core.dln_geodesic).
"""

from __future__ import annotations

import geomstats.backend as gs
import numpy as np
from geomstats.geometry.base import LevelSet, VectorSpace
from geomstats.geometry.riemannian_metric import RiemannianMetric
from scipy.linalg import expm

from dlnmanifolds.core._validate import as_rng, check_depth, check_positive_int
from dlnmanifolds.core.balanced import _balanced_frames, _rebalance, balanced_factors
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
    as_points,
    broadcast,
    common_batch,
    map_batch,
    require_invertible,
)


def _layers(stack: np.ndarray) -> list[np.ndarray]:
    return [stack[..., p, :, :] for p in range(stack.shape[-3])]


class LayerStacks(VectorSpace):
    """The vector space R^{N x n x n} of stacked square layers (the embedding space of M).

    Parameters
    ----------
    n : int, layer size.
    depth : int, N >= 1.
    rng : Generator or int seed for ``random_point``.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.geomstats import LayerStacks
    >>> space = LayerStacks(2, depth=3, rng=0)
    >>> space.dim, space.random_point().shape
    (12, (3, 2, 2))
    """

    def __init__(self, n: int, depth: int, rng=None, equip: bool = True):
        self.n = check_positive_int(n, "n")
        self.depth = check_depth(depth)
        self._rng = as_rng(rng)
        super().__init__(shape=(self.depth, self.n, self.n), equip=equip)

    @staticmethod
    def default_metric():
        return StackedFrobeniusMetric

    def _create_basis(self):
        return gs.reshape(gs.eye(self.dim), (self.dim,) + self.shape)

    def random_point(self, n_samples: int = 1, bound: float = 1.0) -> np.ndarray:
        """Uniform samples in the box [-bound, bound]^{N n n}, shape (n_samples, N, n, n)."""
        size = self.shape if n_samples == 1 else (n_samples,) + self.shape
        return bound * self._rng.uniform(-1.0, 1.0, size=size)


class _FrobeniusInnerProduct(RiemannianMetric):
    """Frobenius inner product sum_p tr(A_p^T B_p) of stacks (..., N, n, n) (math.md §1)."""

    def inner_product(self, tangent_vec_a, tangent_vec_b, base_point=None):
        """sum_p tr(A_p^T B_p); shape [...]."""
        shape = self._space.shape
        a = as_points(tangent_vec_a, "tangent_vec_a", shape)
        b = as_points(tangent_vec_b, "tangent_vec_b", shape)
        arrays = {"tangent_vec_a": a, "tangent_vec_b": b}
        if base_point is not None:
            arrays["base_point"] = as_points(base_point, "base_point", shape)
        batch = common_batch(3, **arrays)
        return np.sum(broadcast(a, batch, 3) * broadcast(b, batch, 3), axis=(-3, -2, -1))


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
        """Identity (N n^2 x N n^2) in the flattened standard basis."""
        eye = np.eye(int(np.prod(self._space.shape)))
        if base_point is None:
            return eye
        batch = np.shape(base_point)[: np.ndim(base_point) - 3]
        return np.broadcast_to(eye, batch + eye.shape)

    def exp(self, tangent_vec, base_point):
        """base_point + tangent_vec."""
        return self._add(base_point, tangent_vec, 1.0)

    def log(self, point, base_point):
        """point - base_point."""
        return self._add(point, base_point, -1.0)

    def _add(self, a, b, sign):
        shape = self._space.shape
        a = as_points(a, "point", shape)
        b = as_points(b, "base_point", shape)
        batch = common_batch(3, point=a, base_point=b)
        return broadcast(a, batch, 3) + sign * broadcast(b, batch, 3)


class BalancedSpace(LevelSet):
    """Balanced square networks (W_1, ..., W_N), W_p in R^{n x n}, with invertible phi(W).

    A Geomstats ``LevelSet`` of ``LayerStacks(n, depth)`` defined by the invariants
    G_p = W_{p+1}^T W_{p+1} - W_p W_p^T = 0 (math.md §2.2; Arora, Cohen & Hazan 2018).
    Default metric: ``BalancedMetric`` (induced Frobenius). Call ``equip_with_quotient()`` to
    get the fiber bundle ``DLNBundle`` and GL(n) with the quotient metric (= g^N).

    Parameters
    ----------
    n : int, layer size (points have shape (..., depth, n, n)).
    depth : int, N >= 1.
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
    """

    def __init__(self, n: int, depth: int, rng=None, equip: bool = True):
        self.n = check_positive_int(n, "n")
        self.depth = check_depth(depth)
        self._rng = as_rng(rng)
        super().__init__(
            dim=self.n**2 + (self.depth - 1) * self.n * (self.n - 1) // 2,
            shape=(self.depth, self.n, self.n),
            intrinsic=False,
            equip=equip,
        )
        if equip:
            from dlnmanifolds.geomstats.bundle import LayerRotationAction

            self.equip_with_group_action(LayerRotationAction(self.n, self.depth))

    def new(self, equip: bool = True) -> BalancedSpace:
        """A space with the same parameters (and random generator)."""
        return BalancedSpace(self.n, self.depth, rng=self._rng, equip=equip)

    @staticmethod
    def default_metric():
        return BalancedMetric

    def _define_embedding_space(self):
        return LayerStacks(self.n, self.depth, rng=self._rng)

    def equip_with_quotient(self):
        """Equip with ``DLNBundle``; return GL(n) equipped with Geomstats' ``QuotientMetric``.

        The quotient metric agrees with ``DLNMetric`` (phi|_M is a Riemannian submersion,
        math.md §4.2).
        """
        from geomstats.geometry.general_linear import GeneralLinear
        from geomstats.geometry.quotient_metric import QuotientMetric

        super().equip_with_quotient()
        self.quotient = GeneralLinear(self.n, equip=False)
        self.quotient.equip_with_metric(QuotientMetric, total_space=self)
        return self.quotient

    # -- validation -------------------------------------------------------------------

    def _points(self, value, name):
        return as_points(value, name, self.shape)

    def _on_manifold(self, value, name):
        """Validated stacked points whose end-to-end matrices are invertible."""
        point = self._points(value, name)
        require_invertible(_end_to_end(_layers(point)), f"the end-to-end matrix of {name}")
        return point

    # -- level set --------------------------------------------------------------------

    def submersion(self, point):
        """G(W) = (W_{p+1}^T W_{p+1} - W_p W_p^T)_{p=1..N-1}, shape (..., N-1, n, n)."""
        point = self._points(point, "point")
        if self.depth == 1:
            return np.zeros(point.shape[:-3] + (0, self.n, self.n))
        return np.stack(_invariants(_layers(point)), axis=-3)

    def tangent_submersion(self, vector, point):
        """DG(W)[xi] = -2 C_W^*(xi), C_W^*(xi)_p = sym(xi_p W_p^T - W_{p+1}^T xi_{p+1}).

        (math.md §2.4; checked in math.md §10); shape (..., N-1, n, n).
        """
        vector = self._points(vector, "vector")
        point = self._points(point, "point")
        batch = common_batch(3, vector=vector, point=point)
        if self.depth == 1:
            return np.zeros(batch + (0, self.n, self.n))

        def one(xi, w):
            return -2.0 * np.stack(normal_generator_adjoint(list(w), list(xi)))

        return map_batch(one, batch, (3, 3), vector, point)

    def belongs(self, point, atol: float = gs.atol):
        """Shape (N, n, n), G(W) = 0 within atol and phi(W) invertible; shape [...]."""
        point = np.asarray(point)
        if point.ndim < 3 or point.shape[-3:] != self.shape:
            return np.zeros(point.shape[: max(point.ndim - 3, 0)], dtype=bool)
        if not np.issubdtype(point.dtype, np.floating) and not np.issubdtype(
            point.dtype, np.integer
        ):  # complex (or object) points are not real networks
            return np.zeros(point.shape[:-3], dtype=bool)
        point = point.astype(float)
        belongs = super().belongs(point, atol)
        s = np.linalg.svd(_end_to_end(_layers(point)), compute_uv=False)
        full_rank = s[..., -1] > max(atol, 1e-13) * np.maximum(s[..., 0], 1e-300)
        return np.logical_and(belongs, full_rank)

    def to_tangent(self, vector, base_point):
        """Orthogonal projection onto T_W M, frame form with Jacobi solves (math.md §2.4)."""
        vector = self._points(vector, "vector")
        base_point = self._on_manifold(base_point, "base_point")
        batch = common_batch(3, vector=vector, base_point=base_point)

        def one(xi, w):
            return np.stack(tangent_projection(_balanced_frames(list(w)), list(xi)))

        return map_batch(one, batch, (3, 3), vector, base_point)

    def projection(self, point):
        """A point of M with the same end-to-end matrix: W_p = R_p P R_{p-1}^T (polar).

        P = (X^T X)^{1/(2N)}, R_p = polar(W_p ... W_1) (math.md §2.2, SVD-free form; the
        identity on M). ``point`` must have an invertible end-to-end matrix.
        """
        point = self._on_manifold(point, "point")
        return map_batch(lambda w: np.stack(_rebalance(list(w))), point.shape[:-3], (3,), point)

    def random_point(self, n_samples: int = 1, bound: float = 1.0) -> np.ndarray:
        """Balanced networks over X = expm(B), B_ij ~ N(0, (bound/4)^2), random orthogonal gauge.

        So X lies in GL+(n) with moderate condition number; the inner frames Q_1..Q_{N-1} are
        Haar (``balanced_factors`` with ``rng``). Shape (n_samples, N, n, n) or (N, n, n).
        """
        n_samples = check_positive_int(n_samples, "n_samples")
        points = []
        for _ in range(n_samples):
            x = expm(0.25 * bound * self._rng.standard_normal((self.n, self.n)))
            points.append(np.stack(balanced_factors(x, self.depth, rng=self._rng)))
        return points[0] if n_samples == 1 else np.stack(points)

    def random_tangent_vec(self, base_point, n_samples: int = 1) -> np.ndarray:
        """Projection of a standard Gaussian ambient vector onto T_W M (uses ``rng``)."""
        base_point = self._on_manifold(base_point, "base_point")
        batch = base_point.shape[:-3]
        if n_samples > 1:
            if batch and batch != (n_samples,):
                raise ValueError(f"n_samples = {n_samples} does not match the {batch} base points")
            batch = (n_samples,)
        vector = self._rng.standard_normal(batch + self.shape)
        return self.to_tangent(vector, base_point)


class BalancedMetric(_FrobeniusInnerProduct):
    """The metric induced on M by the Frobenius metric of the layers (math.md §2).

    exp: the geodesic ODE Wddot = C_W(S), C_W^*C_W(S) = G(Wdot) (normal acceleration),
    integrated by DOP853 at relative tolerance ``rtol``; log: Newton shooting on exp in an
    orthonormal basis of T_W M, to ``log_tol``, with continuation (core.dln_geodesic). Both
    check the points first (on M, same component) and stop after ``max_iter`` Newton
    iterations or ``max_time`` seconds with a ``GeodesicError``. ``metric_matrix`` is the
    identity of the embedding R^{N n n} (the metric is the restricted Frobenius one).

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
        """Identity (N n^2 x N n^2) in the flattened standard basis of the embedding space."""
        eye = np.eye(int(np.prod(self._space.shape)))
        if base_point is None:
            return eye
        base_point = self._space._points(base_point, "base_point")
        return np.broadcast_to(eye, base_point.shape[:-3] + eye.shape)

    def inner_coproduct(self, cotangent_vec_a, cotangent_vec_b, base_point=None):
        """sum_p tr(a_p^T b_p): the cometric matrix is the identity too; shape [...]."""
        return self.inner_product(cotangent_vec_a, cotangent_vec_b, base_point)

    def exp(self, tangent_vec, base_point):
        """Exp^M_W(xi); shapes (..., N, n, n)."""
        space = self._space
        xi = space._points(tangent_vec, "tangent_vec")
        w = check_balanced_stack(space._on_manifold(base_point, "base_point"), "base_point")
        batch = common_batch(3, tangent_vec=xi, base_point=w)
        return balanced_exp_stacked(
            broadcast(w, batch, 3), broadcast(xi, batch, 3), self.rtol, self.max_time
        )

    def log(self, point, base_point):
        """Log^M_W(point) by shooting; shapes (..., N, n, n)."""
        space = self._space
        w1 = space._on_manifold(point, "point")
        w0 = space._on_manifold(base_point, "base_point")
        batch = common_batch(3, point=w1, base_point=w0)
        return balanced_log_stacked(
            broadcast(w1, batch, 3),
            broadcast(w0, batch, 3),
            tol=self.log_tol,
            max_iter=self.max_iter,
            rtol=self.rtol,
            max_time=self.max_time,
        )
