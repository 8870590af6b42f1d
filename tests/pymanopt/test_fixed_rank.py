"""DLNFixedRank: g^N on rank-r matrices (math.md §4.1 "Rank r", verified row C6)."""

import numpy as np
import pymanopt
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymanopt.manifolds import FixedRankEmbedded
from pymanopt.optimizers import ConjugateGradient, TrustRegions

from dlnmanifolds import dln_inner, dln_operator
from dlnmanifolds.core.fixed_rank import (
    fixed_rank_hessian,
    fixed_rank_inner,
    fixed_rank_retraction,
    fixed_rank_riemannian_gradient,
    fixed_rank_weights,
)
from dlnmanifolds.pymanopt.fixed_rank import DLNFixedRank, MissingHessianError
from tests.helpers import matrix_with_spectrum
from tests.pymanopt.checks import assert_taylor_slopes

CASES = [(5, 4, 2, 1), (5, 4, 2, 2), (6, 5, 2, 3), (4, 7, 3, 4), (3, 3, 1, 6), (4, 4, 4, 3)]


def completion_problem(manifold, rng, with_hessian=False):
    """E = 1/2 ||P_Omega(X - Y)||^2 + 0.1 sum sin(X), Pymanopt factor gradients.

    ``with_hessian`` adds a (placeholder) Euclidean Hessian so that second-order
    solvers reach the manifold's Hessian conversion.
    """
    m, n = manifold.shape
    target = rng.standard_normal((m, n))
    mask = rng.random((m, n)) < 0.7

    def ambient_gradient(x):
        return mask * (x - target) + 0.1 * np.cos(x)

    @pymanopt.function.numpy(manifold)
    def cost(u, s, vt):
        x = (u * s) @ vt
        return 0.5 * np.sum((mask * (x - target)) ** 2) + 0.1 * np.sum(np.sin(x))

    @pymanopt.function.numpy(manifold)
    def egrad(u, s, vt):
        g = ambient_gradient((u * s) @ vt)
        return g @ vt.T * s, np.diag(u.T @ g @ vt.T), s[:, None] * (u.T @ g)

    @pymanopt.function.numpy(manifold)
    def ehess(u, s, vt, du, ds, dvt):
        return du, ds, dvt

    problem = pymanopt.Problem(manifold, cost, euclidean_gradient=egrad,
                               euclidean_hessian=ehess if with_hessian else None)
    return problem, ambient_gradient


def point_with_spectrum(manifold, sigma, rng):
    m, n = manifold.shape
    u, s, vt = np.linalg.svd(matrix_with_spectrum(m, n, sigma, rng), full_matrices=False)
    r = len(sigma)
    return manifold.from_matrix((u[:, :r] * s[:r]) @ vt[:r])


@pytest.mark.parametrize("m,n,r,depth", CASES)
def test_gradient_slope(m, n, r, depth, rng):
    manifold = DLNFixedRank(m, n, r, depth, rng=3)
    problem, _ = completion_problem(manifold, rng)
    assert_taylor_slopes(problem, hessian=False)


