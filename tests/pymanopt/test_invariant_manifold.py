"""InvariantManifold: the balanced varieties M_G = {G(W) = G} (math.md §2.1, §2.4-2.6)."""

import numpy as np
import pymanopt
import pytest
from hypothesis import given
from hypothesis import strategies as st

import dlnmanifolds.core.invariant as invariant_core
from dlnmanifolds import invariants
from dlnmanifolds.core.network import _dphi_adjoint, _end_to_end
from dlnmanifolds.flows import gradient_flow
from dlnmanifolds.pymanopt import BalancedManifold, InvariantManifold
from tests.helpers import balanced_point, flatten, random_layers
from tests.pymanopt.checks import assert_taylor_slopes

WIDTHS = [(3, 3, 3, 3), (2, 3, 4), (4, 3, 2), (3, 5, 4, 2), (2, 2, 2, 2, 2, 2), (1, 2, 3)]


def dense_kernel_projector(weights):
    """Orthogonal projector onto ker DG(W), from the dense Jacobian (independent oracle).

    DG(W)[xi]_p = xi_{p+1}^T W_{p+1} + W_{p+1}^T xi_{p+1} - xi_p W_p^T - W_p xi_p^T.
    """
    sizes = [w.size for w in weights]
    total = sum(sizes)
    columns = []
    for k in range(total):
        e = np.zeros(total)
        e[k] = 1.0
        xi, start = [], 0
        for w, size in zip(weights, sizes):
            xi.append(e[start : start + size].reshape(w.shape))
            start += size
        dg = [
            xi[p + 1].T @ weights[p + 1] + weights[p + 1].T @ xi[p + 1]
            - xi[p] @ weights[p].T - weights[p] @ xi[p].T
            for p in range(len(weights) - 1)
        ]
        columns.append(np.concatenate([g[np.triu_indices(g.shape[0])] for g in dg]))
    jac = np.array(columns).T
    _, s, vt = np.linalg.svd(jac)
    rank = int(np.sum(s > 1e-10 * s[0]))
    null = vt[rank:].T
    return null @ null.T, rank, jac.shape[0]


@given(seed=st.integers(0, 2**31 - 1), widths=st.sampled_from(WIDTHS),
       scale=st.sampled_from([1.0, 1e-2, 30.0]))
def test_projection_is_the_orthogonal_projector_onto_ker_dg(seed, widths, scale):
    rng = np.random.default_rng(seed)
    w = [scale * a for a in random_layers(widths, rng)]
    manifold = InvariantManifold.through(w, rng=seed)
    oracle, rank, rows = dense_kernel_projector(w)
    assert rank == rows  # a regular level set: DG onto Sym^(N-1)
    assert manifold.dim == flatten(w).size - rank
    xi = random_layers(widths, rng)
    got = flatten(manifold.projection(w, xi))
    expected = oracle @ flatten(xi)
    assert np.max(np.abs(got - expected)) <= 1e-11 * np.max(np.abs(flatten(xi)))
    again = flatten(manifold.projection(w, manifold.projection(w, xi)))
    assert np.max(np.abs(again - got)) <= 1e-12 * np.max(np.abs(got))


def test_gradient_flow_stays_on_its_level_set_and_moves_by_the_riemannian_gradient(rng):
    """C1 on M_G: an unbalanced start's Euclidean gradient flow keeps every G_p (1e-9,
    the RK error) and its velocity -grad L is tangent: P_T(grad L) = grad L (1e-12)."""
    widths = (3, 5, 4, 2)
    start = random_layers(widths, rng)
    target = rng.standard_normal((2, 3))
    energy = (lambda x: 0.5 * np.sum((x - target) ** 2), lambda x: x - target)
    manifold = InvariantManifold.through(start)
    assert np.max(np.abs(invariants(start)[0])) > 0.5  # far from balanced
    result = gradient_flow(energy, start, 1.0, t_eval=np.linspace(0, 1, 6), rtol=1e-11,
                           atol=1e-13)
    for state in result.states:
        manifold.check_point(state, atol=1e-9)
        egrad = _dphi_adjoint(list(state), _end_to_end(state) - target)
        rgrad = manifold.euclidean_to_riemannian_gradient(state, egrad)
        assert np.max(np.abs(flatten(rgrad) - flatten(egrad))) <= 1e-12 * np.max(
            np.abs(flatten(egrad)))


