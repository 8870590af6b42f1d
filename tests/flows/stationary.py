"""Reference stationary laws of the 2x2 Riemannian Langevin equation (math.md §8.3-8.4).

For E depending on the singular values only, the law of lam = sigma^{1/N} (times
Haar frames) is proportional to exp(-beta E) Pi_{i<j}(lam_i^2 - lam_j^2) kappa_ij^{1/2}
for the free energy (push-forward of the upstairs RLE), and without kappa^{1/2}
for the RLE of E itself on (M_d, g^N). Moments come from a midpoint grid, and
exact samples from the same grid (cell drawn by weight, uniform inside).
"""

from __future__ import annotations

import numpy as np

from dlnmanifolds.core.balanced import haar_stiefel
from dlnmanifolds.core.kernel import dln_kernel


def quartic_of_sigma(s):
    """1/4 (sigma^2 - 2)^2, the per-singular-value energy of rows C11, C12."""
    return 0.25 * (s**2 - 2.0) ** 2


def _grid(depth, beta, entropy, n=800, top=2.5):
    h = top / n
    g = (np.arange(n) + 0.5) * h
    l1, l2 = np.meshgrid(g, g, indexing="ij")
    s1, s2 = l1**depth, l2**depth
    e = quartic_of_sigma(s1) + quartic_of_sigma(s2)
    rho = (l1**2 - l2**2) * (dln_kernel(s1, s2, depth) ** 0.5 if entropy else 1.0)
    w = np.where(l1 > l2, np.exp(-beta * (e - e.min())) * rho, 0.0)
    return l1, l2, w / w.sum(), h


def lambda_moments(depth, beta, entropy=True):
    """(E[lam_1], E[lam_2]) by quadrature."""
    l1, l2, w, _ = _grid(depth, beta, entropy)
    return np.array([np.sum(w * l1), np.sum(w * l2)])


def sample_end_to_end(depth, beta, n_paths, rng, entropy=True):
    """n_paths exact draws X = U diag(lam^N) V^T from the stationary law (Haar U, V)."""
    l1, l2, w, h = _grid(depth, beta, entropy)
    idx = rng.choice(w.size, size=n_paths, p=w.ravel())
    lam = np.stack([l1.ravel()[idx], l2.ravel()[idx]], axis=1)
    lam = lam + h * (rng.random((n_paths, 2)) - 0.5)
    sigma = np.sort(lam, axis=1)[:, ::-1] ** depth
    return np.array([(haar_stiefel(2, 2, rng) * s) @ haar_stiefel(2, 2, rng).T for s in sigma])


def path_means(result, depth, burn_in):
    """Per-path time averages of lam = sigma^{1/N} over t >= burn_in: iid across paths."""
    lam = result.extras["singular_values"] ** (1.0 / depth)
    return lam[result.t >= burn_in].mean(axis=0)
