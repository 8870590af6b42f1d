"""The DLN operator A_{N,X} and the metric g^N (math.md §3–4; rows C4, C6, C9)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds import (
    balanced_factors,
    dln_inner,
    dln_operator,
    dln_operator_inverse,
    dln_operator_sqrt,
)
from dlnmanifolds.core.kernel import dln_kernel
from dlnmanifolds.core.network import _generic_operator
from dlnmanifolds.core.operator import dln_operator_powers
from tests.helpers import balanced_point, matrix_with_spectrum

CASES = [(3, 3, 3), (2, 4, 3), (4, 3, 4), (5, 5, 1), (3, 5, 2), (4, 4, 6)]


@pytest.mark.parametrize("widths", [(3, 3, 3, 3), (3, 5, 4, 2), (4, 4, 4), (2, 3, 5, 4, 3)])
def test_operator_three_ways(widths, rng):
    """C4: products A_W = fractional powers = SVD kernel on M (relative 1e-10)."""
    w = balanced_point(widths, rng)
    x = w[-1]
    for layer in reversed(w[:-1]):
        x = x @ layer
    z = rng.standard_normal(x.shape)
    depth = len(w)
    a_svd = dln_operator(x, z, depth)
    scale = np.linalg.norm(a_svd)
    assert np.linalg.norm(_generic_operator(w, z) - a_svd) <= 1e-10 * scale
    assert np.linalg.norm(dln_operator_powers(x, z, depth) - a_svd) <= 1e-10 * scale


def test_operator_rank_two_balanced(rng):
    """C4: rank 2 in widths (4,6,5,4): products = kernel with truncated zeros."""
    x = matrix_with_spectrum(4, 4, [1.5, 0.7], rng)
    w = balanced_factors(x, 3, (4, 6, 5, 4), rng)
    z = rng.standard_normal((4, 4))
    a = dln_operator(x, z, 3, rank=2)
    assert np.linalg.norm(_generic_operator(w, z) - a) <= 1e-10 * np.linalg.norm(a)


@pytest.mark.parametrize("m,n,depth", CASES)
def test_operator_symmetric_positive_inverse_sqrt(m, n, depth, rng):
    """C6: A symmetric, positive definite at full rank; inverse and sqrt consistent."""
    x = rng.standard_normal((m, n))
    z1, z2 = rng.standard_normal((2, m, n))
    a1 = dln_operator(x, z1, depth)
    assert np.isclose(np.sum(a1 * z2), np.sum(z1 * dln_operator(x, z2, depth)), rtol=1e-12)
    assert np.sum(a1 * z1) > 0
    assert np.allclose(dln_operator_inverse(x, a1, depth), z1, atol=1e-10)
    s = dln_operator_sqrt(x, dln_operator_sqrt(x, z1, depth), depth)
    assert np.allclose(s, a1, atol=1e-10)
    assert np.isclose(dln_inner(x, a1, z2, depth), np.sum(z1 * z2), rtol=1e-10)
    assert np.isclose(dln_inner(x, z1, z2, depth), dln_inner(x, z2, z1, depth), rtol=1e-13)


@pytest.mark.parametrize("m,n,r,depth", [(3, 3, 2, 3), (2, 4, 1, 3), (4, 4, 2, 3), (5, 3, 2, 2)])
def test_rank_deficient_operator_maps_into_tangent_space(m, n, r, depth, rng):
    """C6: at rank r, A kills the normal space U_perp B V_perp^T and maps into T_X M_r
    with r(m+n-r) positive eigenvalues."""
    x = matrix_with_spectrum(m, n, np.linspace(2.0, 0.5, r), rng)
    u, _, vt = np.linalg.svd(x)
    u_perp, v_perp = u[:, r:], vt[r:].T
    b = rng.standard_normal((m - r, n - r))
    normal = u_perp @ b @ v_perp.T
    assert np.max(np.abs(dln_operator(x, normal, depth, rank=r))) <= 1e-12
    z = rng.standard_normal((m, n))
    az = dln_operator(x, z, depth, rank=r)
    assert np.max(np.abs(u_perp.T @ az @ v_perp)) <= 1e-12
    basis = np.eye(m * n).reshape(m * n, m, n)
    matrix = np.array([dln_operator(x, e, depth, rank=r).ravel() for e in basis])
    eig = np.linalg.eigvalsh(0.5 * (matrix + matrix.T))
    assert np.sum(eig > 1e-10) == r * (m + n - r)
    assert np.sum(np.abs(eig) <= 1e-10) == (m - r) * (n - r)


@pytest.mark.parametrize("gap", [0.0, 1e-12, 1e-8, 1e-4])
@pytest.mark.parametrize("depth", [2, 3, 8])
def test_operator_near_repeated_singular_values(gap, depth, rng):
    """Stable at coinciding singular values: matches the product form, no NaN."""
    x = matrix_with_spectrum(3, 3, [1.2, 1.2 * (1 + gap), 0.5], rng)
    w = balanced_factors(x, depth, rng=rng)
    z = rng.standard_normal((3, 3))
    a = dln_operator(x, z, depth)
    assert np.all(np.isfinite(a))
    assert np.linalg.norm(_generic_operator(w, z) - a) <= 1e-10 * np.linalg.norm(a)
    back = dln_operator_inverse(x, a, depth)
    assert np.allclose(back, z, atol=1e-9)


def test_single_output_formula(rng):
    """C9: X = x a 1 x n row: A(Z) = |x|^{2-2/N}(Z + (N-1)(Z x^T) x/|x|^2)."""
    for depth in (2, 3, 5):
        x = rng.standard_normal((1, 4))
        z = rng.standard_normal((1, 4))
        nx = np.linalg.norm(x)
        expected = nx ** (2 - 2 / depth) * (z + (depth - 1) * (z @ x.T) * x / nx**2)
        assert np.allclose(dln_operator(x, z, depth), expected, rtol=1e-13)


def test_singular_value_dynamics(rng):
    """C4: sigma_k' = -N sigma_k^{2-2/N} u_k^T E' v_k, via d/dt sigma(X - t A(E'))."""
    depth = 3
    x = matrix_with_spectrum(4, 4, [2.0, 1.3, 0.9, 0.6], rng)
    e = rng.standard_normal((4, 4))
    u, s, vt = np.linalg.svd(x)
    velocity = -dln_operator(x, e, depth)
    h = 1e-6
    fd = (
        np.linalg.svd(x + h * velocity, compute_uv=False)
        - np.linalg.svd(x - h * velocity, compute_uv=False)
    ) / (2 * h)
    expected = -depth * s ** (2 - 2 / depth) * np.einsum("ik,ij,jk->k", u, e, vt.T)
    assert np.allclose(fd, expected, atol=1e-8)


def test_metric_determinant(rng):
    """§4.4: det A = prod_i N sigma_i^{2(N-1)/N} prod_{i<j} kappa_ij^2."""
    depth, sigma = 3, np.array([1.7, 1.1, 0.4])
    x = matrix_with_spectrum(3, 3, sigma, rng)
    basis = np.eye(9).reshape(9, 3, 3)
    matrix = np.array([dln_operator(x, e, depth).ravel() for e in basis])
    expected = np.prod(depth * sigma ** (2 * (depth - 1) / depth))
    for i in range(3):
        for j in range(i + 1, 3):
            expected *= dln_kernel(sigma[i], sigma[j], depth) ** 2
    assert np.isclose(np.linalg.det(matrix), expected, rtol=1e-10)


@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.sampled_from([(2, 2), (3, 2), (2, 4)]))
def test_batched_operator_matches_loop(seed, depth, shape):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((3,) + shape)
    z = rng.standard_normal((3,) + shape)
    batched = dln_operator(x, z, depth)
    for k in range(3):
        assert np.allclose(batched[k], dln_operator(x[k], z[k], depth))
    inner = dln_inner(x, z, z, depth)
    assert inner.shape == (3,) and np.all(inner > 0)


def test_errors_name_arguments(rng):
    x = rng.standard_normal((3, 3))
    with pytest.raises(ValueError, match="z must have the same matrix shape"):
        dln_operator(x, np.zeros((2, 3)), 2)
    with pytest.raises(ValueError, match="depth"):
        dln_operator(x, x, 0)
    with pytest.raises(TypeError, match="depth"):
        dln_operator(x, x, 2.5)
    bad = x.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="W must contain only finite"):
        dln_operator(bad, x, 2)
    singular = np.diag([1.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="W must have full rank"):
        dln_operator_inverse(singular, x, 2)
    with pytest.raises(ValueError, match="W must have full rank"):
        dln_inner(singular, x, x, 2)
    with pytest.raises(ValueError, match="rank must be at most"):
        dln_operator(x, x, 2, rank=4)
    with pytest.raises(ValueError, match="W must be"):
        dln_operator(np.ones(3), np.ones(3), 2)
