"""BalancedManifold: Pymanopt checks, retraction, Hessian, solvers, bad input (math.md §2)."""

import autograd.numpy as anp
import numpy as np
import pymanopt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds import end_to_end, imbalance
from dlnmanifolds.pymanopt import BalancedManifold, LayerTuple
from tests.helpers import balanced_point, flatten, random_layers, unflatten
from tests.pymanopt.checks import assert_taylor_slopes, retraction_slope

WIDTHS = [
    (3, 3),
    (2, 2, 2),
    (3, 3, 3, 3),
    (3, 5, 4, 2),
    (2, 3, 5, 4, 3),
    (2, 2, 2, 2, 2, 2),
    (3, 3, 3, 3, 3, 3, 3),
    (4, 2),
]


def problem_for(manifold, rng):
    widths = manifold.widths
    target = rng.standard_normal((widths[-1], widths[0]))
    linear = random_layers(widths, rng)

    @pymanopt.function.autograd(manifold)
    def cost(*weights):
        # math.md C3's test function: 1/2|phi - Y|^2 + <B, W> + 0.025 sum |W^T W|^2
        return (
            0.5 * anp.sum((end_to_end(weights) - target) ** 2)
            + sum(anp.sum(b * w) for b, w in zip(linear, weights))
            + 0.025 * sum(anp.sum((w.T @ w) ** 2) for w in weights)
        )

    return pymanopt.Problem(manifold, cost)


def as_list(manifold, value):
    return [value] if manifold.depth == 1 else list(value)


@pytest.mark.parametrize("widths", WIDTHS)
def test_gradient_and_hessian_slopes(widths, rng):
    """Pymanopt's Taylor checks: gradient slope 2, Hessian slope 3 (depths 1-6)."""
    manifold = BalancedManifold(widths, rng=1)
    problem = problem_for(manifold, rng)
    assert_taylor_slopes(problem)


@pytest.mark.parametrize("widths", WIDTHS)
def test_retraction_lands_on_manifold_and_orders(widths, rng):
    manifold = BalancedManifold(widths, rng=2)
    x = manifold.random_point()
    d = manifold.random_tangent_vector(x)
    # R_x(0) = x and points land on M to 1e-12
    zero = manifold.retraction(x, manifold.zero_vector(x))
    assert (
        max(np.max(np.abs(a - b)) for a, b in zip(as_list(manifold, zero), as_list(manifold, x)))
        <= 1e-12
    )
    for t in (1e-3, 0.1, 1.0):
        y = manifold.retraction(x, t * d)
        assert imbalance(as_list(manifold, y)) <= 1e-12 * max(1.0, manifold.norm(y, y) ** 2)
        assert manifold.belongs(y)
    assert retraction_slope(manifold, x, d, project_tangential=False) >= 1.9
    assert retraction_slope(manifold, x, d, project_tangential=True) >= 2.8
    polar = BalancedManifold(widths, retraction="polar", rng=2)
    assert polar.retraction_order == 1 and manifold.retraction_order == 2
    y = polar.retraction(x, 0.1 * d)
    assert polar.belongs(y)


@pytest.mark.parametrize("widths", [(3, 3, 3, 3), (3, 5, 4, 2)])
def test_hessian_is_covariant_derivative_and_self_adjoint(widths, rng):
    """C3: Hess f[xi] = P_T d/dt grad f(R(t xi)) (central FD, rel 1e-6); self-adjoint."""
    manifold = BalancedManifold(widths, retraction="polar", rng=3)
    problem = problem_for(manifold, rng)
    x = manifold.random_point()
    xi = manifold.random_tangent_vector(x)
    eta = manifold.random_tangent_vector(x)
    t = 1e-5
    plus = problem.riemannian_gradient(manifold.retraction(x, t * xi))
    minus = problem.riemannian_gradient(manifold.retraction(x, -t * xi))
    fd = manifold.projection(x, (plus - minus) / (2 * t))
    hess = problem.riemannian_hessian(x, xi)
    assert manifold.norm(x, fd - hess) <= 1e-6 * manifold.norm(x, hess)
    lhs = manifold.inner_product(x, problem.riemannian_hessian(x, xi), eta)
    rhs = manifold.inner_product(x, xi, problem.riemannian_hessian(x, eta))
    assert lhs == pytest.approx(rhs, rel=1e-9, abs=1e-12)


