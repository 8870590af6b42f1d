"""The Boltzmann entropy S(X) = log vol(O_X) of the DLN and its g^N gradient.

O_X = phi^{-1}(X) ∩ M is the orbit of the orthogonal group acting on the
balanced factorizations of X, with the volume induced by the Frobenius metric
upstairs (math.md §6; Menon & Yu 2025, Thm 4; checked in math.md §10):

    vol(O_X) = prod_{p=1}^{N-1} vol_F(St(d_p, r)) * J,
    J = prod_{i<j<=r} kappa_ij^{1/2} * prod_{i<=r} (2 lam_i^2)^{m/2},
    m = sum_{p=1}^{N-1} (d_p - r),  lam = sigma^{1/N},  r = rank X,

which in the main case (square, invertible) is
S(X) = (N-1) log vol_F(O(d)) + 1/2 sum_{i<j} log kappa_ij.
Volumes are computed as logarithms (gammaln) so large d neither over- nor
underflows; kappa is the stable kernel of ``dlnmanifolds.core.kernel``.

W may be a numpy array or a torch tensor (CPU or CUDA, float32/float64): the entropy is
then a 0-d tensor and the gradient a tensor of W's dtype and device. The volume
constants (gammaln of integers) stay Python floats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import gammaln

from dlnmanifolds.core import _backend
from dlnmanifolds.core._validate import (
    check_end_to_end,
    check_positive_int,
)
from dlnmanifolds.core.kernel import dln_kernel
from dlnmanifolds.core.operator import numerical_rank


def _log_sphere_volume(k: np.ndarray) -> np.ndarray:
    """log vol(S^k) = log(2 pi^{(k+1)/2} / Gamma((k+1)/2))."""
    k = np.asarray(k, dtype=float)
    return np.log(2.0) + 0.5 * (k + 1) * np.log(np.pi) - gammaln(0.5 * (k + 1))


def log_stiefel_volume(n: int, r: int) -> float:
    """log vol_F(St(n, r)) = r(r-1)/4 log 2 + sum_{i=n-r+1}^{n} log vol(S^{i-1}).

    Frobenius metric on n x r matrices with orthonormal columns (math.md §6; checked in math.md
    §10). St(n, 0) is a point (log volume 0).
    """
    n = check_positive_int(n, "n", minimum=0)
    r = check_positive_int(r, "r", minimum=0)
    if r > n:
        raise ValueError(f"r must be at most n = {n} for St(n, r), got r = {r}")
    return _log_stiefel_volume(n, r)


def _log_stiefel_volume(n: int, r: int) -> float:
    spheres = _log_sphere_volume(np.arange(n - r, n))
    return float(0.25 * r * (r - 1) * np.log(2.0) + np.sum(spheres))


def stiefel_volume(n: int, r: int) -> float:
    """vol_F(St(n, r)), the Frobenius volume of n x r orthonormal frames (math.md §6).

    Equals vol_F(O(n)) / vol_F(O(n - r)) * 2^{-r(n-r)/2}.

    Example
    -------
    St(n, 1) is the unit sphere S^{n-1}, and St(n, n) = O(n):

    >>> import numpy as np
    >>> from dlnmanifolds import orthogonal_group_volume, stiefel_volume
    >>> bool(np.isclose(stiefel_volume(3, 1), 4 * np.pi))
    True
    >>> bool(np.isclose(stiefel_volume(3, 3), orthogonal_group_volume(3)))
    True
    """
    return float(np.exp(log_stiefel_volume(n, r)))


def log_orthogonal_group_volume(d: int) -> float:
    """log vol_F(O(d)) = (1 + d(d-1)/4) log 2 + sum_{k=1}^{d-1} log vol(S^k) (math.md §6)."""
    d = check_positive_int(d, "d", minimum=0)
    return _log_stiefel_volume(d, d)


def orthogonal_group_volume(d: int) -> float:
    """vol_F(O(d)) for the Frobenius metric tr(A^T B) (math.md §6; checked in math.md §10).

    vol_F(O(1)) = 2, vol_F(O(2)) = 4 sqrt(2) pi, vol_F(O(3)) = 32 sqrt(2) pi^2.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds import orthogonal_group_volume
    >>> orthogonal_group_volume(1)  # O(1) = {-1, 1}
    2.0
    >>> bool(np.isclose(orthogonal_group_volume(2), 4 * np.sqrt(2) * np.pi))
    True
    """
    return float(np.exp(log_orthogonal_group_volume(d)))


def _rank_spectrum(W: np.ndarray, widths: tuple[int, ...]) -> np.ndarray:
    """Nonzero singular values of W (round-off zeros dropped, math.md §3.3)."""
    s = _backend.svdvals(W)
    r = numerical_rank(s)
    if r > min(widths):
        raise ValueError(
            f"W has rank {r} but the narrowest layer in widths {widths} has "
            f"{min(widths)}: the fiber over W is empty"
        )
    return s[:r]


def _log_orbit_volume(sigma: np.ndarray, depth: int, widths: Sequence[int]):
    """log vol(O_X) from the nonzero singular values sigma (length r), math.md §6.

    A Python float for numpy sigma; a 0-d tensor (sigma's dtype and device) for torch.
    The Stiefel volumes are Python floats (gammaln of integers) either way.
    """
    xp = _backend.namespace(sigma)
    r = sigma.shape[0]
    inner = widths[1:-1]
    value = sum(_log_stiefel_volume(d, r) for d in inner)
    iu, ju = _backend.triu_indices_like(sigma, r, 1)
    terms = [0.5 * xp.sum(xp.log(dln_kernel(sigma[iu], sigma[ju], depth)))]
    extra = sum(d - r for d in inner)
    if extra:
        # (2 lam_i^2)^{m/2} with log lam_i = log(sigma_i) / N.
        terms.append(0.5 * extra * xp.sum(math.log(2.0) + 2.0 * xp.log(sigma) / depth))
    for term in terms:  # numpy: Python floats, in this order (the result of before)
        value = value + (float(term) if xp is np else term)
    return float(value) if xp is np else value


def boltzmann_entropy(W: np.ndarray, depth: int, widths: Sequence[int] | None = None):
    """S(W) = log vol(O_W): log-volume of the balanced factorizations of W (math.md §6).

    Main case (square, invertible): S = (N-1) log vol_F(O(d)) + 1/2 sum_{i<j} log kappa_ij
    (Menon & Yu 2025, Thm 4, with c_d = vol_F(O(d)); checked in math.md §10). General widths and
    rank r: sum_p log vol_F(St(d_p, r)) + 1/2 sum_{i<j<=r} log kappa_ij
    + m/2 sum_{i<=r} log(2 lam_i^2), m = sum_{p=1}^{N-1}(d_p - r) (checked in math.md §10).
    Singular values below 1e-13 * sigma_max count as zeros (they change the rank,
    hence the orbit dimension: S is discontinuous across rank strata).

    Parameters
    ----------
    W : array, shape=[m, n], the end-to-end matrix.
    depth : int, N >= 1. N = 1 gives S = 0.
    widths : (d_0, ..., d_N) with d_0 = n, d_N = m, every d_p >= rank W.
        Default: inner widths min(m, n).

    Returns
    -------
    float (numpy W), or a 0-d tensor of W's dtype and device (torch W, CPU or CUDA; the
    rank test is one host sync). Invariant under W -> O W O' with O, O' orthogonal.
    float32: the kernel's expm1 form keeps log kappa to ~1e-6 relative.

    Example
    -------
    For d = N = 2 the orbit O_W has total length 4 sqrt(2) pi sqrt(sigma_1 + sigma_2):

    >>> import numpy as np
    >>> from dlnmanifolds import boltzmann_entropy
    >>> W = np.diag([2.0, 1.0])
    >>> bool(np.isclose(boltzmann_entropy(W, 2), np.log(4 * np.sqrt(2) * np.pi * np.sqrt(3))))
    True
    >>> boltzmann_entropy(W, 1)  # depth 1: one factorization
    0.0
    >>> c, s = np.cos(0.4), np.sin(0.4)
    >>> O = np.array([[c, -s], [s, c]])
    >>> bool(np.isclose(boltzmann_entropy(O @ W, 3), boltzmann_entropy(W, 3)))
    True
    """
    W, depth, widths = check_end_to_end(W, depth, widths)
    return _log_orbit_volume(_rank_spectrum(W, widths), depth, widths)


def _dlog_kernel_weights(sigma_k: np.ndarray, sigma_j: np.ndarray, depth: int) -> np.ndarray:
    """mu_kj = (N sigma_k / 2) d/dsigma_k log kappa(sigma_k, sigma_j), all terms positive.

    With a = sigma_k^{2/N}, b = sigma_j^{2/N}: kappa = sum_{i=0}^{N-1} a^{N-1-i} b^i and
    mu = sum_i (N-1-i) a^{N-1-i} b^i / sum_i a^{N-1-i} b^i, a weighted mean of
    N-1, ..., 0. The weights are normalised in log space, so mu is smooth at
    sigma_k = sigma_j (mu = (N-1)/2 there) and never overflows for large N.
    """
    xp = _backend.namespace(sigma_k, sigma_j)
    i = _backend.float_range(sigma_k, depth)
    log_ratio = (2.0 / depth) * (xp.log(sigma_j) - xp.log(sigma_k))  # log(b / a)
    logw = log_ratio[..., None] * i
    logw = logw - xp.max(logw, axis=-1, keepdims=True)
    w = xp.exp(logw)
    return xp.sum(w * (depth - 1 - i), axis=-1) / xp.sum(w, axis=-1)


def _entropy_gradient_coefficients(
    sigma: np.ndarray, depth: int, widths: Sequence[int]
) -> np.ndarray:
    """c_k of grad_g S = U diag(c) V^T for the nonzero singular values sigma (math.md §6).

    c_k = N sigma_k^{2-2/N} * dS/dsigma_k
        = sigma_k^{1-2/N} (m + sum_{j != k} mu_kj),
    with mu from ``_dlog_kernel_weights``; m = sum_{p=1}^{N-1}(d_p - r) is the
    general-width term from d/dsigma_k of (m/2) log(2 lam_k^2). ``sigma`` may
    carry leading batch axes (all matrices of the batch share ``widths``).
    """
    xp = _backend.namespace(sigma)
    r = sigma.shape[-1]
    extra = sum(d - r for d in widths[1:-1])
    mu = _dlog_kernel_weights(sigma[..., :, None], sigma[..., None, :], depth)
    total = xp.sum(mu, axis=-1) - xp.linalg.diagonal(mu) + extra
    return sigma ** (1.0 - 2.0 / depth) * total


def entropy_gradient(W: np.ndarray, depth: int, widths: Sequence[int] | None = None) -> np.ndarray:
    """Riemannian g^N gradient of the entropy, grad_g S = A_{N,W}(grad S) = U diag(c) V^T.

    c_k = N sigma_k^{2-2/N} * 1/2 sum_{j != k} d/dsigma_k log kappa_kj
        = sum_{j != k} [N sigma_k^{3-2/N}/(sigma_k^2 - sigma_j^2)
                        - sigma_k/(sigma_k^{2/N} - sigma_j^{2/N})]
    (math.md §6 "Entropy gradient"; checked in math.md §10). Evaluated with the
    all-positive form of d log kappa (never the cancelling quotient), so it is
    smooth at sigma_k = sigma_j. For general widths the term
    (sum_p (d_p - r)) sigma_k^{1-2/N} of the (2 lam^2)^{m/2} factor is added.
    For rank r < min(m, n) the gradient is the one on the rank-r leaf M_r (compact
    SVD over the nonzero singular values).

    Parameters
    ----------
    W : array, shape=[m, n]; depth : int >= 1; widths : as in ``boltzmann_entropy``.

    Returns
    -------
    array, shape=[m, n], of W's kind (numpy, or a torch tensor of its dtype and device).
    Zero for depth 1. float32: the SVD's singular vectors limit the accuracy to about
    eps32 sigma_max / min gap where singular values nearly coincide (c_k is smooth there).

    Example
    -------
    The g^N gradient represents dS: g^N_W(grad_g S, Z) equals a finite difference of S:

    >>> import numpy as np
    >>> from dlnmanifolds import boltzmann_entropy, dln_inner, entropy_gradient
    >>> rng = np.random.default_rng(0)
    >>> W, Z = rng.standard_normal((3, 3)), rng.standard_normal((3, 3))
    >>> h = 1e-6
    >>> dS = (boltzmann_entropy(W + h * Z, 3) - boltzmann_entropy(W - h * Z, 3)) / (2 * h)
    >>> bool(np.isclose(dln_inner(W, entropy_gradient(W, 3), Z, 3), dS, rtol=1e-6))
    True
    """
    W, depth, widths = check_end_to_end(W, depth, widths)
    xp = _backend.namespace(W)
    u, s, vt = xp.linalg.svd(W, full_matrices=False)
    r = numerical_rank(s)
    _rank_spectrum(W, widths)  # validates rank against widths
    if r == 0:
        return xp.zeros_like(W)
    c = _entropy_gradient_coefficients(s[:r], depth, widths)
    return (u[:, :r] * c) @ vt[:r]
