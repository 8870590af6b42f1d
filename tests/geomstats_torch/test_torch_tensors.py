"""Tensors stay tensors: no numpy round trip in the array-generic methods, float32, CUDA,
and bad input (numpy arrays, mixed devices, int / complex / float16 tensors -> TypeError
naming the argument)."""

import pytest
import torch
from geomstats.geometry.full_rank_matrices import FullRankMatrices
from geomstats.geometry.general_linear import GeneralLinear

from dlnmanifolds.geomstats import BalancedSpace, DLNMetric
from dlnmanifolds.testing.conversions import forbid_array_conversions


def _setup(widths, dtype=torch.float64, device="cpu"):
    space = BalancedSpace(widths=widths, rng=5)
    space.equip_with_quotient()
    w = space.random_point(2).to(dtype=dtype, device=device)
    gen = torch.Generator().manual_seed(0)
    xi = torch.randn(w.shape, generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)
    m, n = widths[-1], widths[0]
    zeta = torch.randn((2, m, n), generator=gen, dtype=torch.float64).to(dtype=dtype, device=device)
    base = GeneralLinear(n, equip=False) if m == n else FullRankMatrices(m, n, equip=False)
    metric = base.equip_with_metric(DLNMetric, depth=space.depth).metric
    return space, w, xi, zeta, metric


def _generic_calls(space, w, xi, zeta, metric, atol=1e-6):
    """Every array-generic method (no geodesic solver) once (predicates at ``atol``)."""
    bundle = space.fiber_bundle
    x = bundle.riemannian_submersion(w)
    t = space.to_tangent(xi, w)
    return {
        "belongs": space.belongs(w, atol=atol),
        "submersion": space.submersion(w),
        "tangent_submersion": space.tangent_submersion(xi, w),
        "is_tangent": space.is_tangent(t, w, atol=atol),
        "to_tangent": t,
        "projection": space.projection(w + 1e-2 * t),
        "inner": space.metric.inner_product(t, t, w),
        "metric_matrix": space.metric.metric_matrix(w),
        "dphi": bundle.tangent_riemannian_submersion(t, w),
        "lift": bundle.lift(x),
        "horizontal_lift": bundle.horizontal_lift(zeta, fiber_point=w),
        "horizontal_projection": bundle.horizontal_projection(t, w),
        "vertical_projection": bundle.vertical_projection(t, w),
        "is_horizontal": bundle.is_horizontal(bundle.horizontal_projection(t, w), w, atol=atol),
        "dln_inner": metric.inner_product(zeta, zeta, x),
        "dln_coproduct": metric.inner_coproduct(zeta, zeta, x),
        "dln_metric_matrix": metric.metric_matrix(x),
        "quotient_inner": space.quotient.metric.inner_product(zeta, zeta, x),
    }


@pytest.mark.parametrize("widths", [(3, 3, 3, 3), (3, 5, 4, 2)])
def test_no_numpy_round_trip_in_the_generic_methods(widths):
    """Tensor -> numpy and numpy -> tensor conversions are patched to raise."""
    args = _setup(widths)
    with forbid_array_conversions(numpy_constructors=False):
        out = _generic_calls(*args)
    for name, value in out.items():
        assert isinstance(value, torch.Tensor), name


@pytest.mark.parametrize("widths", [(3, 3, 3, 3), (3, 5, 4, 2)])
def test_float32_tensors_give_float32_results_close_to_float64(widths):
    """float32 in, float32 out, to float32 accuracy on a well-conditioned spectrum."""
    ref = _generic_calls(*_setup(widths))
    got = _generic_calls(*_setup(widths, dtype=torch.float32), atol=1e-4)
    for name, value in got.items():
        if value.dtype == torch.bool:
            assert torch.equal(value, ref[name]), name
            continue
        assert value.dtype == torch.float32, name
        scale = max(1.0, float(ref[name].abs().max()))
        assert float((value.double() - ref[name]).abs().max()) <= 2e-4 * scale, name


