"""Geodesics of g^N and of M (core.dln_geodesic, DLNMetric, BalancedMetric, QuotientMetric).

Checks: closed-form geodesics (math.md §4.5, C6), the Euler-Lagrange equation by finite
differences of the metric alone, agreement of the two independent integrators (Hamiltonian
downstairs vs Weingarten upstairs) through Geomstats' QuotientMetric, exp∘log and log∘exp.
"""

import numpy as np
import pytest
from geomstats.geometry.general_linear import GeneralLinear
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds.core.balanced import haar_stiefel
from dlnmanifolds.core.dln_geodesic import (
    GeodesicError,
    balanced_exp_stacked,
    dln_exp,
    dln_log,
)
from dlnmanifolds.core.dln_metric import exp_fixed_singular_vectors
from dlnmanifolds.core.network import _end_to_end, _invariants
from dlnmanifolds.core.operator import dln_inner, dln_operator_inverse
from dlnmanifolds.geomstats import BalancedSpace, DLNMetric


def _rotation(n, rng):
    q = haar_stiefel(n, n, rng)
    q[:, 0] *= np.sign(np.linalg.det(q))
    return q


def _point(n, sigma, rng):
    return (_rotation(n, rng) * np.asarray(sigma, float)) @ _rotation(n, rng).T


def _dln_space(n, depth):
    space = GeneralLinear(n, equip=False)
    space.equip_with_metric(DLNMetric, depth=depth)
    return space


spectra = st.sampled_from(
    [(1.0, 1.0), (1.7, 0.6), (1.2, 1.2 * (1 + 1e-9)), (2.0, 1e-2), (1.5, 1.0, 0.4), (1.0,) * 3]
)


