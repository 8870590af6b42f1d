"""The DLN operator A_{N,X}, its inverse, square root, and the metric g^N.

A_{N,X}(Z) = sum_{p=1}^N (X X^T)^{(N-p)/N} Z (X^T X)^{(p-1)/N}
(Arora, Cohen & Hazan 2018, Thm 1; Menon 2024, Thms 1-2; math.md §3.1).
In the SVD frame X = U Sigma V^T it is diagonal with eigenvalues
K_ij = kappa(sigma^U_i, sigma^V_j) (math.md §3.2), which is how every
function here evaluates it: one SVD and four matrix products.

g^N_X(Y, Z) = tr(Y^T A^{-1}(Z)) (math.md §4.1; Bah et al. 2019).

``depth=math.inf`` is the time-rescaled limit A_inf = lim A_{N,X}/N, with kernel
the logarithmic mean (``kernel.log_mean_kernel``), and g^inf = lim N g^N
(Cohen, Menon & Veraszto 2022; math.md §4.6):
A_inf(Z) = int_0^1 (X X^T)^{1-t} Z (X^T X)^t dt.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from dlnmanifolds.core import _backend
from dlnmanifolds.core._validate import as_matrix, check_depth, check_positive_int
from dlnmanifolds.core.kernel import kernel_matrix

# Singular values below this fraction of the largest are treated as round-off
# zeros (math.md §3.3: a 1e-16 "zero" leaks into A at the level 1e-16^{2/N}).
RANK_RTOL = 1e-13


def _t(a: np.ndarray) -> np.ndarray:
    # The array method exists on numpy arrays and torch tensors alike.
    return a.swapaxes(-1, -2)


class SVDFrame(NamedTuple):
    """Full SVD X = U diag(s) V^T with U (m, m), s (min(m, n),), V (n, n).

    numpy arrays or torch tensors (of the point's dtype and device)."""

    u: np.ndarray
    s: np.ndarray
    v: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (self.u.shape[-1], self.v.shape[-1])

    def to_frame(self, z: np.ndarray) -> np.ndarray:
        """U^T Z V."""
        return _t(self.u) @ z @ self.v

    def from_frame(self, z: np.ndarray) -> np.ndarray:
        """U Z V^T."""
        return self.u @ z @ _t(self.v)


def svd_frame(x: np.ndarray, rank: int | None = None) -> SVDFrame:
    """Full SVD of x; singular values beyond ``rank`` are set to exactly 0.

    numpy or torch (``torch.linalg.svd``: CPU LAPACK, or cuSOLVER on CUDA).
    """
    u, s, vt = _backend.namespace(x).linalg.svd(x, full_matrices=True)
    if rank is not None:
        s = _backend.copy(s)
        s[..., rank:] = 0.0
    return SVDFrame(u, s, _t(vt))


def numerical_rank(s: np.ndarray, rtol: float = RANK_RTOL) -> int:
    """Number of singular values above rtol * max (for one matrix; ``s`` decreasing,
    a numpy array or a torch tensor; a Python int)."""
    if s.shape[0] == 0 or not bool(s[0] > 0):
        return 0
    return int((s > rtol * s[0]).sum())


def _operator_in_frame(frame: SVDFrame, z: np.ndarray, depth: int, power: float) -> np.ndarray:
    k = kernel_matrix(frame.s, frame.shape, depth)
    return frame.from_frame(k**power * frame.to_frame(z))


def _check_pair(w, z, depth, name_z="z", allow_inf=True):
    _backend.namespace(w, z, names=("W", name_z))
    w = as_matrix(w, "W", batch=True)
    z = as_matrix(z, name_z, batch=True)
    if z.shape[-2:] != w.shape[-2:]:
        raise ValueError(
            f"{name_z} must have the same matrix shape as W {w.shape[-2:]}, got {z.shape[-2:]}"
        )
    return w, z, check_depth(depth, allow_inf=allow_inf)


def check_infinite_depth_square(shape: tuple[int, int], depth, what: str) -> None:
    """g^inf needs m = n: kappa_inf(sigma, 0) = 0 makes A_inf vanish on the off-square
    block (kappa_N(sigma, 0)/N = sigma^{2(N-1)/N}/N -> 0), so its metric is infinite there."""
    m, n = shape
    if depth == math.inf and m != n:
        raise ValueError(
            f"depth=math.inf needs square matrices for {what}: A_inf is zero on the "
            f"off-square block of a {m}x{n} matrix (kappa_inf(sigma, 0) = 0), so g^inf is "
            f"infinite there; got shape {(m, n)}"
        )


def _check_rank(rank, w):
    if rank is None:
        return None
    rank = check_positive_int(rank, "rank")
    if rank > min(w.shape[-2:]):
        raise ValueError(f"rank must be at most min(m, n) = {min(w.shape[-2:])}, got {rank}")
    return rank


def _check_full_rank(s: np.ndarray, name: str, what: str = "", rank: int | None = None) -> None:
    """Raise unless the first ``rank`` (default all) singular values in ``s`` (batched,
    decreasing) exceed RANK_RTOL times the largest."""
    k = s.shape[-1] if rank is None else rank
    smax = s[..., 0]
    bad = (smax == 0) | (s[..., k - 1] <= RANK_RTOL * smax)
    xp = _backend.namespace(s)
    if bool(xp.any(bad)):
        ratio = float(xp.min(s[..., k - 1] / xp.where(smax > 0, smax, 1.0)))
        context = f" ({what})" if what else ""
        raise ValueError(
            f"{name} must have full rank {k}{context}: its smallest singular value is "
            f"{ratio:.3g} times its largest (need > {RANK_RTOL:g})"
        )


def require_full_rank(
    x: np.ndarray, name: str, what: str = "", rank: int | None = None
) -> np.ndarray:
    """Singular values of ``x`` (batched); ValueError naming ``name`` if rank deficient."""
    s = _backend.svdvals(x)
    _check_full_rank(s, name, what, rank)
    return s


def dln_operator(W: np.ndarray, Z: np.ndarray, depth: int, rank: int | None = None) -> np.ndarray:
    """A_{N,W}(Z) = U (K ∘ U^T Z V) V^T (math.md §3.1–3.2).

    Works for any rank; pass ``rank`` to zero round-off singular values
    (math.md §3.3). Batch axes are allowed in front of the matrix axes.
    ``depth=math.inf``: A_inf = lim A_{N,W}/N (math.md §4.6).

    ``W`` and ``Z`` are numpy arrays (float64) or torch tensors (float32/float64,
    one device); the result has their kind. float32 loses accuracy where the SVD
    does: singular vectors of nearly repeated singular values, and relative error
    ~1e-6 * sigma_max / sigma in the directions of small sigma.

    Example
    -------
    >>> x = np.diag([4.0, 1.0])
    >>> dln_operator(x, np.eye(2), 2)  # K_ii = 2 sigma_i
    array([[8., 0.],
           [0., 2.]])
    """
    W, Z, depth = _check_pair(W, Z, depth)
    return _operator_in_frame(svd_frame(W, _check_rank(rank, W)), Z, depth, 1.0)


def dln_operator_inverse(W: np.ndarray, Z: np.ndarray, depth: int) -> np.ndarray:
    """A_{N,W}^{-1}(Z) = U ((U^T Z V) / K) V^T; W must have full rank (math.md §4.1).

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds import dln_operator, dln_operator_inverse
    >>> rng = np.random.default_rng(0)
    >>> X, Z = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    >>> bool(np.allclose(dln_operator_inverse(X, dln_operator(X, Z, 3), 3), Z))
    True
    """
    W, Z, depth = _check_pair(W, Z, depth)
    check_infinite_depth_square(W.shape[-2:], depth, "dln_operator_inverse")
    frame = svd_frame(W)
    _check_full_rank(frame.s, "W", "for dln_operator_inverse")
    return _operator_in_frame(frame, Z, depth, -1.0)


def dln_operator_sqrt(
    W: np.ndarray, Z: np.ndarray, depth: int, rank: int | None = None
) -> np.ndarray:
    """A_{N,W}^{1/2}(Z) = U (sqrt(K) ∘ U^T Z V) V^T, the Langevin noise map (math.md §8.3).

    Example
    -------
    Applied twice it is A_{N,X}:

    >>> import numpy as np
    >>> from dlnmanifolds import dln_operator, dln_operator_sqrt
    >>> rng = np.random.default_rng(0)
    >>> X, Z = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    >>> half = dln_operator_sqrt(X, Z, 3)
    >>> bool(np.allclose(dln_operator_sqrt(X, half, 3), dln_operator(X, Z, 3)))
    True
    """
    W, Z, depth = _check_pair(W, Z, depth)
    return _operator_in_frame(svd_frame(W, _check_rank(rank, W)), Z, depth, 0.5)


def dln_inner(W: np.ndarray, Z1: np.ndarray, Z2: np.ndarray, depth: int) -> np.ndarray | float:
    """g^N_W(Z1, Z2) = sum_ij (U^T Z1 V)_ij (U^T Z2 V)_ij / K_ij (math.md §4.1).

    Full-rank W only (for rank r use ``DLNFixedRank``). Returns one number per
    batch entry.

    Example
    -------
    g^N is Frobenius at depth 1, and the gradient A_{N,X}(E') represents the differential:
    g^N_X(A_{N,X}(Z), Y) = <Z, Y>:

    >>> import numpy as np
    >>> from dlnmanifolds import dln_inner, dln_operator
    >>> rng = np.random.default_rng(0)
    >>> X, Y, Z = (rng.standard_normal((3, 3)) for _ in range(3))
    >>> bool(np.isclose(dln_inner(X, Y, Z, 1), np.sum(Y * Z)))
    True
    >>> bool(np.isclose(dln_inner(X, dln_operator(X, Z, 3), Y, 3), np.sum(Z * Y)))
    True
    """
    W, Z1, depth = _check_pair(W, Z1, depth, "Z1")
    _, Z2, _ = _check_pair(W, Z2, depth, "Z2")
    check_infinite_depth_square(W.shape[-2:], depth, "dln_inner")
    frame = svd_frame(W)
    _check_full_rank(frame.s, "W", "for dln_inner")
    return _inner_in_frame(frame, Z1, Z2, depth)


def _inner_in_frame(frame: SVDFrame, z1, z2, depth):
    k = kernel_matrix(frame.s, frame.shape, depth)
    xp = _backend.namespace(frame.s)
    value = xp.sum(frame.to_frame(z1) * frame.to_frame(z2) / k, axis=(-2, -1))
    # numpy: a Python float per matrix; torch: a tensor (no host sync, autograd-safe).
    if xp is np and np.ndim(value) == 0:
        return float(value)
    return value


def dln_operator_powers(W: np.ndarray, Z: np.ndarray, depth: int) -> np.ndarray:
    """A_{N,W}(Z) by fractional matrix powers, the definition (reference form, slow).

    sum_p (W W^T)^{(N-p)/N} Z (W^T W)^{(p-1)/N}, powers by symmetric eigen-
    decomposition. Eigenvalues below 1e-12 of the largest are round-off of a
    rank-deficient Gram matrix and set to 0: raised to a power < 1 they would
    leak into the result (math.md §3.3). Finite depth only.
    """
    W, Z, depth = _check_pair(W, Z, depth, allow_inf=False)

    def spd_power(a, t):
        vals, vecs = np.linalg.eigh(a)
        vals = np.where(vals > 1e-12 * np.max(vals, axis=-1, keepdims=True), vals, 0.0)
        with np.errstate(divide="ignore"):
            powered = np.where(vals > 0, vals**t, 1.0 if t == 0 else 0.0)
        return (vecs * powered[..., None, :]) @ _t(vecs)

    left = W @ _t(W)
    right = _t(W) @ W
    return sum(
        spd_power(left, (depth - p) / depth) @ Z @ spd_power(right, (p - 1) / depth)
        for p in range(1, depth + 1)
    )
