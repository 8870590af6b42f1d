"""GroupOrbit: Pymanopt checks, orbit ⊂ M ∩ fiber, dimensions, volume, drift (math.md §2, §6)."""

import autograd.numpy as anp
import numpy as np
import pymanopt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds import end_to_end, imbalance
from dlnmanifolds.core.balanced import balanced_factors, haar_stiefel
from dlnmanifolds.core.entropy import boltzmann_entropy
from dlnmanifolds.pymanopt import BalancedManifold, LayerTuple
from dlnmanifolds.pymanopt.fiber import Fiber
from dlnmanifolds.pymanopt.orbit import GroupOrbit
from tests.helpers import balanced_point, flatten, matrix_with_spectrum, random_layers
from tests.pymanopt.checks import assert_taylor_slopes, retraction_slope, taylor_slope

WIDTHS = [(3, 3, 3, 3), (3, 5, 4, 2), (2, 4, 3), (2, 3, 5, 4, 3), (2, 2, 2, 2, 2, 2), (3, 3)]


def problem_for(manifold, rng):
    widths = manifold.widths
    linear = random_layers(widths, rng)
    mixing = [rng.standard_normal((d, d)) for d in widths[1:]]

    @pymanopt.function.autograd(manifold)
    def cost(*weights):
        # phi and |W| are constant on the orbit: use terms that see the gauge.
        return (
            sum(anp.sum(b * w) for b, w in zip(linear, weights))
            + 0.025 * sum(anp.sum((w.T @ w) ** 2) for w in weights)
            + 0.5 * sum(anp.sum(w * (m @ w)) for m, w in zip(mixing, weights))
        )

    return pymanopt.Problem(manifold, cost)


def as_list(manifold, value):
    return [value] if manifold.depth == 1 else list(value)


def ambient(manifold, rng):
    layers = random_layers(manifold.widths, rng)
    return layers[0] if manifold.depth == 1 else LayerTuple(layers)


def max_diff(manifold, a, b) -> float:
    return float(np.abs(flatten(as_list(manifold, a)) - flatten(as_list(manifold, b))).max())


def on_orbit(manifold, point, tol=1e-12) -> bool:
    layers = as_list(manifold, point)
    x = manifold.target
    return (
        imbalance(layers) <= tol * max(1.0, np.abs(x).max())
        and np.abs(end_to_end(layers) - x).max() <= tol * max(1.0, np.abs(x).max())
    )


@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")  # dim 0: exact model
@pytest.mark.parametrize("widths", WIDTHS)
def test_gradient_and_hessian_slopes(widths, rng):
    """Pymanopt's Taylor checks: gradient slope 2, Hessian slope 3 (second-order retraction)."""
    manifold = GroupOrbit(balanced_point(widths, rng), rng=1)
    problem = problem_for(manifold, rng)
    assert_taylor_slopes(problem)


@pytest.mark.parametrize("widths", WIDTHS[:4])
def test_retraction_stays_on_orbit_and_orders(widths, rng):
    """Every retracted point is balanced with the same phi (1e-12), for any step;
    second order by default, first order for the plain exponential retraction."""
    manifold = GroupOrbit(balanced_point(widths, rng), rng=2)
    x = manifold.random_point()
    d = manifold.random_tangent_vector(x)
    assert max_diff(manifold, manifold.retraction(x, manifold.zero_vector(x)), x) <= 1e-14
    for t in (1e-3, 0.3, 1.0, 10.0):
        y = manifold.retraction(x, t * d)
        assert on_orbit(manifold, y) and manifold.belongs(y)
    assert retraction_slope(manifold, x, d, project_tangential=False) >= 1.9
    assert retraction_slope(manifold, x, d, project_tangential=True) >= 2.8
    plain = GroupOrbit(manifold.base_point, retraction="exponential", rng=2)
    assert plain.retraction_order == 1 and manifold.retraction_order == 2
    assert retraction_slope(plain, x, d, project_tangential=True) == pytest.approx(2.0, abs=0.1)
    assert on_orbit(plain, plain.retraction(x, d))


