"""Pymanopt manifold of rank-r matrices with the DLN metric g^N (math.md §4.1 "Rank r")."""

from __future__ import annotations

import math

import numpy as np
from pymanopt.manifolds.fixed_rank import (
    FixedRankEmbedded,
    _FixedRankPoint,
    _FixedRankTangentVector,
)
from pymanopt.manifolds.manifold import Manifold

from dlnmanifolds.core._validate import (
    as_matrix,
    as_rng,
    check_depth,
    check_positive_int,
    require_finite_arrays,
)
from dlnmanifolds.core.balanced import haar_stiefel
from dlnmanifolds.core.fixed_rank import (
    _inner,
    _lifted_retraction,
    _project_factored,
    _riemannian_gradient,
    _riemannian_hessian,
    _weights,
    embed_tangent,
    project_low_rank,
    tangent_part,
    transport_tangent,
)
from dlnmanifolds.pymanopt._membership import CheckedMembership


class MissingHessianError(NotImplementedError):
    """Raised when a second-order solver needs a Riemannian Hessian a manifold lacks.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.pymanopt import DLNFixedRank, MissingHessianError
    >>> M = DLNFixedRank(3, 3, rank=1, depth=2, rng=0)
    >>> x = M.random_point()
    >>> factor_gradient = (np.ones((3, 1)), np.ones(1), np.ones((1, 3)))
    >>> try:
    ...     M.euclidean_to_riemannian_hessian(x, factor_gradient, factor_gradient, None)
    ... except MissingHessianError:
    ...     print("needs the ambient E'(X) and E''(X)[xi]")
    needs the ambient E'(X) and E''(X)[xi]
    """


class FactoredTangentMaps:
    """Projection, tangent part and transport of a fixed-rank manifold in factored form.

    For points (u, s, vt) and tangent vectors (U_p, M, V_p) as Pymanopt's
    ``FixedRankEmbedded`` has them; every map is O((m + n) r^2) on factored input,
    where Pymanopt's own ``transport``, factored ``projection`` and
    ``to_tangent_space`` form m x n (or m x m) arrays. Shared by ``DLNFixedRank``
    and the ``fixed-rank`` geometry of ``dlnmanifolds.problems``.
    """

    def projection(self, point, vector) -> _FixedRankTangentVector:
        """The Frobenius projection onto T_X M_r of an m x n array, or of a factored
        ambient (A, S, B) = A S B^T (Pymanopt's ``embedding``), which stays factored."""
        u, v = point[0], point[2].T
        if isinstance(vector, (tuple, list)):
            return _FixedRankTangentVector(
                *project_low_rank(u, v, vector[0] @ vector[1], vector[2])
            )
        return _FixedRankTangentVector(*_project_factored(u, v, np.asarray(vector)))

    def to_tangent_space(self, point, vector) -> _FixedRankTangentVector:
        return _FixedRankTangentVector(*tangent_part(point[0], point[2].T, vector))

    def transport(self, point_a, point_b, tangent_vector_a) -> _FixedRankTangentVector:
        """The Frobenius projection onto T_{X_b} (Vandereycken 2013, Sec. 2.4)."""
        return _FixedRankTangentVector(
            *transport_tangent(point_a[0], point_a[2].T, tangent_vector_a, point_b[0], point_b[2].T)
        )


