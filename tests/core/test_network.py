"""phi, its derivatives and invariants (math.md §1, §2.1; rows C1, C9, C13)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds import dphi, dphi_adjoint, end_to_end, imbalance, invariants, partial_products
from dlnmanifolds.core.balanced_tangent import normal_generator_adjoint
from dlnmanifolds.core.network import (
    _dphi_adjoint_derivative,
    _generic_operator,
    _second_derivative,
)
from tests.helpers import dg, random_layers

WIDTHS = [(3, 3, 3, 3), (3, 5, 4, 2), (2, 4, 3), (4, 4), (2, 3, 5, 4, 3)]


def inner(a, b):
    return sum(np.sum(x * y) for x, y in zip(a, b))


@pytest.mark.parametrize("widths", WIDTHS)
def test_end_to_end_and_partial_products(widths, rng):
    w = random_layers(widths, rng)
    x = w[0]
    for layer in w[1:]:
        x = layer @ x
    assert np.allclose(end_to_end(w), x)
    before, after = partial_products(w)
    for p in range(len(w)):
        assert np.allclose(after[p + 1] @ w[p] @ before[p], x)


@pytest.mark.parametrize("widths", WIDTHS)
def test_dphi_is_derivative_and_adjoint(widths, rng):
    """C9: Dphi = FD derivative (rel 1e-8) and <Dphi xi, Z> = <xi, Dphi^* Z>."""
    w = random_layers(widths, rng)
    xi = random_layers(widths, rng)
    z = rng.standard_normal((widths[-1], widths[0]))
    h = 1e-6
    fd = (
        end_to_end([a + h * b for a, b in zip(w, xi)])
        - end_to_end([a - h * b for a, b in zip(w, xi)])
    ) / (2 * h)
    d = dphi(w, xi)
    assert np.linalg.norm(fd - d) <= 1e-8 * np.linalg.norm(d)
    assert np.isclose(np.sum(d * z), inner(xi, dphi_adjoint(w, z)), rtol=1e-12)
    # homogeneity: Dphi(W)[W] = N X
    assert np.allclose(dphi(w, w), len(w) * end_to_end(w))


@pytest.mark.parametrize("widths", WIDTHS)
def test_second_derivative_and_adjoint_derivative(widths, rng):
    """D^2 phi[xi, eta] and D_eta(Dphi^*)(Y) against central differences."""
    w = random_layers(widths, rng)
    xi = random_layers(widths, rng)
    eta = random_layers(widths, rng)
    y = rng.standard_normal((widths[-1], widths[0]))
    h = 1e-5
    plus = [a + h * b for a, b in zip(w, eta)]
    minus = [a - h * b for a, b in zip(w, eta)]
    fd = (dphi(plus, xi) - dphi(minus, xi)) / (2 * h)
    exact = _second_derivative(w, xi, eta)
    assert np.linalg.norm(fd - exact) <= 1e-7 * max(1.0, np.linalg.norm(exact))
    fd_adj = [(a - b) / (2 * h) for a, b in zip(dphi_adjoint(plus, y), dphi_adjoint(minus, y))]
    exact_adj = _dphi_adjoint_derivative(w, eta, y)
    for a, b in zip(fd_adj, exact_adj):
        assert np.linalg.norm(a - b) <= 1e-7 * max(1.0, np.linalg.norm(b))


@pytest.mark.parametrize("widths", [(3, 5, 4, 2), (3, 3, 3, 3)])
def test_invariants_annihilate_gradients(widths, rng):
    """C1: DG(W)[Dphi^*(Z)] = 0 for every W, Z (5 random pairs, 1e-12)."""
    for _ in range(5):
        w = random_layers(widths, rng)
        z = rng.standard_normal((widths[-1], widths[0]))
        for g in dg(w, dphi_adjoint(w, z)):
            assert np.max(np.abs(g)) <= 1e-12 * max(1.0, np.max(np.abs(z)))


@pytest.mark.parametrize("widths", [(3, 5, 4, 2), (3, 3, 3, 3)])
def test_dg_is_minus_two_c_adjoint(widths, rng):
    """C13: DG(W) = -2 C_W^*."""
    w = random_layers(widths, rng)
    xi = random_layers(widths, rng)
    for a, b in zip(dg(w, xi), normal_generator_adjoint(w, xi)):
        assert np.allclose(a, -2 * b, atol=1e-12)


def test_weight_decay_identity(rng):
    """C1 reason: DG(W)[W] = 2 G(W)."""
    w = random_layers((3, 5, 4, 2), rng)
    for a, b in zip(dg(w, w), invariants(w)):
        assert np.allclose(a, 2 * b, atol=1e-12)


@given(st.integers(0, 2**32 - 1), st.sampled_from(WIDTHS))
def test_generic_operator_is_dphi_dphi_adjoint(seed, widths):
    rng = np.random.default_rng(seed)
    w = random_layers(widths, rng)
    z = rng.standard_normal((widths[-1], widths[0]))
    assert np.allclose(_generic_operator(w, z), dphi(w, dphi_adjoint(w, z)), atol=1e-10)


def test_imbalance_zero_for_depth_one(rng):
    w = random_layers((3, 4), rng)
    assert invariants(w) == [] and imbalance(w) == 0.0


def test_end_to_end_traces_with_autograd(rng):
    import autograd
    import autograd.numpy as anp

    w = random_layers((3, 4, 2), rng)
    y = rng.standard_normal((2, 3))

    def loss(a, b):
        return 0.5 * anp.sum((end_to_end((a, b)) - y) ** 2)

    grads = autograd.grad(loss, (0, 1))(*w)
    expected = dphi_adjoint(w, end_to_end(w) - y)
    for g, e in zip(grads, expected):
        assert np.allclose(g, e)
