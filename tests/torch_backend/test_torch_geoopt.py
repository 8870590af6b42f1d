"""dlnmanifolds.geoopt: the DLN manifolds inside geoopt optimizers (issue 16, first slice).

Property checks (projections idempotent, retractions stay on the manifold and are
first order, egrad2rgrad is the g^N Riesz map), agreement with the numpy core and
the Pymanopt adapters, convergence of a training loop, and zero numpy <-> torch
conversions inside an optimizer step.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
geoopt = pytest.importorskip("geoopt")

from dlnmanifolds.core.dln_metric import lifted_retraction  # noqa: E402
from dlnmanifolds.core.operator import dln_inner, dln_operator  # noqa: E402
from dlnmanifolds.geoopt import DLNFixedRank, DLNMatrices  # noqa: E402
from dlnmanifolds.testing.conversions import forbid_array_conversions  # noqa: E402

SETTINGS = settings(max_examples=15, deadline=None)
F64 = torch.float64


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(shape, seed, dtype=F64):
    return torch.randn(*shape, generator=gen(seed), dtype=dtype)


@st.composite
def matrices_case(draw):
    m, n = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    depth = draw(st.sampled_from([1, 2, 3, 6]))
    return DLNMatrices(m, n, depth), draw(st.integers(0, 2**31))


@st.composite
def fixed_rank_case(draw):
    m, n = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    r = draw(st.integers(1, min(m, n)))
    depth = draw(st.sampled_from([1, 2, 3, 6]))
    return DLNFixedRank(m, n, r, depth), draw(st.integers(0, 2**31))


def packed_egrad(manifold: DLNFixedRank, x, g):
    """autograd's gradient of <G, to_matrix(x)>_F with respect to the packed point."""
    leaf = x.clone().requires_grad_(True)
    (manifold.to_matrix(leaf) * g).sum().backward()
    return leaf.grad


# -- DLNMatrices ------------------------------------------------------------------


@SETTINGS
@given(case=matrices_case())
def test_matrices_riesz_map_and_core_agreement(case):
    manifold, seed = case
    x = manifold.random(generator=gen(seed))
    g, xi = randn((manifold.m, manifold.n), seed + 1), randn((manifold.m, manifold.n), seed + 2)
    rgrad = manifold.egrad2rgrad(x, g)
    # inner(x, egrad2rgrad(x, G), xi) = <G, xi>_F: the Riesz map of g^N.
    lhs, rhs = float(manifold.inner(x, rgrad, xi)), float((g * xi).sum())
    assert abs(lhs - rhs) <= 1e-10 * (1 + abs(rhs)) * float(rgrad.norm() * xi.norm() + 1)
    xn, gn, xin = x.numpy(), g.numpy(), xi.numpy()
    np.testing.assert_allclose(rgrad.numpy(), dln_operator(xn, gn, manifold.depth), atol=1e-12)
    assert abs(float(manifold.inner(x, xi)) - dln_inner(xn, xin, xin, manifold.depth)) <= 1e-10 * (
        1 + abs(dln_inner(xn, xin, xin, manifold.depth))
    )
    assert manifold.inner(x, xi, keepdim=True).shape == (1, 1)


@SETTINGS
@given(case=matrices_case())
def test_matrices_retraction_properties(case):
    manifold, seed = case
    x = manifold.random(generator=gen(seed))
    xi = randn((manifold.m, manifold.n), seed + 3)
    xi = xi / xi.norm()
    assert torch.equal(manifold.projx(x), x) and torch.equal(manifold.proju(x, xi), xi)
    assert torch.allclose(manifold.retr(x, 0 * xi), x, atol=1e-12)
    y = manifold.retr(x, 0.1 * xi)
    assert manifold.check_point_on_manifold(y)
    np.testing.assert_allclose(
        y.numpy(), lifted_retraction(x.numpy(), 0.1 * xi.numpy(), manifold.depth), atol=1e-12
    )
    # First order: (R(t xi) - R(-t xi)) / 2t = xi + O(t^2).
    h = 1e-4
    derivative = (manifold.retr(x, h * xi) - manifold.retr(x, -h * xi)) / (2 * h)
    assert float((derivative - xi).norm()) <= 1e-5
    assert torch.equal(manifold.transp(x, y, xi), xi)
    assert torch.allclose(manifold.expmap(x, 0.1 * xi), y)


