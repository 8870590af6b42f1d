"""RankAdaptive: finds the rank, increases/reduces it as Gao & Absil 2022, bounded, validated."""

import math

import numpy as np
import pytest
from pymanopt.optimizers import ConjugateGradient, SteepestDescent, TrustRegions

from dlnmanifolds.optimizers import RankAdaptive, rank_from_gap
from dlnmanifolds.optimizers.rank_adaptive import _tangent_fraction
from dlnmanifolds.problems import LowRank, MatrixCompletion, Regression
from dlnmanifolds.problems.lowrank import gather


def completion(m, n, s, observations, seed):
    """Completion of the thin SVD with singular values ``s`` (adversarial spectra)."""
    rng = np.random.default_rng(seed)
    r = len(s)
    u, _ = np.linalg.qr(rng.standard_normal((m, r)))
    v, _ = np.linalg.qr(rng.standard_normal((n, r)))
    truth = LowRank(u, np.asarray(s, float), v.T)
    flat = rng.choice(m * n, size=observations, replace=False)
    rows, cols = np.divmod(flat, n)
    return MatrixCompletion(rows, cols, gather(truth, rows, cols), (m, n), truth)


@pytest.mark.parametrize(
    "geometry, depth", [("dln-fixed-rank", 3), ("dln-fixed-rank", 2), ("fixed-rank", 1)]
)
@pytest.mark.parametrize("seed", [0, 1])
def test_finds_the_rank_and_recovers_the_truth(geometry, depth, seed):
    mc = MatrixCompletion.generate(70, 3, 1600, rng=seed, m=50)
    result = RankAdaptive(geometry, depth, target=1e-14, max_time=60).run(mc)
    assert result.stopping_reason == "target"
    assert result.rank == 3 and result.rank_history[-1] == 3
    assert result.loss <= 1e-14 and result.loss == pytest.approx(mc.train_mse(result.point))
    assert mc.relative_error(result.point) < 1e-5
    u, s, vt = result.point
    np.testing.assert_allclose(u.T @ u, np.eye(3), atol=1e-10)
    assert np.all(np.diff(s) <= 0) and result.iterations == len(result.losses)


@pytest.mark.parametrize(
    "spectrum",
    [
        [30.0, 30.0, 30.0, 30.0],  # repeated singular values
        [30.0, 20.0, 3.0, 0.3],  # sigma_min = 1e-2 sigma_max, below the spectral noise
        [40.0, 1.0],
    ],
)
def test_rank_increase_reaches_spectra_the_spectral_start_misses(spectrum):
    mc = completion(40, 60, spectrum, 1500, seed=len(spectrum))
    result = RankAdaptive(depth=3, target=1e-16, max_time=60).run(mc)
    # g^3 is ill-conditioned for a spread-out spectrum (c_j = s_j^{4/3}): CG may stop
    # on its own before the target, but at the right rank and close to X*.
    assert result.stopping_reason in {"target", "stalled"} and result.rank == len(spectrum)
    assert mc.relative_error(result.point) < 1e-4
    assert max(result.rank_history) <= len(spectrum) + 1


def test_rank_increase_step_is_the_exact_line_search():
    mc = MatrixCompletion.generate(40, 3, 800, rng=0)
    start = mc.spectral_factors(1)
    optimizer = RankAdaptive(depth=3)
    grown = optimizer._increase(mc, start, 10)
    assert grown.rank > start.rank
    u, v = start.u, start.vt.T
    # The added part lies in the normal space of the rank-1 manifold at the start.
    added = grown.to_dense() - start.to_dense()
    np.testing.assert_allclose(u.T @ added @ v, 0.0, atol=1e-10)
    # ... and the step along it minimizes the loss: f(X + t D) is smallest at t = 1.
    losses = [mc.loss(start.to_dense() + t * added) for t in (0.9, 1.0, 1.1)]
    assert losses[1] < min(losses[0], losses[2]) and losses[1] < mc.loss(start)


