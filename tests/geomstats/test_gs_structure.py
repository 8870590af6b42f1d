"""BalancedSpace and DLNBundle: level-set, projection and submersion properties; bad input."""

import numpy as np
import pytest
from geomstats.geometry.general_linear import GeneralLinear
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds.core.dln_geodesic import tangent_basis
from dlnmanifolds.core.network import _end_to_end
from dlnmanifolds.geomstats import BalancedSpace, DLNBundle, DLNMetric, LayerRotationAction


def _space(n, depth, seed):
    space = BalancedSpace(n, depth, rng=seed)
    space.equip_with_quotient()
    return space


def _frob(a, b):
    return np.sum(a * b, axis=(-3, -2, -1))


@given(n=st.integers(1, 3), depth=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_level_set_structure(n, depth, seed):
    """dim = rank of the projection = n^2 + (N-1)n(n-1)/2 (C3); P_T idempotent, kills DG."""
    space = BalancedSpace(n, depth, rng=seed)
    w = space.random_point(2)
    assert np.all(space.belongs(w, atol=1e-12))
    assert np.max(np.abs(space.submersion(w)), initial=0.0) <= 1e-12
    assert tangent_basis(w[0]).shape[1] == space.dim
    xi = space._rng.standard_normal(w.shape)
    t = space.to_tangent(xi, w)
    assert np.max(np.abs(space.to_tangent(t, w) - t)) <= 1e-12
    assert np.max(np.abs(space.tangent_submersion(t, w)), initial=0.0) <= 1e-11
    # the removed part is normal: orthogonal to every tangent vector
    assert np.max(np.abs(_frob(xi - t, space.random_tangent_vec(w)))) <= 1e-11


def test_projection_keeps_end_to_end_and_fixes_points_of_m():
    space = BalancedSpace(3, 3, rng=1)
    w = space.random_point(3)
    noisy = w + 0.05 * space._rng.standard_normal(w.shape)
    proj = space.projection(noisy)
    assert np.all(space.belongs(proj, atol=1e-12))
    assert np.allclose(_end_to_end(list(np.moveaxis(proj, 1, 0))),
                       _end_to_end(list(np.moveaxis(noisy, 1, 0))), atol=1e-12)
    assert np.max(np.abs(space.projection(w) - w)) <= 1e-12
    assert not np.any(space.belongs(noisy, atol=1e-6))


@pytest.mark.parametrize("n, depth", [(2, 2), (3, 3), (2, 4)])
def test_bundle_decomposition(n, depth):
    """T = H ⊕ V orthogonally; Dphi V = 0; ||zeta^h||^2 = g^N(zeta, zeta) (C3, C13)."""
    space = _space(n, depth, n + depth)
    bundle = space.fiber_bundle
    w = space.random_point(3)
    xi = space.random_tangent_vec(w)
    h = bundle.horizontal_projection(xi, w)
    v = bundle.vertical_projection(xi, w)
    assert np.max(np.abs(h + v - xi)) <= 1e-12
    assert np.max(np.abs(_frob(h, v))) <= 1e-12
    assert np.max(np.abs(bundle.tangent_riemannian_submersion(v, w))) <= 1e-12
    assert np.all(bundle.is_horizontal(h, w, atol=1e-10))
    assert np.all(bundle.is_vertical(v, w, atol=1e-10))
    assert not np.any(bundle.is_vertical(h, w, atol=1e-10))
    x = bundle.riemannian_submersion(w)
    zeta = space._rng.standard_normal(x.shape)
    lift = bundle.horizontal_lift(zeta, fiber_point=w)
    metric = GeneralLinear(n, equip=False).equip_with_metric(DLNMetric, depth=depth).metric
    assert np.allclose(_frob(lift, lift), metric.squared_norm(zeta, x), rtol=1e-12, atol=0)
    assert np.max(np.abs(bundle.tangent_riemannian_submersion(lift, w) - zeta)) <= 1e-11


def test_group_action_generates_the_vertical_space():
    """Q . W stays on M over the same X; d/dt (e^{t Omega} . W) at 0 is vertical (math.md §6)."""
    from scipy.linalg import expm

    space = _space(3, 3, 4)
    action = space.group_action
    assert isinstance(action, LayerRotationAction)
    w = space.random_point()
    omega = space._rng.standard_normal((2, 3, 3))
    omega = omega - np.swapaxes(omega, -1, -2)
    q = np.stack([expm(o) for o in omega])
    moved = action(q, w)
    assert space.belongs(moved, atol=1e-12)
    assert np.allclose(_end_to_end(list(moved)), _end_to_end(list(w)), atol=1e-12)
    t = 1e-6
    velocity = (action(np.stack([expm(t * o) for o in omega]), w)
                - action(np.stack([expm(-t * o) for o in omega]), w)) / (2 * t)
    assert space.fiber_bundle.is_vertical(velocity, w, atol=1e-8)


def test_align_lands_on_the_fiber_with_horizontal_log():
    space = _space(2, 3, 8)
    bundle = space.fiber_bundle
    w0, w1 = space.random_point(2)
    aligned = bundle.align(w1, w0)
    assert space.belongs(aligned, atol=1e-10)
    assert np.max(np.abs(_end_to_end(list(aligned)) - _end_to_end(list(w1)))) <= 1e-10
    log = space.metric.log(aligned, w0)
    assert bundle.is_horizontal(log, w0, atol=1e-8)
    # the horizontal geodesic is as long as the g^N geodesic below it (isometry on H)
    metric = GeneralLinear(2, equip=False).equip_with_metric(DLNMetric, depth=3).metric
    x0, x1 = _end_to_end(list(w0)), _end_to_end(list(w1))
    assert np.isclose(space.metric.squared_norm(log, w0), metric.squared_dist(x1, x0),
                      rtol=1e-9, atol=0)
    lift = bundle.lift(_end_to_end(list(w1)))
    assert np.max(np.abs(bundle.align(lift, w0) - aligned)) <= 1e-8


# ---- bad input ------------------------------------------------------------------------------


def test_constructors_reject_bad_arguments():
    with pytest.raises(ValueError, match="n must be"):
        BalancedSpace(0, 2)
    with pytest.raises(ValueError, match="depth"):
        BalancedSpace(2, 0)
    with pytest.raises(TypeError, match="depth"):
        BalancedSpace(2, 2.5)
    with pytest.raises(ValueError, match="square"):
        BalancedSpace(2, 2).equip_with_metric(DLNMetric, depth=2)
    with pytest.raises(TypeError, match="BalancedSpace"):
        DLNBundle(GeneralLinear(2))


def test_wrong_shapes_depth_mismatch_and_batches():
    space = _space(2, 3, 0)
    w = space.random_point(3)
    with pytest.raises(ValueError, match="depth mismatch"):
        space.to_tangent(w[:, :2], w[:, :2])
    with pytest.raises(ValueError, match="trailing shape"):
        space.submersion(np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="batch shape"):
        space.to_tangent(w[:2], w)
    with pytest.raises(ValueError, match="batch shape"):
        space.fiber_bundle.horizontal_projection(w[:, None], w)
    with pytest.raises(ValueError, match="finite"):
        space.submersion(np.full((3, 2, 2), np.nan))
    assert not np.any(space.belongs(np.ones((4, 4, 3, 3))))
    metric = GeneralLinear(2, equip=False).equip_with_metric(DLNMetric, depth=3).metric
    x = np.stack([np.eye(2)] * 3)
    with pytest.raises(ValueError, match="batch shape"):
        metric.inner_product(x[:2], x[:2], x)
    with pytest.raises(ValueError, match="trailing shape"):
        metric.exp(np.ones((3, 3)), np.eye(2))
    with pytest.raises(ValueError, match="base_point is required"):
        metric.inner_product(x, x)


def test_singular_points_are_rejected():
    space = _space(2, 2, 0)
    singular = np.diag([1.0, 0.0])
    metric = GeneralLinear(2, equip=False).equip_with_metric(DLNMetric, depth=2).metric
    with pytest.raises(ValueError, match="invertible"):
        metric.inner_product(np.eye(2), np.eye(2), singular)
    with pytest.raises(ValueError, match="invertible"):
        metric.log(singular, np.eye(2))
    with pytest.raises(ValueError, match="invertible"):
        space.fiber_bundle.lift(singular)
    with pytest.raises(ValueError, match="invertible"):
        space.to_tangent(np.zeros((2, 2, 2)), np.zeros((2, 2, 2)))
    assert not space.belongs(np.zeros((2, 2, 2)))
