"""Fibers of phi and the GL action (math.md §5, §7.1; rows C7, C10, C13, C14)."""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds.core.balanced_tangent import normal_generator
from dlnmanifolds.core.fiber import (
    fiber_dimension,
    fiber_hessian,
    fiber_projection,
    fiber_retraction,
    fiber_solver,
    gl_action,
    gl_generator,
    gl_generator_adjoint,
    gl_generator_solve,
)
from dlnmanifolds.core.network import (
    _dphi,
    _dphi_adjoint,
    _end_to_end,
    _generic_operator,
    _invariants,
)
from dlnmanifolds.core.orbit import orbit_projection
from tests.helpers import (
    assert_hessian_is_projected_derivative,
    balanced_point,
    dense_matrix,
    flatten,
    random_layers,
    unflatten,
)

WIDTHS = [(3, 3, 3, 3), (3, 5, 4, 2), (2, 4, 3), (2, 3, 5, 4, 3), (4, 4)]


def inner(a, b):
    return float(sum(np.sum(x * y) for x, y in zip(a, b)))


def random_group(widths, rng, scale=0.5):
    return [np.eye(d) + scale * rng.standard_normal((d, d)) / np.sqrt(d) for d in widths[1:-1]]


def random_skew_or_gl(widths, rng):
    return [rng.standard_normal((d, d)) for d in widths[1:-1]]


@pytest.mark.parametrize("widths", WIDTHS)
def test_gl_action_preserves_phi_and_generator_is_its_derivative(widths, rng):
    """(g.W)_p = g_p W_p g_{p-1}^{-1} keeps phi; C_W(A) = d/dt e^{tA}.W (central FD)."""
    w = random_layers(widths, rng)
    x = _end_to_end(w)
    moved = gl_action(w, random_group(widths, rng))
    assert np.linalg.norm(_end_to_end(moved) - x) <= 1e-12 * np.linalg.norm(x)
    a = random_skew_or_gl(widths, rng)
    h = 1e-5
    plus = gl_action(w, [scipy.linalg.expm(h * g) for g in a])
    minus = gl_action(w, [scipy.linalg.expm(-h * g) for g in a])
    fd = [(p - m) / (2 * h) for p, m in zip(plus, minus)]
    exact = gl_generator(w, a)
    assert np.linalg.norm(flatten(fd) - flatten(exact)) <= 1e-8 * np.linalg.norm(flatten(exact))
    # Adjoint: <C_W(A), eta> = <A, C_W^*(eta)>.
    eta = random_layers(widths, rng)
    assert inner(exact, eta) == pytest.approx(inner(a, gl_generator_adjoint(w, eta)), rel=1e-12)


@pytest.mark.parametrize(
    "widths,expected_dim", [((3, 3, 3, 3), 18), ((3, 5, 4, 2), 37), ((2, 4, 3), 14)]
)
def test_projection_is_projector_onto_kernel_of_dphi(widths, expected_dim, rng):
    """C7: P_F = I - Dphi^* A_W^{-1} Dphi projects onto ker Dphi; dims 18, 37, 14."""
    w = random_layers(widths, rng)
    assert fiber_dimension(widths) == expected_dim
    proj = dense_matrix(lambda v: fiber_projection(w, v), w)
    dphi_matrix = np.array(
        [_dphi(w, unflatten(e, w)).ravel() for e in np.eye(sum(a.size for a in w))]
    ).T
    null = scipy.linalg.null_space(dphi_matrix)
    assert null.shape[1] == expected_dim
    assert np.abs(proj - null @ null.T).max() <= 1e-10
    assert np.linalg.matrix_rank(proj, tol=1e-8) == expected_dim
    # The tangent space is the range of the GL generators (math.md §5).
    gens = dense_matrix(
        lambda a: gl_generator(w, a),
        [np.zeros((d, d)) for d in widths[1:-1]],
    )
    assert np.abs(proj @ gens - gens).max() <= 1e-10 * np.abs(gens).max()
    assert np.linalg.matrix_rank(gens, tol=1e-8) == expected_dim


def test_generic_operator_solver_matches_operator(rng):
    """The Kronecker/Cholesky solve inverts the generic A_W (any W, several widths)."""
    for widths in WIDTHS:
        w = random_layers(widths, rng)
        z = rng.standard_normal((widths[-1], widths[0]))
        solved = fiber_solver(w).solve(_generic_operator(w, z))
        assert np.linalg.norm(solved - z) <= 1e-10 * np.linalg.norm(z)


