"""Sparse matrix completion: factored evaluations equal the dense formulas; no m x n array."""

import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pymanopt.optimizers import ConjugateGradient

from dlnmanifolds.problems import LowRank, MatrixCompletion, make_problem
from dlnmanifolds.problems.lowrank import difference_norm, gather, truncate


def low_rank(rng, m, n, r, spread=1.0):
    """A thin SVD with singular values from 1 down to ``spread`` (repeated when 1)."""
    u, _ = np.linalg.qr(rng.standard_normal((m, r)))
    v, _ = np.linalg.qr(rng.standard_normal((n, r)))
    return LowRank(u, np.geomspace(1.0, spread, r) * 3.0, v.T)


shapes = st.tuples(st.integers(2, 12), st.integers(2, 12), st.integers(1, 3))


@given(seed=st.integers(0, 2**31 - 1), shape=shapes, spread=st.sampled_from([1.0, 1e-3, 1e-12]))
def test_factored_evaluations_equal_dense_formulas(seed, shape, spread):
    rng = np.random.default_rng(seed)
    m, n, r = shape
    r = min(r, m, n)
    truth = low_rank(rng, m, n, r)
    k = int(rng.integers(1, m * n + 1))
    flat = rng.choice(m * n, size=k, replace=False)
    rows, cols = np.divmod(flat, n)
    factored = MatrixCompletion(rows, cols, gather(truth, rows, cols), (m, n), truth)
    dense_truth = truth.to_dense()
    dense_problem = MatrixCompletion(rows, cols, dense_truth[rows, cols], (m, n), dense_truth)
    x = low_rank(rng, m, n, r, spread)
    xd = x.to_dense()
    mask = np.zeros((m, n))
    mask[rows, cols] = 1.0
    g = mask * (xd - dense_truth)  # P_Omega(X - X*), the dense formula
    scale = max(1.0, np.abs(g).max())
    assert factored.loss(x) == pytest.approx(0.5 * np.sum(g**2), rel=1e-12, abs=1e-24)
    gm = factored.gradient_matrix(x)
    np.testing.assert_allclose(gm @ x.vt.T, g @ x.vt.T, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(gm.T @ x.u, g.T @ x.u, rtol=0, atol=1e-12 * scale)
    np.testing.assert_allclose(gm.toarray(), g, rtol=0, atol=1e-12 * scale)
    d = xd - dense_truth
    unobserved = m * n - k
    if unobserved:
        expected = np.sum((1 - mask) * d**2) / unobserved
        # total minus observed part: exact up to eps ||X - X*||^2 / (m n - |Omega|)
        slack = 1e-13 * np.sum(d**2) / unobserved
        assert factored.test_mse(x) == pytest.approx(expected, rel=1e-12, abs=slack)
        assert dense_problem.test_mse(xd) == pytest.approx(expected, rel=1e-12, abs=1e-24)
    rel = np.linalg.norm(d) / np.linalg.norm(dense_truth)
    assert factored.relative_error(x) == pytest.approx(rel, rel=1e-12, abs=1e-15)
    assert difference_norm(x, x) <= 1e-14 * np.linalg.norm(x.s)


def test_factored_geometry_gradient_equals_dense_formula(rng):
    mc = MatrixCompletion.generate(30, 3, 300, rng=1, m=20)
    for geometry in ("fixed-rank", "dln-fixed-rank"):
        gp = make_problem(mc, geometry, 3, rank=3, init="spectral")
        u, s, vt = gp.initial_point
        du, ds, dvt = gp.problem.euclidean_gradient(gp.initial_point)
        x = (u * s) @ vt
        g = (2.0 / mc.count) * mc.mask * (x - mc.truth)
        np.testing.assert_allclose(du, g @ vt.T * s, rtol=0, atol=1e-13)
        np.testing.assert_allclose(ds, np.diag(u.T @ g @ vt.T), rtol=0, atol=1e-13)
        np.testing.assert_allclose(dvt, s[:, None] * (u.T @ g), rtol=0, atol=1e-13)
        assert gp.problem.cost(gp.initial_point) == pytest.approx(
            np.sum((mc.mask * (x - mc.truth)) ** 2) / mc.count, rel=1e-12
        )


def test_spectral_factors_by_svds_equal_the_dense_truncated_svd():
    mc = MatrixCompletion.generate(80, 4, 2000, rng=2, m=60)
    dense = mc.mask * mc.truth * (60 * 80 / mc.count)
    u, s, vt = np.linalg.svd(dense)
    start = mc.spectral_factors(4)
    np.testing.assert_allclose(start.s, s[:4], rtol=1e-12)
    np.testing.assert_allclose(start.to_dense(), (u[:, :4] * s[:4]) @ vt[:4], atol=1e-10 * s[0])
    np.testing.assert_allclose(mc.spectral_values(6), s[:6], rtol=1e-12)


def test_truncate_and_gather_match_dense(rng):
    x = LowRank(rng.standard_normal((7, 4)), rng.standard_normal(4), rng.standard_normal((4, 9)))
    u, s, vt = np.linalg.svd(x.to_dense())
    t = truncate(x, 2)
    np.testing.assert_allclose(t.to_dense(), (u[:, :2] * s[:2]) @ vt[:2], atol=1e-12)
    np.testing.assert_allclose(t.u.T @ t.u, np.eye(2), atol=1e-14)
    rows, cols = np.array([0, 6, 3]), np.array([8, 0, 4])
    np.testing.assert_allclose(gather(x, rows, cols), x.to_dense()[rows, cols], atol=1e-13)


def test_no_dense_array_on_the_fixed_rank_paths():
    """3000 x 3000: generate, spectral start, CG, monitoring, test errors without 72 MB."""
    n, r = 3000, 5
    dense_bytes = 8 * n * n
    tracemalloc.start()
    try:
        mc = MatrixCompletion.generate(n, r, 5 * r * (2 * n - r), rng=0)
        seen = []
        for geometry in ("dln-fixed-rank", "fixed-rank"):
            gp = make_problem(mc, geometry, 3, rank=r, init="spectral", callback=seen.append)
            optimizer = ConjugateGradient(max_iterations=3, verbosity=0)
            result = optimizer.run(gp.problem, initial_point=gp.initial_point)
            x = gp.to_matrix(result.point)
            metrics = mc.metrics(x)
        gp = make_problem(mc, "dln-fixed-rank", 3, rank=r, rng=0)  # the small random start
        gp.problem.riemannian_gradient(gp.initial_point)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(x, LowRank) and all(isinstance(s, LowRank) for s in seen)
    assert metrics["relative_error"] < 1.0 and np.isfinite(metrics["test_mse"])
    assert peak < dense_bytes / 4, f"peak {peak / 2**20:.1f} MiB"


def test_full_rank_geometries_refuse_huge_problems():
    mc = MatrixCompletion.generate(5001, 1, 50, rng=0)
    for geometry in ("factors", "balanced", "dln-matrices", "euclidean"):
        with pytest.raises(ValueError, match="larger than 5000 x 5000.*dln-fixed-rank"):
            make_problem(mc, geometry, 2)
    gp = make_problem(mc, "fixed-rank", rank=1, init="spectral")
    assert np.isfinite(gp.problem.cost(gp.initial_point))


def test_residual_is_computed_once_per_point(monkeypatch):
    """Cost, gradient and the runner's train MSE at one point share one gather."""
    import dlnmanifolds.problems.matrix_completion as module

    mc = MatrixCompletion.generate(40, 2, 400, rng=0)
    gp = make_problem(mc, "dln-fixed-rank", 3, rank=2, init="spectral")
    calls = []
    original = module.gather
    monkeypatch.setattr(module, "gather", lambda *a: calls.append(1) or original(*a))
    point = gp.initial_point
    gp.problem.cost(point)
    gp.problem.riemannian_gradient(point)
    mc.train_mse(gp.to_matrix(point))
    assert len(calls) == 1


def test_factored_transport_equals_pymanopt_dense_transport():
    from pymanopt.manifolds import FixedRankEmbedded

    from dlnmanifolds.pymanopt import DLNFixedRank

    np.random.seed(3)
    reference = FixedRankEmbedded(9, 7, 3)
    a, b = reference.random_point(), reference.random_point()
    xi = reference.random_tangent_vector(a)
    expected = reference.transport(a, b, xi)
    mc = MatrixCompletion.generate(7, 3, 30, rng=0, m=9)
    for manifold in (DLNFixedRank(9, 7, 3, 2), make_problem(mc, "fixed-rank", rank=3).manifold):
        got = manifold.transport(a, b, xi)
        for g, e in zip(got, expected):
            np.testing.assert_allclose(g, e, rtol=0, atol=1e-13)


def test_dln_fixed_rank_kernel_weights_once_per_point(monkeypatch):
    import dlnmanifolds.pymanopt.fixed_rank as module
    from dlnmanifolds.pymanopt import DLNFixedRank

    calls = []
    original = module._weights
    monkeypatch.setattr(module, "_weights", lambda s, d: calls.append(1) or original(s, d))
    manifold = DLNFixedRank(8, 6, 2, 3, rng=0)
    x = manifold.random_point()
    a, b = manifold.random_tangent_vector(x), manifold.random_tangent_vector(x)
    x = type(x)(x[0], x[1].copy(), x[2])  # a new point object: not cached yet
    calls.clear()
    first = manifold.inner_product(x, a, b)
    manifold.norm(x, a)
    manifold.euclidean_to_riemannian_gradient(x, np.ones((8, 6)))
    assert len(calls) == 1
    x[1][0] *= 2.0  # s changed in place: the weights are recomputed
    assert manifold.inner_product(x, a, b) != first and len(calls) == 2
