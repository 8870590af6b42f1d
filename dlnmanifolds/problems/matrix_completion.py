"""Matrix completion: recover a low-rank matrix from a subset of its entries.

E(X) = 1/2 ||P_Omega(X - X*)||^2, E'(X) = P_Omega(X - X*), E''(X)[Xdot] = P_Omega(Xdot)
(math.md §9). The generator follows Arora, Cohen, Hu & Luo 2019 (official code,
gen_gt/gen_obs; math.md §9): U, V with i.i.d. N(0, 1) entries, X* = U V^T / sqrt(r)
rescaled to ||X*||_F = sqrt(m n) (= n when square, RMS entry 1), and Omega drawn
uniformly without replacement.

Omega is held as index arrays only. On factored points ``LowRank(u, s, vt)`` the
loss, the residual on Omega and E'(X) (a scipy.sparse CSR matrix, so that G V and
G^T U cost O(|Omega| r)) never form an m x n array; test errors use a held-out
index set or a factored truth (Vandereycken 2013, Sec. 4.1). Dense m x n inputs
(the full-rank geometries) get dense outputs.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from dlnmanifolds.core import _backend
from dlnmanifolds.core._validate import as_matrix, as_real_array, as_rng, check_positive_int
from dlnmanifolds.problems._objective import MatrixObjective
from dlnmanifolds.problems.lowrank import (
    LowRank,
    OmegaPattern,
    as_low_rank,
    dense,
    difference_norm,
    frobenius_norm,
    gather,
    normal_singular_pairs,
)


def _as_index_array(value: Any, name: str) -> np.ndarray:
    array = np.asarray(value)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array of indices, got shape {array.shape}")
    if array.dtype.kind == "c":
        raise TypeError(f"{name} must contain integer indices, got dtype {array.dtype}")
    if array.size and not np.issubdtype(array.dtype, np.integer):
        if not np.issubdtype(array.dtype, np.floating) or np.any(array != np.round(array)):
            raise TypeError(f"{name} must contain integer indices, got dtype {array.dtype}")
    return array.astype(np.int64)


def _as_values(value: Any, name: str) -> np.ndarray:
    array = as_real_array(value, name)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-d array, got shape {array.shape}")
    return array


def _check_entries(rows, cols, values, shape, what: str = "observed entries"):
    """Validate one index set; return it sorted in row-major (CSR) order."""
    m, n = shape
    if not (rows.size == cols.size == values.size):
        raise ValueError(
            f"rows, cols and values must have the same length, got {rows.size}, "
            f"{cols.size} and {values.size}"
        )
    if rows.size == 0:
        raise ValueError(f"at least one of the {what} is needed, got zero observations")
    if np.any(~np.isfinite(values)):
        raise ValueError(f"values must be finite (found NaN or inf in the {what})")
    for name, idx, size in (("rows", rows, m), ("cols", cols, n)):
        bad = (idx < 0) | (idx >= size)
        if np.any(bad):
            raise ValueError(
                f"{name} must lie in [0, {size}); found out-of-range index {int(idx[bad][0])}"
            )
    flat = rows * n + cols
    order = np.argsort(flat, kind="stable")
    flat = flat[order]
    repeated = np.flatnonzero(flat[1:] == flat[:-1])
    if repeated.size:
        k = int(flat[repeated[0]])
        times = int(np.count_nonzero(flat == k))
        raise ValueError(
            f"{what} must be distinct; entry ({k // n}, {k % n}) is observed {times} times"
        )
    return rows[order], cols[order], values[order], flat


def _as_truth(truth: Any, shape: tuple[int, int]):
    if truth is None:
        return None
    low = as_low_rank(truth)
    if low is not None:
        if low.shape != shape:
            raise ValueError(f"truth must have shape {shape}, got {low.shape}")
        if not low.is_finite():
            raise ValueError("truth must be finite")
        return low
    truth = as_matrix(truth, "truth")
    if truth.shape != shape:
        raise ValueError(f"truth must have shape {shape}, got {truth.shape}")
    return truth


class _Residual:
    """The residual X - X* on Omega of the last factored point (held by identity).

    Pymanopt evaluates the cost and the gradient at the same point objects and the
    runner then asks for the train MSE: one gather serves all three. The entry
    keeps references to the arrays, so an id cannot be recycled while it is held,
    and is one tuple, replaced atomically (safe under threads).
    """

    __slots__ = ("entry",)

    def __init__(self):
        self.entry: tuple | None = None

    def get(self, x: LowRank):
        entry = self.entry
        if entry is not None and entry[0] is x.u and entry[1] is x.s and entry[2] is x.vt:
            return entry[3]
        return None

    def put(self, x: LowRank, value: np.ndarray) -> None:
        # The last slot holds (G V, G^T U) once computed, for this very entry.
        self.entry = (x.u, x.s, x.vt, value, [None])

    def products(self, x: LowRank):
        entry = self.entry
        if entry is not None and entry[0] is x.u and entry[1] is x.s and entry[2] is x.vt:
            return entry[4]
        return None


class MatrixCompletion(MatrixObjective):
    """Observed entries (rows[k], cols[k]) = values[k] of an m x n matrix.

    Build one with ``MatrixCompletion.generate`` (synthetic, with a factored ground
    truth), ``from_triplets``, ``from_dense`` (NaN = unobserved) or ``from_file``
    (CSV/TSV/whitespace triplets, Matrix Market). ``split`` holds out a test set.
    Test error (``test_mse``) is the MSE on the held-out entries when there are
    some, else on the unobserved entries against ``truth``; ``relative_error`` is
    ||X - X*||_F / ||X*||_F. Points may be m x n arrays or ``LowRank(u, s, vt)``;
    on the latter everything costs O(|Omega| r + (m + n) r^2).

    Parameters
    ----------
    rows, cols : int arrays, shape=[k], indices of the observed entries (no duplicates).
    values : float array, shape=[k], finite observed values.
    shape : (m, n).
    truth : optional, the full matrix X*: an m x n array or a factored ``(u, s, vt)``.
    heldout : optional ``(rows, cols, values)`` test entries, disjoint from Omega.

    The entries are stored sorted row-major (the order of a CSR matrix).

    Example
    -------
    >>> truth = np.outer([1.0, 2.0], [1.0, 1.0, 3.0])
    >>> data = MatrixCompletion.from_dense(np.where([[1, 0, 1], [1, 1, 0]], truth, np.nan),
    ...                                    truth=truth)
    >>> data.count, data.train_mse(truth), data.test_mse(np.zeros((2, 3)))
    (4, 0.0, 18.5)
    >>> mc = MatrixCompletion.generate(50, 2, 600, rng=0)
    >>> x = mc.spectral_factors(2)          # LowRank(u, s, vt), no 50 x 50 array
    >>> x.u.shape, x.s.shape, x.vt.shape
    ((50, 2), (2,), (2, 50))
    """

    def __init__(self, rows, cols, values, shape, truth=None, heldout=None):
        if not isinstance(shape, (tuple, list)) or len(shape) != 2:
            raise TypeError(f"shape must be a pair (m, n), got {shape!r}")
        m = check_positive_int(shape[0], "shape[0]")
        n = check_positive_int(shape[1], "shape[1]")
        self.shape = (m, n)
        rows, cols, values, flat = _check_entries(
            _as_index_array(rows, "rows"),
            _as_index_array(cols, "cols"),
            _as_values(values, "values"),
            self.shape,
        )
        self.rows, self.cols, self.values = rows, cols, values
        self._truth = _as_truth(truth, self.shape)
        self._heldout = None
        if heldout is not None:
            if not isinstance(heldout, (tuple, list)) or len(heldout) != 3:
                raise TypeError("heldout must be a triple (rows, cols, values)")
            hr, hc, hv, hflat = _check_entries(
                _as_index_array(heldout[0], "heldout rows"),
                _as_index_array(heldout[1], "heldout cols"),
                _as_values(heldout[2], "heldout values"),
                self.shape,
                "held-out entries",
            )
            common = np.intersect1d(flat, hflat, assume_unique=True)
            if common.size:
                k = int(common[0])
                raise ValueError(
                    f"heldout must be disjoint from the observed entries; entry "
                    f"({k // n}, {k % n}) is in both"
                )
            self._heldout = (hr, hc, hv)
        # CSR structure of Omega: E'(X) is csr((residual, cols, indptr)) with no sorting.
        self._indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=m))])
        self._cache = _Residual()
        self._patterns = None
        self._truth_on_omega = None
        if self._truth is not None:
            self._truth_on_omega = self._entries(self._truth, rows, cols)

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
        that ||X*||_F = sqrt(m n); ``observations`` entries drawn without
        replacement. X* is kept factored (its thin SVD), never as an m x n array.
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
        # Thin SVD of U V^T / sqrt(r) from QRs of the factors: O((m + n) r^2).
        qu, ru = np.linalg.qr(u)
        qv, rv = np.linalg.qr(v)
        a, s, bt = np.linalg.svd(ru @ rv.T / np.sqrt(rank))
        s = s * (np.sqrt(m * n) / np.linalg.norm(s))
        truth = LowRank(qu @ a, s, bt @ qv.T)
        # Generator.choice permutes all m n indices: fine when small (and seed-stable).
        if m * n <= 4_000_000 or observations * 4 > m * n:
            flat = gen.choice(m * n, size=observations, replace=False)
        else:
            flat = _sample_without_replacement(gen, m * n, observations)
        rows, cols = np.divmod(flat, n)
        return cls(rows, cols, gather(truth, rows, cols), (m, n), truth)

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

    @classmethod
    def from_file(
        cls,
        path: str | os.PathLike,
        one_based: bool | None = None,
        shape: tuple[int, int] | None = None,
    ) -> MatrixCompletion:
        """Read observed entries from a file.

        * ``.mtx``: Matrix Market coordinate format (``scipy.io.mmread``; 1-based by
          the format's definition, ``one_based`` is ignored);
        * anything else: one ``row col value`` triplet per line, separated by commas,
          tabs or whitespace, extra columns ignored (MovieLens ``u.data``: user, item,
          rating, timestamp). Blank lines and lines starting with ``#`` or ``%`` are
          skipped, and so is a first line that is a header (non-numeric).

        ``one_based``: True for 1-based indices, False for 0-based, None to detect
        (1-based exactly when no index is 0). ``shape`` defaults to the largest
        indices + 1. Every bad line (too few columns, a non-integer index, a
        non-finite value, an index out of range, a repeated (row, col)) raises
        ValueError naming the file and the line.
        """
        from dlnmanifolds.problems._files import read_entries

        rows, cols, values, shape = read_entries(path, one_based, shape)
        return cls(rows, cols, values, shape)

    def split(
        self, fraction: float, rng: np.random.Generator | int | None = None
    ) -> tuple[MatrixCompletion, MatrixCompletion]:
        """Hold out a uniformly random ``fraction`` of the observed entries.

        Returns (train, test): ``train`` keeps the other entries and scores
        ``test_mse`` on the held-out ones; ``test`` holds the held-out entries.
        Both keep ``truth``.
        """
        if isinstance(fraction, bool) or not isinstance(fraction, (int, float, np.floating)):
            raise TypeError(f"fraction must be a number in (0, 1), got {fraction!r}")
        fraction = float(fraction)
        if not (np.isfinite(fraction) and 0.0 < fraction < 1.0):
            raise ValueError(f"fraction must lie in (0, 1), got {fraction}")
        k = self.count
        held = int(round(fraction * k))
        if held < 1 or held > k - 1:
            raise ValueError(
                f"fraction {fraction} of {k} observed entries leaves an empty train or "
                f"test set ({held} held out)"
            )
        perm = as_rng(rng).permutation(k)
        test, train = perm[:held], perm[held:]
        test_set = (self.rows[test], self.cols[test], self.values[test])
        train_problem = MatrixCompletion(
            self.rows[train],
            self.cols[train],
            self.values[train],
            self.shape,
            self._truth,
            heldout=test_set,
        )
        return train_problem, MatrixCompletion(*test_set, self.shape, self._truth)

    # -- data ----------------------------------------------------------------
    @property
    def count(self) -> int:
        return int(self.values.size)

    @property
    def truth(self) -> np.ndarray | None:
        """X* as an m x n array (densifies a factored truth: small problems only)."""
        return None if self._truth is None else dense(self._truth)

    @property
    def truth_factors(self) -> LowRank | None:
        """X* as a ``LowRank`` when it was given factored (``generate``), else None."""
        return self._truth if isinstance(self._truth, LowRank) else None

    @property
    def heldout(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """The held-out (rows, cols, values), or None."""
        return self._heldout

    @property
    def mask(self) -> np.ndarray:
        """1 on observed entries, 0 elsewhere (an m x n array: small problems only)."""
        out = np.zeros(self.shape)
        out[self.rows, self.cols] = 1.0
        return out

    @staticmethod
    def _entries(x, rows, cols) -> np.ndarray:
        low = as_low_rank(x)
        if low is not None:
            return gather(low, rows, cols)
        return np.asarray(x, dtype=np.float64)[rows, cols]

    def _check_shape(self, x) -> None:
        if tuple(np.shape(x) if as_low_rank(x) is None else as_low_rank(x).shape) != self.shape:
            raise ValueError(f"x must have shape {self.shape}")

    # -- loss ----------------------------------------------------------------
    def residual(self, x) -> np.ndarray:
        """(X - X*) on Omega, shape [k], in ``rows``/``cols`` order; O(|Omega| r) on a LowRank.

        The last factored point's residual is cached (by the identity of u, s, vt)."""
        low = as_low_rank(x)
        if low is None:
            _reject_tensor(x, "x")
            return np.asarray(x, dtype=np.float64)[self.rows, self.cols] - self.values
        _reject_tensor(low.u, "x.u")
        if low.shape != self.shape:
            raise ValueError(f"x must have shape {self.shape}, got {low.shape}")
        cached = self._cache.get(low)
        if cached is None:
            cached = gather(low, self.rows, self.cols) - self.values
            self._cache.put(low, cached)
        return cached

    def gradient_matrix(self, x) -> scipy.sparse.csr_matrix:
        """E'(X) = P_Omega(X - X*) as a CSR matrix (G @ V, G.T @ U cost O(|Omega| r))."""
        return scipy.sparse.csr_matrix(
            (self.residual(x), self.cols, self._indptr), shape=self.shape
        )

    def gradient_products(self, x) -> tuple[np.ndarray, np.ndarray]:
        """(E'(X) V, E'(X)^T U) at a factored X = U S V^T in O(|Omega| r), cached with
        the residual (the geometry's gradient and RankAdaptive's rank test share them)."""
        low = as_low_rank(x)
        if low is None:
            raise TypeError(f"x must be a factored LowRank, got {type(x).__name__}")
        self.residual(low)
        slot = self._cache.products(low)
        if slot is not None and slot[0] is not None:
            return slot[0]
        g, gt = self._gradient_pair(low)
        products = (g @ low.vt.T, gt @ low.u)
        if slot is not None:
            slot[0] = products
        return products

    def _gradient_pair(self, x: LowRank):
        """E'(X) and E'(X)^T, both CSR, for internal products only (not returned to
        users): the sparsity patterns are built once (``OmegaPattern``) and only
        their data is set per call."""
        if self._patterns is None:
            self._patterns = OmegaPattern(self.rows, self.cols, self.shape)
        r = self.residual(x)
        return self._patterns.matrix(r), self._patterns.matrix_t(r)

    def to(self, device: Any = None, dtype: Any = None) -> CompletionTensors:
        """This problem's Omega, values, held-out set and factored truth as torch
        tensors on ``device`` (a ``torch.device`` or a string; default CPU), values in
        ``dtype`` (torch.float32 or torch.float64, the default).

        Like ``torch.Tensor.to``, it returns a new object (a ``CompletionTensors``;
        this problem is unchanged): one copy host -> device here, none afterwards.
        Its ``loss`` is differentiable (autograd) and never forms an m x n array,
        so a PyTorch loop on ``dlnmanifolds.geoopt.DLNFixedRank`` trains in
        O(|Omega| r) per step. Needs the torch extra.

        Example
        -------
        (Needs torch: skipped by the package's doctests, run by ``tests/torch_backend``.)

        >>> import torch  # doctest: +SKIP
        >>> data = MatrixCompletion.generate(30, 2, 300, rng=0).to("cpu")  # doctest: +SKIP
        >>> data.rows.dtype, data.values.dtype, data.count  # doctest: +SKIP
        (torch.int64, torch.float64, 300)
        """
        return CompletionTensors(self, device, dtype)

    def residual_gradient(self, x) -> np.ndarray:
        """P_Omega(X - X*) as an m x n array (the full-rank geometries)."""
        out = np.zeros(self.shape)
        out[self.rows, self.cols] = self.residual(x)
        return out

    def hessian_matrix(self, x, xdot) -> scipy.sparse.csr_matrix:
        """E''(X)[Xdot] = P_Omega(Xdot) as a CSR matrix; a factored ``LowRank`` Xdot
        (a tangent vector [U M + U_p, U] [V, V_p]^T) is gathered on Omega in
        O(|Omega| r), never densified."""
        return scipy.sparse.csr_matrix(
            (self._entries(xdot, self.rows, self.cols), self.cols, self._indptr), shape=self.shape
        )

    def hessian(self, x, xdot) -> np.ndarray:
        """P_Omega(Xdot), an m x n array."""
        out = np.zeros(self.shape)
        out[self.rows, self.cols] = self._entries(xdot, self.rows, self.cols)
        return out

    def loss(self, x) -> float:
        """1/2 ||P_Omega(X - X*)||^2."""
        r = self.residual(x)
        return 0.5 * float(np.dot(r, r))

    # -- evaluation ----------------------------------------------------------
    def test_mse(self, x) -> float:
        """Mean of (X - X*)^2 on the held-out entries, else on the unobserved entries
        against ``truth`` (NaN when neither is available or nothing is unobserved)."""
        if self._heldout is not None:
            hr, hc, hv = self._heldout
            d = self._entries(x, hr, hc) - hv
            return float(np.dot(d, d)) / d.size
        m, n = self.shape
        unobserved = m * n - self.count
        if self._truth is None or unobserved == 0:
            return float("nan")
        if as_low_rank(x) is None:  # dense: zero Omega out of X - X* exactly
            d = np.asarray(x, dtype=np.float64) - dense(self._truth)
            d[self.rows, self.cols] = 0.0
            return float(np.vdot(d, d)) / unobserved
        on_omega = self._entries(x, self.rows, self.cols) - self._truth_on_omega
        return _unobserved_mse(self._difference_norm(x), on_omega, unobserved)

    def _difference_norm(self, x) -> float:
        low = as_low_rank(x)
        if low is not None and isinstance(self._truth, LowRank):
            return difference_norm(low, self._truth)
        return float(np.linalg.norm(dense(x) - dense(self._truth)))

    def relative_error(self, x) -> float:
        """||X - X*||_F / ||X*||_F (NaN without truth); factored when both are."""
        if self._truth is None:
            return float("nan")
        norm = (
            frobenius_norm(self._truth)
            if isinstance(self._truth, LowRank)
            else float(np.linalg.norm(self._truth))
        )
        return self._difference_norm(x) / norm

    # -- spectral start ------------------------------------------------------
    def _spectral_operator(self) -> scipy.sparse.csr_matrix:
        """(m n / |Omega|) P_Omega(X*) as a sparse matrix (Keshavan-Montanari-Oh 2010)."""
        m, n = self.shape
        return scipy.sparse.csr_matrix(
            (self.values * (m * n / self.count), self.cols, self._indptr), shape=self.shape
        )

    def _spectral_matrix(self) -> np.ndarray:
        return self._spectral_operator().toarray()

    def spectral_factors(self, rank: int) -> LowRank:
        """The rank-r truncated SVD of (m n / |Omega|) P_Omega(X*), by
        ``scipy.sparse.linalg.svds`` (no m x n array, no full SVD)."""
        rank = self._check_rank(rank)
        if rank >= min(self.shape) - 1:  # ARPACK needs k < min(m, n); tiny problems
            return super().spectral_factors(rank)
        u, s, vt = scipy.sparse.linalg.svds(self._spectral_operator(), k=rank, rng=0)
        order = np.argsort(s)[::-1]
        return LowRank(u[:, order], s[order], vt[order])

    def spectral_values(self, count: int) -> np.ndarray:
        """The ``count`` leading singular values of (m n / |Omega|) P_Omega(X*) (svds)."""
        count = self._check_rank(count)
        if count >= min(self.shape) - 1:
            return super().spectral_values(count)
        s = scipy.sparse.linalg.svds(
            self._spectral_operator(), k=count, return_singular_vectors=False, rng=0
        )
        return np.sort(s)[::-1]


class CompletionTensors:
    """A ``MatrixCompletion``'s data as torch tensors on one device (``problem.to``).

    Holds Omega (``rows``, ``cols``: int64, sorted row-major), ``values``, the
    held-out set and the truth (factored when the problem's is) as tensors on
    ``device`` in ``dtype``, and evaluates the matrix-completion loss of a factored
    point X = U diag(s) V^T, a ``LowRank(u, s, vt)`` of tensors on that device,
    in O(|Omega| r + (m + n) r^2), never forming an m x n array:

    - ``loss(x)`` = 1/2 ||P_Omega(X - X*)||^2 as a 0-d tensor, differentiable by
      ``torch.autograd`` with respect to u, s and vt: the backward pass is
      dE/dU = (G V) diag(s), dE/ds = diag(U^T G V), dE/dV^T = diag(s) U^T G with
      G = P_Omega(X - X*) a sparse CSR tensor (Vandereycken 2013, Sec. 4.1; two
      sparse products, no (|Omega|, r) temporaries kept for backward);
    - ``residual``, ``gradient_matrix`` (G as ``torch.sparse_csr_tensor``),
      ``gradient_products`` (G V, G^T U), ``train_mse``, ``test_mse``,
      ``relative_error`` as on ``MatrixCompletion`` (same formulas, same kernels);
    - ``normal_singular_pairs(x, k)``: the rank-increase direction of Gao & Absil
      2022 (the top pairs of the normal part of G, ``lowrank.normal_singular_pairs``).

    A numpy point, a tensor on another device or of another dtype is a TypeError
    naming the argument.

    Example
    -------
    (Needs torch: skipped by the package's doctests, run by ``tests/torch_backend``.)

    >>> import torch  # doctest: +SKIP
    >>> from dlnmanifolds.geoopt import DLNFixedRank  # doctest: +SKIP
    >>> data = MatrixCompletion.generate(40, 2, 500, rng=0).to()  # doctest: +SKIP
    >>> manifold = DLNFixedRank(40, 40, 2, depth=3)  # doctest: +SKIP
    >>> point = manifold.random(generator=torch.Generator().manual_seed(0))  # doctest: +SKIP
    >>> _ = point.requires_grad_(True)  # doctest: +SKIP
    >>> u, s, v = manifold.factors(point)  # doctest: +SKIP
    >>> loss = data.loss(LowRank(u, s, v.T))  # doctest: +SKIP
    >>> loss.backward()  # doctest: +SKIP
    >>> tuple(point.grad.shape)  # doctest: +SKIP
    (82, 2)
    """

    def __init__(self, problem: MatrixCompletion, device: Any = None, dtype: Any = None):
        import torch

        dtype = torch.float64 if dtype is None else dtype
        if dtype not in (torch.float32, torch.float64):
            raise TypeError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        self.device = torch.device("cpu" if device is None else device)
        self.dtype = dtype
        self.shape = problem.shape

        def index(a):
            return torch.as_tensor(a, dtype=torch.int64, device=self.device)

        def real(a):
            return torch.as_tensor(a, dtype=dtype, device=self.device)

        self.rows, self.cols, self.values = (
            index(problem.rows),
            index(problem.cols),
            real(problem.values),
        )
        self.pattern = OmegaPattern(self.rows, self.cols, self.shape)
        held = problem.heldout
        self.heldout = None if held is None else (index(held[0]), index(held[1]), real(held[2]))
        truth = problem._truth
        if isinstance(truth, LowRank):
            self.truth = LowRank(real(truth.u), real(truth.s), real(truth.vt))
            self._truth_on_omega = gather(self.truth, self.rows, self.cols)
        elif truth is not None:  # a dense m x n truth (small problems)
            self.truth = real(truth)
            self._truth_on_omega = self.truth[self.rows, self.cols]
        else:
            self.truth, self._truth_on_omega = None, None

    @property
    def count(self) -> int:
        return int(self.values.shape[0])

    def __repr__(self) -> str:
        return (
            f"CompletionTensors(shape={self.shape}, count={self.count}, "
            f"device={self.device}, dtype={self.dtype})"
        )

    def _point(self, x, name: str = "x") -> LowRank:
        import torch

        if not isinstance(x, (tuple, list)) or len(x) != 3:
            raise TypeError(
                f"{name} must be a factored LowRank(u, s, vt) of torch tensors, got "
                f"{type(x).__name__}"
            )
        x = LowRank(*x)
        for part, value in zip(("u", "s", "vt"), x):
            label = f"{name}.{part}"
            if not isinstance(value, torch.Tensor):
                raise TypeError(
                    f"{label} must be a torch tensor on {self.device} (this problem holds "
                    f"its data as tensors; use the numpy MatrixCompletion for numpy "
                    f"points), got {_describe(value)}"
                )
            if value.device != self.device:
                raise TypeError(
                    f"{label} is on device {value.device} but this problem's data is on "
                    f"{self.device}; move one of them"
                )
            if value.dtype != self.dtype:
                raise TypeError(
                    f"{label} must have this problem's dtype {self.dtype}, got {value.dtype}"
                )
        m, n = self.shape
        r = x.s.shape[0] if x.s.ndim == 1 else -1
        if x.u.shape != (m, r) or x.vt.shape != (r, n):
            raise ValueError(
                f"{name} must be u ({m}, r), s (r,), vt (r, {n}); got shapes "
                f"{tuple(x.u.shape)}, {tuple(x.s.shape)}, {tuple(x.vt.shape)}"
            )
        return x

    # -- loss ----------------------------------------------------------------
    def residual(self, x):
        """(X - X*) on Omega, shape [k], in ``rows``/``cols`` order (not differentiable)."""
        x = self._point(x)
        return gather(x, self.rows, self.cols) - self.values

    def loss(self, x):
        """1/2 ||P_Omega(X - X*)||^2, a differentiable 0-d tensor (see the class docs)."""
        x = self._point(x)
        return _completion_loss().apply(x.u, x.s, x.vt, self)

    def train_mse(self, x) -> float:
        """Mean of (X - X*)^2 on Omega."""
        r = self.residual(x)
        return float(r @ r) / self.count

    def gradient_matrix(self, x):
        """E'(X) = P_Omega(X - X*) as a ``torch.sparse_csr_tensor`` (m, n)."""
        return self.pattern.matrix(self.residual(x))

    def gradient_products(self, x):
        """(E'(X) V, E'(X)^T U) at X = U S V^T, O(|Omega| r)."""
        x = self._point(x)
        return self.pattern.products(self.residual(x), x.u, x.vt.T)

    # -- evaluation ----------------------------------------------------------
    def test_mse(self, x) -> float:
        """As ``MatrixCompletion.test_mse``: held-out entries, else the unobserved
        entries against the truth (factored: O((m + n) r^2 + |Omega| r))."""
        x = self._point(x)
        if self.heldout is not None:
            hr, hc, hv = self.heldout
            d = gather(x, hr, hc) - hv
            return float(d @ d) / d.shape[0]
        m, n = self.shape
        unobserved = m * n - self.count
        if self.truth is None or unobserved == 0:
            return float("nan")
        on_omega = gather(x, self.rows, self.cols) - self._truth_on_omega
        return _unobserved_mse(self._difference_norm(x), on_omega, unobserved)

    def _difference_norm(self, x: LowRank) -> float:
        if isinstance(self.truth, LowRank):
            return difference_norm(x, self.truth)
        return float((x.to_dense() - self.truth).square().sum().sqrt())

    def relative_error(self, x) -> float:
        """||X - X*||_F / ||X*||_F (NaN without truth)."""
        x = self._point(x)
        if self.truth is None:
            return float("nan")
        norm = (
            frobenius_norm(self.truth)
            if isinstance(self.truth, LowRank)
            else float(self.truth.square().sum().sqrt())
        )
        return self._difference_norm(x) / norm

    # -- rank increase -------------------------------------------------------
    def normal_singular_pairs(self, x, k: int, seed: int = 0):
        """The k top singular triplets (a, sigma, bt) of (I - UU^T) E'(X) (I - VV^T),
        as tensors (``lowrank.normal_singular_pairs``; U, V of x orthonormal)."""
        x = self._point(x)
        r = self.residual(x)
        return normal_singular_pairs(
            self.pattern.matrix(r),
            x.u,
            x.vt.T,
            k,
            gradient_t=self.pattern.matrix_t(r),
            seed=seed,
        )


_LOSS_FUNCTION = None


def _completion_loss():
    """The autograd Function of ``CompletionTensors.loss`` (built on first use, so
    that this module imports without torch)."""
    global _LOSS_FUNCTION
    if _LOSS_FUNCTION is not None:
        return _LOSS_FUNCTION
    import torch

    class CompletionLoss(torch.autograd.Function):
        @staticmethod
        def forward(ctx, u, s, vt, data):
            r = gather(LowRank(u, s, vt), data.rows, data.cols) - data.values
            ctx.save_for_backward(u, s, vt, r)
            ctx.data = data
            return 0.5 * (r @ r)

        @staticmethod
        def backward(ctx, grad):
            u, s, vt, r = ctx.saved_tensors
            gv, gtu = ctx.data.pattern.products(r, u, vt.T)
            du = gv * (grad * s) if ctx.needs_input_grad[0] else None
            ds = grad * (u * gv).sum(0) if ctx.needs_input_grad[1] else None
            dvt = (gtu * (grad * s)).T if ctx.needs_input_grad[2] else None
            return du, ds, dvt, None

    _LOSS_FUNCTION = CompletionLoss
    return _LOSS_FUNCTION


def _reject_tensor(value: Any, name: str) -> None:
    if _backend._is_torch(value):
        raise TypeError(
            f"{name} is a torch tensor but this MatrixCompletion holds numpy arrays; use "
            f"problem.to(device=..., dtype=...) for a tensor problem"
        )


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"a numpy array of dtype {value.dtype}"
    return type(value).__name__


def _unobserved_mse(difference_norm_value: float, on_omega, unobserved: int) -> float:
    """Mean of (X - X*)^2 off Omega from ||X - X*||_F (factored, stable, O((m + n) r^2))
    minus the part on Omega, ``on_omega`` = (X - X*) there (numpy or torch); the
    subtraction loses ~ eps ||X - X*||^2 / (m n - |Omega|) absolutely."""
    on = float(on_omega @ on_omega)
    return max(difference_norm_value**2 - on, 0.0) / unobserved


def _sample_without_replacement(gen: np.random.Generator, size: int, k: int) -> np.ndarray:
    """k distinct integers in [0, size), uniformly, in O(k) memory (k <= size / 4).

    Rejection: draw with replacement, keep first occurrences, top up.
    """
    chosen = np.empty(0, dtype=np.int64)
    while chosen.size < k:
        draw = gen.integers(0, size, size=int(1.1 * (k - chosen.size)) + 16)
        merged = np.concatenate([chosen, draw])
        _, first = np.unique(merged, return_index=True)
        chosen = merged[np.sort(first)]
    return chosen[:k]
