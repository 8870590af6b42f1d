"""Soft-impute: optimality of its answer (subgradient condition, duality gap), the sparse
+ low-rank SVD against the dense one, proximal gradient on regression, and the Arora et al.
(2019) anchor."""

import numpy as np
import pytest

from dlnmanifolds.compare.specs import ProblemSpec
from dlnmanifolds.optimizers import duality_gap, soft_impute
from dlnmanifolds.problems import MatrixCompletion, Regression


def subgradient_residuals(objective, x, lam):
    """(||U^T G V - lam I||, ||P_T^perp G||_op - lam) for G = -E'(X): both <= 0 at the optimum."""
    g = -objective.residual_gradient(x)
    u, s, vt = np.linalg.svd(x)
    r = int(np.sum(s > 1e-9 * max(s[0], 1e-300)))
    u, v = u[:, :r], vt[:r].T
    on = np.linalg.norm(u.T @ g @ v - lam * np.eye(r))
    off = (np.eye(x.shape[0]) - u @ u.T) @ g @ (np.eye(x.shape[1]) - v @ v.T)
    return on, np.linalg.norm(off, 2) - lam, r


@pytest.mark.parametrize(
    "shape, rank, count, lam",
    [((30, 30), 2, 400, 0.5), ((25, 40), 3, 500, 2.0), ((20, 20), 1, 120, 0.3)],
)
def test_answer_satisfies_the_optimality_condition(shape, rank, count, lam):
    problem = MatrixCompletion.generate(shape[1], rank, count, rng=1, m=shape[0])
    result = soft_impute(problem, lam=lam, tol=1e-11)
    assert result.reason == "converged" and result.lam == lam
    on, off, r = subgradient_residuals(problem, result.matrix, lam)
    assert r == result.rank
    assert on < 1e-6 * lam and off < 1e-6 * lam
    gap = duality_gap(problem, result.matrix, lam)
    primal = problem.loss(result.matrix) + lam * np.sum(np.linalg.svd(result.matrix)[1])
    assert -1e-9 * primal <= gap < 1e-8 * primal


def test_gap_is_large_away_from_the_optimum():
    problem = MatrixCompletion.generate(20, 2, 150, rng=0)
    result = soft_impute(problem, lam=0.5, tol=1e-11)
    worse = result.matrix + 0.1 * np.random.default_rng(0).standard_normal((20, 20))
    assert duality_gap(problem, worse, 0.5) > 1e3 * duality_gap(problem, result.matrix, 0.5)


def test_sparse_low_rank_svd_matches_dense():
    problem = MatrixCompletion.generate(40, 3, 500, rng=2, m=30)
    dense = soft_impute(problem, lam=1.0, tol=1e-10, sparse=False)
    sparse = soft_impute(problem, lam=1.0, tol=1e-10, sparse=True)
    assert sparse.rank == dense.rank
    assert np.linalg.norm(sparse.matrix - dense.matrix) < 1e-6 * np.linalg.norm(dense.matrix)


def test_regression_uses_the_lipschitz_step():
    problem = Regression.generate(12, 2, 60, rng=0, m=8)
    lam = 0.3
    result = soft_impute(problem, lam=lam, tol=1e-12, path=1.0)
    on, off, _ = subgradient_residuals(problem, result.matrix, lam)
    assert result.reason == "converged" and on < 1e-5 * lam and off < 1e-5 * lam


def test_lambda_max_gives_zero_and_bad_input_is_rejected():
    problem = MatrixCompletion.generate(10, 1, 40, rng=0)
    lam_max = np.linalg.norm(problem.residual_gradient(np.zeros((10, 10))), 2)
    assert np.all(soft_impute(problem, lam=1.001 * lam_max, path=1.0).matrix == 0)
    with pytest.raises(ValueError, match="lam"):
        soft_impute(problem, lam=-1.0)
    with pytest.raises(ValueError, match="path"):
        soft_impute(problem, lam=1.0, path=0.0)
    with pytest.raises(TypeError, match="MatrixObjective"):
        soft_impute(np.eye(3), lam=1.0)


def test_arora_anchor_2000_observations():
    """Arora et al. 2019 (Fig. 1): minimum nuclear norm at 100x100, rank 5, 2000
    observations does not recover (test MSE about 5e-2; depth >= 3 does)."""
    problem = ProblemSpec(size=100, rank=5, observations=2000).build(0)
    result = soft_impute(problem, max_iterations=1500)
    assert problem.train_mse(result.matrix) < 1e-3
    assert 3e-2 < problem.test_mse(result.matrix) < 9e-2