@pytest.mark.parametrize("widths", WIDTHS[:5])
def test_orbit_is_subset_of_balanced_manifold_and_fiber(widths, rng):
    """O_W ⊂ M ∩ phi^{-1}(X): random orbit points belong to BalancedManifold and Fiber,
    and orbit tangent vectors are fixed by both of their projections (math.md §6)."""
    w = balanced_point(widths, rng)
    orbit = GroupOrbit(w, rng=3)
    balanced = BalancedManifold(widths)
    fiber = Fiber(w)
    for _ in range(3):
        x = orbit.random_point()
        assert balanced.belongs(x) and fiber.belongs(x) and orbit.belongs(x)
        d = orbit.random_tangent_vector(x)
        assert max_diff(orbit, balanced.projection(x, d), d) <= 1e-12
        assert max_diff(orbit, fiber.projection(x, d), d) <= 1e-12


@pytest.mark.parametrize("d,depth", [(3, 3), (2, 4), (4, 2)])
def test_dimensions_add_up(d, depth, rng):
    """math.md §2.3–2.4, §5–6 (main case): dim F = dim O + dim N_W M,
    dim M = dim O + d^2 (H ⊕ V); and at a balanced W, P_F = P_V + P_N (C7)."""
    widths = (d,) * (depth + 1)
    w = balanced_point(widths, rng)
    orbit, fiber, balanced = GroupOrbit(w), Fiber(w), BalancedManifold(widths)
    normal_dim = (depth - 1) * d * (d + 1) // 2
    assert orbit.dim == (depth - 1) * d * (d - 1) // 2
    assert fiber.dim == orbit.dim + normal_dim
    assert balanced.dim == orbit.dim + d * d
    for _ in range(3):
        v = ambient(orbit, rng)
        normal_part = v - balanced.projection(w, v)
        combined = orbit.projection(w, v) + normal_part
        assert max_diff(orbit, fiber.projection(w, v), combined) <= 1e-12


def test_log_volume_is_entropy_and_gauge_invariant(rng):
    """vol(O_W) = e^{S(X)}; the same from any base point of the orbit and from any
    gauge O X O' (math.md §6)."""
    x = matrix_with_spectrum(3, 3, [2.0, 1.0, 0.4], rng)
    w = balanced_factors(x, 3, rng=rng)
    orbit = GroupOrbit(w, rng=4)
    assert orbit.log_volume() == pytest.approx(boltzmann_entropy(x, 3), abs=1e-13)
    assert GroupOrbit(orbit.random_point()).log_volume() == pytest.approx(
        orbit.log_volume(), abs=1e-12
    )
    o1, o2 = haar_stiefel(3, 3, rng), haar_stiefel(3, 3, rng)
    w2 = [w[0] @ o2.T] + list(w[1:-1]) + [o1 @ w[-1]]
    assert GroupOrbit(w2).log_volume() == pytest.approx(orbit.log_volume(), abs=1e-12)
    general = GroupOrbit(balanced_point((3, 5, 4, 2), rng))
    assert general.log_volume() == pytest.approx(
        boltzmann_entropy(general.target, 3, (3, 5, 4, 2)), abs=1e-13
    )


def test_rank_deficient_orbit(rng):
    """General widths with rank r < min(d_0, d_N): O ≅ St(6, 2) x St(5, 2), dim 16 (C13);
    Taylor slopes 2 and 3, exact retraction, volume from the general-width entropy."""
    widths = (4, 6, 5, 4)
    x = matrix_with_spectrum(4, 4, [1.5, 0.7], rng)
    manifold = GroupOrbit(balanced_factors(x, 3, widths, rng), rng=7)
    assert manifold.rank == 2 and manifold.dim == 16
    assert manifold.log_volume() == pytest.approx(boltzmann_entropy(x, 3, widths), abs=1e-13)
    problem = problem_for(manifold, rng)
    point = manifold.random_point()
    d = manifold.random_tangent_vector(point)
    assert taylor_slope(problem, point, d) == pytest.approx(2.0, abs=0.05)
    assert taylor_slope(problem, point, d, hessian=True) == pytest.approx(3.0, abs=0.1)
    assert on_orbit(manifold, manifold.retraction(point, 2.0 * d))


def test_trust_regions_converges_on_orbit(rng):
    """A second-order solver runs on the orbit: gradient norm -> 0, point on the orbit."""
    manifold = GroupOrbit(balanced_point((3, 3, 3, 3), rng), rng=0)
    problem = problem_for(manifold, rng)
    optimizer = pymanopt.optimizers.TrustRegions(verbosity=0, min_gradient_norm=1e-9)
    result = optimizer.run(problem, initial_point=manifold.base_point)
    assert result.gradient_norm <= 1e-9
    assert on_orbit(manifold, result.point)
    assert result.cost <= problem.cost(manifold.base_point)