@given(st.integers(0, 2**32 - 1), st.sampled_from(WIDTHS[1:]))
def test_manifold_properties(seed, widths):
    """Random points on M, tangent vectors tangent, projection idempotent, metric
    symmetric positive, transport lands in the target tangent space."""
    manifold = BalancedManifold(widths, rng=seed)
    x = manifold.random_point()
    assert manifold.belongs(x)
    a = manifold.random_tangent_vector(x)
    b = manifold.random_tangent_vector(x)
    assert manifold.norm(x, a) == pytest.approx(1.0)
    assert manifold.inner_product(x, a, b) == pytest.approx(manifold.inner_product(x, b, a))
    pa = manifold.projection(x, a)
    assert manifold.norm(x, pa - a) <= 1e-12
    y = manifold.retraction(x, 0.3 * a)
    moved = manifold.transport(x, y, b)
    assert manifold.norm(y, manifold.projection(y, moved) - moved) <= 1e-12
    assert isinstance(moved, np.ndarray if manifold.depth == 1 else LayerTuple)


def test_dimension_matches_projection_rank(rng):
    for widths in [(3, 3, 3, 3), (3, 5, 4, 2), (4, 2), (2, 3, 5, 4, 3)]:
        manifold = BalancedManifold(widths, rng=4)
        x = manifold.random_point()
        layers = as_list(manifold, x)
        size = sum(a.size for a in layers)
        cols = []
        for k in range(size):
            e = np.zeros(size)
            e[k] = 1.0
            cols.append(
                flatten(
                    as_list(manifold, manifold.projection(x, _wrap(manifold, unflatten(e, layers))))
                )
            )
        assert np.linalg.matrix_rank(np.array(cols), tol=1e-8) == manifold.dim


def _wrap(manifold, layers):
    return layers[0] if manifold.depth == 1 else LayerTuple(layers)


def test_vertical_horizontal_projections(rng):
    manifold = BalancedManifold((3, 3, 3, 3), rng=5)
    x = manifold.random_point()
    xi = manifold.random_tangent_vector(x)
    h = manifold.horizontal_projection(x, xi)
    v = manifold.vertical_projection(x, xi)
    assert manifold.norm(x, h + v - xi) <= 1e-12
    assert abs(manifold.inner_product(x, h, v)) <= 1e-12


@pytest.mark.parametrize("solver", ["steepest", "cg", "trust"])
def test_solvers_fit_a_target(solver, rng):
    manifold = BalancedManifold((3, 3, 3, 3), rng=6)
    start = manifold.random_point()
    target = end_to_end(manifold.random_point())
    if np.linalg.det(target) * np.linalg.det(end_to_end(start)) < 0:
        target[:, 0] *= -1

    @pymanopt.function.autograd(manifold)
    def cost(w1, w2, w3):
        return 0.5 * anp.sum((end_to_end((w1, w2, w3)) - target) ** 2)

    optimizer = {
        "steepest": pymanopt.optimizers.SteepestDescent(max_iterations=2000, verbosity=0),
        "cg": pymanopt.optimizers.ConjugateGradient(max_iterations=2000, verbosity=0),
        "trust": pymanopt.optimizers.TrustRegions(max_iterations=100, verbosity=0),
    }[solver]
    result = optimizer.run(pymanopt.Problem(manifold, cost), initial_point=start)
    assert result.cost <= 1e-10
    assert imbalance(result.point) <= 1e-12
    assert np.allclose(end_to_end(result.point), target, atol=1e-5)


def test_bad_input(rng):
    with pytest.raises(ValueError, match="inner width"):
        BalancedManifold((3, 2, 3))
    with pytest.raises(ValueError, match="widths must have at least two"):
        BalancedManifold((3,))
    with pytest.raises(TypeError, match="widths"):
        BalancedManifold(3)
    with pytest.raises(ValueError, match="retraction"):
        BalancedManifold((2, 2), retraction="exp")
    manifold = BalancedManifold((3, 3, 3))
    w = balanced_point((3, 3, 3), rng)
    w[0] = w[0] + 0.1
    with pytest.raises(ValueError, match="not balanced"):
        manifold.check_point(w)
    assert not manifold.belongs(w)
    with pytest.raises(ValueError, match="widths"):
        manifold.check_point(random_layers((3, 2, 3), rng))
    singular = [np.diag([1.0, 1.0, 0.0])] * 2
    with pytest.raises(ValueError, match="full-rank"):
        manifold.check_point(singular)
    nan = balanced_point((3, 3, 3), rng)
    nan[1][0, 0] = np.nan
    with pytest.raises(ValueError, match="finite"):
        manifold.check_point(nan)
    with pytest.raises(NotImplementedError, match="retraction"):
        manifold.exp(manifold.random_point(), manifold.random_point())