def test_matrices_svd_reuse_follows_in_place_updates():
    manifold = DLNMatrices(4, 3, 3)
    x = manifold.random(generator=gen(0))
    g = randn((4, 3), 1)
    first = manifold.egrad2rgrad(x, g)
    with torch.no_grad():
        x.mul_(2.0)  # in place: same object, new version -> a new SVD
    np.testing.assert_allclose(
        manifold.egrad2rgrad(x, g).numpy(), dln_operator(x.numpy(), g.numpy(), 3), atol=1e-12
    )
    assert float((manifold.egrad2rgrad(x, g) - first).norm()) > 1e-3
    y = x.clone()  # equal values, another tensor
    np.testing.assert_allclose(manifold.retr(y, g).numpy(), manifold.retr(x, g).numpy())


def test_matrices_infinite_depth():
    # g^inf = lim N g^N on square matrices: the Riesz map holds, retr = X expm(X^-1 u).
    manifold = DLNMatrices(4, 4, float("inf"))
    x = manifold.random(generator=gen(2))
    g, xi = randn((4, 4), 3), randn((4, 4), 4)
    rhs = float((g * xi).sum())
    assert abs(float(manifold.inner(x, manifold.egrad2rgrad(x, g), xi)) - rhs) <= 1e-10 * (
        1 + abs(rhs)
    )
    y = manifold.retr(x, 0.1 * xi)
    expected = x @ torch.linalg.matrix_exp(torch.linalg.solve(x, 0.1 * xi))
    assert torch.allclose(y, expected, atol=1e-12)
    with pytest.raises(ValueError, match="square"):
        DLNMatrices(4, 3, float("inf"))


# -- DLNFixedRank -----------------------------------------------------------------


@SETTINGS
@given(case=fixed_rank_case())
def test_fixed_rank_projections_idempotent(case):
    manifold, seed = case
    x = manifold.random(generator=gen(seed))
    assert manifold.check_point_on_manifold(x)
    assert float((manifold.projx(x) - x).abs().max()) <= 1e-12
    px = manifold.projx(x + 1e-3 * randn(x.shape, seed + 1))
    assert manifold.check_point_on_manifold(px, atol=1e-12)
    assert float((manifold.projx(px) - px).abs().max()) <= 1e-12
    pu = manifold.proju(x, randn(x.shape, seed + 2))
    assert manifold.check_vector_on_tangent(x, pu, atol=1e-12)
    assert float((manifold.proju(x, pu) - pu).abs().max()) <= 1e-12


@SETTINGS
@given(case=fixed_rank_case())
def test_fixed_rank_riesz_map(case):
    manifold, seed = case
    x = manifold.random(generator=gen(seed))
    g = randn((manifold.m, manifold.n), seed + 1)
    xi = manifold.proju(x, randn(x.shape, seed + 2))
    rgrad = manifold.egrad2rgrad(x, packed_egrad(manifold, x, g))
    assert manifold.check_vector_on_tangent(x, rgrad, atol=1e-12)
    # g^N(grad, xi) = <G, embed(xi)>_F, with G the ambient gradient behind autograd's
    # packed gradient.
    rhs = float((g * manifold.embed(x, xi)).sum())
    scale = float(g.norm() * manifold.embed(x, xi).norm())
    assert abs(float(manifold.inner(x, rgrad, xi)) - rhs) <= 1e-12 * (1 + scale) * 10
    ambient = manifold.egrad2rgrad_ambient(x, g)
    assert float((rgrad - ambient).abs().max()) <= 1e-12 * (1 + float(ambient.abs().max()))
    # Symmetric, positive.
    eta = manifold.proju(x, randn(x.shape, seed + 3))
    assert torch.isclose(manifold.inner(x, xi, eta), manifold.inner(x, eta, xi), rtol=1e-12)
    assert float(manifold.inner(x, xi)) > 0