def random_walk(manifold, steps, size=0.3):
    x = manifold.random_point()
    for _ in range(steps):
        x = manifold.retraction(x, size * manifold.random_tangent_vector(x))
    return x


def test_drift_1e3_steps(rng):
    """10^3 retraction steps of random unit tangent vectors (x 0.3): invariants <= 1e-12."""
    manifold = GroupOrbit(balanced_point((3, 3, 3, 3), rng), rng=5)
    x = random_walk(manifold, 1000)
    assert imbalance(list(x)) <= 1e-12
    assert manifold.belongs(x)


@pytest.mark.slow
def test_drift_1e4_steps(rng):
    """The issue's bound: 10^4 steps, invariants stay <= 1e-10 and phi is kept (d = 3, N = 3;
    ~10 s alone, more on a loaded machine, hence slow)."""
    manifold = GroupOrbit(balanced_point((3, 3, 3, 3), rng), rng=6)
    x = random_walk(manifold, 10_000)
    assert imbalance(list(x)) <= 1e-10
    assert np.linalg.norm(end_to_end(list(x)) - manifold.target) <= 1e-10 * np.linalg.norm(
        manifold.target
    )


def test_depth_one_orbit_is_a_point(rng):
    w = rng.standard_normal((2, 3))
    manifold = GroupOrbit([w], rng=0)
    assert manifold.dim == 0 and manifold.log_volume() == 0.0
    x = manifold.random_point()
    assert isinstance(x, np.ndarray) and np.allclose(x, w)
    d = manifold.random_tangent_vector(x)
    assert np.all(d == 0) and np.allclose(manifold.retraction(x, d), w)


spectra = st.lists(
    st.one_of(st.floats(0.3, 3.0), st.sampled_from([1.0, 1.0 + 1e-12, 1e-5, 1e-7])),
    min_size=2,
    max_size=3,
)


@given(sigma=spectra, depth=st.integers(2, 4), seed=st.integers(0, 2**31))
def test_nearly_repeated_and_tiny_spectra_no_nan(sigma, depth, seed):
    """Nearly repeated or tiny sigma: gradient, Hessian, retraction finite; stays balanced."""
    gen = np.random.default_rng(seed)
    sigma = np.sort(np.array(sigma))[::-1]
    widths = (sigma.size,) * (depth + 1)
    manifold = GroupOrbit(balanced_point(widths, gen, sigma), rng=seed)
    problem = problem_for(manifold, gen)
    x = manifold.random_point()
    d = manifold.random_tangent_vector(x)
    assert np.all(np.isfinite(flatten(problem.riemannian_gradient(x))))
    assert np.all(np.isfinite(flatten(problem.riemannian_hessian(x, d))))
    for t in (1e-3, 1.0, 10.0):
        y = manifold.retraction(x, t * d)
        assert np.all(np.isfinite(flatten(y))) and manifold.belongs(y)
    assert np.isfinite(manifold.log_volume())


def test_bad_input(rng):
    unbalanced = random_layers((3, 3, 3), rng)
    with pytest.raises(ValueError, match="balanced.*measured max \\|G_p\\| = [0-9.e+-]+"):
        GroupOrbit(unbalanced)
    with pytest.raises(ValueError, match="do not chain"):
        GroupOrbit([np.ones((3, 2)), np.ones((3, 4))])
    with pytest.raises(ValueError, match="finite"):
        GroupOrbit([np.full((3, 3), np.nan), np.eye(3)])
    w = balanced_point((3, 3, 3), rng)
    with pytest.raises(ValueError, match="retraction"):
        GroupOrbit(w, retraction="cayley")
    manifold = GroupOrbit(w)
    with pytest.raises(ValueError, match="widths"):
        manifold.check_point(random_layers((3, 4, 3), rng))
    with pytest.raises(ValueError, match="not on this manifold"):
        manifold.check_point(balanced_point((3, 3, 3), rng))
    # Same phi, not balanced: a GL (not orthogonal) gauge.
    g = np.diag([2.0, 1.0, 0.5])
    skewed = [g @ w[0], w[1] @ np.linalg.inv(g)]
    with pytest.raises(ValueError, match="balanced"):
        manifold.check_point(skewed)
    assert not manifold.belongs(skewed) and manifold.belongs(w)
    with pytest.raises(NotImplementedError, match="no closed-form exponential"):
        manifold.exp(w, manifold.zero_vector(w))
