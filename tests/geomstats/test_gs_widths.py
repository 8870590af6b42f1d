"""General widths: BalancedSpace(widths=...), DLNBundle over the full-rank m x n matrices and
DLNMetric on m x n (math.md §2.2-2.4, §3.2, §4.2); numpy backend.

Points of non-square widths are packed flat vectors (the layout of geoopt's LayerPacking).
Adversarial spectra: repeated singular values and sigma_min down to 1e-12 sigma_max.
"""

import numpy as np
import pytest
from geomstats.geometry.full_rank_matrices import FullRankMatrices
from geomstats.geometry.general_linear import GeneralLinear
from hypothesis import given
from hypothesis import strategies as st
from scipy.linalg import expm
from scipy.stats import ortho_group

from dlnmanifolds import dln_inner
from dlnmanifolds.core.balanced import haar_stiefel
from dlnmanifolds.geomstats import BalancedSpace, DLNMetric, LayerRotationAction
from dlnmanifolds.pymanopt.balanced import balanced_dimension

SPECTRA = ("random", "repeated", "graded")


@st.composite
def widths_cases(draw):
    """(widths, seed, spectrum): d_0, d_N in 1..3, inner widths in r..r+2, N in 1..3."""
    depth = draw(st.integers(1, 3))
    d0, dn = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    r = min(d0, dn)
    inner = [draw(st.integers(r, r + 2)) for _ in range(depth - 1)]
    return (d0, *inner, dn), draw(st.integers(0, 2**16)), draw(st.sampled_from(SPECTRA))


def _spectrum(kind, r, rng):
    if kind == "repeated":
        return np.full(r, 1.5)
    if kind == "graded":  # sigma_min = 1e-12 sigma_max
        return np.logspace(0, -12, r) if r > 1 else np.ones(1)
    return np.exp(0.3 * rng.standard_normal(r))


def _point(space, kind, seed):
    """A point of M over X = U diag(s) V^T with the chosen spectrum, in a Haar gauge."""
    rng = np.random.default_rng(seed)
    m, n, r = space.m, space.n, space.rank
    x = (haar_stiefel(m, r, rng) * _spectrum(kind, r, rng)) @ haar_stiefel(n, r, rng).T
    w = space.fiber_bundle.lift(x)
    q = [ortho_group.rvs(d, random_state=rng) if d > 1 else np.eye(1) for d in space.widths[1:-1]]
    return space.group_action(space.blocks.pack(q, like=w), w), x, rng


def _slack(x, depth):
    """1 + 1e-4 cond(K): the bundle maps solve with A_{N,X}, cond(K) = (sigma_max/sigma_min)^
    {2(N-1)/N}, so 1e-11 * slack = 1e-11 + 1e-15 cond(K) (numpy itself is no more accurate:
    s16, the adversarial-spectrum tolerance)."""
    s = np.linalg.svd(x, compute_uv=False)
    return 1.0 + 1e-4 * (s[0] / s[-1]) ** (2 * (depth - 1) / depth)


def _space(widths, seed):
    space = BalancedSpace(widths=widths, rng=seed)
    space.equip_with_quotient()
    return space


def _dln(m, n, depth):
    base = GeneralLinear(n, equip=False) if m == n else FullRankMatrices(m, n, equip=False)
    return base.equip_with_metric(DLNMetric, depth=depth).metric