@pytest.mark.parametrize("widths", WIDTHS)
def test_generator_solve_and_exact_retraction(widths, rng):
    """C10: R_W(xi)_p = e^{A_p} W_p e^{-A_{p-1}} keeps phi (rel 1e-14) even for unit
    steps and is first order (slope 2); C_W(A) = xi for the min-norm solution."""
    w = random_layers(widths, rng)
    x = _end_to_end(w)
    xi = fiber_projection(w, random_layers(widths, rng))
    xi = [v / max(np.linalg.norm(flatten(xi)), 1e-300) for v in xi]
    a = gl_generator_solve(w, xi)
    if a:
        assert np.linalg.norm(flatten(gl_generator(w, a)) - flatten(xi)) <= 1e-12
    for t in (1.0, 0.3):
        y = fiber_retraction(w, [t * v for v in xi])
        assert np.linalg.norm(_end_to_end(y) - x) <= 2e-14 * np.linalg.norm(x) * len(w)
    ts = np.logspace(-4, -2, 5)
    errs = [
        np.linalg.norm(
            flatten(fiber_retraction(w, [t * v for v in xi])) - flatten(w) - t * flatten(xi)
        )
        for t in ts
    ]
    if len(widths) > 2:
        assert np.polyfit(np.log(ts), np.log(errs), 1)[0] == pytest.approx(2.0, abs=0.05)
    else:  # depth 1: the fiber is a point, the retraction is the identity
        assert max(errs) == 0.0


def test_generator_solve_square_is_unique_and_matches_recursion(rng):
    """Square invertible: A is unique, so solve(C_W(A)) = A (math.md §5 recursion)."""
    widths = (3, 3, 3, 3)
    w = random_layers(widths, rng)
    a = random_skew_or_gl(widths, rng)
    back = gl_generator_solve(w, gl_generator(w, a))
    assert np.abs(flatten(back) - flatten(a)).max() <= 1e-10 * np.abs(flatten(a)).max()


def test_fiber_is_one_gl_orbit_square(rng):
    """C13: g_p = (W'_p...W'_1)(W_p...W_1)^{-1} maps W to W' in the same fiber."""
    widths = (3, 3, 3, 3, 3)
    w = random_layers(widths, rng)
    other = gl_action(w, random_group(widths, rng, scale=1.0))
    group = []
    prefix_w, prefix_o = np.eye(3), np.eye(3)
    for p in range(len(w) - 1):
        prefix_w, prefix_o = w[p] @ prefix_w, other[p] @ prefix_o
        group.append(prefix_o @ np.linalg.inv(prefix_w))
    back = gl_action(w, group)
    assert np.abs(flatten(back) - flatten(other)).max() <= 1e-12 * np.abs(flatten(other)).max()


def _test_function(widths, rng):
    """f = R + <B, W> + 0.025 sum_p |W_p^T W_p|^2 (math.md C14) with egrad, ehess."""
    b = random_layers(widths, rng)

    def egrad(w):
        return [v + bb + 0.1 * v @ v.T @ v for v, bb in zip(w, b)]

    def ehess(w, xi):
        return [
            x + 0.1 * (x @ v.T @ v + v @ x.T @ v + v @ v.T @ x) for v, x in zip(w, xi)
        ]

    return egrad, ehess


@pytest.mark.parametrize("widths", [(3, 3, 3, 3), (3, 5, 4, 2)])
def test_hessian_matches_fd_along_retraction_and_is_self_adjoint(widths, rng):
    """C14: Hess_F f[xi] = P_F(d/dt P_F grad f(R_W(t xi))) (central FD t = 1e-5), 1e-6 rel;
    self-adjoint."""
    w = random_layers(widths, rng)
    egrad, ehess = _test_function(widths, rng)
    xi = fiber_projection(w, random_layers(widths, rng))
    eta = fiber_projection(w, random_layers(widths, rng))
    assert_hessian_is_projected_derivative(
        w, xi, eta, fiber_projection, fiber_retraction, fiber_hessian, egrad, ehess
    )


@pytest.mark.parametrize("d,depth", [(3, 3), (2, 4)])
def test_hessian_of_regularizer_at_balanced_point(d, depth, rng):
    """C10/§7.1: at balanced W, Hess_F R = 2|xi|^2 on symmetric-generator (normal)
    directions and 0 on orbit directions; P_F(W) = 0 (W is critical)."""
    w = balanced_point((d,) * (depth + 1), rng)
    zero = fiber_projection(w, w)
    assert np.abs(flatten(zero)).max() <= 1e-12
    sym = [(lambda s: s + s.T)(rng.standard_normal((d, d))) for _ in range(depth - 1)]
    normal = normal_generator(w, sym)
    vertical = orbit_projection(w, random_layers((d,) * (depth + 1), rng))
    for xi, factor in ((normal, 2.0), (vertical, 0.0)):
        hess = fiber_hessian(w, w, xi, xi)
        assert inner(hess, xi) == pytest.approx(factor * inner(xi, xi), abs=1e-10)


