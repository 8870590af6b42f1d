"""The divided-difference kernel kappa (math.md §3.2, rows C5, C9)."""

from decimal import Decimal, getcontext

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds.core.kernel import dln_kernel, dln_kernel_sum, kernel_matrix, log_mean_kernel


def kappa_reference(a: float, b: float, depth: int) -> float:
    """Geometric sum in 50-digit decimal arithmetic."""
    getcontext().prec = 50
    a_d, b_d = Decimal(a), Decimal(b)
    powa = (Decimal(2) / depth * a_d.ln()).exp() if a > 0 else Decimal(0)
    powb = (Decimal(2) / depth * b_d.ln()).exp() if b > 0 else Decimal(0)
    total = Decimal(0)
    for k in range(depth):
        left = powa ** (depth - 1 - k) if depth - 1 - k else Decimal(1)
        right = powb**k if k else Decimal(1)
        total += left * right
    return float(total)


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 10, 50, 200])
@pytest.mark.parametrize("gap", [0.0, 1e-15, 1e-12, 1e-8, 1e-4, 1e-1, 10.0])
@pytest.mark.parametrize("scale", [1e-8, 1.0, 1e3])
def test_kernel_matches_high_precision(depth, gap, scale):
    """C9: expm1 form vs a 50-digit reference, relative error <= 1e-13."""
    a = scale
    b = scale * (1.0 + gap)
    ref = kappa_reference(a, b, depth)
    assert abs(dln_kernel(a, b, depth) - ref) <= 1e-13 * ref
    assert abs(dln_kernel_sum(a, b, depth) - ref) <= 1e-13 * ref


def test_naive_quotient_fails_where_kernel_does_not():
    """C9: the divided difference is 0/0 at a tiny relative gap; kappa is finite."""
    depth = 200
    a, b = np.float64(1.0), np.float64(1.0 + 1e-15)
    with np.errstate(invalid="ignore", divide="ignore"):
        naive = (a**2 - b**2) / (a ** (2 / depth) - b ** (2 / depth))
    assert not np.isfinite(naive) or abs(naive - depth) > 1e-3 * depth
    assert np.isclose(dln_kernel(a, b, depth), kappa_reference(a, b, depth), rtol=1e-13)


@pytest.mark.parametrize("depth", [2, 3, 7])
def test_kernel_special_values(depth):
    """C9: kappa(s, s) = N s^{2(N-1)/N}, kappa(s, 0) = s^{2(N-1)/N}, kappa(0, 0) = 0."""
    s = 1.7
    assert np.isclose(dln_kernel(s, s, depth), depth * s ** (2 * (depth - 1) / depth), rtol=1e-14)
    assert np.isclose(dln_kernel(s, 0.0, depth), s ** (2 * (depth - 1) / depth), rtol=1e-14)
    assert np.isclose(dln_kernel(0.0, s, depth), s ** (2 * (depth - 1) / depth), rtol=1e-14)
    assert dln_kernel(0.0, 0.0, depth) == 0.0


def test_depth_one_is_identity_kernel():
    assert np.all(dln_kernel(np.array([0.0, 1.0, 3.0]), np.array([0.0, 2.0, 3.0]), 1) == 1.0)


@given(
    st.floats(1e-6, 1e3),
    st.floats(1e-6, 1e3),
    st.integers(1, 30),
)
def test_kernel_symmetric_positive_and_closed_form(a, b, depth):
    k = dln_kernel(a, b, depth)
    assert k > 0 and np.isfinite(k)
    assert k == pytest.approx(dln_kernel(b, a, depth), rel=1e-15)
    if depth > 1 and abs(a - b) > 1e-2 * max(a, b):
        quotient = (a**2 - b**2) / (a ** (2 / depth) - b ** (2 / depth))
        assert k == pytest.approx(quotient, rel=1e-10)


def test_kernel_matrix_blocks_rank_deficient():
    """C6/§3.2 table: blocks of K for rank r < min(m, n)."""
    depth = 3
    sigma = np.array([2.0, 0.5, 0.0])
    k = kernel_matrix(sigma, (4, 3), depth)
    c = sigma[:2] ** (2 * (depth - 1) / depth)
    assert k.shape == (4, 3)
    assert np.allclose(k[2:, :2], c[None, :])  # i > r, j <= r
    assert np.allclose(k[:2, 2:], c[:, None])  # i <= r, j > r
    assert np.all(k[2:, 2:] == 0.0)


def test_jacobi_matrix_determinant_and_spectrum():
    """C5/C10: det T_ij = kappa_ij and eig T_ij = l_i^2 + l_j^2 - 2 l_i l_j cos(k pi/N)."""
    depth, li, lj = 5, 1.3, 0.7
    t = (li**2 + lj**2) * np.eye(depth - 1) - li * lj * (
        np.eye(depth - 1, k=1) + np.eye(depth - 1, k=-1)
    )
    kappa = dln_kernel(li**depth, lj**depth, depth)
    assert np.isclose(np.linalg.det(t), kappa, rtol=1e-12)
    expected = li**2 + lj**2 - 2 * li * lj * np.cos(np.arange(1, depth) * np.pi / depth)
    assert np.allclose(np.sort(np.linalg.eigvalsh(t)), np.sort(expected), atol=1e-12)


@pytest.mark.parametrize("depth", [1000, 10000])
def test_infinite_depth_limit(depth):
    """C9: kappa/N = L (1 - log(s_i s_j)/N + O(N^-2))."""
    a, b = 1.7, 0.6
    ratio = dln_kernel(a, b, depth) / depth / log_mean_kernel(a, b)
    remainder = (ratio - (1 - np.log(a * b) / depth)) * depth**2
    assert abs(remainder) < 5.0
    assert log_mean_kernel(2.0, 2.0) == 4.0
