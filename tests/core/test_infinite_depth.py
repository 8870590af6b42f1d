"""Infinite depth (Cohen, Menon & Veraszto 2022; math.md §4.6, row C9).

kappa_N / N -> kappa_inf = log mean of sigma^2, tau^2 at rate O(1/N); A_N / N -> A_inf;
the time-rescaled flow X_N(tau / N) -> Y_inf(tau); g^inf = lim N g^N on square matrices.
"""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds import dln_inner, dln_operator
from dlnmanifolds.core.dln_metric import exp_fixed_singular_vectors
from dlnmanifolds.core.kernel import dln_kernel, kernel_matrix
from dlnmanifolds.flows import end_to_end_flow
from dlnmanifolds.pymanopt import BalancedManifold, DLNFixedRank, DLNMatrices
from tests.helpers import matrix_with_spectrum

positive = st.floats(1e-6, 1e3)


@given(a=positive, ratio=st.sampled_from([1.0, 1 + 1e-15, 1 + 1e-9, 1.5, 10.0, 1e6]))
def test_kernel_converges_at_rate_one_over_depth(a, ratio):
    """N (kappa_N/N / kappa_inf - 1) -> -log(a b): the O(1/N) term of math.md §4.6."""
    b = a * ratio
    limit = dln_kernel(a, b, math.inf)
    # independent reference: the defining quotient (a^2 - b^2)/(log a^2 - log b^2)
    if ratio > 1 + 1e-6:
        assert limit == pytest.approx((a**2 - b**2) / (2 * np.log(a) - 2 * np.log(b)), rel=1e-13)
    else:
        assert limit == pytest.approx(a * b, rel=1e-8)  # L(a, b) -> a b as b -> a
    slopes = []
    for depth in (10**3, 10**4):
        slopes.append(depth * (dln_kernel(a, b, depth) / depth / limit - 1.0))
    # kappa_N/N / kappa_inf = e^{-L/N} (d / sinh d), L = log(a b), d = log(a/b)/N, so
    # N (ratio - 1) = -L + (L^2/2 - log(a/b)^2/6)/N + O((|L| + |log(a/b)|)^3 / N^2).
    big_l, small_l = np.log(a * b), np.log(a / b)
    for depth, s in zip((10**3, 10**4), slopes):
        predicted = -big_l + (big_l**2 / 2 - small_l**2 / 6) / depth
        tol = 1e-6 + (abs(big_l) + abs(small_l)) ** 3 / depth**2
        assert s == pytest.approx(predicted, abs=tol)
    # the O(1/N) rate itself: the slope at N = 10^4 is within 1/N of -L
    assert slopes[1] == pytest.approx(-big_l, abs=2e-2 * max(1.0, big_l**2, small_l**2))


def test_kernel_infinite_depth_special_values():
    assert dln_kernel(2.0, 2.0, math.inf) == 4.0  # sigma^2 on the diagonal
    assert dln_kernel(2.0, 0.0, math.inf) == 0.0  # kappa_N(s, 0)/N = s^{2(N-1)/N}/N -> 0
    assert dln_kernel(0.0, 0.0, math.inf) == 0.0
    k = kernel_matrix(np.array([2.0, 1.0]), (3, 2), math.inf)
    assert k[2, 0] == 0.0 and k[1, 1] == 1.0


def test_operator_and_metric_depth_ten_thousand_vs_infinity(rng):
    """A_N/N and N g^N at N = 1e4 agree with A_inf, g^inf to 1e-4.

    The gap is |log(sigma_i sigma_j)|/N to first order (math.md §4.6), so 1e-4 at
    N = 1e4 needs |log sigma_i sigma_j| < 1: sigma in [0.7, 1.5] (max 0.81).
    """
    x = matrix_with_spectrum(3, 3, [1.5, 1.0, 0.7], rng)
    z = rng.standard_normal((3, 3))
    depth = 10**4
    a_inf = dln_operator(x, z, math.inf)
    a_n = dln_operator(x, z, depth) / depth
    assert np.max(np.abs(a_n - a_inf)) <= 1e-4 * np.max(np.abs(a_inf))
    g_inf = dln_inner(x, z, z, math.inf)
    assert depth * dln_inner(x, z, z, depth) == pytest.approx(g_inf, rel=1e-4)
    # A_inf(Z) = int_0^1 (X X^T)^{1-t} Z (X^T X)^t dt, by 40-node Gauss-Legendre
    nodes, weights = np.polynomial.legendre.leggauss(40)
    u, s, vt = np.linalg.svd(x)
    t = 0.5 * (nodes + 1.0)
    integral = sum(
        0.5 * w * (u * s ** (2 * (1 - ti))) @ u.T @ z @ (vt.T * s ** (2 * ti)) @ vt
        for ti, w in zip(t, weights)
    )
    assert np.max(np.abs(integral - a_inf)) <= 1e-12 * np.max(np.abs(a_inf))


def test_time_rescaled_flow_converges(rng):
    """X_N(tau/N) -> Y_inf(tau), E = 1/2||X - Y||^2: error O(1/N); N = 1e4 vs inf to 1e-4."""
    target = matrix_with_spectrum(3, 3, [1.5, 1.0, 0.5], rng)
    x0 = matrix_with_spectrum(3, 3, [0.9, 0.7, 0.4], rng)
    energy = (lambda x: 0.5 * np.sum((x - target) ** 2), lambda x: x - target)
    y_inf = end_to_end_flow(energy, x0, math.inf, 1.0, rtol=1e-11, atol=1e-13).final_state
    errors = []
    for depth in (100, 1000, 10**4):
        y = end_to_end_flow(energy, x0, depth, 1.0 / depth, rtol=1e-11, atol=1e-13).final_state
        errors.append(np.max(np.abs(y - y_inf)))
    assert errors[-1] <= 1e-4
    assert 7 < errors[0] / errors[1] < 13 and 7 < errors[1] / errors[2] < 13


def test_exp_diagonal_limit(rng):
    x = matrix_with_spectrum(3, 3, [1.5, 1.0, 0.5], rng)
    u, s, vt = np.linalg.svd(x)
    delta = np.array([0.3, -0.2, 0.1])
    exact = exp_fixed_singular_vectors(x, delta, math.inf)
    np.testing.assert_allclose(exact, (u * (s * np.exp(delta / s))) @ vt, rtol=1e-13)
    far = exp_fixed_singular_vectors(x, delta, 10**6)
    assert np.max(np.abs(far - exact)) <= 1e-5
    manifold = DLNMatrices(3, 3, math.inf)
    # the retraction X expm(X^{-1} xi) is exact along these geodesics
    xi = (u * delta) @ vt
    np.testing.assert_allclose(manifold.retraction(x, xi), exact, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "inf", math.nan, -math.inf, None, True])
def test_bad_depth_names_depth(bad):
    with pytest.raises((TypeError, ValueError), match="depth"):
        dln_kernel(1.0, 2.0, bad)
    with pytest.raises((TypeError, ValueError), match="depth"):
        DLNMatrices(2, 2, bad)


def test_infinite_depth_rejected_where_undefined(rng):
    with pytest.raises(ValueError, match="square"):
        DLNMatrices(3, 4, math.inf)
    with pytest.raises(ValueError, match="square"):
        dln_inner(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 3)), math.inf)
    with pytest.raises(ValueError, match="DLNFixedRank"):
        DLNFixedRank(4, 3, 2, math.inf)
    with pytest.raises(ValueError, match="depth"):
        from dlnmanifolds import balanced_factors

        balanced_factors(np.eye(2), math.inf)
    with pytest.raises(TypeError, match="widths"):
        BalancedManifold(math.inf)