@given(widths_cases())
def test_level_set_and_projection(case):
    """dim M_r = rank P_T = r + sum_p (d_p r - r(r+1)/2) (C3); P_T idempotent, self-adjoint;
    random points belong, G = 0; projection fixes M and keeps phi."""
    widths, seed, kind = case
    space = _space(widths, seed)
    w, x, rng = _point(space, kind, seed)
    assert space.dim == balanced_dimension(widths, min(widths[0], widths[-1]))
    # belongs() also reads atol as the rank threshold sigma_min/sigma_max: not for "graded"
    assert space.belongs(w, atol=1e-10) or kind == "graded"
    assert np.max(np.abs(space.submersion(w)), initial=0.0) <= 1e-12 * max(1.0, np.max(w**2))
    size = int(np.prod(space.shape))
    basis = np.eye(size).reshape((size,) + space.shape)
    proj = space.to_tangent(basis, np.broadcast_to(w, basis.shape)).reshape(size, size)
    assert np.linalg.matrix_rank(proj, tol=1e-8) == space.dim
    assert np.max(np.abs(proj @ proj - proj)) <= 1e-11
    assert np.max(np.abs(proj - proj.T)) <= 1e-11
    # projection = polar re-balancing: R_p = polar(W_p ... W_1), whose condition number is up
    # to cond(X)^{(N-1)/N}, so its round-off on M is eps-amplified by that much.
    cond = np.linalg.cond(x)
    tol = 1e-10 + 1e-15 * cond ** ((space.depth - 1) / space.depth)
    assert np.max(np.abs(space.projection(w) - w)) <= tol * max(1.0, np.max(np.abs(w)))
    xi = rng.standard_normal(space.shape)
    t = space.to_tangent(xi, w)
    assert space.is_tangent(t, w, atol=1e-10)
    # the random points of the space itself
    v = space.random_point(2)
    assert np.all(space.belongs(v, atol=1e-10))
    assert np.all(space.is_tangent(space.random_tangent_vec(v), v, atol=1e-10))


@given(widths_cases())
def test_bundle_splits_and_lifts_isometrically(case):
    """T = H ⊕ V orthogonally, Dphi V = 0, ||zeta^h||^2 = g^N(zeta, zeta) on m x n (C3),
    Dphi zeta^h = zeta, phi(lift(X)) = X; the quotient metric equals DLNMetric."""
    widths, seed, kind = case
    space = _space(widths, seed)
    bundle = space.fiber_bundle
    w, x, rng = _point(space, kind, seed)
    xi = space.to_tangent(rng.standard_normal(space.shape), w)
    h = bundle.horizontal_projection(xi, w)
    v = bundle.vertical_projection(xi, w)
    scale = max(1.0, np.linalg.norm(xi)) * _slack(x, space.depth)
    assert np.max(np.abs(h + v - xi)) <= 1e-11 * scale
    assert abs(np.sum(h * v)) <= 1e-11 * scale**2
    assert np.max(np.abs(bundle.tangent_riemannian_submersion(v, w))) <= 1e-10 * scale
    zeta = rng.standard_normal(x.shape)
    lift = bundle.horizontal_lift(zeta, fiber_point=w)
    metric = _dln(space.m, space.n, space.depth)
    g = metric.squared_norm(zeta, x)
    slack = _slack(x, space.depth)
    assert np.isclose(np.sum(lift * lift), g, rtol=1e-9 * slack, atol=0)
    assert np.isclose(space.quotient.metric.squared_norm(zeta, x), g, rtol=1e-9 * slack, atol=0)
    assert np.isclose(g, dln_inner(x, zeta, zeta, space.depth), rtol=1e-12, atol=0)
    err = np.max(np.abs(bundle.tangent_riemannian_submersion(lift, w) - zeta))
    assert err <= 1e-9 * slack * np.max(np.abs(zeta))
    canonical = bundle.lift(x)
    assert space.belongs(canonical, atol=1e-10) or kind == "graded"
    assert np.max(np.abs(bundle.riemannian_submersion(canonical) - x)) <= 1e-12 * np.max(np.abs(x))


