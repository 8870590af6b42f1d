"""Free energy F = E - S/beta of the DLN and the drift of its downstairs Langevin equation.

If W follows the Riemannian Langevin equation (RLE) on the balanced manifold M, then
X = phi(W) solves, in law (math.md §8.3; Menon 2024; checked in math.md §10),

    dX = [-A_{N,X}(E'(X)) + beta^{-1} Delta_M phi] dt + sqrt(2/beta) A_{N,X}^{1/2} dB,
    Delta_M phi = Delta_g x + grad_g S = U diag((N-1) sigma_k^{1-2/N} + c_k) V^T,

where Delta_g x = (N-1) X (X^T X)^{-1/N} is the Laplace-Beltrami operator of the
coordinates on (M_d, g^N) (the Ito correction |g|^{-1/2} d_j(|g|^{1/2} g^{ij})) and
grad_g S = U diag(c) V^T is the g^N gradient of the Boltzmann entropy S = log vol(O_X)
(math.md §6). So X is the RLE on (M_d, g^N) for the free energy F = E - beta^{-1} S.

Main case only: square X of full rank (math.md §8). Private ``_``-functions take an
SVD and allow leading batch axes. Every function takes numpy arrays or torch tensors
(CPU or CUDA, float32/float64; one backend and device per call, TypeError naming the
argument otherwise) and returns the same kind; float32 loses accuracy where the SVD
does (relative ~1e-6 sigma_max / sigma_min on the small singular directions).
"""

from __future__ import annotations

import math

import numpy as np

from dlnmanifolds.core import _backend
from dlnmanifolds.core._validate import as_matrix, check_depth
from dlnmanifolds.core.entropy import (
    _entropy_gradient_coefficients,
    boltzmann_entropy,
)
from dlnmanifolds.core.operator import _operator_in_frame, require_full_rank, svd_frame

POTENTIALS = ("energy", "free_energy")


def _check_square_full_rank(W, depth, name: str = "W"):
    W = as_matrix(W, name, batch=True)
    depth = check_depth(depth)
    if W.shape[-1] != W.shape[-2]:
        raise ValueError(
            f"{name} must be square (the main case of math.md §8), got shape {W.shape[-2:]}"
        )
    require_full_rank(W, name)
    return W, depth


def check_beta(beta) -> float:
    if isinstance(beta, bool) or not isinstance(beta, (int, float, np.integer, np.floating)):
        raise TypeError(f"beta must be a positive number, got {type(beta).__name__}")
    if not (np.isfinite(beta) and beta > 0):
        raise ValueError(f"beta (inverse temperature) must be positive and finite, got {beta}")
    return float(beta)


def _spectral(u: np.ndarray, c: np.ndarray, v: np.ndarray) -> np.ndarray:
    """U diag(c) V^T for square frames, batched."""
    return (u * c[..., None, :]) @ v.swapaxes(-1, -2)


def _entropy_coefficients(s: np.ndarray, depth: int) -> np.ndarray:
    """c_k of grad_g S = U diag(c) V^T, square widths, batched over leading axes (math.md §6)."""
    return _entropy_gradient_coefficients(s, depth, (s.shape[-1],) * (depth + 1))


def _coordinate_laplacian_coefficients(s: np.ndarray, depth: int) -> np.ndarray:
    """(N-1) sigma_k^{1-2/N}: Delta_g x = U diag(these) V^T (math.md §8.3)."""
    return (depth - 1) * s ** (1.0 - 2.0 / depth)


def coordinate_laplacian(W: np.ndarray, depth: int) -> np.ndarray:
    """Delta_g x = (N-1) X (X^T X)^{-1/N} = |g|^{-1/2} d_j(|g|^{1/2} g^{ij}) on (M_d, g^N).

    The Ito drift correction of the RLE in X coordinates (math.md §8.1, §8.3; checked in math.md
    §10). Square full-rank W, leading batch axes allowed.
    """
    W, depth = _check_square_full_rank(W, depth)
    u, s, vt = _backend.namespace(W).linalg.svd(W)
    return _spectral(u, _coordinate_laplacian_coefficients(s, depth), vt.swapaxes(-1, -2))


def laplacian_of_phi(W: np.ndarray, depth: int) -> np.ndarray:
    """Delta_M phi = Delta_g x + grad_g S = U diag((N-1) sigma^{1-2/N} + c) V^T.

    The sum of D^2 phi[e_a, e_a] over an orthonormal basis of T_W M at any balanced
    W over X: the horizontal directions give Delta_g x, the vertical (orbit) ones
    grad_g S (math.md §8.3; checked in math.md §10). Square full-rank W, batch allowed.
    """
    W, depth = _check_square_full_rank(W, depth)
    u, s, vt = _backend.namespace(W).linalg.svd(W)
    c = _coordinate_laplacian_coefficients(s, depth) + _entropy_coefficients(s, depth)
    return _spectral(u, c, vt.swapaxes(-1, -2))