def test_rank_reduction_drops_collapsed_singular_values():
    mc = MatrixCompletion.generate(40, 2, 800, rng=0)
    truth = mc.truth_factors
    rng = np.random.default_rng(0)
    # Rank 4 start: the truth plus two tiny spurious components.
    extra_u, _ = np.linalg.qr(np.hstack([truth.u, rng.standard_normal((40, 2))]))
    extra_v, _ = np.linalg.qr(np.hstack([truth.vt.T, rng.standard_normal((40, 2))]))
    start = LowRank(
        np.hstack([truth.u, extra_u[:, 2:]]),
        np.concatenate([truth.s, [1e-5, 1e-6]]),
        np.vstack([truth.vt, extra_v[:, 2:].T]),
    )
    result = RankAdaptive(depth=3, target=1e-20, max_time=30).run(mc, initial_point=start)
    assert result.rank_history[0] == 4 and result.rank == 2
    assert mc.relative_error(result.point) < 1e-8


def test_any_first_order_pymanopt_optimizer_inside():
    mc = MatrixCompletion.generate(30, 2, 500, rng=3)
    for inner in ("steepest-descent", SteepestDescent, ConjugateGradient(max_iterations=50)):
        result = RankAdaptive(depth=2, target=1e-10, inner=inner, max_time=30).run(mc)
        assert result.rank == 2 and result.loss <= 1e-10


@pytest.mark.parametrize("geometry, depth", [("dln-fixed-rank", 3), ("fixed-rank", 1)])
def test_trust_regions_inside_uses_the_rank_r_hessian(geometry, depth):
    """A second-order inner solver: the rank is found and the truth recovered."""
    mc = MatrixCompletion.generate(40, 3, 900, rng=1)
    for inner in ("trust-regions", TrustRegions, TrustRegions(max_iterations=30)):
        optimizer = RankAdaptive(geometry, depth, target=1e-12, inner=inner, max_time=60)
        assert optimizer.window == 3
        result = optimizer.run(mc)
        assert result.stopping_reason == "target", result
        assert result.rank == 3 and result.loss <= 1e-12
        assert mc.relative_error(result.point) < 1e-5


def test_dense_objective_regression():
    reg = Regression.generate(8, 2, 40, rng=0, m=6)
    result = RankAdaptive(depth=2, target=1e-12, max_time=30).run(reg)
    assert result.rank == 2 and result.stopping_reason == "target"


def test_budgets_and_callbacks_bound_the_run():
    mc = MatrixCompletion.generate(60, 4, 1500, rng=0)
    result = RankAdaptive(depth=3, target=1e-30, max_iterations=7).run(mc)
    assert result.stopping_reason == "max-iterations" and result.iterations == 7
    result = RankAdaptive(depth=3, target=1e-30, max_time=1e-9).run(mc)
    assert result.stopping_reason == "max-time"
    seen = []

    def stop(x):
        seen.append(x)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        RankAdaptive(depth=3, callback=stop).run(mc)
    assert all(isinstance(x, LowRank) for x in seen)


def test_stalls_when_the_normal_part_vanishes():
    # Full observation of a rank-2 matrix: once fitted at rank 2, grad E = 0.
    mc = completion(6, 6, [3.0, 1.0], 36, seed=0)
    result = RankAdaptive(depth=2, max_time=30, max_iterations=3000).run(mc)
    assert result.stopping_reason in {"stalled", "max-iterations"}
    assert result.loss < 1e-20