@pytest.mark.parametrize("widths", [(3, 5, 4, 2), (2, 3, 3), (4, 4, 5, 4)])
def test_group_action_generates_the_vertical_space(widths):
    """Q . W stays on M over the same X; d/dt (e^{t Omega} . W) at 0 is vertical (math.md §6)."""
    space = _space(widths, 3)
    w, x, rng = _point(space, "random", 3)
    action = LayerRotationAction(widths=widths)
    omegas = []
    for d in widths[1:-1]:
        a = rng.standard_normal((d, d))
        omegas.append(a - a.T)
    moved = action(space.blocks.pack([expm(o) for o in omegas], like=w), w)
    assert space.belongs(moved, atol=1e-10)
    assert np.max(np.abs(space.fiber_bundle.riemannian_submersion(moved) - x)) <= 1e-12
    t = 1e-6
    plus = action(space.blocks.pack([expm(t * o) for o in omegas], like=w), w)
    minus = action(space.blocks.pack([expm(-t * o) for o in omegas], like=w), w)
    velocity = (plus - minus) / (2 * t)
    assert space.fiber_bundle.is_vertical(velocity, w, atol=1e-7)
    assert np.linalg.norm(space.fiber_bundle.horizontal_projection(velocity, w)) <= 1e-7


def test_packed_layout_is_the_row_major_layers_w1_first():
    """The geoopt LayerPacking layout: concatenated row-major layers, W_1 first."""
    space = BalancedSpace(widths=(3, 5, 2), rng=0)
    w = space.random_point(2)
    layers = space.unpack(w)
    assert [tuple(a.shape) for a in layers] == [(2, 5, 3), (2, 2, 5)]
    flat = np.concatenate([a.reshape(2, -1) for a in layers], axis=-1)
    assert np.array_equal(flat, w)
    assert np.array_equal(space.pack(layers), w)
    assert BalancedSpace(widths=(3, 3, 3), rng=0).shape == (2, 3, 3)  # equal widths: a stack


@pytest.mark.parametrize("m, n", [(3, 2), (2, 4)])
def test_dln_metric_on_rectangular_matrices(m, n):
    """metric_matrix is the Gram matrix of g^N in the basis E_ij, SPD, inverse of the
    cometric matrix (the matrix of A_{N,X}); the off-square block has K = sigma^{2(N-1)/N}."""
    depth = 3
    metric = _dln(m, n, depth)
    rng = np.random.default_rng(m * 10 + n)
    r = min(m, n)
    x = (haar_stiefel(m, r, rng) * np.array([2.0, 0.5, 1.0][:r])) @ haar_stiefel(n, r, rng).T
    gram = metric.metric_matrix(x)
    basis = np.eye(m * n).reshape(m * n, m, n)
    direct = np.array([[metric.inner_product(a, b, x) for b in basis] for a in basis])
    assert np.allclose(gram, direct, rtol=1e-12, atol=1e-12)
    assert np.min(np.linalg.eigvalsh(gram)) > 0
    assert np.allclose(gram @ metric.cometric_matrix(x), np.eye(m * n), atol=1e-10)
    u, s, vt = np.linalg.svd(x)
    off = np.outer(u[:, -1], vt[0]) if m > n else np.outer(u[:, 0], vt[-1])
    assert np.isclose(metric.squared_norm(off, x), s[0] ** (-2 * (depth - 1) / depth), rtol=1e-12)


def test_what_is_not_supported_off_square_says_so():
    space = _space((3, 4, 2), 0)
    w = space.random_point()
    with pytest.raises(ValueError, match="equal widths"):
        space.metric.exp(space.random_tangent_vec(w), w)
    with pytest.raises(ValueError, match="equal widths"):
        space.metric.log(w, w)
    with pytest.raises(ValueError, match="equal widths"):
        space.fiber_bundle.align(w, w)
    metric = _dln(2, 3, 2)
    x = np.eye(2, 3)
    with pytest.raises(ValueError, match="base_point must be a square"):
        metric.exp(x, x)
    with pytest.raises(ValueError, match="base_point must be a square"):
        metric.log(x, x)
    with pytest.raises(ValueError, match="inner width must be >= min"):
        BalancedSpace(widths=(3, 2, 3))
    with pytest.raises(ValueError, match="either n and depth or widths"):
        BalancedSpace(2, 2, widths=(2, 2, 2))
    with pytest.raises(ValueError, match="full rank min"):
        metric.inner_product(x, x, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="trailing shape"):
        space.to_tangent(np.ones((3, 4, 2)), w)
