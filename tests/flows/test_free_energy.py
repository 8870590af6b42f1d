"""Free energy and downstairs Langevin drift pieces (math.md §6, §8.3; rows C8, C11)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds.core.balanced import balanced_frames
from dlnmanifolds.core.balanced_tangent import horizontal_projection, tangent_projection
from dlnmanifolds.core.entropy import boltzmann_entropy, entropy_gradient
from dlnmanifolds.core.free_energy import (
    coordinate_laplacian,
    free_energy,
    free_energy_gradient,
    langevin_drift,
    laplacian_of_phi,
)
from dlnmanifolds.core.network import _second_derivative, end_to_end
from dlnmanifolds.core.operator import dln_operator
from tests.helpers import balanced_point, dense_matrix, matrix_with_spectrum, unflatten


def onb(projector):
    vals, vecs = np.linalg.eigh(0.5 * (projector + projector.T))
    return vecs[:, vals > 0.5]


def laplacian_sum(w, basis):
    return sum(_second_derivative(w, e, e) for e in (unflatten(c, w) for c in basis.T))


@pytest.mark.parametrize("d, depth", [(2, 2), (2, 3), (3, 2), (3, 3), (3, 4)])
def test_laplacian_of_phi_is_trace_of_second_derivative(d, depth, rng):
    """C11: sum_{ONB(T_W M)} D^2 phi[e, e] = Delta_M phi; H part Delta_g x, V part grad_g S."""
    w = balanced_point((d,) * (depth + 1), rng)
    x = end_to_end(w)
    frames = balanced_frames(w)
    p_t = dense_matrix(lambda xi: tangent_projection(frames, xi), w)
    p_h = dense_matrix(lambda xi: horizontal_projection(w, xi), w)
    total = laplacian_sum(w, onb(p_t))
    horizontal = laplacian_sum(w, onb(p_h))
    vertical = laplacian_sum(w, onb(p_t - p_h))
    scale = np.linalg.norm(total)
    assert np.linalg.norm(laplacian_of_phi(x, depth) - total) <= 1e-10 * scale
    assert np.linalg.norm(coordinate_laplacian(x, depth) - horizontal) <= 1e-10 * scale
    assert np.linalg.norm(entropy_gradient(x, depth) - vertical) <= 1e-9 * scale


def test_coordinate_laplacian_is_divergence_form(rng):
    """C8: Delta_g x^k = |g|^{-1/2} d_j(|g|^{1/2} g^{kj}), g^{-1} = A, |g|^{1/2} = det(A)^{-1/2}."""
    depth, d = 3, 2
    x = matrix_with_spectrum(d, d, [1.4, 0.6], rng)
    basis = np.eye(d * d).reshape(d * d, d, d)

    def weighted_a(y):
        a = dln_operator(y, basis, depth).reshape(d * d, d * d)
        return np.linalg.det(a) ** -0.5 * a

    h = 1e-5
    div = sum(
        (weighted_a(x + h * basis[j])[:, j] - weighted_a(x - h * basis[j])[:, j]) / (2 * h)
        for j in range(d * d)
    )
    a = dln_operator(x, basis, depth).reshape(d * d, d * d)
    expected = np.linalg.det(a) ** 0.5 * div
    assert np.allclose(coordinate_laplacian(x, depth).ravel(), expected, rtol=1e-6, atol=1e-8)


@given(seed=st.integers(0, 2**31), depth=st.integers(1, 6), gap=st.sampled_from([1.0, 1e-9, 0.0]))
def test_batched_drift_matches_single_and_is_smooth_at_collisions(seed, depth, gap):
    rng = np.random.default_rng(seed)
    xs = np.stack(
        [matrix_with_spectrum(3, 3, [1.3, 1.3 * (1 + gap), 0.4], rng) for _ in range(3)]
    )
    egrad = rng.standard_normal(xs.shape)
    beta = 2.5
    batched = langevin_drift(xs, egrad, depth, beta, "free_energy")
    assert np.all(np.isfinite(batched))
    for k in range(3):
        single = langevin_drift(xs[k], egrad[k], depth, beta, "free_energy")
        assert np.allclose(batched[k], single, rtol=1e-12, atol=1e-12)
        # free-energy drift = -grad_g F + Delta_g x / beta = energy drift + grad_g S / beta
        pieces = -free_energy_gradient(xs[k], egrad[k], depth, beta) + coordinate_laplacian(
            xs[k], depth
        ) / beta
        assert np.allclose(single, pieces, rtol=1e-12, atol=1e-12)
        energy_drift = langevin_drift(xs[k], egrad[k], depth, beta, "energy")
        assert np.allclose(
            single - energy_drift, entropy_gradient(xs[k], depth) / beta, rtol=1e-10, atol=1e-12
        )


def test_depth_one_has_no_correction(rng):
    x = matrix_with_spectrum(2, 2, [1.5, 0.5], rng)
    assert np.allclose(laplacian_of_phi(x, 1), 0.0)
    assert np.isclose(free_energy(x, 1, lambda y: 3.0, 2.0), 3.0)


def test_free_energy_value(rng):
    x = matrix_with_spectrum(3, 3, [2.0, 1.0, 0.5], rng)
    energy = lambda y: 0.5 * np.sum(y**2)  # noqa: E731
    f = free_energy(x, 3, energy, 4.0)
    assert np.isclose(f, energy(x) - boltzmann_entropy(x, 3) / 4.0, rtol=1e-14)
    assert np.isclose(free_energy(x, 3, energy(x), 4.0), f)


def test_bad_input(rng):
    x = matrix_with_spectrum(2, 2, [1.0, 0.5], rng)
    with pytest.raises(ValueError, match="beta"):
        free_energy(x, 2, 1.0, -1.0)
    with pytest.raises(TypeError, match="beta"):
        free_energy(x, 2, 1.0, "hot")
    with pytest.raises(ValueError, match="square"):
        coordinate_laplacian(np.ones((2, 3)), 2)
    with pytest.raises(ValueError, match="full rank"):
        laplacian_of_phi(np.diag([1.0, 0.0]), 2)
    with pytest.raises(ValueError, match="potential"):
        langevin_drift(x, x, 2, 1.0, "enthalpy")
    with pytest.raises(ValueError, match="egrad"):
        langevin_drift(x, np.ones((3, 3)), 2, 1.0)
    with pytest.raises(TypeError, match="energy"):
        free_energy(x, 2, lambda y: np.ones(3), 1.0)
    with pytest.raises(ValueError, match="finite"):
        free_energy(x, 2, np.inf, 1.0)
    with pytest.raises(ValueError, match="depth"):
        coordinate_laplacian(x, 0)
