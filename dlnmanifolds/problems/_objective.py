"""The interface every ready problem implements: a loss E(X) on end-to-end matrices.

A problem knows its loss E, Euclidean gradient E'(X) and Hessian E''(X)[Xdot],
how many residuals it averages (``count``, so that train MSE = 2 E / count) and
how to score a matrix on held-out data. The geometry factory
(``dlnmanifolds.problems.geometries``) lifts it onto every manifold.

Points X are m x n arrays or, on the fixed-rank geometries, factored
``LowRank(u, s, vt)`` triples. The defaults below densify a ``LowRank`` (fine for
small dense problems such as ``Regression``); ``MatrixCompletion`` overrides them
with O(|Omega| r) evaluations that never form an m x n array.
"""

from __future__ import annotations

import abc

import numpy as np

from dlnmanifolds.core._validate import check_positive_int
from dlnmanifolds.problems.lowrank import LowRank, dense


class MatrixObjective(abc.ABC):
    """A loss E: R^{m x n} -> R with derivatives and test metrics.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.problems import MatrixCompletion
    >>> data = MatrixCompletion.from_dense([[1.0, np.nan], [np.nan, 4.0]])
    >>> isinstance(data, MatrixObjective), data.train_mse(np.zeros((2, 2)))
    (True, 8.5)
    """

    #: (m, n), the shape of the end-to-end matrix X.
    shape: tuple[int, int]
    #: The ground-truth matrix X*, or None when unknown.
    truth: np.ndarray | None

    @property
    @abc.abstractmethod
    def count(self) -> int:
        """Number of squared residuals in the training loss (train MSE = 2 E / count)."""

    @abc.abstractmethod
    def residual_gradient(self, x: np.ndarray) -> np.ndarray:
        """E'(X), shape (m, n)."""

    @abc.abstractmethod
    def hessian(self, x: np.ndarray, xdot: np.ndarray) -> np.ndarray:
        """E''(X)[Xdot], shape (m, n)."""

    @abc.abstractmethod
    def loss(self, x: np.ndarray) -> float:
        """E(X), one half of the sum of squared training residuals."""

    @abc.abstractmethod
    def test_mse(self, x: np.ndarray) -> float:
        """Mean squared error on held-out data (NaN when there is none)."""

    @abc.abstractmethod
    def _spectral_matrix(self) -> np.ndarray:
        """The data-driven full matrix whose rank-r truncation is ``spectral_start``."""

    def relative_error(self, x) -> float:
        """||X - X*||_F / ||X*||_F against the ground truth (NaN when unknown)."""
        if self.truth is None:
            return float("nan")
        return float(np.linalg.norm(dense(x) - self.truth) / np.linalg.norm(self.truth))

    def gradient_matrix(self, x):
        """E'(X) as whatever supports ``@`` and ``.T`` most cheaply (an array here;
        a scipy.sparse matrix for matrix completion); x an array or a ``LowRank``."""
        return self.residual_gradient(dense(x))

    def gradient_products(self, x: LowRank) -> tuple[np.ndarray, np.ndarray]:
        """(E'(X) V, E'(X)^T U) at a factored X = U S V^T, shapes [m, r] and [n, r].

        The two products the rank-r geometries and the rank-adaptive tests need
        (Vandereycken 2013, Sec. 4.1); ``MatrixCompletion`` caches them per point.
        """
        g = self.gradient_matrix(x)
        return g @ x.vt.T, g.T @ x.u

    def hessian_matrix(self, x, xdot):
        """E''(X)[Xdot] as whatever supports ``@`` and ``.T`` most cheaply (an array
        here; a scipy.sparse matrix for matrix completion); x, xdot arrays or
        ``LowRank`` (xdot = a factored tangent vector, factors need not be orthonormal)."""
        return self.hessian(dense(x), dense(xdot))

    def _check_rank(self, rank) -> int:
        rank = check_positive_int(rank, "rank")
        if rank > min(self.shape):
            raise ValueError(f"rank must be at most {min(self.shape)}, got {rank}")
        return rank

    def spectral_start(self, rank: int) -> np.ndarray:
        """A rank-``rank`` data-driven initial matrix (for rank-aware geometries)."""
        return self.spectral_factors(rank).to_dense()

    def spectral_factors(self, rank: int) -> LowRank:
        """``spectral_start`` in factored form (u, s, vt)."""
        rank = self._check_rank(rank)
        u, s, vt = np.linalg.svd(self._spectral_matrix(), full_matrices=False)
        return LowRank(u[:, :rank], s[:rank], vt[:rank])

    def spectral_values(self, count: int) -> np.ndarray:
        """The ``count`` leading singular values of the spectral matrix, decreasing."""
        count = min(self._check_rank(count), min(self.shape))
        return np.linalg.svd(self._spectral_matrix(), compute_uv=False)[:count]

    def gradient(self, x: np.ndarray) -> np.ndarray:
        """E'(X) (alias of ``residual_gradient``)."""
        return self.residual_gradient(x)

    def train_mse(self, x: np.ndarray) -> float:
        """Mean of the squared training residuals, 2 E(X) / count."""
        return 2.0 * self.loss(x) / self.count

    def metrics(self, x: np.ndarray) -> dict[str, float]:
        """train_mse, test_mse and relative_error of X."""
        return {
            "train_mse": float(self.train_mse(x)),
            "test_mse": float(self.test_mse(x)),
            "relative_error": float(self.relative_error(x)),
        }
