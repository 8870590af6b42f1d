"""Balanced factorizations, frames and the polar re-balancing map (math.md §2.2; C2, C13)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds import balanced_factors, end_to_end, imbalance
from dlnmanifolds.core.balanced import _rebalance, balanced_frames
from tests.helpers import balanced_point, matrix_with_spectrum, random_layers

CASES = [
    ((3, 3, 3, 3), None),
    ((4, 4, 4), None),
    ((3, 5, 4, 2), None),
    ((4, 6, 5, 4), 2),
    ((3, 3, 3, 3), 2),
]


@pytest.mark.parametrize("widths,rank", CASES)
@pytest.mark.parametrize("gauge", [None, 7])
def test_balanced_construction(widths, rank, gauge, rng):
    """C2: the SVD-frame construction is balanced with phi = X (1e-12)."""
    m, n = widths[-1], widths[0]
    r = rank or min(m, n)
    x = matrix_with_spectrum(m, n, np.linspace(2.0, 0.5, r), rng)
    w = balanced_factors(x, len(widths) - 1, widths, rng=gauge)
    assert imbalance(w) <= 1e-12
    assert np.max(np.abs(end_to_end(w) - x)) <= 1e-12


def test_polar_form_is_balanced(rng):
    """C2: SVD-free form W_p = R_p P R_{p-1}^T with P = (X^T X)^{1/(2N)}."""
    depth, x = 4, rng.standard_normal((3, 3))
    vals, vecs = np.linalg.eigh(x.T @ x)
    p_root = (vecs * vals ** (1 / (2 * depth))) @ vecs.T
    r_last = x @ (vecs * vals ** (-0.5)) @ vecs.T
    rotations = [np.eye(3)] + [
        np.linalg.qr(rng.standard_normal((3, 3)))[0] for _ in range(depth - 1)
    ]
    rotations.append(r_last)
    w = [rotations[p + 1] @ p_root @ rotations[p].T for p in range(depth)]
    assert imbalance(w) <= 1e-12
    assert np.allclose(end_to_end(w), x, atol=1e-12)


@pytest.mark.parametrize("widths,rank", CASES)
def test_frames_recovered(widths, rank, rng):
    """C13: Q_0 = V_r, Q_p = W_p Q_{p-1} Lambda^{-1} are orthonormal and rebuild W."""
    m, n = widths[-1], widths[0]
    r = rank or min(m, n)
    x = matrix_with_spectrum(m, n, np.linspace(2.0, 0.5, r), rng)
    w = balanced_factors(x, len(widths) - 1, widths, rng=rng)
    frames = balanced_frames(w, r)
    for q, q_perp in zip(frames.q, frames.q_perp):
        full = np.hstack([q, q_perp])
        assert np.allclose(full.T @ full, np.eye(full.shape[0]), atol=1e-12)
    rebuilt = [(frames.q[p] * frames.lam) @ frames.q[p - 1].T for p in range(1, len(frames.q))]
    for a, b in zip(rebuilt, w):
        assert np.max(np.abs(a - b)) <= 1e-12


@pytest.mark.parametrize("sigma", [(2.0, 1.0, 1.0), (1.0, 1.0, 1.0), (2.0, 2.0, 0.7)])
def test_frames_with_repeated_singular_values(sigma, rng):
    """C13: recovery works at repeated singular values and random orbit points."""
    w = balanced_point((3, 3, 3, 3), rng, sigma=sigma)
    frames = balanced_frames(w)
    rebuilt = [(frames.q[p] * frames.lam) @ frames.q[p - 1].T for p in range(1, 4)]
    assert max(np.max(np.abs(a - b)) for a, b in zip(rebuilt, w)) <= 1e-12


@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([(3, 3, 3), (2, 4, 3), (3, 5, 4, 2), (4, 2), (2, 2, 2, 2, 2, 2)]),
)
def test_rebalance_is_identity_on_m_and_lands_on_m(seed, widths):
    """The polar re-balancing map fixes M and maps a neighbourhood onto M, keeping phi."""
    rng = np.random.default_rng(seed)
    w = balanced_point(widths, rng)
    fixed = _rebalance(w)
    assert max(np.max(np.abs(a - b)) for a, b in zip(fixed, w)) <= 1e-11
    y = [a + 1e-2 * b for a, b in zip(w, random_layers(widths, rng))]
    out = _rebalance(y)
    assert imbalance(out) <= 1e-12 * max(1.0, max(np.max(np.abs(a)) for a in out) ** 2)
    assert np.allclose(end_to_end(out), end_to_end(y), atol=1e-12)


def test_rank_deficient_and_zero_matrices(rng):
    x = matrix_with_spectrum(4, 4, [1.0, 0.5], rng)
    w = balanced_factors(x, 3, (4, 2, 2, 4))
    assert imbalance(w) <= 1e-12 and np.allclose(end_to_end(w), x)
    zero = balanced_factors(np.zeros((2, 3)), 2)
    assert all(np.all(a == 0) for a in zero)


def test_bad_input(rng):
    x = rng.standard_normal((3, 3))
    with pytest.raises(ValueError, match="widths must have depth \\+ 1"):
        balanced_factors(x, 2, (3, 3))
    with pytest.raises(ValueError, match="widths must start with n"):
        balanced_factors(x, 2, (2, 3, 3))
    with pytest.raises(ValueError, match="narrowest layer"):
        balanced_factors(x, 2, (3, 2, 3))
    with pytest.raises(ValueError, match="depth"):
        balanced_factors(x, -1)
    with pytest.raises(TypeError, match="rng"):
        balanced_factors(x, 2, rng="seed")
    with pytest.raises(TypeError, match="widths"):
        balanced_factors(x, 2, widths=3)
    with pytest.raises(ValueError, match="widths\\[1\\]"):
        balanced_factors(x, 2, widths=(3, 0, 3))