def test_rank_from_gap():
    assert rank_from_gap(np.array([10, 9.5, 9, 2, 1.9, 1.8, 1.7]), 4.0) == 3
    assert rank_from_gap(np.array([10, 9, 8, 7, 6, 5]), 4.0) is None
    assert rank_from_gap(np.array([1.0, 0.5]), 4.0) is None


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"target": 0.0}, ValueError, "target must be a finite number > 0"),
        ({"target": -1.0}, ValueError, "target"),
        ({"target": math.nan}, ValueError, "target"),
        ({"target": math.inf}, ValueError, "target"),
        ({"target": "1e-6"}, TypeError, "target"),
        ({"max_time": 0}, ValueError, "max_time"),
        ({"max_iterations": 0}, ValueError, "max_iterations"),
        ({"geometry": "balanced"}, ValueError, "geometry must be one of"),
        ({"depth": 0}, ValueError, "depth"),
        ({"inner": "second-order"}, ValueError, "inner must be one of"),
        ({"inner": 3}, TypeError, "inner must be"),
        ({"collapse": 2.0}, ValueError, "collapse"),
        ({"callback": 3}, TypeError, "callback"),
        ({"deficient": 1.0}, ValueError, "deficient must lie in"),
        ({"deficient": -0.1}, ValueError, "deficient"),
        ({"deficient": math.nan}, ValueError, "deficient"),
        ({"deficient": "0.05"}, TypeError, "deficient"),
        ({"settle": 0}, ValueError, "settle"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        RankAdaptive(**kwargs)


def test_bad_problems():
    with pytest.raises(TypeError, match="problem must be a MatrixObjective"):
        RankAdaptive().run(np.eye(3))
    mc = MatrixCompletion.generate(10, 2, 50, rng=0)
    with pytest.raises(ValueError, match="initial_point"):
        RankAdaptive().run(mc, initial_point=np.eye(10))


def _tangent_fraction_dense(mc, x):
    g = mc.gradient_matrix(x).toarray()
    pu, pv = x.u @ x.u.T, x.vt.T @ x.vt
    normal = g - pu @ g - g @ pv + pu @ g @ pv
    return np.linalg.norm(g - normal) / np.linalg.norm(normal)


@pytest.mark.parametrize("seed", [0, 1])
def test_tangent_fraction_and_cached_products_equal_the_dense_projections(seed):
    mc = MatrixCompletion.generate(30, 3, 400, rng=seed, m=20)
    x = mc.spectral_factors(2)
    gv, gtu = mc.gradient_products(x)
    g = mc.gradient_matrix(x).toarray()
    np.testing.assert_allclose(gv, g @ x.vt.T, atol=1e-13)
    np.testing.assert_allclose(gtu, g.T @ x.u, atol=1e-13)
    assert mc.gradient_products(x)[0] is gv  # cached with the residual of this point
    assert _tangent_fraction(mc, x) == pytest.approx(_tangent_fraction_dense(mc, x), rel=1e-9)


@pytest.mark.parametrize("seed", [2, 3, 5])
def test_rank_found_without_a_spectral_gap(seed):
    # Arora 100^2, r 5, 20% sampled: the 5th outlier of the rescaled sample sits
    # within 5% of the noise bulk (no gap); the start rank is 3-4 and the rank is
    # found by increases after the deficiency test (or the stall test).
    mc = MatrixCompletion.generate(100, 5, 2000, rng=seed)
    assert RankAdaptive(depth=3)._spectral_start(mc, 20).rank < 5
    result = RankAdaptive(depth=3, target=1e-10, max_time=60).run(mc)
    stages = result.rank_history
    assert result.stopping_reason == "target" and result.rank == 5
    assert stages[0] < 5 and max(stages) == 5 and stages == sorted(stages)
    assert mc.relative_error(result.point) < 1e-3


def test_deficiency_test_ends_a_too_small_stage_early_and_spares_the_right_rank():
    mc = MatrixCompletion.generate(100, 5, 2000, rng=3)
    ratios = {}
    for rank in (4, 5):
        seen = []
        optimizer = RankAdaptive(
            depth=3,
            target=1e-6,
            max_time=60,
            max_rank=rank,  # one stage at this rank: watch the ratio along it
            callback=lambda x, seen=seen: seen.append(_tangent_fraction(mc, x)),
        )
        optimizer.run(mc, initial_point=mc.spectral_factors(rank))
        ratios[rank] = np.array(seen)
    # Rank 4 (too small): the ratio falls below 0.05 well before a 10-step stall
    # window would see the plateau; rank 5 (right): it stays above 0.05 after the
    # first steps, so the test never ends the right stage.
    assert np.argmax(ratios[4] < 0.05) < 20
    assert ratios[5][3:].min() > 0.05
    # With the test on, the rank-4 start needs fewer evaluations to the target.
    on = RankAdaptive(depth=3, target=1e-6, max_time=60).run(mc, mc.spectral_factors(4))
    off = RankAdaptive(depth=3, target=1e-6, max_time=60, deficient=0).run(
        mc, mc.spectral_factors(4)
    )
    assert on.rank == off.rank == 5 and on.iterations < off.iterations
