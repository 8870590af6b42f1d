"""The DLN metric g^N on full-rank m x n matrices as a Geomstats ``RiemannianMetric`` (math.md §4).

g^N_X(Y, Z) = tr(Y^T A_{N,X}^{-1}(Z)) (Bah et al. 2019; Menon 2024; math.md §4.1), on GL(n)
(``GeneralLinear(n)``) or on the full-rank m x n matrices (``FullRankMatrices(m, n)``); the
metric tensor runs on the points' backend (numpy arrays or torch tensors, no copy). Exp is the
lifted Hamiltonian geodesic ODE integrated with DOP853 (rtol 1e-12), log is a closed form where
one exists or Newton shooting on it (core.dln_geodesic), both capped by ``max_iter`` and
``max_time``. Parallel transport is Geomstats' pole ladder on these exp and log. GL(n) with g^N
is incomplete: geodesics reach the singular matrices in finite time (distance ~ integral of
sigma^{1/N-1}), where exp raises ``GeodesicError``. The geodesic solvers are GL(n) ones
(square matrices only; ``ValueError`` for m != n) and numpy/scipy: on tensors they run on CPU
float64 copies and return tensors of the input's dtype and device (``_arrays.via_numpy``).
"""

from __future__ import annotations

import numpy as np
from geomstats.geometry.riemannian_metric import RiemannianMetric

from dlnmanifolds.core import _backend
from dlnmanifolds.core._validate import check_depth
from dlnmanifolds.core.dln_geodesic import (
    DEFAULT_MAX_ITER,
    DEFAULT_MAX_TIME,
    GEODESIC_RTOL,
    _Budget,
    _check_max_iter,
    _dln_exp,
    dln_log,
)
from dlnmanifolds.core.operator import _inner_in_frame, _operator_in_frame, svd_frame
from dlnmanifolds.geomstats._arrays import (
    as_points,
    broadcast,
    common_batch,
    require_full_rank,
    via_numpy,
)


