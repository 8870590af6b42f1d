"""The array-generic core on torch tensors agrees with numpy (issue 16, first slice).

float64: every converted function gives the numpy result to 1e-12 (relative to the
result's norm) on adversarial spectra; where a formula divides by the kernel (A^{-1},
g^N, the rank-r lift) the two LAPACKs' round-off is amplified by the kernel's
condition number, and the tolerance says so. float32: its own tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
pytest.importorskip("array_api_compat")

from dlnmanifolds.core import _backend  # noqa: E402
from dlnmanifolds.core.balanced import _balanced_frames, balanced_factors  # noqa: E402
from dlnmanifolds.core.balanced_tangent import (  # noqa: E402
    riemannian_hessian as balanced_riemannian_hessian,
)
from dlnmanifolds.core.balanced_tangent import tangent_projection  # noqa: E402
from dlnmanifolds.core.dln_metric import (  # noqa: E402
    infinite_depth_retraction,
    lifted_retraction,
    riemannian_gradient,
)
from dlnmanifolds.core.dln_metric import (  # noqa: E402
    riemannian_hessian as dln_riemannian_hessian,
)
from dlnmanifolds.core.fixed_rank import (  # noqa: E402
    _weights,
    fixed_rank_hessian,
    fixed_rank_inner,
    fixed_rank_retraction,
    fixed_rank_riemannian_gradient,
    tangent_part,
    transport_tangent,
)
from dlnmanifolds.core.kernel import dln_kernel, kernel_matrix, log_mean_kernel  # noqa: E402
from dlnmanifolds.core.operator import (  # noqa: E402
    dln_inner,
    dln_operator,
    dln_operator_inverse,
    dln_operator_sqrt,
)

SETTINGS = settings(max_examples=25, deadline=None)
DEPTHS = st.sampled_from([1, 2, 3, 5, 8, 40, math.inf])
FINITE_DEPTHS = st.sampled_from([1, 2, 3, 5, 8, 40])


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def rel_parts(got, expected) -> float:
    """Relative error of a factored tangent (U_p, M, V_p), in the norm of all three."""
    flat = lambda parts: np.concatenate(  # noqa: E731
        [(p.numpy() if isinstance(p, torch.Tensor) else np.asarray(p)).ravel() for p in parts]
    )
    return rel(flat(got), flat(expected))


def rel(a, b) -> float:
    a = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


@st.composite
def spectra(draw, k: int, min_ratio: float = 1e-12, allow_zero: bool = False):
    """Decreasing singular values: repeated, clustered, down to min_ratio * max."""
    kind = draw(st.sampled_from(["random", "repeated", "cluster", "tiny", "zero"]))
    top = draw(st.floats(0.1, 10.0))
    if kind == "repeated":
        s = np.full(k, top)
    elif kind == "cluster":
        s = top * (1.0 + 1e-9 * np.arange(k, 0, -1))
    elif kind == "tiny":
        s = top * np.geomspace(1.0, min_ratio, k)
    elif kind == "zero" and allow_zero and k > 1:
        s = np.concatenate([top * np.linspace(1.0, 0.5, k - 1), [0.0]])
    else:
        s = (
            top
            * np.sort(
                np.asarray(draw(st.lists(st.floats(min_ratio, 1.0), min_size=k, max_size=k)))
            )[::-1]
        )
    return np.sort(s)[::-1].copy()


def _haar(rng, m, k):
    q, r = np.linalg.qr(rng.standard_normal((m, k)))
    return q * np.sign(np.diag(r))


@st.composite
def matrices(draw, square: bool = False, min_ratio: float = 1e-12, allow_zero: bool = False):
    m = draw(st.integers(1, 6))
    n = m if square else draw(st.integers(1, 6))
    k = min(m, n)
    s = draw(spectra(k, min_ratio, allow_zero))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = (_haar(rng, m, k) * s) @ _haar(rng, n, k).T
    return x, rng.standard_normal((m, n)), rng.standard_normal((m, n)), s


def kernel_condition(s, shape, depth) -> float:
    k = kernel_matrix(s, shape, depth)
    return float(k.max() / k.min())


# -- the kernel ---------------------------------------------------------------------


@SETTINGS
@given(a=st.floats(0.0, 1e3), ratio=st.floats(1e-12, 1.0), depth=DEPTHS)
def test_kernel_agrees_float64(a, ratio, depth):
    x, y = np.array([a, a, a * ratio]), np.array([a * ratio, a, 0.0])
    expected = dln_kernel(x, y, depth)
    got = dln_kernel(t(x), t(y), depth)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-12, atol=0)


@SETTINGS
@given(a=st.floats(1e-3, 1e3), ratio=st.floats(1e-6, 1.0), depth=FINITE_DEPTHS)
def test_kernel_float32_accuracy(a, ratio, depth):
    # The expm1 form has no cancellation: float32 is accurate to a few float32 eps
    # (stated bound: 1e-5 relative) for every ratio, including a ~ b.
    x = np.array([a, a, a * ratio, a * (1 + 1e-7)])
    y = np.array([a * ratio, a, a, a])
    exact = dln_kernel(x, y, depth)
    got = dln_kernel(t(x).float(), t(y).float(), depth)
    assert got.dtype == torch.float32
    np.testing.assert_allclose(got.double().numpy(), exact, rtol=1e-5)
    lm = log_mean_kernel(t(x).float(), t(y).float())
    np.testing.assert_allclose(lm.double().numpy(), log_mean_kernel(x, y), rtol=1e-5)


# -- the operator, its inverse, g^N -----------------------------------------------


def spectral_tol(s) -> float:
    """1e-12, plus the SVD's backward error eps * sigma_max amplified where the kernel's
    fractional powers sigma^{2/N}, sigma^{1/2} are steep at small sigma (relative
    sensitivity <= sigma_max / sigma_min): the numpy result is no more accurate."""
    positive = s[s > 0]
    return 1e-12 + 1e-15 * float(positive[0] / positive[-1])


@SETTINGS
@given(data=matrices(), depth=DEPTHS)
def test_operator_agrees_float64(data, depth):
    x, z, _, s = data
    tol = spectral_tol(s)
    for fn in (dln_operator, dln_operator_sqrt):
        expected = fn(x, z, depth)
        got = fn(t(x), t(z), depth)
        assert isinstance(got, torch.Tensor)
        assert rel(got, expected) <= tol
    assert rel(riemannian_gradient(t(x), t(z), depth), dln_operator(x, z, depth)) <= tol


@SETTINGS
@given(data=matrices(min_ratio=1e-3), depth=DEPTHS)
def test_operator_agrees_float64_to_1e12_when_conditioned(data, depth):
    # Repeated and clustered spectra included: only sigma_min / sigma_max >= 1e-3.
    x, z, _, _ = data
    assert rel(dln_operator(t(x), t(z), depth), dln_operator(x, z, depth)) <= 2e-12


@SETTINGS
@given(data=matrices(allow_zero=True), depth=FINITE_DEPTHS)
def test_operator_rank_deficient_agrees_float64(data, depth):
    # Exact zeros are round-off "zeros" after the SVD; ``rank`` zeroes them in both
    # backends (math.md §3.3), so nothing leaks and the results agree.
    x, z, _, s = data
    rank = int(np.sum(s > 0))
    expected = dln_operator(x, z, depth, rank=rank)
    got = dln_operator(t(x), t(z), depth, rank=rank)
    assert rel(got, expected) <= spectral_tol(s)


@SETTINGS
@given(data=matrices(min_ratio=1e-6), depth=DEPTHS)
def test_inverse_and_inner_agree_float64(data, depth):
    x, z1, z2, s = data
    if depth == math.inf and x.shape[0] != x.shape[1]:
        return
    # Dividing by K amplifies the SVDs' round-off by cond(K) = max K / min K.
    tol = 1e-12 + 1e-14 * kernel_condition(s, x.shape, depth)
    assert rel(dln_operator_inverse(t(x), t(z1), depth), dln_operator_inverse(x, z1, depth)) <= tol
    expected = dln_inner(x, z1, z2, depth)
    got = dln_inner(t(x), t(z1), t(z2), depth)
    assert isinstance(got, torch.Tensor) and got.ndim == 0
    scale = math.sqrt(dln_inner(x, z1, z1, depth) * dln_inner(x, z2, z2, depth))
    assert abs(float(got) - expected) <= tol * scale


def test_operator_batched_torch():
    rng = np.random.default_rng(1)
    x, z = rng.standard_normal((4, 3, 5)), rng.standard_normal((4, 3, 5))
    assert rel(dln_operator(t(x), t(z), 3), dln_operator(x, z, 3)) <= 1e-12
    got = dln_inner(t(x), t(z), t(z), 3)
    np.testing.assert_allclose(got.numpy(), dln_inner(x, z, z, 3), rtol=1e-12)


@SETTINGS
@given(data=matrices(min_ratio=1e-3), depth=FINITE_DEPTHS)
def test_operator_float32_accuracy(data, depth):
    # float32: the SVD's backward error ~ eps32 ||X|| leaks into the small-sigma
    # directions; stated bound 1e-4 relative (sigma_min >= 1e-3 sigma_max, N <= 40).
    x, z, _, _ = data
    got = dln_operator(t(x).float(), t(z).float(), depth)
    assert got.dtype == torch.float32
    assert rel(got.double(), dln_operator(x, z, depth)) <= 1e-4


@SETTINGS
@given(data=matrices(min_ratio=1e-4), depth=FINITE_DEPTHS)
def test_lifted_retraction_agrees_float64(data, depth):
    x, z, _, s = data
    xi = 0.3 * z * s[0] / np.linalg.norm(z)
    tol = 1e-12 + 1e-14 * kernel_condition(s, x.shape, depth)
    assert rel(lifted_retraction(t(x), t(xi), depth), lifted_retraction(x, xi, depth)) <= tol


@SETTINGS
@given(data=matrices(square=True, min_ratio=1e-3))
def test_infinite_depth_retraction_agrees_float64(data):
    x, z, _, s = data
    xi = 0.1 * z * s[-1] / np.linalg.norm(z)
    got = infinite_depth_retraction(t(x), t(xi))
    assert rel(got, infinite_depth_retraction(x, xi)) <= 1e-11


# -- the rank-r factored geometry ---------------------------------------------------


@st.composite
def rank_points(draw, min_ratio=1e-12):
    m, n = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    r = draw(st.integers(1, min(m, n)))
    s = draw(spectra(r, min_ratio))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    u, v = _haar(rng, m, r), _haar(rng, n, r)
    g = rng.standard_normal((m, n))
    raw = (rng.standard_normal((m, r)), rng.standard_normal((r, r)), rng.standard_normal((n, r)))
    return u, s, v, g, tangent_part(u, v, raw)


@SETTINGS
@given(point=rank_points(), depth=FINITE_DEPTHS)
def test_fixed_rank_weights_gradient_transport_agree_float64(point, depth):
    u, s, v, g, xi = point
    kw, cw = _weights(s, depth)
    kt, ct = _weights(t(s), depth)
    assert rel(kt, kw) <= 1e-12 and rel(ct, cw) <= 1e-12
    expected = fixed_rank_riemannian_gradient(u, s, v, g, depth)
    got = fixed_rank_riemannian_gradient(t(u), t(s), t(v), t(g), depth)
    assert all(isinstance(a, torch.Tensor) for a in got)
    assert rel_parts(got, expected) <= 1e-12
    rng = np.random.default_rng(0)
    u2, v2 = _haar(rng, u.shape[0], u.shape[1]), _haar(rng, v.shape[0], v.shape[1])
    moved = transport_tangent(t(u), t(v), tuple(map(t, xi)), t(u2), t(v2))
    assert rel_parts(moved, transport_tangent(u, v, xi, u2, v2)) <= 1e-12


@SETTINGS
@given(point=rank_points(min_ratio=1e-4), depth=FINITE_DEPTHS)
def test_fixed_rank_inner_and_retraction_agree_float64(point, depth):
    u, s, v, g, xi = point
    kw, cw = _weights(s, depth)
    cond = max(kw.max() / kw.min(), cw.max() / cw.min())
    tol = 1e-12 + 1e-14 * cond
    expected = fixed_rank_inner(s, xi, xi, depth)
    got = fixed_rank_inner(t(s), tuple(map(t, xi)), tuple(map(t, xi)), depth)
    assert isinstance(got, torch.Tensor) and abs(float(got) - expected) <= tol * expected
    step = tuple(0.2 * s[-1] * a / max(np.linalg.norm(a), 1e-300) for a in xi)
    un, sn, vn = fixed_rank_retraction(u, s, v, step, depth)
    ut, st_, vt = fixed_rank_retraction(t(u), t(s), t(v), tuple(map(t, step)), depth)
    assert rel((ut * st_) @ vt.T, (un * sn) @ vn.T) <= tol


# -- bad input --------------------------------------------------------------------


def test_mixed_backends_name_the_argument():
    x = np.eye(3)
    with pytest.raises(TypeError, match="Z.*numpy|mixed"):
        dln_operator(x, torch.eye(3, dtype=torch.float64), 2)
    with pytest.raises(TypeError, match="Z1"):
        dln_inner(torch.eye(3, dtype=torch.float64), x, x, 2)
    with pytest.raises(TypeError, match="euclidean_gradient"):
        fixed_rank_riemannian_gradient(
            torch.eye(3, 1, dtype=torch.float64),
            torch.ones(1, dtype=torch.float64),
            torch.eye(3, 1, dtype=torch.float64),
            np.ones((3, 3)),
            2,
        )
    with pytest.raises(TypeError, match="mixed"):
        dln_kernel(np.ones(2), torch.ones(2, dtype=torch.float64), 2)


@pytest.mark.parametrize(
    "dtype", [torch.int64, torch.int32, torch.bool, torch.complex128, torch.float16, torch.bfloat16]
)
def test_bad_dtypes_are_type_errors_naming_the_argument(dtype):
    good = torch.eye(3, dtype=torch.float64)
    bad = torch.eye(3).to(dtype)
    with pytest.raises(TypeError, match=r"\bz\b.*float32 or float64"):
        dln_operator(good, bad, 2)
    with pytest.raises(TypeError, match=r"\bW\b.*float32 or float64"):
        dln_operator(bad, good, 2)
    with pytest.raises(TypeError, match=r"\bb\b"):
        dln_kernel(torch.ones(2, dtype=torch.float64), torch.ones(2).to(dtype), 2)


def test_different_devices_are_type_errors():
    # The meta device holds no data: a CPU and a meta tensor are two devices, with or
    # without a GPU.
    with pytest.raises(TypeError, match=r"\bz\b.*device meta"):
        dln_operator(
            torch.eye(3, dtype=torch.float64), torch.eye(3, dtype=torch.float64, device="meta"), 2
        )


def test_non_finite_tensors_rejected():
    bad = torch.eye(3, dtype=torch.float64)
    bad[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"\bz\b.*finite"):
        dln_operator(torch.eye(3, dtype=torch.float64), bad, 2)


def test_numpy_path_returns_numpy():
    x = np.diag([3.0, 1.0])
    assert type(dln_operator(x, np.eye(2), 2)) is np.ndarray
    assert isinstance(dln_inner(x, np.eye(2), np.eye(2), 2), float)
    assert _backend.namespace(x, 1.0, None) is np


@pytest.mark.cuda
def test_cuda_agrees_with_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(0)
    x, z = rng.standard_normal((64, 48)), rng.standard_normal((64, 48))
    got = dln_operator(t(x).cuda(), t(z).cuda(), 4)
    assert got.is_cuda
    assert rel(got.cpu(), dln_operator(x, z, 4)) <= 1e-12
    with pytest.raises(TypeError, match="device"):
        dln_operator(t(x).cuda(), t(z), 4)


# -- the Hessians -------------------------------------------------------------------


@SETTINGS
@given(data=matrices(min_ratio=1e-3), depth=FINITE_DEPTHS, seed=st.integers(0, 2**31))
def test_dln_metric_hessian_agrees_float64(data, depth, seed):
    """Hess_g E(X)[xi] = A(E''[xi]) + Dphi(D_{xi^h}(Dphi^*)(E')) (math.md §4.3) on both
    backends: through A^{-1} (the lift of xi) and A, so cond(K) enters twice."""
    x, g, h, s = data
    xi = np.random.default_rng(seed).standard_normal(x.shape)
    expected = dln_riemannian_hessian(x, g, h, xi, depth)
    got = dln_riemannian_hessian(t(x), t(g), t(h), t(xi), depth)
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float64
    assert rel(got, expected) <= 1e-12 + 1e-14 * kernel_condition(s, x.shape, depth) ** 2


@SETTINGS
@given(data=matrices(min_ratio=1e-2), depth=st.integers(2, 5), seed=st.integers(0, 2**31))
def test_balanced_hessian_agrees_float64(data, depth, seed):
    """The Weingarten Hessian of the balanced manifold (math.md §2.6) from each backend's
    own frames (their signs may differ; the Hessian does not depend on them)."""
    x, _, _, s = data
    rng = np.random.default_rng(seed)
    weights = balanced_factors(x, depth)
    egrad, ehess, xi = ([rng.standard_normal(w.shape) for w in weights] for _ in range(3))
    xi = tangent_projection(_balanced_frames(weights), xi)
    expected = balanced_riemannian_hessian(weights, _balanced_frames(weights), egrad, ehess, xi)
    tw = [t(w) for w in weights]
    got = balanced_riemannian_hessian(
        tw, _balanced_frames(tw), [t(a) for a in egrad], [t(a) for a in ehess], [t(a) for a in xi]
    )
    assert all(isinstance(a, torch.Tensor) for a in got)
    flat = np.concatenate([a.ravel() for a in expected])
    diff = np.concatenate([(a.numpy() - b).ravel() for a, b in zip(got, expected)])
    scale = max(1.0, float(np.abs(flat).max()))
    assert float(np.abs(diff).max()) / scale <= 1e-12 + 1e-14 * (s[0] / s[-1]) ** 2


@SETTINGS
@given(point=rank_points(min_ratio=1e-3), depth=FINITE_DEPTHS, seed=st.integers(0, 2**31))
def test_fixed_rank_hessian_agrees_float64(point, depth, seed):
    """The factored rank-r Hessian (Weingarten form at N = 1, the lifted curvature term
    for N >= 2; math.md §4.3) with dense E' and E''[xi] on both backends."""
    u, s, v, g, xi = point
    h = np.random.default_rng(seed).standard_normal(g.shape)
    expected = fixed_rank_hessian(u, s, v, g, h, xi, depth)
    got = fixed_rank_hessian(t(u), t(s), t(v), t(g), t(h), tuple(map(t, xi)), depth)
    assert all(isinstance(a, torch.Tensor) for a in got)
    assert rel_parts(got, expected) <= 1e-12 + 1e-14 * float(s[0] / s[-1]) ** 2