@given(sigma=spectra, depth=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_exp_matches_closed_form_fixed_singular_vectors(sigma, depth, seed):
    """Exp_X(U diag(delta) V^T) = U (Lambda + delta/(N Lambda^{N-1}))^N V^T (math.md §4.5)."""
    rng = np.random.default_rng(seed)
    n = len(sigma)
    u, v = _rotation(n, rng), _rotation(n, rng)
    sigma = np.asarray(sigma)
    x = (u * sigma) @ v.T
    # Keep Lambda + t delta/(N Lambda^{N-1}) > 0: |delta| < N sigma^{(N-1)/N} sigma^{1/N} / 2.
    delta = rng.uniform(-0.4, 0.4, n) * depth * sigma
    # The formula in the frames (u, v) we chose: with repeated sigma the SVD inside
    # core.exp_fixed_singular_vectors may pick other frames, so it is only used when distinct.
    lam = sigma ** (1.0 / depth)
    expected = (u * (lam + delta / (depth * lam ** (depth - 1))) ** depth) @ v.T
    if len(set(sigma)) == n and list(sigma) == sorted(sigma, reverse=True):
        assert np.allclose(exp_fixed_singular_vectors(x, delta, depth), expected, atol=1e-12)
    got = dln_exp(x, (u * delta) @ v.T, depth)
    assert np.max(np.abs(got - expected)) <= 1e-10 * max(1.0, np.max(np.abs(expected)))


@pytest.mark.parametrize("n, depth", [(2, 2), (2, 3), (3, 3)])
def test_geodesic_solves_euler_lagrange_equation(n, depth):
    """d/dt (A^{-1} Xdot) = 1/2 grad_X g_X(Xdot, Xdot), all by central differences of g^N."""
    rng = np.random.default_rng(n * 10 + depth)
    x0 = _point(n, np.linspace(1.6, 0.7, n), rng)
    vel = 0.4 * rng.standard_normal((n, n))
    h = 1e-3
    times = 0.5 + h * np.arange(-2, 3)
    curve = dln_exp(np.broadcast_to(x0, (5, n, n)), times[:, None, None] * vel, depth)
    xdot = (curve[2:] - curve[:-2]) / (2 * h)  # at t = 0.5 - h, 0.5, 0.5 + h
    p = dln_operator_inverse(curve[1:4], xdot, depth)
    lhs = (p[2] - p[0]) / (2 * h)
    x, xd = curve[2], xdot[1]
    eps = 1e-5
    rhs = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            e = np.zeros((n, n))
            e[i, j] = eps
            rhs[i, j] = 0.5 * (dln_inner(x + e, xd, xd, depth) - dln_inner(x - e, xd, xd, depth))
            rhs[i, j] /= 2 * eps
    assert np.max(np.abs(lhs - rhs)) <= 1e-5 * max(1.0, np.max(np.abs(rhs)))


@pytest.mark.parametrize("n, depth", [(2, 2), (2, 3), (3, 2)])
def test_quotient_metric_agrees_with_dln_metric(n, depth):
    """Geomstats' QuotientMetric over DLNBundle = DLNMetric (submersion, math.md §4.2).

    inner product / squared norm to 1e-10; exp to 1e-10 although the two exps integrate
    different ODEs (Weingarten geodesic of M vs lifted Hamiltonian flow); log to 1e-9.
    """
    rng = np.random.default_rng(7 * n + depth)
    total = BalancedSpace(n, depth, rng=rng)
    quotient = total.equip_with_quotient()
    dln = _dln_space(n, depth)
    x = np.stack([_point(n, rng.uniform(0.6, 1.8, n), rng) for _ in range(2)])
    a, b = 0.3 * rng.standard_normal((2, 2, n, n))
    assert np.allclose(
        quotient.metric.inner_product(a, b, x), dln.metric.inner_product(a, b, x),
        rtol=0, atol=1e-10,
    )
    assert np.allclose(
        quotient.metric.squared_norm(a, x), dln.metric.squared_norm(a, x), rtol=0, atol=1e-10
    )
    y = dln.metric.exp(a, x)
    assert np.max(np.abs(quotient.metric.exp(a, x) - y)) <= 1e-10
    assert np.max(np.abs(quotient.metric.log(y[:1], x[:1]) - a[:1])) <= 1e-9
    assert np.max(np.abs(dln.metric.log(y, x) - a)) <= 1e-9


@given(sigma=spectra, depth=st.integers(2, 3), seed=st.integers(0, 2**16))
def test_exp_after_log_is_identity(sigma, depth, seed):
    """Exp_X(Log_X(Y)) = Y to the documented shooting tolerance 1e-11 * max(1, |Y|)."""
    rng = np.random.default_rng(seed)
    n = len(sigma)
    x = _point(n, sigma, rng)
    y = dln_exp(x, 0.2 * np.min(sigma) * rng.standard_normal((n, n)), depth)
    v = dln_log(y, x, depth)
    assert np.max(np.abs(dln_exp(x, v, depth) - y)) <= 1e-10 * max(1.0, np.max(np.abs(y)))


def test_log_after_exp_and_energy():
    """Log_X(Exp_X(V)) = V and dist = g-norm (short geodesics are minimising)."""
    rng = np.random.default_rng(3)
    space = _dln_space(3, 3)
    x = _point(3, [1.5, 1.0, 0.8], rng)
    v = 0.2 * rng.standard_normal((4, 3, 3))
    y = space.metric.exp(v, x)
    assert np.max(np.abs(space.metric.log(y, x) - v)) <= 1e-8
    assert np.allclose(space.metric.dist(x, y) ** 2, space.metric.squared_norm(v, x), atol=1e-9)


def test_balanced_geodesic_stays_on_balanced_manifold():
    """The Weingarten geodesic ODE of M keeps G(W) = 0 (to 1e-10) and phi invertible."""
    space = BalancedSpace(3, 3, rng=5)
    w = space.random_point()
    xi = 0.3 * space.random_tangent_vec(w)
    w1 = balanced_exp_stacked(w, xi)
    assert max(np.max(np.abs(g)) for g in _invariants(list(w1))) <= 1e-10
    assert space.belongs(w1, atol=1e-10)
    back = space.metric.log(w1, w)
    assert np.max(np.abs(back - xi)) <= 1e-8


def test_geodesic_into_singular_matrices_raises():
    """g^N geodesics reach det = 0 in finite time: a clear GeodesicError (a ValueError)."""
    x = np.diag([1.0, 0.1])
    with pytest.raises(ValueError, match="singular"):
        dln_exp(x, np.diag([0.0, -1.0]), 2)
    assert issubclass(GeodesicError, ValueError)


def test_end_to_end_of_lifted_geodesic_is_the_geodesic():
    """phi(W(1)) of the horizontal geodesic equals DLNMetric.exp (random gauge lift)."""
    from dlnmanifolds.core.dln_geodesic import horizontal_geodesic_end

    rng = np.random.default_rng(9)
    space = BalancedSpace(2, 3, rng=rng)
    w = space.random_point()
    x = _end_to_end(list(w))
    v = 0.3 * rng.standard_normal((2, 2))
    w1 = horizontal_geodesic_end(w, v)
    assert np.max(np.abs(_end_to_end(list(w1)) - dln_exp(x, v, 3))) <= 1e-10