@given(
    seed=st.integers(0, 2**31 - 1),
    depth=st.integers(1, 7),
    case=st.sampled_from([(5, 4, 2), (4, 6, 3), (6, 6, 3)]),
    kind=st.sampled_from(["random", "repeated", "tiny"]),
)
def test_gradient_is_dln_operator_rank_r(seed, depth, case, kind):
    """Embedded Riemannian gradient = A_{N,X}(G) restricted to T_X M_r (C6).

    For N >= 2 A_{N,X} maps into T_X M_r, so the two agree exactly; for N = 1 the
    gradient is the Frobenius projection of G (FixedRankEmbedded).
    """
    rng = np.random.default_rng(seed)
    m, n, r = case
    sigma = {"random": rng.uniform(0.5, 2.0, r), "repeated": np.ones(r) * 1.3,
             "tiny": np.r_[1.0, rng.uniform(1e-6, 1e-4, r - 1)]}[kind]
    manifold = DLNFixedRank(m, n, r, depth, rng=seed)
    x = point_with_spectrum(manifold, np.sort(sigma)[::-1], rng)
    g = rng.standard_normal((m, n))
    grad = manifold.euclidean_to_riemannian_gradient(x, g)
    ambient = manifold.tangent_to_matrix(x, grad)
    if depth >= 2:
        expected = dln_operator(manifold.to_matrix(x), g, depth, rank=r)
    else:
        embedded = FixedRankEmbedded(m, n, r)
        expected = manifold.tangent_to_matrix(x, embedded.projection(x, g))
    scale = np.max(np.abs(expected)) + 1e-300
    assert np.max(np.abs(ambient - expected)) <= 1e-10 * scale
    # Defining property of the gradient: g(grad, xi) = <G, xi> for tangent xi.
    xi = manifold.random_tangent_vector(x)
    lhs = manifold.inner_product(x, grad, xi)
    rhs = np.sum(g * manifold.tangent_to_matrix(x, xi))
    assert lhs == pytest.approx(rhs, rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("m,n,r,depth", CASES)
def test_factor_gradient_equals_ambient_gradient(m, n, r, depth, rng):
    manifold = DLNFixedRank(m, n, r, depth, rng=5)
    problem, ambient_gradient = completion_problem(manifold, rng)
    x = manifold.random_point()
    via_factors = problem.riemannian_gradient(x)
    via_ambient = manifold.euclidean_to_riemannian_gradient(
        x, ambient_gradient(manifold.to_matrix(x))
    )
    for a, b in zip(via_factors, via_ambient):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@given(seed=st.integers(0, 2**31 - 1), depth=st.integers(1, 6), n=st.integers(2, 5))
def test_metric_is_full_rank_g_when_r_is_n(seed, depth, n):
    """At r = m = n the tangent space is all of R^{n x n} and g = dln_inner (math.md §4.1)."""
    rng = np.random.default_rng(seed)
    manifold = DLNFixedRank(n, n, n, depth, rng=seed)
    x = manifold.random_point()
    a, b = manifold.random_tangent_vector(x), manifold.random_tangent_vector(x)
    xm = manifold.to_matrix(x)
    expected = dln_inner(xm, manifold.tangent_to_matrix(x, a),
                         manifold.tangent_to_matrix(x, b), depth)
    assert manifold.inner_product(x, a, b) == pytest.approx(expected, rel=1e-9)
    assert manifold.inner_product(x, a, b) == pytest.approx(manifold.inner_product(x, b, a))
    assert manifold.inner_product(x, a, a) > 0
    del rng


def test_core_functions_agree_with_manifold(rng):
    manifold = DLNFixedRank(6, 5, 2, 3, rng=1)
    x = manifold.random_point()
    g = rng.standard_normal((6, 5))
    grad = fixed_rank_riemannian_gradient(x[0], x[1], x[2].T, g, 3)
    for a, b in zip(grad, manifold.euclidean_to_riemannian_gradient(x, g)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    xi = manifold.random_tangent_vector(x)
    assert fixed_rank_inner(x[1], grad, xi, 3) == pytest.approx(
        manifold.inner_product(x, grad, xi), rel=1e-12)
    k, c = fixed_rank_weights(np.array([2.0, 1.0]), 3)
    np.testing.assert_allclose(np.diag(k), 3 * np.array([2.0, 1.0]) ** (4 / 3))
    np.testing.assert_allclose(c, np.array([2.0, 1.0]) ** (4 / 3))


@pytest.mark.parametrize("m,n,r,depth", CASES[:4])
def test_retraction_stays_on_manifold_and_is_first_order(m, n, r, depth, rng):
    manifold = DLNFixedRank(m, n, r, depth, rng=7)
    x = manifold.random_point()
    d = manifold.random_tangent_vector(x)
    ts = np.logspace(-4, -2, 5)
    errors = []
    for t in ts:
        y = manifold.retraction(x, t * d)
        assert manifold.belongs(y)
        assert np.linalg.matrix_rank(manifold.to_matrix(y)) == r
        errors.append(np.linalg.norm(manifold.to_matrix(y) - manifold.to_matrix(x)
                                     - t * manifold.tangent_to_matrix(x, d)))
    assert np.polyfit(np.log(ts), np.log(errors), 1)[0] == pytest.approx(2.0, abs=0.1)


def test_conjugate_gradient_recovers_low_rank_matrix(rng):
    """CG on (M_r, g^3) fits a rank-2 target from all its entries (E = 1/2||X - Y||^2)."""
    manifold = DLNFixedRank(8, 7, 2, 3, rng=2)
    target = matrix_with_spectrum(8, 7, [2.0, 1.0], rng)

    @pymanopt.function.numpy(manifold)
    def cost(u, s, vt):
        return 0.5 * np.sum(((u * s) @ vt - target) ** 2)

    @pymanopt.function.numpy(manifold)
    def egrad(u, s, vt):
        g = (u * s) @ vt - target
        return g @ vt.T * s, np.diag(u.T @ g @ vt.T), s[:, None] * (u.T @ g)

    problem = pymanopt.Problem(manifold, cost, euclidean_gradient=egrad)
    result = ConjugateGradient(verbosity=0, max_iterations=500).run(problem)
    assert np.linalg.norm(manifold.to_matrix(result.point) - target) < 1e-5


def ambient_problem(manifold, rng):
    """The cost of ``completion_problem`` with ambient E'(X) and E''(X)[xi] (m x n)."""
    m, n = manifold.shape
    target = rng.standard_normal((m, n))
    mask = rng.random((m, n)) < 0.7

    @pymanopt.function.numpy(manifold)
    def cost(u, s, vt):
        x = (u * s) @ vt
        return 0.5 * np.sum((mask * (x - target)) ** 2) + 0.1 * np.sum(np.sin(x))

    @pymanopt.function.numpy(manifold)
    def egrad(u, s, vt):
        x = (u * s) @ vt
        return mask * (x - target) + 0.1 * np.cos(x)

    @pymanopt.function.numpy(manifold)
    def ehess(u, s, vt, a, b, c):
        # Pymanopt passes xi as its factored embedding (a, b, c): xi = a b c^T.
        x, xi = (u * s) @ vt, a @ b @ c.T
        return mask * xi - 0.1 * np.sin(x) * xi

    return pymanopt.Problem(manifold, cost, euclidean_gradient=egrad, euclidean_hessian=ehess)


@pytest.mark.parametrize("m,n,r,depth", CASES)
def test_hessian_taylor_slope_three(m, n, r, depth, rng):
    """Levi-Civita Hessian of g^N on M_r: Taylor slope 3 along the lifted retraction."""
    manifold = DLNFixedRank(m, n, r, depth, rng=11)
    assert_taylor_slopes(ambient_problem(manifold, rng), repeats=2, hessian=True)


@given(
    seed=st.integers(0, 2**31 - 1),
    depth=st.integers(1, 9),
    case=st.sampled_from([(5, 4, 2), (4, 6, 3), (3, 3, 3), (6, 2, 1)]),
    kind=st.sampled_from(["random", "repeated", "spread"]),
)
def test_hessian_symmetric_tangent_linear(seed, depth, case, kind):
    """g(H u, v) = g(u, H v), H linear, at repeated and widely spread singular values.

    The curvature of M_r grows like 1/sigma_min, and the symmetry defect with it:
    measured worst relative gap over 180 cases 1.3e-13 (sigma_min/sigma_max = 1e-2),
    2.5e-11 (1e-4), 4.7e-9 (1e-6); asserted 1e-9, and 1e-7 for the 1e-6 spread.
    """
    rng = np.random.default_rng(seed)
    m, n, r = case
    sigma = {"random": rng.uniform(0.5, 2.0, r), "repeated": np.full(r, 1.3),
             "spread": np.geomspace(1.0, 1e-6, r)}[kind]
    manifold = DLNFixedRank(m, n, r, depth, rng=seed)
    x = point_with_spectrum(manifold, np.sort(sigma)[::-1], rng)
    problem = ambient_problem(manifold, rng)
    a, b = manifold.random_tangent_vector(x), manifold.random_tangent_vector(x)
    ha, hb = problem.riemannian_hessian(x, a), problem.riemannian_hessian(x, b)
    scale = manifold.norm(x, ha) * manifold.norm(x, b) + manifold.norm(x, hb) * manifold.norm(x, a)
    gap = manifold.inner_product(x, ha, b) - manifold.inner_product(x, a, hb)
    tol = 1e-7 if kind == "spread" else 1e-9
    assert abs(gap) <= tol * scale
    combo = problem.riemannian_hessian(x, 2.0 * a - 3.0 * b)
    size = max(np.max(np.abs(c)) for c in combo)
    for c, p, q in zip(combo, ha, hb):
        np.testing.assert_allclose(c, 2.0 * p - 3.0 * q, rtol=0, atol=tol * size)
    # tangent: U^T U_p = 0 and V^T V_p = 0
    assert np.max(np.abs(x[0].T @ ha[0])) <= 1e-9 * (1 + np.max(np.abs(ha[0])))
    assert np.max(np.abs(x[2] @ ha[2])) <= 1e-9 * (1 + np.max(np.abs(ha[2])))


@pytest.mark.parametrize("m,n,r,depth", [(6, 5, 2, 3), (8, 7, 2, 4), (5, 5, 3, 2)])
def test_trust_regions_runs_at_rank_r(m, n, r, depth, rng):
    """TrustRegions on (M_r, g^N) converges to a critical point (gradient norm 1e-6)."""
    manifold = DLNFixedRank(m, n, r, depth, rng=4)
    problem = ambient_problem(manifold, rng)
    result = TrustRegions(verbosity=0, max_iterations=200).run(
        problem, initial_point=manifold.random_point()
    )
    assert result.gradient_norm <= 1e-6
    assert manifold.belongs(result.point)


def test_factor_gradients_have_no_hessian_and_say_so(rng):
    """Factor gradients (du, ds, dvt) lose the normal block of E': MissingHessianError."""
    manifold = DLNFixedRank(5, 4, 2, 3, rng=0)
    problem, _ = completion_problem(manifold, rng, with_hessian=True)
    with pytest.raises(MissingHessianError, match="ambient Euclidean gradient"):
        TrustRegions(verbosity=0).run(problem, initial_point=manifold.random_point())
    # Also a NotImplementedError, so generic handlers still catch it.
    assert issubclass(MissingHessianError, NotImplementedError)


def test_core_hessian_and_retraction_agree_with_manifold(rng):
    manifold = DLNFixedRank(6, 5, 2, 3, rng=1)
    x = manifold.random_point()
    xi = manifold.random_tangent_vector(x)
    g, h = rng.standard_normal((6, 5)), rng.standard_normal((6, 5))
    core = fixed_rank_hessian(x[0], x[1], x[2].T, g, h, xi, 3)
    for a, b in zip(core, manifold.euclidean_to_riemannian_hessian(x, g, h, xi)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    u, s, v = fixed_rank_retraction(x[0], x[1], x[2].T, xi, 3)
    np.testing.assert_allclose((u * s) @ v.T, manifold.to_matrix(manifold.retraction(x, xi)),
                               rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="euclidean_hessian must have shape"):
        fixed_rank_hessian(x[0], x[1], x[2].T, g, h[:3], xi, 3)


def test_bad_input():
    with pytest.raises(ValueError, match="rank must be at most"):
        DLNFixedRank(3, 4, 4, 2)
    with pytest.raises(ValueError, match="depth"):
        DLNFixedRank(3, 4, 2, 0)
    with pytest.raises(TypeError, match="rank"):
        DLNFixedRank(3, 4, 2.5, 2)
    manifold = DLNFixedRank(4, 3, 2, 2, rng=0)
    x = manifold.random_point()
    with pytest.raises(ValueError, match="shapes"):
        manifold.check_point((x[0][:3], x[1], x[2]))
    with pytest.raises(ValueError, match="positive"):
        manifold.check_point((x[0], np.array([1.0, -1.0]), x[2]))
    with pytest.raises(ValueError, match="orthonormal"):
        manifold.check_point((2 * x[0], x[1], x[2]))
    with pytest.raises(TypeError):
        manifold.check_point(np.zeros((4, 3)))
    assert not manifold.belongs((x[0], np.array([np.nan, 1.0]), x[2]))
    with pytest.raises(ValueError, match="rank >= 2"):
        manifold.from_matrix(np.outer(np.ones(4), np.ones(3)))
    with pytest.raises(ValueError, match="shape"):
        manifold.from_matrix(np.ones((3, 3)))
    with pytest.raises(ValueError, match="positive"):
        fixed_rank_weights(np.array([1.0, 0.0]), 2)
    with pytest.raises(ValueError, match="shape"):
        fixed_rank_riemannian_gradient(x[0], x[1], x[2].T, np.ones((3, 3)), 2)
    with pytest.raises(ValueError, match="U_p must have shape"):
        fixed_rank_inner(x[1], (np.ones((4, 3)), np.ones((2, 2)), np.ones((3, 2))),
                         (np.ones((4, 2)), np.ones((2, 2)), np.ones((3, 2))), 2)