def free_energy(W: np.ndarray, depth: int, energy, beta: float):
    """F(W) = E(W) - S(W)/beta, S = boltzmann_entropy (math.md §8.3; Menon 2024 abstract).

    ``energy`` is a callable E(X) -> float or the number E(W) itself. The downstairs
    process of the upstairs RLE descends F, and its stationary law is
    exp(-beta F) vol_g (math.md §8.3; checked in math.md §10). A Python float for numpy
    W; for a torch W a 0-d tensor of its dtype and device (``energy`` may return a
    Python number or a 0-d tensor on that device).

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds import boltzmann_entropy, free_energy
    >>> W = np.diag([2.0, 1.0])
    >>> energy = lambda X: 0.5 * np.sum(X**2)
    >>> bool(np.isclose(free_energy(W, 3, energy, beta=2.0),
    ...                 energy(W) - boltzmann_entropy(W, 3) / 2.0))
    True
    """
    beta = check_beta(beta)
    W = as_matrix(W, "W")
    depth = check_depth(depth)
    value = energy(W) if callable(energy) else energy
    if _backend._is_torch(value):
        _backend.namespace(W, value, names=("W", "energy"))
        if value.ndim != 0:
            raise TypeError(f"energy must be a number or a 0-d tensor, got shape {value.shape}")
        if not _backend.all_finite(value):
            raise ValueError(f"energy must be finite at W, got {float(value)}")
        return value - boltzmann_entropy(W, depth) / beta
    if isinstance(value, bool) or np.ndim(value) != 0:
        raise TypeError(f"energy must be a number or a callable returning one, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"energy must be finite at W, got {value}")
    return value - boltzmann_entropy(W, depth) / beta


def _langevin_drift(
    frame,
    egrad: np.ndarray,
    depth: int,
    beta: float,
    potential: str = "energy",
    ito_correction: bool = True,
) -> np.ndarray:
    """Ito drift of the downstairs RLE from an SVD ``frame`` of X (batched).

    -A(E') + beta^{-1} Delta_g x                       (potential = "energy")
    -A(E') + beta^{-1} (Delta_g x + grad_g S)          (potential = "free_energy")
    ``ito_correction=False`` drops every beta^{-1} term: the wrong drift of the
    ablation in math.md §8.4 (kept private, for tests).
    """
    drift = -_operator_in_frame(frame, egrad, depth, 1.0)
    if not ito_correction:
        return drift
    c = _coordinate_laplacian_coefficients(frame.s, depth)
    if potential == "free_energy":
        c = c + _entropy_coefficients(frame.s, depth)
    return drift + _spectral(frame.u, c, frame.v) / beta


def langevin_drift(
    W: np.ndarray, egrad: np.ndarray, depth: int, beta: float, potential: str = "energy"
) -> np.ndarray:
    """Ito drift of the RLE on (M_d, g^N) for E (or for F = E - S/beta), math.md §8.1, §8.3.

    potential = "energy":       -A_{N,W}(E'(W)) + beta^{-1} Delta_g x,
        stationary law exp(-beta E) vol_g;
    potential = "free_energy":  -A_{N,W}(E'(W)) + beta^{-1} Delta_M phi
                               = -grad_g F + beta^{-1} Delta_g x,
        stationary law exp(-beta F) vol_g, the law of phi(W) for the upstairs RLE.
    ``egrad`` is E'(W), same shape as W. Square full-rank W; batch axes allowed.

    Example
    -------
    The two potentials differ by beta^{-1} grad_g S; as beta -> inf the drift is the
    gradient flow -A_{N,W}(E'(W)):

    >>> import numpy as np
    >>> from dlnmanifolds import dln_operator, entropy_gradient, langevin_drift
    >>> W = np.random.default_rng(0).standard_normal((3, 3))
    >>> egrad = W  # E(X) = 1/2 |X|^2
    >>> d_e = langevin_drift(W, egrad, 3, beta=4.0)
    >>> d_f = langevin_drift(W, egrad, 3, beta=4.0, potential="free_energy")
    >>> bool(np.allclose(d_f - d_e, entropy_gradient(W, 3) / 4.0))
    True
    >>> bool(np.allclose(langevin_drift(W, egrad, 3, beta=1e12), -dln_operator(W, egrad, 3)))
    True
    """
    _backend.namespace(W, egrad, names=("W", "egrad"))
    W, depth = _check_square_full_rank(W, depth)
    egrad = as_matrix(egrad, "egrad", batch=True)
    if egrad.shape != W.shape:
        raise ValueError(
            f"egrad must have the shape of W {tuple(W.shape)}, got {tuple(egrad.shape)}"
        )
    beta = check_beta(beta)
    if potential not in POTENTIALS:
        raise ValueError(f"potential must be one of {POTENTIALS}, got {potential!r}")
    return _langevin_drift(svd_frame(W), egrad, depth, beta, potential)


def free_energy_gradient(W: np.ndarray, egrad: np.ndarray, depth: int, beta: float) -> np.ndarray:
    """grad_g F = A_{N,W}(E'(W)) - beta^{-1} grad_g S (math.md §6, §8.3). Square full rank."""
    _backend.namespace(W, egrad, names=("W", "egrad"))
    W, depth = _check_square_full_rank(W, depth)
    egrad = as_matrix(egrad, "egrad", batch=True)
    if egrad.shape != W.shape:
        raise ValueError(
            f"egrad must have the shape of W {tuple(W.shape)}, got {tuple(egrad.shape)}"
        )
    beta = check_beta(beta)
    frame = svd_frame(W)
    entropy = _spectral(frame.u, _entropy_coefficients(frame.s, depth), frame.v)
    return _operator_in_frame(frame, egrad, depth, 1.0) - entropy / beta
