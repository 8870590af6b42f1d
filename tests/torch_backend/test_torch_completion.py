"""Matrix completion on torch tensors (issue 16): the O(|Omega| r) kernels, the
differentiable loss of ``CompletionTensors``, the rank-increase pairs, bad input,
and zero numpy <-> torch conversions inside a torch completion step.

numpy is the reference: the same problem, the same point, float64, to 1e-12
(relative to the size of the quantity).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
geoopt = pytest.importorskip("geoopt")

from dlnmanifolds.geoopt import DLNFixedRank  # noqa: E402
from dlnmanifolds.problems import MatrixCompletion  # noqa: E402
from dlnmanifolds.problems.lowrank import LowRank, gather, normal_singular_pairs  # noqa: E402
from dlnmanifolds.testing.conversions import forbid_array_conversions  # noqa: E402

SETTINGS = settings(max_examples=20, deadline=None)
F64 = torch.float64


def orthonormal(rng, n, r):
    q, _ = np.linalg.qr(rng.standard_normal((n, r)))
    return q


def point(rng, m, n, r, spread=1.0):
    s = np.sort(rng.uniform(0.5, 2.0, r))[::-1] * spread
    return LowRank(orthonormal(rng, m, r), s, orthonormal(rng, n, r).T)


def tensors(x: LowRank, **kw) -> LowRank:
    return LowRank(*(torch.tensor(a, **kw) for a in x))


def close(a, b, tol=1e-12):
    a, b = np.asarray(a), np.asarray(b)
    return np.max(np.abs(a - b), initial=0.0) <= tol * max(1.0, np.max(np.abs(b), initial=0.0))


@st.composite
def completion_case(draw):
    """A problem with |Omega| from 1 entry to all of them (empty rows and columns
    whenever Omega is small), a factored truth and a factored point."""
    m, n = draw(st.integers(2, 12)), draw(st.integers(2, 12))
    r = draw(st.integers(1, min(m, n)))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    count = draw(st.sampled_from([1, 2, max(1, (m * n) // 5), m * n - 1, m * n]))
    count = max(1, min(count, m * n))
    flat = rng.choice(m * n, size=count, replace=False)
    truth = point(rng, m, n, r)
    rows, cols = np.divmod(flat, n)
    problem = MatrixCompletion(rows, cols, gather(truth, rows, cols), (m, n), truth)
    return problem, point(rng, m, n, r, spread=draw(st.sampled_from([1.0, 1e-6, 1e6])))


@SETTINGS
@given(case=completion_case())
def test_kernels_match_numpy(case):
    problem, x = case
    data, xt = problem.to(), tensors(x)
    r = problem.residual(x)
    assert close(data.residual(xt).numpy(), r)
    gv, gtu = problem.gradient_products(x)
    gv_t, gtu_t = data.gradient_products(xt)
    assert close(gv_t.numpy(), gv) and close(gtu_t.numpy(), gtu)
    dense_g = problem.residual_gradient(x)
    assert close(data.gradient_matrix(xt).to_dense().numpy(), dense_g)
    # The products are G V and G^T U of the m x n gradient P_Omega(X - X*).
    assert close(gv, dense_g @ x.vt.T) and close(gtu, dense_g.T @ x.u)
    assert close(float(data.loss(xt)), problem.loss(x))
    assert close(data.train_mse(xt), problem.train_mse(x))
    scale = max(1.0, problem.relative_error(x) ** 2)
    assert close(data.relative_error(xt), problem.relative_error(x))
    if np.isnan(problem.test_mse(x)):
        assert np.isnan(data.test_mse(xt))
    else:
        assert close(data.test_mse(xt), problem.test_mse(x), 1e-12 * scale)


@SETTINGS
@given(case=completion_case())
def test_loss_gradient_is_the_factored_formula(case):
    # autograd of CompletionTensors.loss: dE/dU = G V diag(s), dE/ds = diag(U^T G V),
    # dE/dV^T = diag(s) U^T G, against the numpy products and the dense gradient.
    problem, x = case
    data = problem.to()
    xt = LowRank(*(torch.tensor(a, requires_grad=True) for a in x))
    data.loss(xt).backward()
    gv, gtu = problem.gradient_products(x)
    assert close(xt.u.grad.numpy(), gv * x.s)
    assert close(xt.s.grad.numpy(), np.sum(x.u * gv, axis=0))
    assert close(xt.vt.grad.numpy(), (gtu * x.s).T)


def test_heldout_and_dense_truth():
    mc = MatrixCompletion.generate(20, 2, 200, rng=3)
    train, _ = mc.split(0.25, rng=0)
    rng = np.random.default_rng(0)
    x = point(rng, 20, 20, 2)
    assert close(train.to().test_mse(tensors(x)), train.test_mse(x))
    truth = mc.truth
    dense_problem = MatrixCompletion(mc.rows, mc.cols, mc.values, mc.shape, truth)
    assert close(dense_problem.to().test_mse(tensors(x)), dense_problem.test_mse(x))
    assert close(dense_problem.to().relative_error(tensors(x)), dense_problem.relative_error(x))


def test_empty_rows_and_columns_get_exact_zeros():
    # Omega in rows {0, 3} and columns {1, 4} only: the other rows of G V and of G^T U
    # are exactly zero on both backends.
    rows, cols = np.array([0, 0, 3]), np.array([1, 4, 4])
    rng = np.random.default_rng(1)
    x = point(rng, 5, 6, 2)
    problem = MatrixCompletion(rows, cols, np.array([1.0, -2.0, 0.5]), (5, 6))
    gv, gtu = problem.to().gradient_products(tensors(x))
    assert torch.all(gv[[1, 2, 4]] == 0) and torch.all(gtu[[0, 2, 3, 5]] == 0)
    ref = problem.gradient_products(x)
    assert close(gv.numpy(), ref[0]) and close(gtu.numpy(), ref[1])


# -- rank increase -----------------------------------------------------------------


def normal_dense(g, u, v):
    pu, pv = np.eye(u.shape[0]) - u @ u.T, np.eye(v.shape[0]) - v @ v.T
    return pu @ g @ pv


def sign_fixed(a, bt):
    idx = np.argmax(np.abs(a), axis=0)
    sign = np.where(a[idx, np.arange(a.shape[1])] < 0, -1.0, 1.0)
    return a * sign, bt * sign[:, None]


@st.composite
def increase_case(draw):
    m, n = draw(st.integers(8, 24)), draw(st.integers(8, 24))
    r = draw(st.integers(1, 3))
    k = draw(st.integers(1, min(m, n) - r - 2))
    seed = draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    count = draw(st.sampled_from([m + n, (m * n) // 3, m * n]))
    flat = rng.choice(m * n, size=min(count, m * n), replace=False)
    rows, cols = np.divmod(flat, n)
    problem = MatrixCompletion(rows, cols, rng.standard_normal(rows.size), (m, n))
    return problem, point(rng, m, n, r), k


@SETTINGS
@given(case=increase_case())
def test_rank_increase_pairs_match_svds(case):
    problem, x, k = case
    a, sig, bt = normal_singular_pairs(problem.gradient_matrix(x), x.u, x.vt.T, k)
    at, sigt, btt = (t.numpy() for t in problem.to().normal_singular_pairs(tensors(x), k))
    exact = np.linalg.svd(normal_dense(problem.residual_gradient(x), x.u, x.vt.T), compute_uv=False)
    scale = exact[0]
    assert np.all(np.abs(sig - exact[:k]) <= 1e-12 * scale)
    assert np.all(np.abs(sigt - exact[:k]) <= 1e-12 * scale)
    # Vectors up to sign, where sigma_i is separated from its neighbours.
    a, bt = sign_fixed(a, bt)
    at, btt = sign_fixed(at, btt)
    for i in range(k):
        gap = min(
            exact[i - 1] - exact[i] if i > 0 else np.inf,
            exact[i] - exact[i + 1] if i + 1 < exact.size else np.inf,
        )
        if gap > 1e-3 * scale:
            assert np.max(np.abs(a[:, i] - at[:, i])) <= 1e-12 * scale / gap
            assert np.max(np.abs(bt[i] - btt[i])) <= 1e-12 * scale / gap
    # The pairs are singular pairs of N, orthogonal to the point's frames.
    assert np.max(np.abs(x.u.T @ at)) <= 1e-12 and np.max(np.abs(btt @ x.vt.T)) <= 1e-12


def test_rank_increase_repeated_singular_values():
    # N with sigma = (2, 2, 2, 1, 0.5, ...): the top-3 subspace is unique, its basis
    # is not; both backends give the same projector and the same sigma.
    rng = np.random.default_rng(4)
    m, n, r = 14, 11, 2
    u, v = orthonormal(rng, m, r), orthonormal(rng, n, r)
    left = np.linalg.qr(np.hstack([u, rng.standard_normal((m, 7))]))[0][:, r:]
    right = np.linalg.qr(np.hstack([v, rng.standard_normal((n, 7))]))[0][:, r:]
    spectrum = np.array([2.0, 2.0, 2.0, 1.0, 0.5, 0.25, 0.125])
    g = (left * spectrum) @ right.T + u @ rng.standard_normal((r, n))
    a, sig, bt = normal_singular_pairs(g, u, v, 3)
    at, sigt, btt = (t.numpy() for t in normal_singular_pairs(*map(torch.tensor, (g, u, v)), 3))
    assert np.allclose(sig, 2.0, atol=1e-12, rtol=0) and np.allclose(sigt, 2.0, atol=1e-12, rtol=0)
    assert np.max(np.abs(a @ a.T - at @ at.T)) <= 1e-12
    assert np.max(np.abs(bt.T @ bt - btt.T @ btt)) <= 1e-12


def test_rank_increase_zero_normal_part():
    # G = U M V^T + U A + B V^T lies in the tangent space: N = 0, sigma = 0.
    rng = np.random.default_rng(5)
    u, v = orthonormal(rng, 9, 2), orthonormal(rng, 8, 2)
    g = u @ rng.standard_normal((2, 8)) + rng.standard_normal((9, 2)) @ v.T
    _, sig, _ = normal_singular_pairs(g, u, v, 2)
    _, sigt, _ = normal_singular_pairs(*map(torch.tensor, (g, u, v)), 2)
    assert np.max(sig) <= 1e-14 * np.linalg.norm(g) and float(sigt.max()) <= 1e-14 * np.linalg.norm(
        g
    )


# -- bad input ---------------------------------------------------------------------


def test_bad_input_names_the_argument():
    problem = MatrixCompletion.generate(10, 2, 50, rng=0)
    data = problem.to()
    x = point(np.random.default_rng(0), 10, 10, 2)
    with pytest.raises(TypeError, match=r"x\.u must be a torch tensor"):
        data.loss(x)
    with pytest.raises(TypeError, match=r"x\.s must be a torch tensor"):
        data.residual(LowRank(torch.tensor(x.u), x.s, torch.tensor(x.vt)))
    with pytest.raises(TypeError, match=r"x\.u.*dtype torch.float64"):
        data.loss(tensors(x, dtype=torch.float32))
    with pytest.raises(TypeError, match=r"x\.vt is on device meta"):
        data.loss(LowRank(torch.tensor(x.u), torch.tensor(x.s), torch.zeros(2, 10, device="meta")))
    with pytest.raises(ValueError, match="x must be u"):
        data.loss(
            LowRank(torch.zeros(9, 2, dtype=F64), torch.ones(2, dtype=F64), torch.tensor(x.vt))
        )
    with pytest.raises(TypeError, match=r"x\.u is a torch tensor.*problem\.to"):
        problem.residual(tensors(x))
    with pytest.raises(TypeError, match="dtype must be torch.float32 or torch.float64"):
        problem.to(dtype=torch.int64)
    with pytest.raises(TypeError, match="rows must be an int64 torch tensor"):
        gather(tensors(x), torch.tensor([0.0]), torch.tensor([0]))
    with pytest.raises(TypeError, match="gradient and u"):
        normal_singular_pairs(
            problem.gradient_matrix(x), torch.tensor(x.u), torch.tensor(x.vt.T), 1
        )
    with pytest.raises(ValueError, match="k must be an integer"):
        normal_singular_pairs(np.eye(4), np.eye(4, 1), np.eye(4, 1), 0)


# -- training ----------------------------------------------------------------------


def completion_training(data, manifold, point, steps, lr=0.05):
    optimizer = geoopt.optim.RiemannianAdam([point], lr=lr, stabilize=10)
    for _ in range(steps):
        optimizer.zero_grad()
        u, s, v = manifold.factors(point)
        loss = data.loss(LowRank(u, s, v.T))
        loss.backward()
        optimizer.step()
    return loss


def test_zero_conversions_in_a_torch_completion_step():
    problem = MatrixCompletion.generate(30, 2, 400, rng=1)
    data = problem.to()
    manifold = DLNFixedRank(30, 30, 2, depth=3)
    point = geoopt.ManifoldParameter(
        manifold.random(generator=torch.Generator().manual_seed(0)), manifold=manifold
    )
    completion_training(data, manifold, point, 2)  # warm-up outside the patch

    with forbid_array_conversions():
        completion_training(data, manifold, point, 3)
        u, s, v = manifold.factors(point.detach())
        x = LowRank(u, s, v.T)
        data.normal_singular_pairs(x, 2)
        data.gradient_products(x)


def test_torch_training_completes_the_matrix():
    problem = MatrixCompletion.generate(40, 2, 500, rng=2)
    data = problem.to()
    manifold = DLNFixedRank(40, 40, 2, depth=3)
    point = geoopt.ManifoldParameter(
        manifold.random(generator=torch.Generator().manual_seed(1)), manifold=manifold
    )
    completion_training(data, manifold, point, 400, lr=0.3)
    u, s, v = manifold.factors(point.detach())
    x = LowRank(u, s, v.T)
    assert data.relative_error(x) <= 1e-6
    assert close(data.test_mse(x), problem.test_mse(LowRank(*(t.numpy() for t in x))))


def test_float32_loss_and_pairs():
    problem = MatrixCompletion.generate(30, 2, 300, rng=3)
    x = point(np.random.default_rng(2), 30, 30, 2)
    d64, d32 = problem.to(), problem.to(dtype=torch.float32)
    x32 = tensors(x, dtype=torch.float32)
    assert d32.values.dtype == torch.float32
    assert abs(float(d32.loss(x32)) / problem.loss(x) - 1) <= 1e-5
    s64 = d64.normal_singular_pairs(tensors(x), 3)[1]
    s32 = d32.normal_singular_pairs(x32, 3)[1]
    assert s32.dtype == torch.float32
    assert float((s32.double() - s64).abs().max()) <= 1e-5 * float(s64[0])


@pytest.mark.cuda
def test_cuda_completion_matches_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    problem = MatrixCompletion.generate(50, 3, 800, rng=4)
    x = point(np.random.default_rng(3), 50, 50, 3)
    cpu, gpu = problem.to(), problem.to(device="cuda")
    xg = LowRank(*(t.cuda() for t in tensors(x)))
    assert close(float(gpu.loss(xg)), float(cpu.loss(tensors(x))))
    gv, gtu = gpu.gradient_products(xg)
    ref = problem.gradient_products(x)
    assert gv.is_cuda and close(gv.cpu().numpy(), ref[0]) and close(gtu.cpu().numpy(), ref[1])
    sig = gpu.normal_singular_pairs(xg, 3)[1]
    assert sig.is_cuda and close(sig.cpu().numpy(), cpu.normal_singular_pairs(tensors(x), 3)[1])


def test_torch_docstring_examples_run():
    # The examples of MatrixCompletion.to and CompletionTensors need torch, so the
    # package's doctests skip them; here they run (the SKIP directives stripped).
    import doctest

    from dlnmanifolds.problems import matrix_completion

    for obj in (matrix_completion.MatrixCompletion.to, matrix_completion.CompletionTensors):
        text = obj.__doc__.replace("  # doctest: +SKIP", "")
        test = doctest.DocTestParser().get_doctest(
            text, dict(vars(matrix_completion)), obj.__qualname__, None, 0
        )
        runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
        runner.run(test)
        assert runner.failures == 0 and test.examples


def test_huge_matrix_step_never_forms_m_by_n():
    # m = n = 200000: an m x n float64 array would be 320 GB, so one training step
    # (loss, autograd gradient, egrad2rgrad, retraction) and a rank-increase call
    # succeed only because nothing is densified.
    n = 200_000
    problem = MatrixCompletion.generate(n, 2, 4000, rng=5)
    data = problem.to()
    manifold = DLNFixedRank(n, n, 2, depth=3)
    point = geoopt.ManifoldParameter(
        manifold.random(generator=torch.Generator().manual_seed(2)), manifold=manifold
    )
    before = completion_training(data, manifold, point, 1)
    after = completion_training(data, manifold, point, 1)
    assert torch.isfinite(after) and float(after.detach()) != float(before.detach())
    u, s, v = manifold.factors(point.detach())
    assert np.isfinite(data.test_mse(LowRank(u, s, v.T)))


def test_rank_increase_cap_warns_and_returns_ritz_pairs(monkeypatch):
    # A Krylov cap reached before convergence: a RuntimeWarning, and Ritz values,
    # which never exceed the true singular values (Cauchy interlacing).
    from dlnmanifolds.problems import lowrank

    monkeypatch.setattr(lowrank, "_LANCZOS_LIMIT", (0, 8))
    problem = MatrixCompletion.generate(60, 2, 1200, rng=6)
    x = point(np.random.default_rng(6), 60, 60, 2)
    with pytest.warns(RuntimeWarning, match="cap of 8 dimensions"):
        _, sig, _ = problem.to().normal_singular_pairs(tensors(x), 3)
    exact = np.linalg.svd(normal_dense(problem.residual_gradient(x), x.u, x.vt.T), compute_uv=False)
    assert np.all(sig.numpy() <= exact[:3] * (1 + 1e-12))
