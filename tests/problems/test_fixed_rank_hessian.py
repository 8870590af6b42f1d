"""The rank-r Riemannian Hessian on the factored (sparse) paths (math.md §4.3b).

``fixed_rank_hessian`` takes E'(X) and E''(X)[xi] as operators (dense or
scipy.sparse) and evaluates the curvature term on the diagonal rank lift; here it
is checked against the generic dense layer formulas Dphi_W(D_{xi^h}(Dphi^*)(E'))
on ``rank_lift``, and ``make_problem`` runs TrustRegions with it.
"""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given
from hypothesis import strategies as st
from pymanopt.optimizers import TrustRegions

from dlnmanifolds.core.fixed_rank import (
    _lift_tangent,
    _project_factored,
    _riemannian_gradient,
    _weights,
    embed_tangent,
    fixed_rank_hessian,
    rank_lift,
)
from dlnmanifolds.core.network import _dphi_adjoint_derivative, dphi
from dlnmanifolds.problems import LowRank, MatrixCompletion, Regression, make_problem
from dlnmanifolds.problems.lowrank import dense


def dense_reference(u, s, v, depth, egrad, ehess, tangent):
    """The Hessian from m x n arrays by the generic layer formulas (the oracle)."""
    if depth == 1:
        up, mm, vp = _project_factored(u, v, ehess)
        normal = egrad - u @ (u.T @ egrad)
        normal = normal - (normal @ v) @ v.T
        return up + (normal @ tangent[2]) / s, mm, vp + (normal.T @ tangent[0]) / s
    weights = _weights(s, depth)
    layers = rank_lift(u, s, v, depth)
    lift = _lift_tangent(u, s, v, weights, tangent, depth)
    curvature = dphi(layers, _dphi_adjoint_derivative(layers, lift, egrad))
    a = _riemannian_gradient(u, v, weights, ehess @ v, ehess.T @ u)
    c = _project_factored(u, v, curvature)
    return tuple(x + y for x, y in zip(a, c))


def tangent_at(rng, u, v):
    m, r = u.shape
    n = v.shape[0]
    up = rng.standard_normal((m, r))
    vp = rng.standard_normal((n, r))
    return up - u @ (u.T @ up), rng.standard_normal((r, r)), vp - v @ (v.T @ vp)


def spectrum(kind, r, rng):
    if kind == "repeated":
        return np.full(r, 1.7)
    if kind == "spread":
        return np.geomspace(1.0, 1e-8, r) * 2.0
    if kind == "pairs":  # repeated values at both ends of a wide spread
        return np.sort(np.repeat([3.0, 3e-8], (r + 1) // 2)[:r])[::-1]
    return np.sort(rng.uniform(0.5, 2.0, r))[::-1]


@given(
    seed=st.integers(0, 2**31 - 1),
    shape=st.sampled_from([(7, 4, 2), (4, 9, 3), (6, 6, 6), (10, 3, 1), (5, 8, 4)]),
    depth=st.integers(1, 7),
    kind=st.sampled_from(["random", "repeated", "spread", "pairs"]),
    density=st.sampled_from([0.05, 0.4, 1.0]),
)
def test_sparse_hessian_equals_dense_formula(seed, shape, depth, kind, density):
    """Sparse E', E''[xi] (P_Omega) give the dense layer formula to 1e-12 (relative),
    at repeated singular values, sigma_min = 1e-8 sigma_max and non-square shapes."""
    rng = np.random.default_rng(seed)
    m, n, r = shape
    u, _ = np.linalg.qr(rng.standard_normal((m, r)))
    v, _ = np.linalg.qr(rng.standard_normal((n, r)))
    s = spectrum(kind, r, rng)
    xi = tangent_at(rng, u, v)
    mask = rng.random((m, n)) < density
    egrad = mask * rng.standard_normal((m, n))
    ehess = mask * embed_tangent(u, v, xi)
    expected = dense_reference(u, s, v, depth, egrad, ehess, xi)
    size = max(np.max(np.abs(e)) for e in expected)
    for g, h in ((scipy.sparse.csr_matrix(egrad), scipy.sparse.csr_matrix(ehess)), (egrad, ehess)):
        got = fixed_rank_hessian(u, s, v, g, h, xi, depth)
        for a, b in zip(got, expected):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * size)


@pytest.mark.parametrize("geometry", ["dln-fixed-rank", "fixed-rank"])
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_make_problem_hessian_is_the_dense_formula_of_the_objective(geometry, depth):
    """The wired Hessian (sparse E', gathered P_Omega(xi)) = the dense formula with
    the objective's own m x n E'(X) and E''(X)[xi], for completion and regression."""
    for objective in (
        MatrixCompletion.generate(9, 2, 40, rng=depth, m=7),
        Regression.generate(6, 2, 12, rng=depth, m=5, noise=0.1),
    ):
        gp = make_problem(objective, geometry, depth, rank=2, init_scale=1.0, rng=depth)
        np.random.seed(depth)  # Pymanopt's FixedRankEmbedded samples globally
        x = gp.initial_point
        xi = gp.manifold.random_tangent_vector(x)
        u, s, v = x[0], x[1], x[2].T
        scale = 2.0 / objective.count
        xd = dense(gp.to_matrix(x))
        egrad = scale * objective.residual_gradient(xd)
        ehess = scale * objective.hessian(xd, embed_tangent(u, v, xi))
        expected = dense_reference(u, s, v, gp.depth, egrad, ehess, xi)
        size = max(np.max(np.abs(e)) for e in expected)
        for a, b in zip(gp.problem.riemannian_hessian(x, xi), expected):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12 * size)