@SETTINGS
@given(case=fixed_rank_case())
def test_fixed_rank_retraction_and_transport(case):
    manifold, seed = case
    x = manifold.random(generator=gen(seed))
    xi = manifold.proju(x, randn(x.shape, seed + 1))
    xi = xi / torch.sqrt(manifold.inner(x, xi))
    y = manifold.retr(x, 0.2 * xi)
    assert manifold.check_point_on_manifold(y, atol=1e-12)
    assert torch.allclose(manifold.to_matrix(manifold.retr(x, 0 * xi)), manifold.to_matrix(x))
    h = 1e-4
    plus = manifold.to_matrix(manifold.retr(x, h * xi))
    minus = manifold.to_matrix(manifold.retr(x, -h * xi))
    derivative = (plus - minus) / (2 * h)
    target = manifold.embed(x, xi)
    assert float((derivative - target).norm()) <= 1e-5 * (1 + float(target.norm()))
    moved = manifold.transp(x, y, xi)
    assert manifold.check_vector_on_tangent(y, moved, atol=1e-12)
    assert torch.equal(manifold.expmap(x, 0.2 * xi), y)


# -- training inside geoopt optimizers --------------------------------------------


def _regression(seed=0, m=6, n=5, samples=40):
    g = gen(seed)
    truth = torch.randn(m, n, generator=g, dtype=F64)
    inputs = torch.randn(n, samples, generator=g, dtype=F64)
    return truth, inputs, truth @ inputs


def test_riemannian_sgd_trains_dln_matrices_regression():
    truth, inputs, targets = _regression()
    manifold = DLNMatrices(6, 5, depth=3)
    # A start in the basin of the truth: from a random start the flow lingers near
    # the saddle where the smallest singular value must pass through 0.
    start = truth + 0.5 * randn(truth.shape, 1)
    point = geoopt.ManifoldParameter(start, manifold=manifold)
    optimizer = geoopt.optim.RiemannianSGD([point], lr=0.05)
    losses = []
    for _ in range(800):
        optimizer.zero_grad()
        loss = 0.5 * ((point @ inputs - targets) ** 2).sum() / inputs.shape[1]
        losses.append(float(loss.detach()))
        loss.backward()
        optimizer.step()
    assert losses[-1] <= 1e-12 * losses[0]
    assert float((point.detach() - truth).norm() / truth.norm()) <= 1e-6


def test_riemannian_adam_completes_low_rank_matrix():
    g = gen(2)
    m, n, r = 20, 16, 2
    truth = torch.randn(m, r, generator=g, dtype=F64) @ torch.randn(r, n, generator=g, dtype=F64)
    mask = torch.rand(m, n, generator=g, dtype=F64) < 0.6
    manifold = DLNFixedRank(m, n, r, depth=3)
    point = geoopt.ManifoldParameter(manifold.random(generator=gen(3)), manifold=manifold)
    optimizer = geoopt.optim.RiemannianAdam([point], lr=0.05, stabilize=10)
    for _ in range(600):
        optimizer.zero_grad()
        loss = 0.5 * (((manifold.to_matrix(point) - truth) * mask) ** 2).sum()
        loss.backward()
        optimizer.step()
    assert manifold.check_point_on_manifold(point.detach(), atol=1e-10)
    error = float((manifold.to_matrix(point.detach()) - truth).norm() / truth.norm())
    assert error <= 1e-3


def test_no_numpy_conversion_inside_an_optimizer_step():
    truth, inputs, targets = _regression()
    fixed = DLNFixedRank(6, 5, 2, depth=3)
    full = DLNMatrices(6, 5, depth=3)
    p_full = geoopt.ManifoldParameter(full.random(generator=gen(4)), manifold=full)
    p_rank = geoopt.ManifoldParameter(fixed.random(generator=gen(5)), manifold=fixed)
    optimizers = [
        geoopt.optim.RiemannianAdam([p_full, p_rank], lr=1e-2),
        geoopt.optim.RiemannianSGD([p_full, p_rank], lr=1e-3, momentum=0.5),
    ]

    for optimizer in optimizers:
        for _ in range(2):
            optimizer.zero_grad()
            prediction = (p_full + fixed.to_matrix(p_rank)) @ inputs
            (0.5 * ((prediction - targets) ** 2).mean()).backward()
            with forbid_array_conversions():
                optimizer.step()


