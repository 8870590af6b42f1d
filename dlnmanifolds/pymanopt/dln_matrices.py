"""Pymanopt manifold of full-rank end-to-end matrices with the DLN metric g^N."""

from __future__ import annotations

import math

import numpy as np
from pymanopt.manifolds.manifold import Manifold

from dlnmanifolds.core._validate import (
    as_matrix,
    as_rng,
    check_depth,
    check_positive_int,
    require_finite_arrays,
)
from dlnmanifolds.core.balanced import haar_stiefel
from dlnmanifolds.core.dln_geodesic import DEFAULT_MAX_TIME, GeodesicError, dln_exp, dln_log
from dlnmanifolds.core.dln_metric import (
    exp_fixed_singular_vectors,
    infinite_depth_retraction,
    lifted_retraction,
    riemannian_hessian,
)
from dlnmanifolds.core.operator import (
    SVDFrame,
    _inner_in_frame,
    _operator_in_frame,
    check_infinite_depth_square,
    require_full_rank,
    svd_frame,
)
from dlnmanifolds.pymanopt._membership import CheckedMembership
from dlnmanifolds.pymanopt.fixed_rank import MissingHessianError


class GeodesicUndefinedError(GeodesicError, NotImplementedError):
    """No geodesic for these arguments: Exp_X(V) reaches a singular matrix before t = 1
    ((GL(n), g^N) is incomplete), X and Y lie in different components of GL(n) (no log), or
    the solver gave up within its caps (``max_time``, ``max_iter``).

    Also a ``NotImplementedError``, Pymanopt's signal for "no exponential/logarithm here", so
    that its diagnostics (``check_gradient``, ``check_hessian`` step along exp up to unit
    steps) fall back to the retraction there instead of crashing.
    """


