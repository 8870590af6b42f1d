"""Shared constructions for the tests: points with prescribed spectra, dense references."""

from __future__ import annotations

import numpy as np

from dlnmanifolds.core.balanced import balanced_factors, haar_stiefel


def matrix_with_spectrum(m: int, n: int, sigma, rng) -> np.ndarray:
    """U diag(sigma) V^T with Haar frames."""
    sigma = np.asarray(sigma, dtype=float)
    r = sigma.size
    return (haar_stiefel(m, r, rng) * sigma) @ haar_stiefel(n, r, rng).T


def balanced_point(widths, rng, sigma=None):
    """A balanced network with random gauge over a matrix with spectrum sigma."""
    m, n = widths[-1], widths[0]
    r = min(m, n)
    if sigma is None:
        sigma = np.sort(rng.uniform(0.5, 2.0, r))[::-1]
    x = matrix_with_spectrum(m, n, sigma, rng)
    return list(balanced_factors(x, len(widths) - 1, widths, rng))


def random_layers(widths, rng):
    return [rng.standard_normal((widths[p + 1], widths[p])) for p in range(len(widths) - 1)]


def flatten(layers) -> np.ndarray:
    return np.concatenate([np.ravel(a) for a in layers])


def unflatten(vector, like):
    out, k = [], 0
    for a in like:
        out.append(vector[k : k + a.size].reshape(a.shape))
        k += a.size
    return out


def dg(weights, xi):
    """DG(W)[xi]_p = xi_{p+1}^T W_{p+1} + W_{p+1}^T xi_{p+1} - xi_p W_p^T - W_p xi_p^T."""
    return [
        xi[p + 1].T @ weights[p + 1]
        + weights[p + 1].T @ xi[p + 1]
        - xi[p] @ weights[p].T
        - weights[p] @ xi[p].T
        for p in range(len(weights) - 1)
    ]


def dense_matrix(linear_map, like) -> np.ndarray:
    """Matrix of a linear map on layer tuples, columns = images of basis vectors."""
    size = sum(a.size for a in like)
    cols = []
    for k in range(size):
        e = np.zeros(size)
        e[k] = 1.0
        out = linear_map(unflatten(e, like))
        cols.append(np.concatenate([np.ravel(a) for a in out]))
    return np.array(cols).T


def span_projection(basis: np.ndarray) -> np.ndarray:
    """Orthogonal projector onto the column span (rank by relative tolerance 1e-10)."""
    u, s, _ = np.linalg.svd(basis, full_matrices=False)
    rank = int(np.sum(s > 1e-10 * s[0]))
    u = u[:, :rank]
    return u @ u.T


def parametrisation_span(weights, frames) -> np.ndarray:
    """Tangent vectors of (lam, Q_0..Q_N) -> (Q_p diag(lam) Q_{p-1}^T) (math.md §2.2)."""
    q, lam = frames.q, frames.lam
    r = lam.size
    depth = len(weights)
    vectors = []

    def push(dq_index, dq):
        out = []
        for p in range(1, depth + 1):
            term = np.zeros((q[p].shape[0], q[p - 1].shape[0]))
            if dq_index == p:
                term += (dq * lam) @ q[p - 1].T
            if dq_index == p - 1:
                term += (q[p] * lam) @ dq.T
            out.append(term)
        vectors.append(flatten(out))

    for i in range(r):
        e = np.zeros(r)
        e[i] = 1.0
        vectors.append(flatten([(q[p] * e) @ q[p - 1].T for p in range(1, depth + 1)]))
    for k in range(depth + 1):
        d = q[k].shape[0]
        for i in range(d):
            for j in range(r):
                # Stiefel tangent: (I - Q Q^T) E_ij + Q skew(Q^T E_ij)
                e = np.zeros((d, r))
                e[i, j] = 1.0
                a = q[k].T @ e
                dq = e - q[k] @ a + q[k] @ (0.5 * (a - a.T))
                push(k, dq)
    return np.array(vectors).T


def assert_hessian_is_projected_derivative(
    point, xi, eta, project, retract, hessian, egrad, ehess, h: float = 1e-5
) -> None:
    """Hess f[xi] = P(d/dt P grad f(R(t xi))) at t = 0 by central differences, to 1e-6
    relative (the C3/C14 protocol), and <Hess xi, eta> = <xi, Hess eta> to 1e-10.

    ``project(w, v)``, ``retract(w, v)``, ``hessian(w, egrad, ehess_xi, xi)``,
    ``egrad(w)`` and ``ehess(w, xi)`` act on layer lists.
    """

    def rgrad(t):
        y = retract(point, [t * v for v in xi])
        return project(y, egrad(y))

    fd = project(point, [(a - c) / (2 * h) for a, c in zip(rgrad(h), rgrad(-h))])
    hess_xi = hessian(point, egrad(point), ehess(point, xi), xi)
    assert np.linalg.norm(flatten(hess_xi) - flatten(fd)) <= 1e-6 * np.linalg.norm(flatten(fd))
    hess_eta = hessian(point, egrad(point), ehess(point, eta), eta)
    lhs = float(flatten(hess_xi) @ flatten(eta))
    rhs = float(flatten(xi) @ flatten(hess_eta))
    assert abs(lhs - rhs) <= max(1e-10 * abs(rhs), 1e-12)


GEOMSTATS_MARKERS = {
    "vec": "Geomstats vectorization tests",
    "random": "Geomstats tests with randomized data",
    "shape": "Geomstats array shape tests",
    "smoke": "Geomstats simple numerical tests",
    "ignore": "deselected Geomstats tests",
    "type": "Geomstats output type tests",
    "mathprop": "Geomstats mathematical property tests",
    "validation": "Geomstats validation tests",
    "redundant": "Geomstats redundant tests",
}


def register_geomstats_markers(config) -> None:
    """The pytest markers of Geomstats' own test cases (numpy and pytorch suites)."""
    for name, text in GEOMSTATS_MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {text}")
