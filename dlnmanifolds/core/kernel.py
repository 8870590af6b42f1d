"""The divided-difference kernel kappa of the DLN operator (math.md §3.2).

kappa(a, b) = sum_{p=1}^N a^{2(N-p)/N} b^{2(p-1)/N}
            = (a^2 - b^2) / (a^{2/N} - b^{2/N})       (a != b)

The quotient form cancels catastrophically when a ~ b, so it is never used:
we evaluate the expm1 form (math.md §3.2, item 2), relative error <= 3.6e-15,

    kappa = s_max^{2(N-1)/N} * expm1(-2 delta) / expm1(-2 delta / N),
    delta = log(s_max / s_min),

with kappa(s, s) = N s^{2(N-1)/N}, kappa(s, 0) = s^{2(N-1)/N} (N >= 2) and
kappa(0, 0) = 0 (N >= 2); for N = 1, kappa = 1.

Infinite depth (``depth=math.inf``; Cohen, Menon & Veraszto 2022, math.md §4.6):
the time-rescaled limit kappa_N / N -> kappa_inf(a, b) = (a^2 - b^2)/(2 log a -
2 log b), the logarithmic mean of a^2 and b^2 (a^2 on the diagonal), at rate
O(1/N): kappa_N/N = kappa_inf (1 - log(a b)/N + O(1/N^2)). kappa_inf(s, 0) = 0.
"""

from __future__ import annotations

import math

import numpy as np

from dlnmanifolds.core import _backend
from dlnmanifolds.core._validate import check_depth


def dln_kernel(a: np.ndarray, b: np.ndarray, depth: int) -> np.ndarray:
    """kappa(a, b) for nonnegative a, b (broadcast), stable for a ~ b (math.md §3.2).

    ``depth=math.inf`` gives the time-rescaled limit kappa_inf = lim kappa_N / N,
    the logarithmic mean (a^2 - b^2)/(2 log a - 2 log b) (math.md §4.6).

    ``a`` and ``b`` may be numpy arrays (cast to float64) or torch tensors (float32
    or float64, one device; the result is a tensor of their dtype). Accuracy: a few
    eps of the dtype relative (float64 <= 3.6e-15; float32 about 1e-6 for any
    ratio a/b, since no term cancels), but a^{2/N} underflows to 0 in float32 once
    a < ~1e-38^{N/2}.

    Example
    -------
    >>> round(float(dln_kernel(np.array(2.0), np.array(2.0), 3)), 10)  # N s^{2(N-1)/N}
    7.5595262994
    """
    depth = check_depth(depth, allow_inf=True)
    _backend.namespace(a, b, names=("a", "b"))
    a = _as_singular_values(a, "a")
    b = _as_singular_values(b, "b")
    try:
        np.broadcast_shapes(tuple(a.shape), tuple(b.shape))
    except ValueError:
        raise ValueError(
            f"a and b must broadcast together, got shapes {a.shape} and {b.shape}"
        ) from None
    return _dln_kernel(a, b, depth)


def _as_singular_values(value, name: str) -> np.ndarray:
    """Validate a real, finite, nonnegative array (singular values)."""
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a real nonnegative array, got {type(value).__name__}")
    if _backend._is_torch(value):
        _backend.check_float_dtype(value, name)
        if not _backend.all_finite(value):
            raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
        if bool((value < 0).any()):
            raise ValueError(
                f"{name} must be nonnegative (singular values), got min {float(value.min())}"
            )
        return value
    array = np.asarray(value)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{name} must be a real nonnegative array, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
    if np.any(array < 0):
        raise ValueError(f"{name} must be nonnegative (singular values), got min {array.min()}")
    return array


def _float_pair(a, b):
    """(xp, a, b): numpy inputs as float64 arrays; tensors unchanged (internal)."""
    xp = _backend.namespace(a, b)
    if xp is np:
        return xp, np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return xp, a, b


def _dln_kernel(a, b, depth: int):
    # Internal, unvalidated: float arrays a, b >= 0 (numpy or torch) and an int depth
    # >= 1 or inf.
    if depth == math.inf:
        return log_mean_kernel(a, b)
    xp, a, b = _float_pair(a, b)
    n = depth
    if n == 1:
        return xp.ones_like(a + b)
    s_max = xp.maximum(a, b)
    s_min = xp.minimum(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = xp.log(s_max) - xp.log(s_min)
        ratio = xp.expm1(-2.0 * delta) / xp.expm1(-2.0 * delta / n)
    # delta = 0 (equal values) is the removable singularity: ratio -> N.
    ratio = xp.where(delta == 0.0, float(n), ratio)
    # Both zero: kappa(0, 0) = 0; one zero: delta = inf, ratio = 1 already.
    ratio = xp.where(s_max == 0.0, 0.0, ratio)
    return s_max ** (2.0 * (n - 1) / n) * ratio


def dln_kernel_sum(a: np.ndarray, b: np.ndarray, depth: int) -> np.ndarray:
    """kappa(a, b) by its geometric sum of N positive terms (reference form)."""
    a = np.asarray(a, dtype=np.float64) ** (2.0 / depth)
    b = np.asarray(b, dtype=np.float64) ** (2.0 / depth)
    return sum(a ** (depth - 1 - k) * b**k for k in range(depth))


def kernel_matrix(sigma: np.ndarray, shape: tuple[int, int], depth: int) -> np.ndarray:
    """K_ij = kappa(sigma^U_i, sigma^V_j) with sigma zero-padded to lengths m and n.

    The SVD-frame eigenvalues of A_{N,X}: (U^T A(Z) V)_ij = K_ij (U^T Z V)_ij
    (math.md §3.2). ``sigma`` may carry leading batch axes; a numpy array (float64)
    or a torch tensor (its dtype and device).
    """
    m, n = shape
    k = sigma.shape[-1]
    batch = tuple(sigma.shape[:-1])
    # Fresh arrays (per-backend allocation): the slice writes never touch sigma.
    if _backend._is_torch(sigma):
        pad_u, pad_v = sigma.new_zeros(batch + (m,)), sigma.new_zeros(batch + (n,))
    else:
        sigma = np.asarray(sigma, dtype=np.float64)
        pad_u, pad_v = np.zeros(batch + (m,)), np.zeros(batch + (n,))
    pad_u[..., :k] = sigma[..., :m]
    pad_v[..., :k] = sigma[..., :n]
    return _dln_kernel(pad_u[..., :, None], pad_v[..., None, :], depth)


def log_mean_kernel(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Infinite-depth limit kappa/N -> L(a, b) = (a^2 - b^2)/(log a^2 - log b^2) (math.md §4.6).

    Evaluated stably as s_max^2 (-expm1(-2 delta)) / (2 delta), L(s, s) = s^2,
    L(s, 0) = 0; relative error a few eps (no cancellation: both factors are
    computed to full relative accuracy for every delta >= 0; float32 tensors: a few
    float32 eps).
    """
    xp, a, b = _float_pair(a, b)
    s_max = xp.maximum(a, b)
    s_min = xp.minimum(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        delta = xp.log(s_max) - xp.log(s_min)
        value = s_max**2 * (-xp.expm1(-2.0 * delta)) / (2.0 * delta)
    value = xp.where(delta == 0.0, s_max**2, value)
    return xp.where(s_min == 0.0, 0.0, value)
