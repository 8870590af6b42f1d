"""The balanced core on torch and ``dlnmanifolds.geoopt.BalancedManifold`` (issue 16).

numpy = torch in float64 for every function of core/balanced.py and
core/balanced_tangent.py, at adversarial spectra (repeated and clustered singular
values, sigma_min down to 1e-12 sigma_max, rank-deficient end-to-end matrices,
non-square widths, depth up to 8). Gauge-dependent outputs (the frames, and the
factors of an end-to-end matrix with repeated singular values, whose singular
vectors LAPACK may pick differently in numpy and torch) are compared through what
they determine: projectors, rebuilt layers, end-to-end matrices. float32 to a stated
tolerance. Then the geoopt manifold: projection, invariants, retraction order,
training with RiemannianSGD/RiemannianAdam, and no numpy <-> torch conversion in a step.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

torch = pytest.importorskip("torch")
geoopt = pytest.importorskip("geoopt")

from dlnmanifolds.core.balanced import (  # noqa: E402
    _balanced_frames,
    _complement,
    _frame_stack,
    _layers_from_frames,
    _polar,
    _rebalance,
    balanced_factors,
    balanced_frames,
    widths_and_rank,
)
from dlnmanifolds.core.balanced_tangent import (  # noqa: E402
    _JacobiFactor,
    _thomas_jacobi,
    horizontal_lift,
    horizontal_projection,
    normal_generator,
    normal_generator_adjoint,
    normal_multipliers,
    tangent_projection,
)
from dlnmanifolds.core.network import _end_to_end, _imbalance  # noqa: E402
from dlnmanifolds.geoopt import BalancedManifold  # noqa: E402
from dlnmanifolds.pymanopt import BalancedManifold as PymanoptBalanced  # noqa: E402
from dlnmanifolds.testing.conversions import forbid_array_conversions  # noqa: E402
from dlnmanifolds.testing.slopes import loglog_slope  # noqa: E402

SETTINGS = settings(max_examples=20, deadline=None)
F64 = torch.float64
#: widths: square, non-square (3, 5, 4, 2), wide/narrow ends, depth 1 and depth 8.
WIDTHS = st.sampled_from(
    [(3, 3, 3), (3, 5, 4, 2), (2, 6, 6, 5), (4,) * 9, (3, 4), (5, 4, 4, 6, 4), (4, 6, 6, 6, 4)]
)


def t(a):
    return torch.from_numpy(np.ascontiguousarray(a))


def tt(layers):
    return [t(a) for a in layers]


def flat(layers) -> np.ndarray:
    arrays = [a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a) for a in layers]
    return np.concatenate([a.ravel() for a in arrays]) if arrays else np.zeros(0)


def rel(got, expected) -> float:
    """Relative error of a list of layers (norm of all entries together)."""
    a, b = flat(got), flat(expected)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def haar(rng, m, k):
    q, r = np.linalg.qr(rng.standard_normal((m, k)))
    return q * np.sign(np.diag(r))


@st.composite
def spectra(draw, r: int, allow_deficient: bool = False):
    """Decreasing singular values: random, repeated, clustered (gap 1e-9), tiny
    (sigma_min = 1e-12 sigma_max), tiny and repeated, or a zero (rank-deficient)."""
    kinds = ["random", "repeated", "cluster", "tiny", "tiny_repeated"]
    kind = draw(st.sampled_from(kinds + (["deficient"] if allow_deficient else [])))
    top = draw(st.floats(0.3, 3.0))
    s = top * np.sort(np.array(draw(st.lists(st.floats(0.2, 1.0), min_size=r, max_size=r))))
    s = s[::-1].copy()
    s[0] = top
    if kind in ("repeated", "tiny_repeated"):
        s[:] = top
    if kind == "cluster" and r > 1:
        s[1] = s[0] * (1 - 1e-9)
    if kind in ("tiny", "tiny_repeated") and r > 1:
        s[-1] = 1e-12 * top
    if kind == "deficient" and r > 1:
        s[-1] = 0.0
    return s, kind


@st.composite
def networks(draw, allow_deficient: bool = False):
    """(layers, spectrum, kind): a balanced network over U diag(s) V^T, Haar gauge."""
    widths = draw(WIDTHS)
    depth, m, n = len(widths) - 1, widths[-1], widths[0]
    s, kind = draw(spectra(min(m, n), allow_deficient))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    w = (haar(rng, m, s.size) * s) @ haar(rng, n, s.size).T
    layers = balanced_factors(w, depth, widths, rng=rng)
    return list(layers), s, kind, rng


def ambient(rng, layers):
    return [rng.standard_normal(w.shape) for w in layers]


def lam_condition(frames) -> float:
    lam = np.asarray(frames.lam)
    return float(lam[0] / lam[-1])


# -- core, float64: numpy = torch ----------------------------------------------------


@SETTINGS
@given(case=networks(allow_deficient=True))
def test_balanced_factors_agree(case):
    layers, s, kind, rng = case
    w = _end_to_end(layers)
    widths = widths_and_rank(layers)[0]
    for gauge in (None, 7):
        got = balanced_factors(t(w), len(layers), widths, rng=gauge)
        want = balanced_factors(w, len(layers), widths, rng=gauge)
        assert all(isinstance(g, torch.Tensor) and g.dtype == F64 for g in got)
        scale = float(np.abs(w).max())
        assert float((_end_to_end(got).numpy() - _end_to_end(want)).__abs__().max()) <= (
            1e-12 * scale
        )
        assert _imbalance(got) <= 1e-12 * max(1.0, scale ** (2 / len(layers)))
        gap = float(np.min(-np.diff(s))) / s[0] if s.size > 1 else 1.0
        if kind == "random" and gap > 1e-3:
            # distinct singular values: the SVD is unique up to the signs of (u_i, v_i),
            # which LAPACK may choose differently; the inner layers (fixed gauge) and
            # the Gram matrices W_1^T W_1 = V Lambda^2 V^T, W_N W_N^T do not see them
            tol = 1e-12 + 1e-15 / gap
            assert rel(got[1:-1], want[1:-1]) <= tol
            assert rel([got[0].T @ got[0]], [want[0].T @ want[0]]) <= tol
            assert rel([got[-1] @ got[-1].T], [want[-1] @ want[-1].T]) <= tol


@SETTINGS
@given(case=networks(allow_deficient=True))
def test_frames_agree(case):
    layers, s, kind, rng = case
    fn, ft = balanced_frames(layers), balanced_frames(tt(layers))
    assert ft.rank == fn.rank and isinstance(ft.lam, torch.Tensor)
    lam = np.asarray(fn.lam)
    np.testing.assert_allclose(ft.lam.numpy(), lam, rtol=0, atol=1e-12 * lam[0])
    # the frames up to gauge: projectors, orthonormality, the layers they rebuild
    for qn, qt, pn, pt in zip(fn.q, ft.q, fn.q_perp, ft.q_perp):
        assert qt.dtype == F64
        np.testing.assert_allclose((qt @ qt.T).numpy(), qn @ qn.T, atol=1e-12 * lam[0] / lam[-1])
        np.testing.assert_allclose(qt.T @ qt, np.eye(fn.rank), atol=1e-13)
        np.testing.assert_allclose(pt @ pt.T + qt @ qt.T, np.eye(qn.shape[0]), atol=1e-13)
        assert pt.shape == pn.shape
    rebuilt = _layers_from_frames(ft.q, ft.lam)
    assert rel(rebuilt, layers) <= 1e-12
    # distinct, gapped singular values: the frames themselves (sign gauge fixed) agree
    gap = float(np.min(-np.diff(lam))) / lam[0] if lam.size > 1 else 1.0
    if kind == "random" and fn.rank == s.size and gap > 1e-3:
        assert rel(ft.q, fn.q) <= 1e-12 + 1e-14 * lam_condition(fn) / gap
    # _frame_stack is the same recovery
    q, lam_stack = _frame_stack(tt(layers), fn.rank)
    assert rel(q, ft.q) == 0.0 and float((lam_stack - ft.lam).abs().max()) == 0.0
    assert widths_and_rank(tt(layers)) == widths_and_rank(layers)


@SETTINGS
@given(case=networks())
def test_tangent_projection_and_normal_maps_agree(case):
    layers, s, kind, rng = case
    fn, ft = _balanced_frames(layers), _balanced_frames(tt(layers))
    xi = ambient(rng, layers)
    pn, pt = tangent_projection(fn, xi), tangent_projection(ft, tt(xi))
    assert all(isinstance(p, torch.Tensor) for p in pt)
    # P_T depends on the point only (not on the gauge of the frames)
    assert rel(pt, pn) <= 1e-12
    # the uncached path (frames without cache) is the same map
    nocache = ft._replace(cache=None)
    assert rel(tangent_projection(nocache, tt(xi)), pn) <= 1e-12
    if len(layers) > 1:
        sn, st_ = normal_multipliers(fn, xi), normal_multipliers(ft, tt(xi))
        # S carries Lambda^{-1} (math.md §2.4): relative accuracy eps lam_1 / lam_r
        assert rel(st_, sn) <= 1e-12 + 1e-14 * lam_condition(fn)
        cn = normal_generator(layers, sn)
        ct = normal_generator(tt(layers), st_)
        assert rel(ct, cn) <= 1e-12 + 1e-14 * lam_condition(fn)
        an, at = normal_generator_adjoint(layers, xi), normal_generator_adjoint(tt(layers), tt(xi))
        assert rel(at, an) <= 1e-13
        cx = normal_generator(tt(layers), st_, tt(xi))
        assert rel(cx, normal_generator(layers, sn, xi)) <= 1e-12 + 1e-14 * lam_condition(fn)


@SETTINGS
@given(case=networks(allow_deficient=True), step=st.sampled_from([1e-6, 1e-2, 0.3]))
def test_rebalance_agrees(case, step):
    layers, s, kind, rng = case
    y = [w + step * v for w, v in zip(layers, ambient(rng, layers))]
    got, want = _rebalance(tt(y)), _rebalance(y)
    assert all(isinstance(g, torch.Tensor) for g in got)
    # polar factors of the partial products: sensitivity eps * cond(Y_p ... Y_1)
    prefix, cond = y[0], 1.0
    for w in y[1:] + [None]:
        sv = np.linalg.svd(prefix, compute_uv=False)
        cond = max(cond, float(sv[0] / max(sv[-1], 1e-300)))
        prefix = w @ prefix if w is not None else prefix
    assert rel(got, want) <= 1e-12 + 1e-15 * cond


@SETTINGS
@given(
    n=st.integers(1, 6),
    k=st.integers(1, 6),
    log_cond=st.floats(0, 6),
    seed=st.integers(0, 2**31),
)
def test_polar_complement_and_jacobi_agree(n, k, log_cond, seed):
    rng = np.random.default_rng(seed)
    k = min(k, n)
    a = (haar(rng, n, k) * np.logspace(0, -log_cond, k)) @ haar(rng, k, k).T
    np.testing.assert_allclose(_polar(t(a)).numpy(), _polar(a), atol=1e-15 * 10**log_cond + 1e-13)
    q = haar(rng, n, k)
    cn, ct = _complement(q), _complement(t(q))
    assert isinstance(ct, torch.Tensor) and ct.shape == cn.shape
    np.testing.assert_allclose((ct @ ct.T).numpy(), cn @ cn.T, atol=1e-13)
    # the tridiagonal pair systems (Thomas sweeps): 2 T_ij c = rhs, any lam_i, lam_j >= 0
    pairs, depth = 5, n + 1
    lam_i = rng.uniform(0.1, 2.0, pairs)
    lam_j = lam_i * np.where(rng.random(pairs) < 0.5, 1.0, rng.uniform(1e-6, 1.0, pairs))
    rhs = rng.standard_normal((depth - 1, pairs))
    cn = _thomas_jacobi(lam_i, lam_j, rhs)
    ct = _thomas_jacobi(t(lam_i), t(lam_j), t(rhs))
    np.testing.assert_allclose(ct.numpy(), cn, rtol=0, atol=1e-13 * np.abs(cn).max())
    factor = _JacobiFactor(t(lam_i), t(lam_j), depth - 1)
    assert float((factor.solve(t(rhs)) - ct).abs().max()) == 0.0
    # and it solves the system it names
    for p in range(pairs):
        tri = np.diag(np.full(depth - 1, lam_i[p] ** 2 + lam_j[p] ** 2))
        tri -= lam_i[p] * lam_j[p] * (np.eye(depth - 1, k=1) + np.eye(depth - 1, k=-1))
        np.testing.assert_allclose(2 * tri @ cn[:, p], rhs[:, p], atol=1e-12)


@SETTINGS
@given(case=networks())
def test_horizontal_maps_agree(case):
    layers, s, kind, rng = case
    xi = ambient(rng, layers)
    zeta = rng.standard_normal(_end_to_end(layers).shape)
    # A^{-1} has condition ~ (sigma_1/sigma_r)^{2(N-1)/N}: numpy is no more accurate
    cond = (s[0] / s[-1]) ** 2
    hn = horizontal_lift(layers, zeta)
    assert rel(horizontal_lift(tt(layers), t(zeta)), hn) <= 1e-12 + 1e-15 * cond
    hp = horizontal_projection(layers, xi)
    assert rel(horizontal_projection(tt(layers), tt(xi)), hp) <= 1e-12 + 1e-15 * cond


@settings(max_examples=10, deadline=None)
@given(widths=WIDTHS, seed=st.integers(0, 2**31), backend=st.sampled_from(["numpy", "torch"]))
def test_batched_core_is_the_networks_one_by_one(widths, seed, backend):
    """Frames, projection and re-balancing of a batch (2, 2) of networks at once =
    network by network (batched SVD/QR/pair sweeps)."""
    rng = np.random.default_rng(seed)
    depth, r = len(widths) - 1, min(widths[0], widths[-1])
    nets = [
        list(balanced_factors(rng.standard_normal((widths[-1], widths[0])), depth, widths, rng=k))
        for k in range(4)
    ]
    vecs = [ambient(rng, net) for net in nets]
    conv = (lambda a: a) if backend == "numpy" else t
    stack = lambda parts: [  # noqa: E731
        conv(np.stack([part[p] for part in parts]).reshape((2, 2) + parts[0][p].shape))
        for p in range(depth)
    ]
    frames = _balanced_frames(stack(nets), r)
    projected = tangent_projection(frames, stack(vecs))
    moved = _rebalance([w + 0.1 * v for w, v in zip(stack(nets), stack(vecs))])
    for k in range(4):
        i, j = divmod(k, 2)
        one = tangent_projection(_balanced_frames(nets[k], r), vecs[k])
        assert rel([p[i, j] for p in projected], one) <= 1e-12
        y = [w + 0.1 * v for w, v in zip(nets[k], vecs[k])]
        assert rel([m[i, j] for m in moved], _rebalance(y)) <= 1e-12
    with pytest.raises(ValueError, match="rank is required"):
        _balanced_frames(stack(nets))


def test_numpy_in_numpy_out():
    rng = np.random.default_rng(0)
    layers = list(balanced_factors(rng.standard_normal((3, 3)), 3, rng=0))
    frames = balanced_frames(layers)
    out = tangent_projection(frames, ambient(rng, layers)) + _rebalance(layers)
    assert all(type(o) is np.ndarray for o in out) and type(frames.lam) is np.ndarray


def test_bad_input_names_the_argument():
    layers = list(balanced_factors(np.diag([2.0, 1.0]), 2, rng=0))
    with pytest.raises(TypeError, match=r"weights\[1\]"):
        balanced_frames([t(layers[0]), layers[1]])
    with pytest.raises(TypeError, match="float32 or float64"):
        balanced_frames([t(w).to(torch.float16) for w in layers])
    with pytest.raises(ValueError, match="finite"):
        balanced_frames([t(layers[0]) * float("nan"), t(layers[1])])


# -- core, float32 -------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(widths=WIDTHS, seed=st.integers(0, 2**31))
def test_float32_accuracy(widths, seed):
    """float32 tensors give float32 results to ~1e-5 relative at spectra in [0.5, 2]
    (eps32 = 1.2e-7 times the depth and the conditioning lam_1/lam_r <= 4)."""
    rng = np.random.default_rng(seed)
    m, n = widths[-1], widths[0]
    r = min(m, n)
    s = np.sort(rng.uniform(0.5, 2.0, r))[::-1]
    layers = list(balanced_factors((haar(rng, m, r) * s) @ haar(rng, n, r).T, len(widths) - 1))
    layers, xi = layers, ambient(rng, layers)
    f32 = [t(w).float() for w in layers]
    frames = balanced_frames(f32)
    assert frames.lam.dtype == torch.float32
    p32 = tangent_projection(frames, [t(v).float() for v in xi])
    assert all(p.dtype == torch.float32 for p in p32)
    assert rel([p.double() for p in p32], tangent_projection(balanced_frames(layers), xi)) <= 2e-5
    y = [w + 0.1 * v for w, v in zip(layers, xi)]
    r32 = _rebalance([t(w).float() for w in y])
    assert rel([w.double() for w in r32], _rebalance(y)) <= 2e-5


# -- geoopt BalancedManifold -----------------------------------------------------------


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@st.composite
def manifold_case(draw):
    widths = draw(WIDTHS)
    return BalancedManifold(widths), draw(st.integers(0, 2**31))


def randn_like(x, seed):
    return torch.randn(x.shape, generator=gen(seed), dtype=x.dtype)


@SETTINGS
@given(case=manifold_case())
def test_proju_is_the_orthogonal_projection_onto_the_tangent_space(case):
    manifold, seed = case
    x = manifold.random(generator=gen(seed))
    assert manifold.check_point_on_manifold(x, atol=1e-12)
    u, v = randn_like(x, seed + 1), randn_like(x, seed + 2)
    pu, pv = manifold.proju(x, u), manifold.proju(x, v)
    scale = float(u.norm() * v.norm())
    assert float((manifold.proju(x, pu) - pu).abs().max()) <= 1e-12 * float(u.norm())
    assert abs(float(manifold.inner(x, u - pu, pv))) <= 1e-12 * scale  # orthogonal
    assert abs(float(manifold.inner(x, pu, v) - manifold.inner(x, u, pv))) <= 1e-12 * scale
    assert torch.equal(manifold.egrad2rgrad(x, u), pu)
    # the tangent vectors keep the invariants: DG_p[v] = -2 C_W^*(v)_p = 0
    layers = manifold.layers(x)
    dg = normal_generator_adjoint(layers, manifold.layers(pu))
    assert all(float(g.abs().max()) <= 1e-12 * float(u.norm()) * float(x.abs().max()) for g in dg)
    assert manifold.check_vector_on_tangent(x, pu, atol=1e-12, rtol=1e-12)
    # the same projection as the Pymanopt adapter and the numpy core
    ref = PymanoptBalanced(manifold.widths).projection(
        [w.numpy() for w in layers], [w.numpy() for w in manifold.layers(u)]
    )
    ref = [ref] if isinstance(ref, np.ndarray) else ref
    assert rel(manifold.layers(pu), ref) <= 1e-12


@pytest.mark.parametrize("widths", [(3, 3, 3, 3), (3, 5, 4, 2), (2, 4, 3), (4, 4)])
def test_dim_is_the_rank_of_the_projection(widths):
    """dim M (math.md §2.3) = trace of the tangent projection at a random point."""
    manifold = BalancedManifold(widths)
    x = manifold.random(generator=gen(0))
    eye = torch.eye(x.shape[0], dtype=x.dtype)
    projector = torch.stack([manifold.proju(x, e) for e in eye])
    assert round(float(torch.trace(projector))) == manifold.dim
    assert int(torch.linalg.matrix_rank(projector, atol=1e-8)) == manifold.dim


@SETTINGS
@given(case=manifold_case())
def test_retraction_lands_on_the_manifold_and_is_second_order(case):
    manifold, seed = case
    x = manifold.random(generator=gen(seed))
    v = manifold.proju(x, randn_like(x, seed + 1))
    v = v / v.norm()
    steps = np.logspace(-4, -1, 7)
    remainders = []
    for step in steps:
        y = manifold.retr(x, step * v)
        assert manifold.check_point_on_manifold(y, atol=1e-10)
        assert _imbalance(manifold.layers(y)) <= 1e-10
        # tangential remainder |P_x(R(t v) - x - t v)| = O(t^3) for a second-order map
        remainders.append(float(manifold.proju(x, y - x - step * v).norm()))
    slope = loglog_slope(steps, np.array(remainders), floor=1e-13)
    assert slope >= 2.7, (slope, remainders)
    # the pymanopt adapter's retraction (same combinator, same first-order map)
    w = [a.numpy() for a in manifold.layers(x)]
    xi = [a.numpy() for a in manifold.layers(0.1 * v)]
    ref = PymanoptBalanced(manifold.widths).retraction(w if len(w) > 1 else w[0], xi)
    ref = [ref] if isinstance(ref, np.ndarray) else ref
    assert rel(manifold.layers(manifold.retr(x, 0.1 * v)), ref) <= 1e-12
    # first order: the polar map alone; expmap is the retraction
    polar = BalancedManifold(manifold.widths, retraction="polar")
    y1 = polar.retr(x, 0.1 * v)
    assert polar.check_point_on_manifold(y1, atol=1e-10)
    assert torch.equal(manifold.expmap(x, 0.1 * v), manifold.retr(x, 0.1 * v))
    # transport: tangent at the new point; projx: the identity on M, onto M nearby
    y = manifold.retr(x, 0.1 * v)
    moved = manifold.transp(x, y, v)
    assert manifold.check_vector_on_tangent(y, moved, atol=1e-12, rtol=1e-12)
    assert float((manifold.projx(x) - x).abs().max()) <= 1e-12 * float(x.abs().max())
    assert manifold.check_point_on_manifold(manifold.projx(x + 1e-3 * randn_like(x, 3)))


def test_check_point_rejects_unbalanced_and_rank_deficient():
    manifold = BalancedManifold((3, 4, 3))
    x = manifold.random(generator=gen(0))
    ok, why = manifold.check_point_on_manifold(x + 1e-2 * randn_like(x, 1), explain=True)
    assert not ok and "not balanced" in why
    zero_rank = manifold.pack([torch.zeros(4, 3, dtype=F64), torch.zeros(3, 4, dtype=F64)])
    ok, why = manifold.check_point_on_manifold(zero_rank, explain=True)
    assert not ok and "full-rank" in why
    with pytest.raises(TypeError, match="x must be a torch tensor"):
        manifold.proju(x.numpy(), x)
    with pytest.raises(ValueError, match="packed network"):
        manifold.proju(x[:-1], x[:-1])
    with pytest.raises(ValueError, match="must have the shape of x"):
        manifold.proju(torch.stack([x, x]), torch.stack([x, x, x]))
    with pytest.raises(ValueError, match="inner width"):
        BalancedManifold((3, 2, 3))
    with pytest.raises(ValueError, match="u must contain only finite"):
        manifold.retr(x, x * float("inf"))
    with pytest.raises(ValueError, match="x must contain only finite"):
        manifold.proju(x * float("nan"), x)


def _regression(seed=0, n=4, m=3, samples=30):
    g = gen(seed)
    truth = torch.randn(m, n, generator=g, dtype=F64)
    inputs = torch.randn(n, samples, generator=g, dtype=F64)
    return truth, inputs, truth @ inputs


@pytest.mark.parametrize("optimizer_name", ["sgd", "adam"])
def test_balanced_dln_trains_with_geoopt(optimizer_name):
    """A balanced depth-3 network on a realizable regression: relative error of the
    end-to-end matrix <= 1e-6 (SGD, 300 steps) / 1e-4 (Adam, 400 steps), and the
    parameter stays balanced to 1e-10 throughout."""
    truth, inputs, targets = _regression()
    manifold = BalancedManifold((4, 5, 5, 3))
    point = geoopt.ManifoldParameter(manifold.random(generator=gen(1)), manifold=manifold)
    if optimizer_name == "sgd":
        optimizer = geoopt.optim.RiemannianSGD([point], lr=0.1, momentum=0.9)
        steps, target = 300, 1e-6
    else:
        optimizer = geoopt.optim.RiemannianAdam([point], lr=0.1)
        steps, target = 400, 1e-4
    for _ in range(steps):
        optimizer.zero_grad()
        loss = 0.5 * ((manifold.end_to_end(point) @ inputs - targets) ** 2).mean()
        loss.backward()
        optimizer.step()
    error = float((manifold.end_to_end(point.detach()) - truth).norm() / truth.norm())
    assert error <= target, error
    assert manifold.check_point_on_manifold(point.detach(), atol=1e-10)


def test_no_numpy_conversion_inside_an_optimizer_step():
    truth, inputs, targets = _regression()
    manifold = BalancedManifold((4, 5, 6, 3))
    point = geoopt.ManifoldParameter(manifold.random(generator=gen(2)), manifold=manifold)
    polar = BalancedManifold((4, 4, 3), retraction="polar")
    batch = polar.random(2, polar.packing.size, generator=gen(3))  # two networks
    other = geoopt.ManifoldParameter(batch, manifold=polar)
    optimizers = [
        geoopt.optim.RiemannianAdam([point, other], lr=1e-2),
        geoopt.optim.RiemannianSGD([point, other], lr=1e-2, momentum=0.5),
    ]

    for optimizer in optimizers:
        for _ in range(2):
            optimizer.zero_grad()
            prediction = (manifold.end_to_end(point) + polar.end_to_end(other).sum(0)) @ inputs
            (0.5 * ((prediction - targets) ** 2).mean()).backward()
            with forbid_array_conversions():
                optimizer.step()


def test_frames_reused_within_a_step(monkeypatch):
    """Frames are computed by SVD once, for the first point: ``retr`` hands over the
    frames of the point it returns (read off the re-balancing), which transp and the
    next step use; they give the same projection as frames computed afresh."""
    import dlnmanifolds.geoopt.balanced as module

    calls = []
    real = module._balanced_frames
    monkeypatch.setattr(module, "_balanced_frames", lambda *a: calls.append(1) or real(*a))
    truth, inputs, targets = _regression()
    manifold = BalancedManifold((4, 5, 3))
    point = geoopt.ManifoldParameter(manifold.random(generator=gen(4)), manifold=manifold)
    optimizer = geoopt.optim.RiemannianSGD([point], lr=1e-2, momentum=0.5)
    for _ in range(3):
        optimizer.zero_grad()
        (0.5 * ((manifold.end_to_end(point) @ inputs - targets) ** 2).mean()).backward()
        optimizer.step()
    assert len(calls) == 1  # x_0 only
    x, u = point.detach(), randn_like(point.detach(), 9)
    fresh = tangent_projection(
        _balanced_frames(manifold.layers(x), manifold.rank), manifold.layers(u)
    )
    assert rel(manifold.layers(manifold.proju(x, u)), fresh) <= 1e-12


def test_batched_points_are_the_points_one_by_one():
    manifold = BalancedManifold((3, 4, 2))
    x = manifold.random(2, 3, manifold.packing.size, generator=gen(7))
    assert x.shape == (2, 3, manifold.packing.size)
    assert manifold.check_point_on_manifold(x, atol=1e-12)
    u = randn_like(x, 8)
    pu = manifold.proju(x, u)
    y = manifold.retr(x, 0.1 * pu)
    moved = manifold.transp(x, y, pu)
    for i in range(2):
        for j in range(3):
            single = BalancedManifold((3, 4, 2))
            p1 = single.proju(x[i, j], u[i, j])
            assert float((pu[i, j] - p1).abs().max()) <= 1e-12
            y1 = single.retr(x[i, j], 0.1 * p1)
            assert float((y[i, j] - y1).abs().max()) <= 1e-12
            assert float((moved[i, j] - single.proju(y1, p1)).abs().max()) <= 1e-12
    assert manifold.inner(x, pu, keepdim=True).shape == (2, 3, 1)
    w = manifold.layers(x)
    assert tuple(w[0].shape) == (2, 3, 4, 3)
    assert manifold.end_to_end(x).shape == (2, 3, 2, 3)
    bad = x.clone()
    bad[1, 2] += 0.1
    assert not manifold.check_point_on_manifold(bad)
    # a batch of networks as one parameter, trained together
    point = geoopt.ManifoldParameter(x[0].clone(), manifold=manifold)
    optimizer = geoopt.optim.RiemannianSGD([point], lr=1e-2, momentum=0.5)
    for _ in range(3):
        optimizer.zero_grad()
        (manifold.end_to_end(point) ** 2).sum().backward()
        optimizer.step()
    assert manifold.check_point_on_manifold(point.detach(), atol=1e-10)


def test_float32_manifold():
    manifold = BalancedManifold((3, 4, 4, 2))
    x = manifold.random(generator=gen(5), dtype=torch.float32)
    u = manifold.proju(x, randn_like(x, 6))
    assert x.dtype == u.dtype == torch.float32
    y = manifold.retr(x, 0.1 * u)
    assert y.dtype == torch.float32 and manifold.check_point_on_manifold(y, atol=1e-5)
    ref = manifold.proju(x.double(), randn_like(x, 6).double())
    assert float((u.double() - ref).norm() / ref.norm()) <= 1e-5


# -- CUDA (skipped without a GPU) --------------------------------------------------------


@pytest.mark.cuda
def test_cuda_core_agrees_with_cpu():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    rng = np.random.default_rng(0)
    layers = list(balanced_factors(rng.standard_normal((5, 4)), 3, (4, 6, 6, 5), rng=0))
    xi = ambient(rng, layers)
    cpu = tangent_projection(balanced_frames(tt(layers)), tt(xi))
    frames = balanced_frames([w.cuda() for w in tt(layers)])
    gpu = tangent_projection(frames, [v.cuda() for v in tt(xi)])
    assert all(g.is_cuda for g in gpu) and frames.q[0].is_cuda
    assert rel([g.cpu() for g in gpu], cpu) <= 1e-12
    reb = _rebalance([(w + 0.1 * v).cuda() for w, v in zip(tt(layers), tt(xi))])
    want = _rebalance([w + 0.1 * v for w, v in zip(tt(layers), tt(xi))])
    assert rel([r.cpu() for r in reb], want) <= 1e-12


@pytest.mark.cuda
def test_cuda_training_step():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    truth, inputs, targets = _regression()
    manifold = BalancedManifold((4, 5, 5, 3))
    x = manifold.random(generator=gen(1)).cuda()
    point = geoopt.ManifoldParameter(x, manifold=manifold)
    optimizer = geoopt.optim.RiemannianAdam([point], lr=2e-2)
    for _ in range(5):
        optimizer.zero_grad()
        loss = 0.5 * ((manifold.end_to_end(point) @ inputs.cuda() - targets.cuda()) ** 2).mean()
        loss.backward()
        optimizer.step()
    assert point.is_cuda and manifold.check_point_on_manifold(point.detach(), atol=1e-10)
