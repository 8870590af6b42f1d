"""make_problem: one loss, six geometries; gradients/Hessians checked by Taylor slopes."""

import math

import numpy as np
import pytest
from pymanopt.optimizers import TrustRegions

from dlnmanifolds import end_to_end, imbalance
from dlnmanifolds.problems import GEOMETRIES, MatrixCompletion, Regression, make_problem
from dlnmanifolds.problems.geometries import DEPTH_FREE, HAS_HESSIAN, NEEDS_RANK
from dlnmanifolds.problems.lowrank import LowRank, dense
from dlnmanifolds.pymanopt import MissingHessianError
from tests.pymanopt.checks import taylor_slope


def objectives():
    return [MatrixCompletion.generate(6, 2, 20, rng=0, m=5),
            Regression.generate(4, 2, 10, rng=0, m=3, noise=0.1)]


def direction(gp, seed):
    np.random.seed(seed)  # Pymanopt's own manifolds sample with the global generator
    return gp.manifold.random_tangent_vector(gp.initial_point)


@pytest.mark.parametrize("geometry", GEOMETRIES)
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("which", [0, 1])
def test_gradient_and_hessian_slopes(geometry, depth, which):
    objective = objectives()[which]
    gp = make_problem(objective, geometry, depth, rank=2, init_scale=1.0, rng=depth)
    d = direction(gp, depth)
    assert taylor_slope(gp.problem, gp.initial_point, d) == pytest.approx(2.0, abs=0.05)
    if gp.has_hessian:
        assert taylor_slope(gp.problem, gp.initial_point, d, hessian=True) >= 2.9
    assert gp.has_hessian == (geometry in HAS_HESSIAN)
    if geometry in DEPTH_FREE:
        assert gp.depth == 1


def test_every_geometry_has_a_hessian_and_infinite_depth_says_it_has_none():
    """Since the rank-r Hessian is wired, every geometry has one; g^inf (dln-matrices at
    depth inf) has none and says so with MissingHessianError, not Pymanopt's autodiff
    error, and ``has_hessian`` is False there."""
    assert HAS_HESSIAN == set(GEOMETRIES)
    objective = MatrixCompletion.generate(5, 2, 20, rng=0)
    gp = make_problem(objective, "dln-matrices", math.inf, rng=1)
    assert not gp.has_hessian
    with pytest.raises(MissingHessianError, match="depth=math.inf has no Riemannian Hessian"):
        TrustRegions(verbosity=0, max_iterations=3).run(gp.problem, initial_point=gp.initial_point)


@pytest.mark.parametrize("geometry", GEOMETRIES)
def test_cost_is_train_mse_of_end_to_end_matrix(geometry):
    objective = objectives()[0]
    seen = []
    gp = make_problem(objective, geometry, 3, rank=2, rng=1, callback=seen.append)
    x = gp.to_matrix(gp.initial_point)
    assert gp.problem.cost(gp.initial_point) == pytest.approx(objective.train_mse(x), rel=1e-12)
    gp.problem.riemannian_gradient(gp.initial_point)
    assert len(seen) == 1 and np.allclose(dense(seen[0]), dense(x))
    # The rank-r geometries stay factored: points and callbacks are LowRank triples.
    assert isinstance(x, LowRank) == (geometry in NEEDS_RANK)


def test_small_initialization_scales():
    objective = MatrixCompletion.generate(20, 2, 100, rng=0)
    for geometry in ("factors", "balanced", "dln-matrices", "euclidean"):
        gp = make_problem(objective, geometry, 3, init_scale=1e-3, rng=4)
        norm = np.linalg.norm(gp.to_matrix(gp.initial_point))
        # ||X_0||_F ~ init_scale sqrt(n) for the Arora init (product of 3 layers: loose).
        assert 1e-4 < norm / (1e-3 * np.sqrt(20)) < 10
    gp = make_problem(objective, "balanced", 3, rng=4)
    assert imbalance(list(gp.initial_point)) < 1e-15
    gp = make_problem(objective, "factors", 3, rng=4)
    assert np.allclose(gp.to_matrix(gp.initial_point), end_to_end(gp.initial_point))


def test_spectral_and_warm_starts():
    objective = MatrixCompletion.generate(12, 2, 100, rng=0)
    gp = make_problem(objective, "dln-fixed-rank", 3, rank=2, init="spectral", rng=0)
    np.testing.assert_allclose(dense(gp.to_matrix(gp.initial_point)),
                               objective.spectral_start(2), atol=1e-12)
    warm = objective.truth + 1e-3 * np.eye(12)
    gp = make_problem(objective, "balanced", 2, initial_matrix=warm, rng=0)
    np.testing.assert_allclose(gp.to_matrix(gp.initial_point), warm, atol=1e-10)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"geometry": "hyperbolic"}, ValueError, "unknown geometry"),
        ({"geometry": "dln-fixed-rank"}, ValueError, "needs the rank"),
        ({"geometry": "balanced", "depth": 0}, ValueError, "depth"),
        ({"geometry": "balanced", "init": "zeros"}, ValueError, "init must be one of"),
        ({"geometry": "balanced", "init": "spectral"}, ValueError, "needs the rank"),
        ({"geometry": "fixed-rank", "rank": 7}, ValueError, "rank must be at most"),
        ({"geometry": "balanced", "init_scale": -1.0}, ValueError, "init_scale"),
        ({"geometry": "euclidean", "initial_matrix": np.ones((2, 2))}, ValueError, "shape"),
    ],
)
def test_bad_input(kwargs, error, match):
    objective = MatrixCompletion.generate(6, 2, 20, rng=0)
    with pytest.raises(error, match=match):
        make_problem(objective, **kwargs)
    with pytest.raises(TypeError, match="MatrixObjective"):
        make_problem(np.ones((3, 3)), "euclidean")