# -- float32 ----------------------------------------------------------------------


def test_float32_step_matches_float64():
    # float32 points stay float32; the g^N gradient agrees with float64 to 1e-4
    # relative (sigma in [0.5, 2]: kernel condition <= 16).
    for manifold in (DLNMatrices(5, 4, 3), DLNFixedRank(5, 4, 2, 3)):
        x = manifold.random(generator=gen(6))
        g = randn(x.shape, 7)
        if isinstance(manifold, DLNMatrices):
            grad64 = manifold.egrad2rgrad(x, g)
            grad32 = manifold.egrad2rgrad(x.float(), g.float())
        else:
            grad64 = manifold.egrad2rgrad(x, g)
            grad32 = manifold.egrad2rgrad(x.float(), g.float())
        assert grad32.dtype == torch.float32
        assert float((grad32.double() - grad64).norm() / grad64.norm()) <= 1e-4
        y = manifold.retr(x.float(), 0.1 * grad32)
        assert y.dtype == torch.float32 and manifold.check_point_on_manifold(y, atol=1e-5)


# -- bad input --------------------------------------------------------------------


def test_bad_input_names_the_argument():
    manifold = DLNMatrices(3, 2, 2)
    x = manifold.random(generator=gen(0))
    with pytest.raises(TypeError, match=r"\bu\b.*torch tensor"):
        manifold.egrad2rgrad(x, np.ones((3, 2)))
    with pytest.raises(TypeError, match=r"\bx\b.*torch tensor"):
        manifold.retr(x.numpy(), x)
    with pytest.raises(TypeError, match=r"\bu\b.*float32 or float64"):
        manifold.proju(x, torch.ones(3, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match=r"\bv\b.*float32 or float64"):
        manifold.inner(x, x, x.to(torch.complex128))
    with pytest.raises(TypeError, match=r"\bu\b.*float32 or float64"):
        DLNFixedRank(3, 2, 1, 2).egrad2rgrad(
            DLNFixedRank(3, 2, 1, 2).random(), torch.ones(6, 1, dtype=torch.float16)
        )
    with pytest.raises(TypeError, match="device"):
        manifold.egrad2rgrad(x, torch.ones(3, 2, dtype=F64, device="meta"))
    with pytest.raises(ValueError, match="rank"):
        DLNFixedRank(3, 2, 3, 2)
    with pytest.raises(ValueError, match="packed shape"):
        geoopt.ManifoldParameter(torch.zeros(3, 3, dtype=F64), manifold=DLNFixedRank(3, 2, 1, 2))


@pytest.mark.cuda
def test_cuda_training_step():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    manifold = DLNFixedRank(30, 20, 3, depth=3)
    x = manifold.random(generator=gen(0))
    g = randn((30, 20), 1)
    cpu = manifold.egrad2rgrad(x, packed_egrad(manifold, x, g))
    gpu = manifold.egrad2rgrad(x.cuda(), packed_egrad(manifold, x.cuda(), g.cuda()))
    assert gpu.is_cuda and float((gpu.cpu() - cpu).abs().max()) <= 1e-12
    point = geoopt.ManifoldParameter(x.cuda(), manifold=manifold)
    optimizer = geoopt.optim.RiemannianAdam([point], lr=1e-2)
    (manifold.to_matrix(point) * g.cuda()).sum().backward()
    optimizer.step()
    assert point.is_cuda and manifold.check_point_on_manifold(point.detach(), atol=1e-10)


@pytest.mark.parametrize("m, n, r", [(5, 4, 2), (3, 6, 3), (4, 4, 1)])
def test_dim_is_the_rank_of_the_tangent_projection(m, n, r):
    """dim M_r = (m + n - r) r: the rank of proju on packed tangents; DLNMatrices: m n."""
    manifold = DLNFixedRank(m, n, r, depth=3)
    x = manifold.random(generator=gen(0))
    eye = torch.eye(x.numel(), dtype=x.dtype)
    projector = torch.stack([manifold.proju(x, e.reshape(x.shape)).reshape(-1) for e in eye])
    assert int(torch.linalg.matrix_rank(projector, atol=1e-10)) == manifold.dim
    assert DLNMatrices(m, n, depth=2).dim == m * n