class DLNFixedRank(CheckedMembership, FactoredTangentMaps, Manifold):
    """Rank-r m x n matrices with the DLN metric g^N, in factored form.

    Points are ``(u, s, vt)`` with X = u diag(s) vt and tangent vectors
    ``(Up, M, Vp)`` exactly as in Pymanopt's ``FixedRankEmbedded``, so costs take
    ``cost(u, s, vt)``. Only the metric changes: with K_rr = kappa(s_i, s_j) and
    c_j = s_j^{2(N-1)/N},

        g(xi, xi) = sum_ij M_ij^2 / K_ij + sum_j (|Up_j|^2 + |Vp_j|^2) / c_j

    and the Riemannian gradient is A_{N,X}(G) restricted to T_X M_r
    (Bah et al. 2019 = Menon 2024 Thm 3; math.md §4.1; checked in math.md §10). Depth 1 is
    ``FixedRankEmbedded``.

    * projection, transport: those of ``FixedRankEmbedded``, in factored form
      (no m x n or m x m array; Pymanopt's ``to_tangent_space``, ``transport``
      and factored ``projection`` form them) (the Frobenius
      projection is also g^N-orthogonal since the normal space U_perp B V_perp^T
      is the kernel of A_{N,X}, math.md §3.3);
    * retraction: phi(W + xi^h), a straight horizontal step from the balanced
      lift with inner widths r, second order for g^N (N = 1: the SVD truncation);
    * Hessian: the Levi-Civita connection of g^N through the same submersion
      (``core.fixed_rank.fixed_rank_hessian``), so TrustRegions runs at rank r.
      It needs the ambient Euclidean gradient and Hessian (m x n arrays or
      scipy.sparse matrices, used only through products with thin matrices);
      factor gradients raise ``MissingHessianError``.

    Euclidean gradients may be given as Pymanopt's factor gradients
    ``(du, ds, dvt)`` of ``cost(u, s, vt)`` or as the ambient m x n gradient.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.pymanopt import DLNFixedRank
    >>> M = DLNFixedRank(4, 3, rank=2, depth=3, rng=0)
    >>> M.dim  # r (m + n - r)
    10
    >>> X = M.to_matrix(M.random_point())
    >>> int(np.linalg.matrix_rank(X)), bool(np.allclose(M.to_matrix(M.from_matrix(X)), X))
    (2, True)
    """

    #: Order of agreement of ``retraction`` with the exponential map of g^N.
    retraction_order: int = 2
    #: The Hessian needs ambient E'(X), E''(X)[xi] (operators), not factor gradients;
    #: the conformance checks then build their test cost with those.
    ambient_euclidean_derivatives: bool = True

    def __init__(
        self,
        m: int,
        n: int,
        rank: int,
        depth: int,
        rng: np.random.Generator | int | None = None,
    ):
        self._m = check_positive_int(m, "m")
        self._n = check_positive_int(n, "n")
        self._rank = check_positive_int(rank, "rank")
        if self._rank > min(self._m, self._n):
            raise ValueError(f"rank must be at most min(m, n) = {min(m, n)}, got {rank}")
        self._depth = check_depth(depth, allow_inf=True)
        if self._depth == math.inf:
            raise ValueError(
                "depth=math.inf is not available on DLNFixedRank: the infinite-depth metric "
                "g^inf = lim N g^N is infinite on the directions U_p V^T + U V_p^T that move "
                "the singular subspaces (their weight c_j / N = s_j^{2(N-1)/N} / N -> 0), so "
                "it is not a Riemannian metric on rank-r matrices; use DLNMatrices(n, n, "
                "math.inf) for full-rank square matrices or end_to_end_flow(..., math.inf)"
            )
        self._rng = as_rng(rng)
        self._embedded = FixedRankEmbedded(self._m, self._n, self._rank)
        super().__init__(
            f"DLN metric g^{self._depth} on {m}x{n} matrices of rank {rank}",
            (self._m + self._n - self._rank) * self._rank,
            point_layout=3,
        )

    @property
    def depth(self) -> int:
        return self._depth

    @property
    def rank(self) -> int:
        return self._rank

    @property
    def shape(self) -> tuple[int, int]:
        return (self._m, self._n)

    @property
    def typical_dist(self) -> float:
        return float(np.sqrt(self.dim))

    # -- membership ----------------------------------------------------------
    def check_point(self, point, atol: float = 1e-10) -> _FixedRankPoint:
        """Validate shapes, finiteness, orthonormal u and vt rows, positive s."""
        if not isinstance(point, (tuple, list)) or len(point) != 3:
            raise TypeError("point must be a tuple (u, s, vt)")
        u = as_matrix(point[0], "point.u")
        vt = as_matrix(point[2], "point.vt")
        s = np.asarray(point[1], dtype=float)
        m, n, r = self._m, self._n, self._rank
        if u.shape != (m, r) or vt.shape != (r, n) or s.shape != (r,):
            raise ValueError(
                f"point must have shapes u {(m, r)}, s {(r,)}, vt {(r, n)}; got "
                f"{u.shape}, {s.shape}, {vt.shape}"
            )
        if not np.all(np.isfinite(s)) or np.any(s <= 0):
            raise ValueError(f"point.s must be finite and positive, got {s}")
        for name, q in (("u", u), ("vt.T", vt.T)):
            err = np.max(np.abs(q.T @ q - np.eye(r)))
            if err > atol:
                raise ValueError(f"point.{name} must have orthonormal columns (error {err:.3g})")
        return _FixedRankPoint(u, s, vt)

    # -- metric --------------------------------------------------------------
    def _point_weights(self, point):
        """K_rr and c of ``point``, computed once per point.

        The weights depend on s only; solvers call the metric several times per
        point, so the last two s arrays are kept (by identity, with a content
        check: an s modified in place is recomputed).
        """
        s = point[1]
        cache = self.__dict__.setdefault("_weights_cache", [])
        for key, copy, weights in cache:
            if key is s and np.array_equal(copy, s):
                return weights
        s_array = np.asarray(s)
        weights = _weights(s_array, self._depth)
        cache.insert(0, (s, s_array.copy(), weights))
        del cache[2:]
        return weights

    def inner_product(self, point, tangent_vector_a, tangent_vector_b) -> float:
        return _inner(self._point_weights(point), tangent_vector_a, tangent_vector_b)

    def norm(self, point, tangent_vector) -> float:
        return float(np.sqrt(self.inner_product(point, tangent_vector, tangent_vector)))

    def euclidean_to_riemannian_gradient(self, point, euclidean_gradient):
        """A_{N,X}(G) in (Up, M, Vp) form (math.md §4.1).

        From factor gradients of a cost of X = u diag(s) vt: du = G V diag(s) and
        dvt = diag(s) U^T G, so G V = du / s and G^T U = dvt^T / s; or from the
        ambient G = E'(X) as an m x n array or a scipy.sparse matrix (only G V and
        G^T U are formed).
        """
        u, s, vt = point
        if isinstance(euclidean_gradient, (tuple, list)):
            du, _, dvt = euclidean_gradient
            gv, gtu = du / s, dvt.T / s
        else:
            # The ambient E'(X): an array or anything with @ and .T @ (scipy.sparse).
            gv, gtu = euclidean_gradient @ vt.T, euclidean_gradient.T @ u
        up, mm, vp = _riemannian_gradient(u, vt.T, self._point_weights(point), gv, gtu)
        return _FixedRankTangentVector(up, mm, vp)

    def euclidean_to_riemannian_hessian(
        self, point, euclidean_gradient, euclidean_hessian, tangent_vector
    ) -> _FixedRankTangentVector:
        """Hess_g E(X)[xi] through the rank-r balanced lift (math.md §4.3 at rank r).

        Needs the *ambient* Euclidean gradient E'(X) and Hessian E''(X)[xi], each an
        m x n array or any linear operator with ``@`` and ``.T @`` (a scipy.sparse
        matrix: matrix completion's P_Omega(X - X*) and P_Omega(xi)); they are only
        multiplied with thin matrices, O(|Omega| r + N (m + n) r^2). ``make_problem``
        wires it for ``dln-fixed-rank``. With Pymanopt's ``euclidean_hessian``
        route, ``ehess(u, s, vt, a, b, c)`` receives xi as its factored embedding
        (xi = a b c^T). Factor gradients (du, ds, dvt) lose the normal block
        U_perp^T E' V_perp that the curvature term needs, so they raise
        ``MissingHessianError``.
        """
        if isinstance(euclidean_gradient, (tuple, list)) or isinstance(
            euclidean_hessian, (tuple, list)
        ):
            raise MissingHessianError(
                "DLNFixedRank's Riemannian Hessian needs the ambient Euclidean gradient "
                "E'(X) and Hessian E''(X)[xi] (m x n arrays or sparse matrices); factor "
                "gradients (du, ds, dvt) of cost(u, s, vt) lose the normal block of E'(X) "
                "that the curvature term needs"
            )
        u, s, vt = point
        s = np.asarray(s)
        up, mm, vp = _riemannian_hessian(
            u,
            s,
            vt.T,
            self._point_weights(point),
            self._depth,
            euclidean_gradient,
            euclidean_hessian,
            tangent_vector,
        )
        return _FixedRankTangentVector(up, mm, vp)

    # -- maps ----------------------------------------------------------------
    def retraction(self, point, tangent_vector) -> _FixedRankPoint:
        """phi(W + xi^h) from the rank-r balanced lift: second order for g^N (N = 1:
        Pymanopt's SVD truncation of X + xi), see ``core.fixed_rank.fixed_rank_retraction``."""
        require_finite_arrays(list(point), "point")
        require_finite_arrays(list(tangent_vector), "tangent_vector")
        u, s, vt = point
        s = np.asarray(s)
        nu, ns, nv = _lifted_retraction(
            u, s, vt.T, self._point_weights(point), self._depth, tangent_vector
        )
        return _FixedRankPoint(nu, ns, nv.T)

    def embedding(self, point, tangent_vector):
        return self._embedded.embedding(point, tangent_vector)

    def to_matrix(self, point) -> np.ndarray:
        """X = u diag(s) vt."""
        return (point[0] * point[1]) @ point[2]

    def tangent_to_matrix(self, point, tangent_vector) -> np.ndarray:
        """The ambient m x n matrix of a tangent vector."""
        return embed_tangent(point[0], point[2].T, tangent_vector)

    def from_matrix(self, matrix: np.ndarray) -> _FixedRankPoint:
        """The rank-r truncated SVD of ``matrix`` as a point (must have rank >= r)."""
        matrix = as_matrix(matrix, "matrix")
        if matrix.shape != self.shape:
            raise ValueError(f"matrix must have shape {self.shape}, got {matrix.shape}")
        u, s, vt = np.linalg.svd(matrix, full_matrices=False)
        r = self._rank
        if s[r - 1] <= 1e-13 * max(s[0], np.finfo(float).tiny):
            raise ValueError(f"matrix must have rank >= {r}; singular values {s[: r + 1]}")
        return _FixedRankPoint(u[:, :r], s[:r], vt[:r])

    # -- sampling ------------------------------------------------------------
    def random_point(self) -> _FixedRankPoint:
        """Haar frames and s ~ U[0.5, 2] sorted decreasingly."""
        r = self._rank
        s = np.sort(self._rng.uniform(0.5, 2.0, r))[::-1]
        u = haar_stiefel(self._m, r, self._rng)
        v = haar_stiefel(self._n, r, self._rng)
        return _FixedRankPoint(u, s, v.T)

    def random_tangent_vector(self, point) -> _FixedRankTangentVector:
        r = self._rank
        raw = _FixedRankTangentVector(
            self._rng.standard_normal((self._m, r)),
            self._rng.standard_normal((r, r)),
            self._rng.standard_normal((self._n, r)),
        )
        vector = self.to_tangent_space(point, raw)
        return vector / self.norm(point, vector)

    def zero_vector(self, point) -> _FixedRankTangentVector:
        return self._embedded.zero_vector(point)