@pytest.mark.parametrize(
    "geometry,depth",
    [("dln-fixed-rank", 1), ("dln-fixed-rank", 2), ("dln-fixed-rank", 3), ("fixed-rank", 1)],
)
@pytest.mark.parametrize("init", ["spectral", "small"])
def test_trust_regions_completes_a_matrix(geometry, depth, init):
    """TrustRegions reaches train MSE <= 1e-10 and recovers X* (rank known, 50 iterations)."""
    mc = MatrixCompletion.generate(60, 3, 1200, rng=0, m=50)
    gp = make_problem(mc, geometry, depth, rank=3, init=init, init_scale=1.0, rng=0)
    assert gp.has_hessian
    seen = []
    gp = make_problem(
        mc, geometry, depth, rank=3, init=init, init_scale=1.0, rng=0, callback=seen.append
    )
    result = TrustRegions(verbosity=0, max_iterations=50, min_gradient_norm=1e-12).run(
        gp.problem, initial_point=gp.initial_point
    )
    x = gp.to_matrix(result.point)
    assert mc.train_mse(x) <= 1e-10
    assert mc.relative_error(x) <= 1e-6
    # The callback fires at gradient evaluations only (once per outer iteration),
    # not at the many Hessian-vector products of the inner tCG.
    assert len(seen) <= result.iterations + 2


def test_trust_regions_never_forms_an_m_by_n_array():
    """3000 x 3000, rank 5: two TrustRegions iterations on each rank-r geometry.

    What a run allocates on top of what is live when it starts stays below a
    quarter of one dense 3000 x 3000 array (72 MB; measured 9-10 MiB, most of it
    the blocked gathers of P_Omega(xi)), and the overall peak, problem included,
    below half of one (so no m x n array ever existed). Before the factored
    ``to_tangent_space`` a run allocated 74 MiB (Pymanopt's ``u @ u.T @ Up``).
    """
    n, r = 3000, 5
    dense_bytes = 8 * n * n
    extra = []
    tracemalloc.start()
    try:
        mc = MatrixCompletion.generate(n, r, 5 * r * (2 * n - r), rng=0)
        for geometry in ("dln-fixed-rank", "fixed-rank"):
            gp = make_problem(mc, geometry, 3, rank=r, init="spectral")
            start = mc.train_mse(gp.to_matrix(gp.initial_point))
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            result = TrustRegions(max_iterations=2, verbosity=0).run(
                gp.problem, initial_point=gp.initial_point
            )
            _, peak = tracemalloc.get_traced_memory()
            extra.append(peak - before)
            x = gp.to_matrix(result.point)
            assert isinstance(x, LowRank)
            assert mc.train_mse(x) < start
            del gp, result, x
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert max(extra) < dense_bytes / 4, f"TR allocated {max(extra) / 2**20:.1f} MiB"
    assert peak < dense_bytes / 2, f"peak {peak / 2**20:.1f} MiB"


def test_bad_operators_are_rejected_by_name():
    rng = np.random.default_rng(0)
    u, _ = np.linalg.qr(rng.standard_normal((5, 2)))
    v, _ = np.linalg.qr(rng.standard_normal((4, 2)))
    xi = tangent_at(rng, u, v)
    s = np.array([2.0, 1.0])
    good = scipy.sparse.csr_matrix(np.ones((5, 4)))
    with pytest.raises(ValueError, match="euclidean_gradient must have shape"):
        fixed_rank_hessian(u, s, v, scipy.sparse.csr_matrix(np.ones((4, 4))), good, xi, 2)
    bad = good.copy()
    bad.data[0] = np.nan
    with pytest.raises(ValueError, match="euclidean_hessian must be finite"):
        fixed_rank_hessian(u, s, v, good, bad, xi, 2)
    with pytest.raises(ValueError, match="euclidean_hessian must have shape"):
        fixed_rank_hessian(u, s, v, good, np.ones((5, 3)), xi, 2)
