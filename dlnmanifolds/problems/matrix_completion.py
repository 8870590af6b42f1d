"""Matrix completion: recover a low-rank matrix from a subset of its entries.

E(X) = 1/2 ||P_Omega(X - X*)||^2, E'(X) = P_Omega(X - X*), E''(X)[Xdot] = P_Omega(Xdot)
(math.md §9). The generator follows Arora, Cohen, Hu & Luo 2019 (official code,
gen_gt/gen_obs; math.md §9): U, V with i.i.d. N(0, 1) entries, X* = U V^T / sqrt(r)
rescaled to ||X*||_F = sqrt(m n) (= n when square, RMS entry 1), and Omega drawn
uniformly without replacement.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dlnmanifolds.core._validate import as_matrix, as_real_array, as_rng, check_positive_int
from dlnmanifolds.problems._objective import MatrixObjective


def _as_index_array(value: Any, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array of indices, got shape {array.shape}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or np.any(array != np.round(array)):
            raise TypeError(f"{name} must contain integer indices, got dtype {array.dtype}")
    return array.astype(np.int64)


class MatrixCompletion(MatrixObjective):
    """Observed entries (rows[k], cols[k]) = values[k] of an m x n matrix.

    Build one with ``MatrixCompletion.generate`` (synthetic, with ground truth),
    ``MatrixCompletion.from_triplets`` or ``MatrixCompletion.from_dense`` (NaN =
    unobserved). Test error is the MSE on the unobserved entries and the
    relative Frobenius error, both against ``truth`` when it is known.

    Parameters
    ----------
    rows, cols : int arrays, shape=[k], indices of the observed entries (no duplicates).
    values : float array, shape=[k], finite observed values.
    shape : (m, n).
    truth : optional array, shape=[m, n], the full matrix X*.
    """

    def __init__(self, rows, cols, values, shape, truth=None):
        if not isinstance(shape, (tuple, list)) or len(shape) != 2:
            raise TypeError(f"shape must be a pair (m, n), got {shape!r}")
        m = check_positive_int(shape[0], "shape[0]")
        n = check_positive_int(shape[1], "shape[1]")
        rows = _as_index_array(rows, "rows")
        cols = _as_index_array(cols, "cols")
        values = as_real_array(values, "values")
        if values.ndim != 1:
            raise ValueError(f"values must be a 1-d array, got shape {values.shape}")
        if not (rows.size == cols.size == values.size):
            raise ValueError(
                f"rows, cols and values must have the same length, got {rows.size}, "
                f"{cols.size} and {values.size}"
            )
        if rows.size == 0:
            raise ValueError("at least one observed entry is needed, got zero observations")
        if np.any(~np.isfinite(values)):
            raise ValueError("values must be finite (found NaN or inf in the observations)")
        for name, idx, size in (("rows", rows, m), ("cols", cols, n)):
            bad = (idx < 0) | (idx >= size)
            if np.any(bad):
                raise ValueError(
                    f"{name} must lie in [0, {size}); found out-of-range index {int(idx[bad][0])}"
                )
        flat = rows * n + cols
        unique, counts = np.unique(flat, return_counts=True)
        if unique.size != flat.size:
            k = int(unique[counts > 1][0])
            raise ValueError(
                f"observed entries must be distinct; entry ({k // n}, {k % n}) is "
                f"observed {int(counts[counts > 1][0])} times"
            )
        self.shape = (m, n)
        self.rows, self.cols, self.values = rows, cols, values
        self.truth = None if truth is None else as_matrix(truth, "truth")
        if self.truth is not None and self.truth.shape != self.shape:
            raise ValueError(f"truth must have shape {self.shape}, got {self.truth.shape}")
        # Dense mask and observed values: the hot loop is one masked subtraction.
        self._mask = np.zeros(self.shape)
        self._mask[rows, cols] = 1.0
        self._observed = np.zeros(self.shape)
        self._observed[rows, cols] = values

    # -- constructors --------------------------------------------------------
    @classmethod
    def generate(
        cls,
        n: int,
        rank: int,
        observations: int,
        rng: np.random.Generator | int | None = None,
        m: int | None = None,
    ) -> MatrixCompletion:
        """Arora et al. 2019 ground truth and a uniformly random observed set.

        X* = U V^T / sqrt(r) with U (m x r), V (n x r) i.i.d. N(0, 1), rescaled so
        that ||X*||_F = sqrt(m n); ``observations`` entries drawn without replacement.
        """
        n = check_positive_int(n, "n")
        m = n if m is None else check_positive_int(m, "m")
        rank = check_positive_int(rank, "rank")
        if rank > min(m, n):
            raise ValueError(f"rank must be at most min(m, n) = {min(m, n)}, got {rank}")
        observations = check_positive_int(observations, "observations")
        if observations > m * n:
            raise ValueError(f"observations must be at most m * n = {m * n}, got {observations}")
        gen = as_rng(rng)
        u = gen.standard_normal((m, rank))
        v = gen.standard_normal((n, rank))
        truth = u @ v.T / np.sqrt(rank)
        truth *= np.sqrt(m * n) / np.linalg.norm(truth)
        flat = gen.choice(m * n, size=observations, replace=False)
        rows, cols = np.divmod(flat, n)
        return cls(rows, cols, truth[rows, cols], (m, n), truth)

    @classmethod
    def from_triplets(cls, rows, cols, values, shape=None, truth=None) -> MatrixCompletion:
        """From (row, col, value) triplets; ``shape`` defaults to (max row + 1, max col + 1)."""
        if shape is None:
            r = _as_index_array(rows, "rows")
            c = _as_index_array(cols, "cols")
            if r.size == 0 or c.size == 0:
                raise ValueError("at least one observed entry is needed, got zero observations")
            shape = (int(r.max()) + 1, int(c.max()) + 1)
        return cls(rows, cols, values, tuple(shape), truth)

    @classmethod
    def from_dense(cls, matrix, truth=None) -> MatrixCompletion:
        """From a dense matrix whose unobserved entries are NaN (inf is an error)."""
        array = as_real_array(matrix, "matrix")
        if array.ndim != 2 or 0 in array.shape:
            raise ValueError(f"matrix must be a non-empty 2-d array, got shape {array.shape}")
        if np.any(np.isinf(array)):
            raise ValueError("matrix must not contain inf; mark unobserved entries with NaN")
        rows, cols = np.nonzero(~np.isnan(array))
        return cls(rows, cols, array[rows, cols], array.shape, truth)

    # -- loss ----------------------------------------------------------------
    @property
    def count(self) -> int:
        return int(self.values.size)

    @property
    def mask(self) -> np.ndarray:
        """1 on observed entries, 0 elsewhere (a copy)."""
        return self._mask.copy()

    def residual_gradient(self, x: np.ndarray) -> np.ndarray:
        """P_Omega(X - X*)."""
        return self._mask * (x - self._observed)

    def hessian(self, x: np.ndarray, xdot: np.ndarray) -> np.ndarray:
        """P_Omega(Xdot)."""
        return self._mask * xdot

    def loss(self, x: np.ndarray) -> float:
        """1/2 ||P_Omega(X - X*)||^2."""
        r = self.residual_gradient(x)
        return 0.5 * float(np.vdot(r, r))

    # -- evaluation ----------------------------------------------------------
    def test_mse(self, x: np.ndarray) -> float:
        """Mean of (X - X*)^2 over the unobserved entries (NaN without truth or if none)."""
        unobserved = self._mask.size - self.count
        if self.truth is None or unobserved == 0:
            return float("nan")
        d = (1.0 - self._mask) * (x - self.truth)
        return float(np.vdot(d, d)) / unobserved

    def _spectral_matrix(self) -> np.ndarray:
        """(m n / |Omega|) P_Omega(X*), truncated to rank r by ``spectral_start``
        (Keshavan–Montanari–Oh 2010)."""
        return self._observed * (self._mask.size / self.count)