@pytest.mark.parametrize("widths", WIDTHS[:5])
def test_retraction_keeps_the_invariants(widths, rng):
    """Every G_p to 1e-12 (relative to max |W_p|^2) for steps up to half the point's size,
    second order: the tangential part of R(t xi) - W - t xi is O(t^3)."""
    manifold = InvariantManifold.through(random_layers(widths, rng), rng=rng)
    w = manifold.random_point()
    scale = 1.0 + max(np.max(np.abs(a)) for a in w) ** 2
    xi = manifold.random_tangent_vector(w)
    size = max(np.max(np.abs(a)) for a in w)
    for t in (1e-3, 1e-1, 0.5 * size):
        moved = manifold.retraction(w, t * xi)
        gaps = [np.max(np.abs(a - b)) for a, b in zip(invariants(moved), manifold.invariants)]
        assert max(gaps) <= 1e-12 * scale
    ts = np.array([1e-3, 3e-3, 1e-2, 3e-2])
    tangential = [
        np.linalg.norm(flatten(manifold.projection(w, manifold.retraction(w, t * xi) - w - t * xi)))
        for t in ts
    ]
    normal = [np.linalg.norm(flatten(manifold.retraction(w, t * xi) - w - t * xi)) for t in ts]
    assert np.polyfit(np.log(ts), np.log(normal), 1)[0] == pytest.approx(2.0, abs=0.1)
    assert max(tangential) <= 1e-12 or np.polyfit(np.log(ts), np.log(tangential), 1)[0] > 2.7


@pytest.mark.parametrize("widths", [(3, 3, 3, 3), (3, 5, 4, 2), (2, 2, 2, 2, 2)])
def test_pymanopt_gradient_and_hessian_slopes(widths, rng):
    """Taylor slopes 2 (gradient) and 3 (Weingarten Hessian) for a non-normal cost."""
    manifold = InvariantManifold.through(random_layers(widths, rng), rng=rng)
    target = rng.standard_normal((widths[-1], widths[0]))
    coupling = [rng.standard_normal(a.shape) for a in manifold.random_point()]

    @pymanopt.function.autograd(manifold)
    def cost(*layers):
        x = layers[-1]
        for a in layers[-2::-1]:
            x = x @ a
        quartic = sum(((a * c) ** 2).sum() for a, c in zip(layers, coupling))
        return 0.5 * ((x - target) ** 2).sum() + 0.05 * quartic

    assert_taylor_slopes(pymanopt.Problem(manifold, cost), repeats=2, hessian=True)


def test_balanced_manifold_is_the_zero_level_set(rng):
    """BalancedManifold is InvariantManifold's G = 0 case; in the main case (square
    widths, G = 0 regular) its frame projection equals the normal-equation one."""
    balanced = BalancedManifold((3, 3, 3, 3), rng=rng)
    assert isinstance(balanced, InvariantManifold)
    assert all(np.all(g == 0) for g in balanced.invariants)
    generic = InvariantManifold((3, 3, 3, 3), [np.zeros((3, 3))] * 2)
    w = balanced_point((3, 3, 3, 3), rng, sigma=np.array([2.0, 1.0, 0.4]))
    xi = random_layers((3, 3, 3, 3), rng)
    np.testing.assert_allclose(flatten(balanced.projection(w, xi)),
                               flatten(generic.projection(w, xi)), atol=1e-12)
    assert generic.dim == balanced.dim
    generic.check_point(balanced.retraction(w, 0.1 * balanced.projection(w, xi)))