class DLNMatrices(CheckedMembership, Manifold):
    """Full-rank m x n matrices with the DLN metric g^N (math.md §4).

    g^N_X(Y, Z) = tr(Y^T A_{N,X}^{-1}(Z)), so the Riemannian gradient is
    A_{N,X}(grad E) and the g^N gradient flow is the end-to-end (Arora–Cohen–
    Hazan) training dynamics. Depth 1 is the Euclidean metric.

    * retraction: phi(W + xi^h), a horizontal straight step from a balanced
      lift, second order (see ``dlnmanifolds.core.dln_metric``);
    * Hessian: through the Riemannian submersion (math.md §4.3; checked in math.md §10),
      so TrustRegions works;
    * transport: identity (every tangent space is R^{m x n});
    * exp, log, dist (square, finite depth): the numerical geodesics of
      ``core.dln_geodesic``, each call capped at ``max_time`` seconds.

    ``depth=math.inf`` (square only): the infinite-depth metric g^inf = lim N g^N of
    Cohen, Menon & Veraszto 2022 (math.md §4.6), kernel the logarithmic mean of
    sigma_i^2, sigma_j^2; its gradient A_inf(E') drives the time-rescaled limit of
    the DLN flow. There is no balanced lift at infinite depth, so the retraction
    is X expm(X^{-1} xi) (first order; exact along U diag(delta) V^T, where it is
    the geodesic U Sigma exp(delta / Sigma) V^T) and there is no Hessian
    (``MissingHessianError``).

    Example
    -------
    The Riemannian gradient is A_{N,X}(G). At depth 2,
    A_{2,X}(G) = (X X^T)^{1/2} G + G (X^T X)^{1/2}, which at X = diag(s), s > 0, is
    (s_i + s_j) G_ij:

    >>> import numpy as np
    >>> from dlnmanifolds.pymanopt import DLNMatrices
    >>> M = DLNMatrices(2, 2, depth=2)
    >>> X, G = np.diag([2.0, 1.0]), np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> M.euclidean_to_riemannian_gradient(X, G)
    array([[4., 6.],
           [9., 8.]])
    >>> bool(np.allclose(M.euclidean_to_riemannian_gradient(X, G), X @ G + G @ X))
    True
    """

    #: Wall-time cap (seconds) of one exp / log / dist call.
    max_time: float = DEFAULT_MAX_TIME

    #: Order of agreement of ``retraction`` with the exponential map.
    retraction_order: int = 2

    def __init__(self, m: int, n: int, depth: int, rng: np.random.Generator | int | None = None):
        self._m = check_positive_int(m, "m")
        self._n = check_positive_int(n, "n")
        self._depth = check_depth(depth, allow_inf=True)
        check_infinite_depth_square((self._m, self._n), self._depth, "DLNMatrices")
        if self._depth == math.inf:
            self.retraction_order = 1
        self._rng = as_rng(rng)
        self._cache: tuple[np.ndarray, SVDFrame] | None = None
        super().__init__(
            f"DLN metric g^{self._depth} on full-rank {m}x{n} matrices",
            self._m * self._n,
            point_layout=1,
        )

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def shape(self) -> tuple[int, int]:
        return (self._m, self._n)

    @property
    def typical_dist(self) -> float:
        return float(np.sqrt(self.dim))

    def _frame(self, point: np.ndarray) -> SVDFrame:
        if self._cache is not None and self._cache[0] is point:
            return self._cache[1]
        require_finite_arrays([point], "point")
        frame = svd_frame(point)
        self._cache = (point, frame)
        return frame

    def check_point(self, point, atol: float | None = None) -> np.ndarray:
        """Validate shape, finiteness and full rank (``atol`` is unused: the set is
        open); raise ValueError/TypeError."""
        point = as_matrix(point, "point")
        if point.shape != self.shape:
            raise ValueError(f"point must have shape {self.shape}, got {point.shape}")
        require_full_rank(point, "point")
        return point

    def inner_product(self, point, tangent_vector_a, tangent_vector_b) -> float:
        return float(
            _inner_in_frame(self._frame(point), tangent_vector_a, tangent_vector_b, self._depth)
        )

    def norm(self, point, tangent_vector) -> float:
        return float(np.sqrt(self.inner_product(point, tangent_vector, tangent_vector)))

    def projection(self, point, vector) -> np.ndarray:
        return np.array(vector, dtype=float, copy=True)

    to_tangent_space = projection

    def euclidean_to_riemannian_gradient(self, point, euclidean_gradient) -> np.ndarray:
        return _operator_in_frame(self._frame(point), euclidean_gradient, self._depth, 1.0)

    def euclidean_to_riemannian_hessian(
        self, point, euclidean_gradient, euclidean_hessian, tangent_vector
    ) -> np.ndarray:
        if self._depth == math.inf:
            raise MissingHessianError(
                "DLNMatrices at depth=math.inf has no Riemannian Hessian (the lifted "
                "formula of math.md §4.3 needs a finite depth); use a first-order solver"
            )
        return riemannian_hessian(
            point, euclidean_gradient, euclidean_hessian, tangent_vector, self._depth
        )

    def retraction(self, point, tangent_vector) -> np.ndarray:
        require_finite_arrays([point], "point")
        require_finite_arrays([tangent_vector], "tangent_vector")
        if self._depth == math.inf:
            return infinite_depth_retraction(point, tangent_vector)
        return lifted_retraction(point, tangent_vector, self._depth)

    def exp_diagonal(self, point, delta: np.ndarray) -> np.ndarray:
        """Exp_X(U diag(delta) V^T) in closed form (math.md §4.5)."""
        return exp_fixed_singular_vectors(point, np.asarray(delta, dtype=float), self._depth)

    def _require_geodesics(self, what: str) -> None:
        # Pymanopt's protocol for "this manifold has no exp/log" is NotImplementedError
        # (its diagnostics then fall back to the retraction).
        if self._m != self._n or not isinstance(self._depth, (int, np.integer)):
            raise NotImplementedError(
                f"DLNMatrices.{what} needs square matrices and a finite depth (the geodesic "
                f"solvers of core.dln_geodesic); got {self._m}x{self._n}, depth "
                f"{self._depth}: use retraction or exp_diagonal"
            )

    def exp(self, point, tangent_vector) -> np.ndarray:
        """Exp_X(V) of g^N: the lifted Hamiltonian geodesic ODE (``dlnmanifolds.dln_exp``).

        Square m = n and finite depth only; raises ``GeodesicUndefinedError`` (a
        ``GeodesicError`` and a ``NotImplementedError``) if the geodesic reaches a singular
        matrix before t = 1 (GL(n) with g^N is incomplete) or takes more than ``max_time`` s.
        """
        self._require_geodesics("exp")
        try:
            return dln_exp(point, tangent_vector, self._depth, max_time=self.max_time)
        except GeodesicError as exc:
            raise GeodesicUndefinedError(str(exc), exc.residual) from exc

    def log(self, point_a, point_b) -> np.ndarray:
        """Log_{point_a}(point_b) of g^N: closed form or shooting (``dlnmanifolds.dln_log``).

        Raises ``GeodesicUndefinedError`` (a ``GeodesicError`` and a ``NotImplementedError``) at
        once for points of opposite determinant sign, and when shooting fails within its caps.
        """
        self._require_geodesics("log")
        a = self.check_point(point_a)
        b = self.check_point(point_b)
        if np.linalg.slogdet(a)[0] * np.linalg.slogdet(b)[0] < 0:
            raise GeodesicUndefinedError(
                "point_a and point_b have determinants of opposite sign: no curve in GL(n) "
                "joins them without passing through a singular matrix, so there is no log"
            )
        try:
            return dln_log(b, a, self._depth, max_time=self.max_time)
        except GeodesicError as exc:
            raise GeodesicUndefinedError(str(exc), exc.residual) from exc

    def dist(self, point_a, point_b) -> float:
        """g^N length of Log_{point_a}(point_b) (the geodesic distance for nearby points)."""
        return self.norm(point_a, self.log(point_a, point_b))

    def transport(self, point_a, point_b, tangent_vector_a) -> np.ndarray:
        return np.array(tangent_vector_a, dtype=float, copy=True)

    def random_point(self) -> np.ndarray:
        """U diag(s) V^T with Haar frames and s ~ U[0.5, 2]."""
        r = min(self._m, self._n)
        s = np.sort(self._rng.uniform(0.5, 2.0, r))[::-1]
        return (haar_stiefel(self._m, r, self._rng) * s) @ haar_stiefel(self._n, r, self._rng).T

    def random_tangent_vector(self, point) -> np.ndarray:
        vector = self._rng.standard_normal(self.shape)
        return vector / self.norm(point, vector)

    def zero_vector(self, point) -> np.ndarray:
        return np.zeros(self.shape)