def test_geodesics_cross_one_boundary_and_keep_dtype():
    """exp/log run in numpy (via_numpy) and come back as tensors of the input's dtype."""
    space, w, xi, zeta, metric = _setup((2, 2, 2))
    x = space.fiber_bundle.riemannian_submersion(w)
    v = 0.2 * zeta
    y = metric.exp(v, x)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64
    assert float((metric.log(y, x) - v).abs().max()) <= 1e-9
    t = 0.1 * space.to_tangent(xi, w)
    w1 = space.metric.exp(t, w)
    assert bool(torch.all(space.belongs(w1, atol=1e-9)))
    assert float((space.metric.log(w1, w) - t).abs().max()) <= 1e-8
    y32 = metric.exp(v.float(), x.float())
    assert y32.dtype == torch.float32
    assert float((y32.double() - y).abs().max()) <= 1e-5 * float(y.abs().max())


def test_bad_input_is_a_type_error_naming_the_argument():
    space, w, xi, zeta, metric = _setup((3, 5, 4, 2))
    x = space.fiber_bundle.riemannian_submersion(w)
    with pytest.raises(TypeError, match="vector must be a torch tensor.*numpy array"):
        space.to_tangent(xi.numpy(), w)
    with pytest.raises(TypeError, match="tangent_vec_b must be a torch tensor"):
        metric.inner_product(zeta, zeta.numpy(), x)
    with pytest.raises(TypeError, match="point must be a torch tensor"):
        space.belongs(w.numpy())
    with pytest.raises(TypeError, match=r"tangent_vec_a.*integer"):
        metric.inner_product(zeta.to(torch.int64), zeta, x)
    with pytest.raises(TypeError, match=r"vector.*complex"):
        space.to_tangent(xi.to(torch.complex128), w)
    with pytest.raises(TypeError, match=r"tangent_vec.*half precision"):
        space.fiber_bundle.horizontal_projection(xi.half(), w)
    with pytest.raises(TypeError, match=r"point.*bfloat16"):
        space.submersion(w.to(torch.bfloat16))
    with pytest.raises(TypeError, match="share one dtype"):
        space.to_tangent(xi.float(), w)
    # The meta device holds no data: a CPU and a meta tensor are two devices.
    with pytest.raises(TypeError, match=r"base_point.*device meta|device.*meta"):
        metric.inner_product(zeta, zeta, x.to("meta"))
    with pytest.raises(TypeError, match=r"device"):
        space.fiber_bundle.horizontal_lift(zeta.to("meta"), fiber_point=w)


@pytest.mark.cuda
def test_cuda_tensors_agree_with_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    for widths in [(3, 3, 3, 3), (3, 5, 4, 2)]:
        ref = _generic_calls(*_setup(widths))
        got = _generic_calls(*_setup(widths, device="cuda"))
        for name, value in got.items():
            assert value.is_cuda, name
            if value.dtype == torch.bool:
                assert torch.equal(value.cpu(), ref[name]), name
            else:
                scale = max(1.0, float(ref[name].abs().max()))
                assert float((value.cpu() - ref[name]).abs().max()) <= 1e-10 * scale, name
    space, w, xi, zeta, metric = _setup((2, 2, 2), device="cuda")
    x = space.fiber_bundle.riemannian_submersion(w)
    y = metric.exp(0.2 * zeta, x)
    assert y.is_cuda


def test_layer_stacks_on_tensors():
    """The embedding space: flat metric, straight exp/log, identity metric matrix."""
    from dlnmanifolds.geomstats import LayerStacks

    space = LayerStacks(widths=(3, 4, 2), rng=0)
    a, b = space.random_point(3), space.random_point(3)
    assert isinstance(a, torch.Tensor) and a.shape == (3, 20)
    metric = space.metric
    assert torch.allclose(metric.exp(metric.log(a, b), b), a, atol=1e-15)
    assert torch.allclose(metric.inner_product(a, b), (a * b).sum(-1), atol=1e-15)
    assert torch.equal(metric.metric_matrix(a)[1], torch.eye(20, dtype=torch.float64))