def test_random_points_without_a_given_point():
    """Monotone widths: a point is built layer by layer; otherwise point= is needed."""
    rng = np.random.default_rng(4)
    g = [rng.standard_normal((3, 3)) for _ in range(2)]
    psd = [a @ a.T for a in g]  # widening layers need G_p + W_p W_p^T >= 0 on all of R^3
    g = [a + a.T for a in g]
    cases = (((2, 3, 3, 3), psd), ((3, 3, 3, 2), [-a for a in psd]), ((3, 3, 3, 3), g))
    for widths, gs in cases:
        manifold = InvariantManifold(widths, gs, rng=1)
        a, b = manifold.random_point(), manifold.random_point()
        assert manifold.belongs(a) and manifold.belongs(b)
        assert np.max(np.abs(flatten(a) - flatten(b))) > 1e-3
    odd = InvariantManifold((3, 5, 4, 2), [np.eye(5), np.eye(4)])
    with pytest.raises(ValueError, match="point="):
        odd.random_point()


def test_conjugate_gradient_normal_equations_agree_with_block_solves(rng, monkeypatch):
    """The matrix-free CG path (large blocks) gives the block-Thomas projection and keeps
    the invariants in the retraction (fixed-Jacobian Newton)."""
    w = random_layers((3, 4, 4, 3), rng)
    manifold = InvariantManifold.through(w)
    xi = random_layers((3, 4, 4, 3), rng)
    dense = flatten(manifold.projection(w, xi))
    tangent = manifold.projection(w, xi)
    monkeypatch.setattr(invariant_core, "DENSE_BLOCK_LIMIT", 0)
    assert np.max(np.abs(flatten(manifold.projection(w, xi)) - dense)) <= 1e-10
    moved = manifold.retraction(w, 0.1 * tangent)
    manifold.check_point(moved, atol=1e-12)


def test_bad_input(rng):
    w = random_layers((3, 3, 3), rng)
    g = invariants(w)
    with pytest.raises(ValueError, match="invariants must hold N - 1 = 1"):
        InvariantManifold((3, 3, 3), [g[0], g[0]])
    with pytest.raises(ValueError, match=r"invariants\[0\].*shape"):
        InvariantManifold((3, 3, 3), [np.zeros((2, 2))])
    with pytest.raises(ValueError, match=r"invariants\[0\].*symmetric"):
        InvariantManifold((3, 3, 3), [np.triu(np.ones((3, 3)))])
    with pytest.raises(ValueError, match="finite"):
        InvariantManifold((3, 3, 3), [np.full((3, 3), np.nan)])
    with pytest.raises(TypeError, match="invariants"):
        InvariantManifold((3, 3, 3), np.zeros((1, 3, 3)))
    with pytest.raises(ValueError, match="point is not on M_G"):
        InvariantManifold((3, 3, 3), [g[0] + np.eye(3)], point=w)
    with pytest.raises(ValueError, match="widths"):
        InvariantManifold((3, 0, 3), [np.zeros((0, 0))])
    manifold = InvariantManifold.through(w)
    assert not manifold.belongs([a + 0.1 for a in w])


def test_singular_points_and_empty_level_sets_are_reported():
    """W = 0 lies on M_0 but DG(0) = 0 is not onto; widths (1, 5, 1) leave no dimension."""
    manifold = InvariantManifold((2, 2, 2), [np.zeros((2, 2))])
    zero = [np.zeros((2, 2)), np.zeros((2, 2))]
    assert manifold.belongs(zero)
    with pytest.raises(invariant_core.NotRegularError, match="not onto"):
        manifold.projection(zero, [np.ones((2, 2)), np.ones((2, 2))])
    with pytest.raises(ValueError, match="not a manifold"):
        InvariantManifold((1, 5, 1), [np.eye(5)])
