"""Boltzmann entropy S = log vol(O_X) and its g^N gradient (math.md §6; rows C5, C11, C13)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.special import gammaln

from dlnmanifolds.core.balanced import balanced_factors, balanced_frames, haar_stiefel
from dlnmanifolds.core.entropy import (
    boltzmann_entropy,
    entropy_gradient,
    log_orthogonal_group_volume,
    log_stiefel_volume,
    orthogonal_group_volume,
    stiefel_volume,
)
from dlnmanifolds.core.operator import dln_operator_inverse
from tests.helpers import matrix_with_spectrum

ANCHORS = {1: 0.0, 2: 8.148942, 3: 15.178734, 5: 28.398335, 10: 60.130700}


@pytest.mark.parametrize("depth", sorted(ANCHORS))
def test_anchor_values(depth):
    """C5 anchors: S(diag(3,2,1)) for N = 1, 2, 3, 5, 10 (6 decimals)."""
    assert boltzmann_entropy(np.diag([3.0, 2.0, 1.0]), depth) == pytest.approx(
        ANCHORS[depth], abs=1e-6
    )


def test_group_volumes():
    """C5/C13: vol_F(O(1)) = 2, vol_F(O(2)) = 4 sqrt2 pi, vol_F(SO(3)) = 16 sqrt2 pi^2."""
    assert orthogonal_group_volume(0) == 1.0
    assert orthogonal_group_volume(1) == pytest.approx(2.0, rel=1e-15)
    assert orthogonal_group_volume(2) == pytest.approx(4 * np.sqrt(2) * np.pi, rel=1e-14)
    assert orthogonal_group_volume(3) / 2 == pytest.approx(16 * np.sqrt(2) * np.pi**2, rel=1e-14)
    # O(2) is two circles of Frobenius radius sqrt(2): 2 * 2 pi sqrt(2).
    assert orthogonal_group_volume(2) == pytest.approx(2 * 2 * np.pi * np.sqrt(2), rel=1e-14)


def test_so3_volume_by_quadrature():
    """C5: vol_F(SO(3)) by Euler-angle quadrature (Haar density sin(beta), Frobenius
    metric = 2x the bi-invariant metric with unit-length axis rotations)."""
    nodes, weights = np.polynomial.legendre.leggauss(200)
    beta = 0.5 * np.pi * (nodes + 1.0)
    integral = 0.5 * np.pi * np.sum(weights * np.sin(beta))  # int_0^pi sin = 2
    # |dR|_F^2 = 2 |omega|^2, so the Frobenius volume element is 2^{3/2} sin(beta) da db dc.
    volume = 2 ** 1.5 * (2 * np.pi) ** 2 * integral
    assert volume == pytest.approx(orthogonal_group_volume(3) / 2, rel=1e-12)


@pytest.mark.parametrize("n", range(1, 7))
def test_stiefel_volume_identity(n):
    """C13: vol_F(St(n, r)) = vol_F(O(n)) / vol_F(O(n - r)) 2^{-r(n-r)/2}; St(n, n) = O(n)."""
    for r in range(0, n + 1):
        expected = (
            log_orthogonal_group_volume(n)
            - log_orthogonal_group_volume(n - r)
            - 0.5 * r * (n - r) * np.log(2.0)
        )
        assert log_stiefel_volume(n, r) == pytest.approx(expected, abs=1e-12)
    assert stiefel_volume(n, n) == pytest.approx(orthogonal_group_volume(n), rel=1e-13)
    # St(n, 1) is the unit sphere S^{n-1}.
    sphere = np.log(2.0) + 0.5 * n * np.log(np.pi) - gammaln(0.5 * n)
    assert log_stiefel_volume(n, 1) == pytest.approx(sphere, abs=1e-12)


def _stiefel_tangent_basis(q):
    """Frobenius-orthonormal basis of T_Q St(d, r): Q (E_ab - E_ba)/sqrt2 and Q_perp E_ij."""
    d, r = q.shape
    perp = np.linalg.svd(q, full_matrices=True)[0][:, r:]
    basis = []
    for a in range(r):
        for b in range(a + 1, r):
            om = np.zeros((r, r))
            om[a, b], om[b, a] = 1 / np.sqrt(2), -1 / np.sqrt(2)
            basis.append(q @ om)
    for i in range(d - r):
        for j in range(r):
            k = np.zeros((d - r, r))
            k[i, j] = 1.0
            basis.append(perp @ k)
    return basis


def orbit_log_volume_by_gram(weights, rank):
    """log vol(O) = sum_p log vol_F(St(d_p, r)) + 1/2 log det Gram of the orbit map
    (Q_1, ..., Q_{N-1}) -> (Q_p Lambda Q_{p-1}^T)_p in Frobenius-orthonormal bases."""
    frames = balanced_frames(weights, rank)
    q, lam = frames.q, frames.lam
    depth = len(weights)
    columns = []
    for k in range(1, depth):
        for dq in _stiefel_tangent_basis(q[k]):
            image = [np.zeros_like(w) for w in weights]
            image[k - 1] = (dq * lam) @ q[k - 1].T
            image[k] = (q[k + 1] * lam) @ dq.T
            columns.append(np.concatenate([a.ravel() for a in image]))
    log_vol = sum(log_stiefel_volume(q[k].shape[0], rank) for k in range(1, depth))
    if columns:
        basis = np.array(columns).T
        sign, logdet = np.linalg.slogdet(basis.T @ basis)
        assert sign > 0
        log_vol += 0.5 * logdet
    return log_vol


SQUARE_CASES = [
    (2, 2, None),
    (3, 2, None),
    (3, 3, None),
    (4, 3, None),
    (3, 6, None),
    (5, 4, None),
    (3, 3, [1.5, 0.8, 0.8]),  # sigma_2 = sigma_3
    (3, 4, [1.0, 1.0, 1.0]),
]


@pytest.mark.parametrize("d,depth,sigma", SQUARE_CASES)
def test_entropy_equals_gram_volume_square(d, depth, sigma, rng):
    """C5: S = log of the volume from the orbit-map Gram determinant (relative 1e-10)."""
    if sigma is None:
        sigma = np.sort(rng.uniform(0.5, 2.0, d))[::-1]
    x = matrix_with_spectrum(d, d, sigma, rng)
    w = balanced_factors(x, depth, rng=rng)
    assert boltzmann_entropy(x, depth) == pytest.approx(
        orbit_log_volume_by_gram(w, d), abs=1e-10
    )


@pytest.mark.parametrize(
    "widths,rank",
    [((3, 5, 4, 2), 2), ((4, 6, 5, 4), 2), ((2, 3, 5, 4, 3), 2), ((3, 4, 3), 3), ((4, 4, 4), 1)],
)
def test_entropy_equals_gram_volume_general_widths(widths, rank, rng):
    """C5/C13: general widths and rank r (Stiefel volumes, (2 lam^2)^{m/2} factor)."""
    sigma = np.sort(rng.uniform(0.5, 2.0, rank))[::-1]
    x = matrix_with_spectrum(widths[-1], widths[0], sigma, rng)
    w = balanced_factors(x, len(widths) - 1, widths, rng)
    assert boltzmann_entropy(x, len(widths) - 1, widths) == pytest.approx(
        orbit_log_volume_by_gram(w, rank), abs=1e-10
    )


def test_orbit_length_d2_n2_polygon(rng):
    """C5: for d = 2, N = 2 the orbit has length 4 sqrt2 pi sqrt(sigma_1 + sigma_2)."""
    sigma = np.array([1.7, 0.6])
    u, v = haar_stiefel(2, 2, rng), haar_stiefel(2, 2, rng)
    lam = np.sqrt(sigma)
    theta = np.linspace(0.0, 2 * np.pi, 200001)
    c, s = np.cos(theta), np.sin(theta)
    length = 0.0
    for det in (1.0, -1.0):  # the two components of O(2)
        q = np.stack([np.stack([c, -det * s], -1), np.stack([s, det * c], -1)], -2)
        w1 = (q * lam) @ v.T
        w2 = (u * lam) @ np.swapaxes(q, -1, -2)
        points = np.concatenate([w1.reshape(-1, 4), w2.reshape(-1, 4)], axis=1)
        length += np.sum(np.linalg.norm(np.diff(points, axis=0), axis=1))
    assert length == pytest.approx(4 * np.sqrt(2) * np.pi * np.sqrt(sigma.sum()), rel=1e-8)
    assert np.exp(boltzmann_entropy(u @ np.diag(sigma) @ v.T, 2)) == pytest.approx(
        length, rel=1e-8
    )


spectra = st.lists(
    st.one_of(
        st.floats(0.3, 3.0),
        st.sampled_from([1.0, 1.0 + 1e-12, 1e-6, 1e-9]),
    ),
    min_size=1,
    max_size=4,
)


@given(sigma=spectra, depth=st.integers(1, 8), seed=st.integers(0, 2**31))
def test_entropy_gauge_invariant_and_finite(sigma, depth, seed):
    """S(O X O') = S(X), no NaN with repeated or tiny singular values."""
    gen = np.random.default_rng(seed)
    sigma = np.sort(np.array(sigma))[::-1]
    d = sigma.size
    x = matrix_with_spectrum(d, d, sigma, gen)
    value = boltzmann_entropy(x, depth)
    assert np.isfinite(value)
    o1, o2 = haar_stiefel(d, d, gen), haar_stiefel(d, d, gen)
    # The SVD resolves sigma_i only to ~eps * sigma_max, so d log sigma ~ eps * cond.
    tol = 1e-9 + 100 * d * np.finfo(float).eps * sigma[0] / sigma[-1]
    assert boltzmann_entropy(o1 @ x @ o2, depth) == pytest.approx(value, abs=tol)
    grad = entropy_gradient(x, depth)
    assert np.all(np.isfinite(grad))


def _closed_form_c(sigma, depth):
    """The cancelling closed form of math.md §6 (only for well separated sigma)."""
    n = depth
    return np.array(
        [
            sum(
                n * sk ** (3 - 2 / n) / (sk**2 - sj**2) - sk / (sk ** (2 / n) - sj ** (2 / n))
                for j, sj in enumerate(sigma)
                if j != k
            )
            for k, sk in enumerate(sigma)
        ]
    )


@pytest.mark.parametrize("d,depth", [(2, 2), (2, 3), (3, 2), (3, 3), (3, 4), (4, 7)])
def test_entropy_gradient_closed_form_and_fd(d, depth, rng):
    """C11: grad_g S = U diag(c) V^T; g(grad S, Z) = dS[Z] by central FD (h = 1e-5)."""
    sigma = np.sort(rng.uniform(0.5, 2.0, d))[::-1]
    u, v = haar_stiefel(d, d, rng), haar_stiefel(d, d, rng)
    x = (u * sigma) @ v.T
    grad = entropy_gradient(x, depth)
    c = _closed_form_c(sigma, depth)
    assert np.allclose(u.T @ grad @ v, np.diag(c), rtol=1e-10, atol=1e-10 * np.abs(c).max())
    h = 1e-5
    for _ in range(3):
        z = rng.standard_normal((d, d))
        fd = (boltzmann_entropy(x + h * z, depth) - boltzmann_entropy(x - h * z, depth)) / (2 * h)
        exact = np.sum(dln_operator_inverse(x, grad, depth) * z)
        assert exact == pytest.approx(fd, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("widths", [(3, 5, 4, 2), (2, 4, 3), (3, 3, 6, 3)])
def test_entropy_gradient_general_widths_fd(widths, rng):
    """The general-width gradient (with the (2 lam^2)^{m/2} term) matches FD of S."""
    depth = len(widths) - 1
    x = rng.standard_normal((widths[-1], widths[0]))
    grad = entropy_gradient(x, depth, widths)
    h = 1e-5
    z = rng.standard_normal(x.shape)
    fd = (
        boltzmann_entropy(x + h * z, depth, widths) - boltzmann_entropy(x - h * z, depth, widths)
    ) / (2 * h)
    exact = np.sum(dln_operator_inverse(x, grad, depth) * z)
    assert exact == pytest.approx(fd, rel=1e-7)


def test_entropy_gradient_smooth_at_collision(rng):
    """C11: sigma = (1.3, 1.3(1+1e-9), 0.4) agrees with the exact collision to 1e-6 rel."""
    u, v = haar_stiefel(3, 3, rng), haar_stiefel(3, 3, rng)
    for depth in (2, 3, 5, 200):
        near = entropy_gradient((u * [1.3 * (1 + 1e-9), 1.3, 0.4]) @ v.T, depth)
        exact = entropy_gradient((u * [1.3, 1.3, 0.4]) @ v.T, depth)
        assert np.all(np.isfinite(exact))
        assert np.linalg.norm(near - exact) <= 1e-6 * np.linalg.norm(exact)


def test_entropy_gradient_depth_one_is_zero(rng):
    x = rng.standard_normal((3, 2))
    assert np.all(entropy_gradient(x, 1) == 0.0)
    assert boltzmann_entropy(x, 1) == 0.0


def test_entropy_large_depth_and_dimension_finite(rng):
    """Log-space volumes: no overflow for d = 60, N = 500."""
    x = matrix_with_spectrum(60, 60, np.linspace(0.1, 3.0, 60), rng)
    assert np.isfinite(boltzmann_entropy(x, 500))
    assert np.all(np.isfinite(entropy_gradient(x, 500)))


def test_bad_input():
    x = np.diag([2.0, 1.0])
    with pytest.raises(ValueError, match="depth"):
        boltzmann_entropy(x, 0)
    with pytest.raises(TypeError, match="depth"):
        boltzmann_entropy(x, 2.5)
    with pytest.raises(ValueError, match="finite"):
        boltzmann_entropy(np.array([[np.nan, 0.0], [0.0, 1.0]]), 2)
    with pytest.raises(ValueError, match="widths must have depth"):
        boltzmann_entropy(x, 2, (2, 2))
    with pytest.raises(ValueError, match="start with n"):
        boltzmann_entropy(x, 2, (3, 2, 2))
    with pytest.raises(ValueError, match="rank 2"):
        boltzmann_entropy(x, 2, (2, 1, 2))
    with pytest.raises(ValueError, match="rank 2"):
        entropy_gradient(x, 3, (2, 2, 1, 2))
    with pytest.raises(ValueError, match="2-d"):
        entropy_gradient(np.ones(3), 2)
    with pytest.raises(ValueError, match="r must be at most"):
        stiefel_volume(2, 3)
    with pytest.raises(ValueError, match="d must be"):
        orthogonal_group_volume(-1)
    with pytest.raises(TypeError, match="n must be"):
        log_stiefel_volume(2.0, 1)