class DLNMetric(RiemannianMetric):
    """g^N on full-rank matrices: g_X(Y, Z) = sum_ij (U^T Y V)_ij (U^T Z V)_ij / K_ij.

    K_ij = kappa(sigma^U_i, sigma^V_j) with the singular values padded by zeros (math.md
    §3.2). Use ``space.equip_with_metric(DLNMetric, depth=N)``.

    Parameters
    ----------
    space : a Geomstats space of m x n matrices, shape (m, n): ``GeneralLinear(n)``, or
        ``FullRankMatrices(m, n)`` for m != n (exp, log, parallel transport: square only).
    depth : int, N >= 1 (N = 1 is the Frobenius metric).
    rtol : relative tolerance of the DOP853 geodesic integrator.
    log_tol : shooting tolerance: max|Exp_X(Log_X(Y)) - Y| <= log_tol * max(1, max|Y|).
    max_iter : Newton iterations of one log (``GeodesicError`` beyond).
    max_time : seconds per exp / log call (``GeodesicError`` beyond, with the residual).
    n_rungs : rungs of the pole ladder used by ``parallel_transport``.

    Example
    -------
    >>> import numpy as np
    >>> from geomstats.geometry.general_linear import GeneralLinear
    >>> from dlnmanifolds import dln_operator_inverse
    >>> from dlnmanifolds.geomstats import DLNMetric
    >>> space = GeneralLinear(2, equip=False)
    >>> _ = space.equip_with_metric(DLNMetric, depth=3)
    >>> X, Z = np.diag([2.0, 1.0]), np.array([[1.0, 2.0], [3.0, 4.0]])
    >>> g = space.metric.inner_product(Z, Z, X)  # <Z, A_{N,X}^{-1}(Z)>
    >>> bool(np.isclose(g, np.sum(Z * dln_operator_inverse(X, Z, 3))))
    True
    >>> Y = space.metric.exp(0.1 * Z, X)
    >>> bool(np.allclose(space.metric.log(Y, X), 0.1 * Z, atol=1e-8))
    True

    On 3 x 2 matrices (the off-square block has K_ij = sigma_j^{2(N-1)/N}):

    >>> from geomstats.geometry.full_rank_matrices import FullRankMatrices
    >>> tall = FullRankMatrices(3, 2, equip=False)
    >>> _ = tall.equip_with_metric(DLNMetric, depth=3)
    >>> X3 = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    >>> E = np.zeros((3, 2)); E[2, 0] = 1.0
    >>> bool(np.isclose(tall.metric.inner_product(E, E, X3), 2.0 ** (-4 / 3)))
    True
    """

    def __init__(
        self,
        space,
        depth: int,
        rtol: float = GEODESIC_RTOL,
        log_tol: float = 1e-11,
        max_iter: int = DEFAULT_MAX_ITER,
        max_time: float = DEFAULT_MAX_TIME,
        n_rungs: int = 4,
    ):
        shape = tuple(getattr(space, "shape", ()))
        if len(shape) != 2:
            raise ValueError(
                f"space must be a space of m x n matrices (GeneralLinear(n) for square ones, "
                f"FullRankMatrices(m, n) otherwise), got a space with point shape {shape}"
            )
        super().__init__(space=space)
        self.m, self.n = shape
        self.depth = check_depth(depth)
        self.rtol = float(rtol)
        self.log_tol = float(log_tol)
        self.max_iter = _check_max_iter(max_iter)
        self.max_time = _Budget(max_time, "DLNMetric").max_time
        self.n_rungs = _check_max_iter(n_rungs)

    # -- validation -------------------------------------------------------------------

    def _prepare(self, base_name, base, **vectors):
        shape = (self.m, self.n)
        base = as_points(base, base_name, shape)
        vectors = {k: as_points(v, k, shape) for k, v in vectors.items()}
        batch = common_batch(2, **{base_name: base}, **vectors)
        require_full_rank(base, base_name)
        return broadcast(base, batch, 2), [broadcast(v, batch, 2) for v in vectors.values()]

    # -- metric tensor ----------------------------------------------------------------

    def inner_product(self, tangent_vec_a, tangent_vec_b, base_point=None):
        """g^N_X(A, B) in the SVD frame of X (math.md §4.1); shape [...]."""
        if base_point is None:
            raise ValueError("base_point is required: g^N depends on the point")
        x, (a, b) = self._prepare(
            "base_point", base_point, tangent_vec_a=tangent_vec_a, tangent_vec_b=tangent_vec_b
        )
        value = _inner_in_frame(svd_frame(x), a, b, self.depth)
        return np.asarray(value) if isinstance(value, float) else value

    def inner_coproduct(self, cotangent_vec_a, cotangent_vec_b, base_point=None):
        """Cometric <a, A_{N,X}(b)>: g^N with A in place of A^{-1} (math.md §3.2); [...]."""
        if base_point is None:
            raise ValueError("base_point is required: g^N depends on the point")
        x, (a, b) = self._prepare(
            "base_point",
            base_point,
            cotangent_vec_a=cotangent_vec_a,
            cotangent_vec_b=cotangent_vec_b,
        )
        xp = _backend.namespace(x)
        return xp.sum(a * _operator_in_frame(svd_frame(x), b, self.depth, 1.0), axis=(-2, -1))

    def _operator_matrix(self, base_point, power):
        x, _ = self._prepare("base_point", base_point)
        size = self.m * self.n
        basis = _backend.eye(x, size).reshape(-1, self.m, self.n)
        frame = svd_frame(x[..., None, :, :])
        images = _operator_in_frame(frame, basis, self.depth, power)
        # Row b is vec(A^power E_b); A is self-adjoint, so this matrix is symmetric.
        return images.reshape(tuple(x.shape[:-2]) + (size, size))

    def metric_matrix(self, base_point=None):
        """Matrix of g^N_X in the row-major basis E_ij of R^{n x n}: vec^T A^{-1} vec."""
        if base_point is None:
            raise ValueError("base_point is required: g^N depends on the point")
        return self._operator_matrix(base_point, -1.0)

    def cometric_matrix(self, base_point=None):
        """Inverse metric matrix: the matrix of A_{N,X} itself (math.md §3.2)."""
        if base_point is None:
            raise ValueError("base_point is required: g^N depends on the point")
        return self._operator_matrix(base_point, 1.0)

    # -- geodesics --------------------------------------------------------------------

    def _require_square(self, what: str, name: str) -> None:
        if self.m != self.n:
            raise ValueError(
                f"DLNMetric.{what}: {name} must be a square n x n matrix (the g^N geodesic "
                f"solvers of core.dln_geodesic are those of GL(n)); this metric is on "
                f"{self.m} x {self.n} matrices, where inner_product, metric_matrix and "
                "cometric_matrix are supported"
            )

    def exp(self, tangent_vec, base_point):
        """Exp_X(V) by the lifted Hamiltonian geodesic ODE (DOP853, ``rtol``); square only.

        Tensors: computed in numpy on CPU float64 copies, returned as a tensor of the
        input's dtype and device (``via_numpy``)."""
        self._require_square("exp", "base_point")
        x, (v,) = self._prepare("base_point", base_point, tangent_vec=tangent_vec)
        return via_numpy(lambda x, v: _dln_exp(x, v, self.depth, self.rtol, self.max_time), x, v)

    def log(self, point, base_point):
        """Log_X(Y): closed form or Newton shooting on ``exp`` to ``log_tol`` (core.dln_log).

        Raises ``ValueError`` at once for points of opposite determinant sign (no geodesic),
        ``GeodesicError`` after ``max_iter`` iterations or ``max_time`` seconds. Square only;
        tensors: computed in numpy on CPU float64 copies (``via_numpy``).
        """
        self._require_square("log", "base_point")
        x, (y,) = self._prepare("base_point", base_point, point=point)
        require_full_rank(y, "point")

        def solve(y, x):
            return dln_log(
                y,
                x,
                self.depth,
                tol=self.log_tol,
                max_iter=self.max_iter,
                rtol=self.rtol,
                max_time=self.max_time,
            )

        return via_numpy(solve, y, x)

    def parallel_transport(self, tangent_vec, base_point, direction=None, end_point=None):
        """Transport along t -> Exp_X(t direction) (or the geodesic to ``end_point``).

        Pole ladder (Lorenzi & Pennec 2014; second order, Guigui & Pennec 2021) with
        ``n_rungs`` rungs and alpha = 2, built on ``exp`` and ``log``; shape (..., n, n).
        """
        if (direction is None) == (end_point is None):
            raise ValueError("parallel_transport needs exactly one of direction and end_point")
        self._require_square("parallel_transport", "base_point")
        x, (v,) = self._prepare("base_point", base_point, tangent_vec=tangent_vec)
        if direction is None:
            direction = self.log(end_point, x)
        x, (v, direction) = self._prepare("base_point", x, tangent_vec=v, direction=direction)
        ladder = self.ladder_parallel_transport(
            v, x, direction, n_rungs=self.n_rungs, scheme="pole", alpha=2
        )
        return ladder["transported_tangent_vec"]