@pytest.mark.parametrize("widths", [(3, 3, 3, 3), (3, 5, 4, 2), (4, 6, 3)])
def test_regularizer_minimum_and_weight_decay_split(widths, rng):
    """C7: R(W) >= (N/2) sum sigma^{2/N} on the fiber (200 points, d = 3, N = 3 style);
    W = P_F W + Dphi^* A_W^{-1}(N X)."""
    depth = len(widths) - 1
    w = random_layers(widths, rng)
    x = _end_to_end(w)
    sigma = np.linalg.svd(x, compute_uv=False)
    r_min = 0.5 * depth * np.sum(sigma ** (2 / depth))
    for _ in range(50):
        y = gl_action(w, random_group(widths, rng, scale=1.0))
        assert 0.5 * sum(np.sum(v**2) for v in y) >= r_min - 1e-12
    solver = fiber_solver(w)
    horizontal_part = [v - p for v, p in zip(w, solver.project(w))]
    expected = _dphi_adjoint(w, solver.solve(depth * x))
    assert np.abs(flatten(horizontal_part) - flatten(expected)).max() <= 1e-12 * np.abs(x).max()


def test_balanced_point_invariants_and_projection_are_consistent(rng):
    """DG(W)[P_F-tangent] keeps phi: Dphi(P_F xi) = 0 at balanced points too."""
    w = balanced_point((3, 3, 3, 3), rng, sigma=[2.0, 1.0, 1.0])
    xi = fiber_projection(w, random_layers((3, 3, 3, 3), rng))
    assert np.abs(_dphi(w, xi)).max() <= 1e-13
    assert max(np.abs(g).max() for g in _invariants(w)) <= 1e-12


spectra = st.lists(
    st.one_of(st.floats(0.3, 3.0), st.sampled_from([1.0, 1.0 + 1e-12, 1e-5, 1e-7])),
    min_size=2,
    max_size=3,
)


@given(sigma=spectra, depth=st.integers(2, 4), seed=st.integers(0, 2**31))
def test_repeated_and_tiny_singular_values_no_nan(sigma, depth, seed):
    """Nearly repeated or tiny sigma: projection finite and idempotent, phi kept."""
    gen = np.random.default_rng(seed)
    sigma = np.sort(np.array(sigma))[::-1]
    d = sigma.size
    w = balanced_point((d,) * (depth + 1), gen, sigma)
    xi = fiber_projection(w, random_layers((d,) * (depth + 1), gen))
    assert np.all(np.isfinite(flatten(xi)))
    again = fiber_projection(w, xi)
    assert np.abs(flatten(again) - flatten(xi)).max() <= 1e-6 * max(1.0, np.abs(flatten(xi)).max())
    x = _end_to_end(w)
    # A step small against the local scale (generators of norm 0.1) keeps phi to 1e-12;
    # a step of 10% of |W| (generators ~ xi W^{-1}, huge here) stays finite (capped).
    xi = [v / np.linalg.norm(flatten(xi)) for v in xi]
    norm_a = np.linalg.norm(flatten(gl_generator_solve(w, xi)))
    for step, tol in ((0.1 / norm_a, 1e-12), (0.1 * np.linalg.norm(flatten(w)), None)):
        y = fiber_retraction(w, [step * v for v in xi])
        assert np.all(np.isfinite(flatten(y)))
        assert np.all(np.isfinite(_end_to_end(y)))
        if tol is not None:
            assert np.linalg.norm(_end_to_end(y) - x) <= tol * np.linalg.norm(x)


def test_bad_input(rng):
    w = random_layers((3, 3, 3), rng)
    with pytest.raises(ValueError, match="full-rank"):
        fiber_projection([np.diag([1.0, 1.0, 0.0]), w[1]], w)
    with pytest.raises(ValueError, match="widths"):
        fiber_projection(w, random_layers((3, 2, 3), rng))
    with pytest.raises(ValueError, match="do not chain"):
        fiber_retraction([np.ones((3, 3)), np.ones((2, 2))], w)
    with pytest.raises(ValueError, match="N-1 = 1"):
        gl_action(w, [np.eye(3), np.eye(3)])
    with pytest.raises(ValueError, match="shape \\(3, 3\\)"):
        gl_action(w, [np.eye(2)])
    with pytest.raises(ValueError, match="invertible"):
        gl_action(w, [np.diag([1.0, 1.0, 0.0])])
    with pytest.raises(ValueError, match="finite"):
        gl_generator(w, [np.full((3, 3), np.nan)])
    with pytest.raises(TypeError, match="sequence"):
        gl_generator(w, "A")
    with pytest.raises(ValueError, match="widths"):
        fiber_hessian(w, w, w, random_layers((3, 4, 3), rng))
    with pytest.raises(ValueError, match="full-rank"):
        fiber_solver([np.ones((3, 3)), w[1]])
