"""Balancing flows on fibers (math.md §7; rows C7, C10)."""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds.core.network import dphi, end_to_end, invariants
from dlnmanifolds.flows import balancing_flow
from dlnmanifolds.flows.balancing import (
    horizontal_part,
    l2_regularizer_rate,
    moment_map_spectrum_minimum,
    regularizer_minimum,
)
from tests.helpers import balanced_point, random_layers

SHAPES = [(3, 3, 3, 3), (2, 2, 2, 2, 2), (3, 5, 4, 2), (4, 6, 3), (2, 2), (3, 3)]


@given(widths=st.sampled_from(SHAPES), seed=st.integers(0, 2**31))
def test_l2_flow_uniform_rate_and_fiber(widths, seed):
    """C7/C10: G(t) = e^{-2t} G(0), phi constant, R -> R_min; fitted rate >= 2 (uniform)."""
    rng = np.random.default_rng(seed)
    w = random_layers(widths, rng)
    times = np.linspace(0.0, 3.0, 31)
    result = balancing_flow(w, "l2", 3.0, t_eval=times, rtol=1e-11, atol=1e-13)
    g0 = invariants(w)
    for k in (10, 30):
        for a, b in zip(g0, invariants(result.states[k])):
            assert np.max(np.abs(b - np.exp(-2 * times[k]) * a)) <= 1e-8 * max(1, np.max(abs(a)))
    if len(w) > 1:
        assert result.extras["rate_invariants"] >= 2.0 - 1e-6
        assert result.extras["rate_invariants_predicted"] == 2.0
    x0 = end_to_end(w)
    assert np.max(result.extras["end_to_end_drift"]) <= 1e-8 * max(1, np.linalg.norm(x0))
    gap = result.extras["regularizer_gap"]
    assert np.all(np.diff(result.energy) <= 1e-9 * result.energy[0])  # R decreases
    assert gap[-1] >= -1e-8 * result.energy[0]  # never below the Kempf-Ness minimum
    # fast-slow split: the two parts are orthogonal and add up to W (math.md §7.2)
    fiber, horiz = result.extras["fiber_part_norm"], result.extras["horizontal_part_norm"]
    assert np.allclose(fiber**2 + horiz**2, 2 * result.extras["regularizer"], rtol=1e-8)


def _rank_deficient(widths, rank, rng):
    """Random layers whose product has rank ``rank`` (W_1 truncated to that rank)."""
    w = random_layers(widths, rng)
    if rank is not None:
        u, s, vt = np.linalg.svd(w[0], full_matrices=False)
        s[rank:] = 0.0
        w[0] = (u * s) @ vt
    return w


# (widths, rank of W_1 or None, rate): the rule is "2 iff some layer has
# min(d_p, d_{p-1}) > rank phi" (a (perp, perp) block of unit fiber Hessian,
# math.md §7.2). The first four rows agree with the old "4 square / 2 otherwise"
# rule; the last five are where the two rules disagree.
RATE_CASES = [
    ((3, 3, 3, 3), None, 4.0),
    ((2, 2, 2, 2, 2), None, 4.0),
    ((3, 5, 4, 2), None, 2.0),
    ((4, 6, 3), None, 2.0),
    ((4, 3, 5), None, 4.0),  # non-square, no (perp, perp) block
    ((2, 5, 2), None, 4.0),
    ((3, 2, 2, 2, 2, 3), None, 4.0),
    ((3, 3, 3, 3), 2, 2.0),  # square, rank-deficient phi
    ((3,) * 9, 1, 2.0),  # rank-deficient phi at depth 8
]


@pytest.mark.parametrize("widths, rank, rate", RATE_CASES)
def test_l2_flow_regularizer_rates(widths, rank, rate, rng):
    """C10: R - R_min ~ e^{-2t} iff some min(d_p, d_{p-1}) > rank phi, else e^{-4t} (+-0.1)."""
    w = _rank_deficient(widths, rank, rng)
    result = balancing_flow(w, "l2", 6.0, t_eval=np.linspace(0, 6, 61), rtol=1e-12, atol=1e-14)
    assert abs(result.extras["rate_regularizer"] - rate) <= 0.1
    assert result.extras["rate_regularizer_predicted"] == rate
    gap = result.extras["regularizer_gap"]
    assert np.min(gap) >= -1e-10 * result.energy[0]  # never below Kempf-Ness (F2)
    # no (perp, perp) block: W -> M like e^{-2t}; otherwise those blocks only like e^{-t}
    if rate == 4.0:
        assert result.distance_to_balanced[-1] <= 1e-4
    assert result.distance_to_balanced[-1] <= 1e-2 * result.distance_to_balanced[0]
    assert result.invariants_norm[-1] <= 1e-4 * result.invariants_norm[0]
    x = end_to_end(w)
    assert np.isclose(result.extras["regularizer_minimum"], regularizer_minimum(x, len(w)))


def test_l2_regularizer_rate_rule():
    """The (perp, perp) rule itself, incl. depth one (the fiber is a point: NaN)."""
    assert l2_regularizer_rate((3, 3, 3, 3), 3) == 4.0
    assert l2_regularizer_rate((3, 3, 3, 3), 2) == 2.0
    assert l2_regularizer_rate((4, 3, 5), 3) == 4.0
    assert l2_regularizer_rate((3, 5, 4, 2), 2) == 2.0
    assert np.isnan(l2_regularizer_rate((3, 3), 3))


def test_regularizer_minimum_counts_numerical_rank_only(rng):
    """F2: rank-2 3x3 X at N = 8: round-off sigma_3 ~ 1e-16 must not add (N/2) sigma_3^{2/N}.

    The Kempf-Ness value (N/2)(sigma_1^{2/N} + sigma_2^{2/N}) to 1e-12 and a balancing
    run from a rank-2 start never reports R - R_min < 0.
    """
    depth = 8
    u = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    v = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    x = (u[:, :2] * np.array([2.0, 0.7])) @ v[:, :2].T
    assert np.linalg.svd(x, compute_uv=False)[-1] > 0  # a genuine round-off "zero"
    exact = 0.5 * depth * (2.0 ** (2 / depth) + 0.7 ** (2 / depth))
    assert abs(regularizer_minimum(x, depth) - exact) <= 1e-12 * exact
    w = _rank_deficient((3,) * (depth + 1), 2, rng)
    result = balancing_flow(w, "l2", 4.0, t_eval=np.linspace(0, 4, 21), rtol=1e-11, atol=1e-13)
    assert np.min(result.extras["regularizer_gap"]) >= 0.0


def test_l2_fiber_minimum_is_nuclear_norm_for_depth_two(rng):
    """C10: N = 2, 4x3x5 (rank-3 X, A_W singular): fiber minimum of R is ||X||_* (1e-9)."""
    w = random_layers((4, 3, 5), rng)
    result = balancing_flow(w, "l2", 12.0, rtol=1e-12, atol=1e-14)
    nuclear = np.sum(np.linalg.svd(end_to_end(w), compute_uv=False))
    assert abs(result.energy[-1] - nuclear) <= 1e-9 * nuclear


def test_weight_decay_split(rng):
    """C7: W = P_F(W) + Dphi^*(A_W^{-1}(N X)), with P_F(W) in ker Dphi (5.6e-16)."""
    w = random_layers((3, 5, 4, 2), rng)
    horiz = horizontal_part(w)
    fiber = [a - h for a, h in zip(w, horiz)]
    assert np.max(np.abs(dphi(w, fiber))) <= 1e-12
    assert np.max(np.abs(dphi(w, horiz) - 3 * end_to_end(w))) <= 1e-12


def test_moment_map_flow_converges_globally(rng):
    """C7: three random starts (3,3,3,3): Phi monotone, max|G| small, phi preserved."""
    for _ in range(3):
        w = random_layers((3, 3, 3, 3), rng)
        result = balancing_flow(w, "moment_map", 20.0, rtol=1e-10, atol=1e-12)
        assert np.max(np.abs(invariants(w)[0])) > 0.5
        assert np.all(np.diff(result.energy) <= 1e-9 * result.energy[0])
        g_end = max(np.max(np.abs(g)) for g in invariants(result.final_state))
        assert g_end <= 4.1e-4
        assert np.max(result.extras["end_to_end_drift"]) <= 1e-6


@pytest.mark.parametrize("depth", [3, 4])
def test_moment_map_local_rate(depth, rng):
    """C7: near M, ||G|| decays at 4 nu_min (the flow of 1/2 sum||G||^2), nu_min from lam."""
    widths = (2,) * (depth + 1)
    sigma = np.array([1.6, 0.9]) ** depth
    w = balanced_point(widths, rng, sigma=sigma)
    w = [a + 0.05 * rng.standard_normal(a.shape) for a in w]
    nu = moment_map_spectrum_minimum(end_to_end(w), depth)
    t_final = 12.0 / (4 * nu)
    result = balancing_flow(
        w, "moment_map", t_final, t_eval=np.linspace(0, t_final, 81), rtol=1e-12, atol=1e-14
    )
    predicted = result.extras["rate_invariants_predicted"]
    assert np.isclose(predicted, 4 * nu)
    assert abs(result.extras["rate_invariants"] - predicted) <= 1e-2 * predicted


def test_moment_map_depth_two_riccati_limit(rng):
    """C7: N = 2, W_1(t) = g W_1(0) with g^T g -> C^{-1} # B (8e-11 at t = 30 for Phi)."""
    w = random_layers((3, 3, 3), rng)
    result = balancing_flow(w, "moment_map", 15.0, rtol=1e-12, atol=1e-14)
    g = result.final_state[0] @ np.linalg.inv(w[0])
    b = w[1].T @ w[1]
    c = w[0] @ w[0].T
    c_half = scipy.linalg.sqrtm(c).real
    c_inv_half = np.linalg.inv(c_half)
    mean = c_inv_half @ scipy.linalg.sqrtm(c_half @ b @ c_half).real @ c_inv_half
    assert np.max(np.abs(g.T @ g - mean)) <= 1e-8 * np.max(np.abs(mean))


def test_bad_input(rng):
    w = random_layers((2, 2, 2), rng)
    with pytest.raises(ValueError, match="kind"):
        balancing_flow(w, "l1")
    with pytest.raises(ValueError, match="finite"):
        balancing_flow([np.eye(2), np.full((2, 2), np.inf)], "l2")
    with pytest.raises(ValueError, match="t_final"):
        balancing_flow(w, "moment_map", 0.0)
    with pytest.raises(ValueError, match="method"):
        balancing_flow(w, "l2", method="magic")
    with pytest.raises(TypeError, match="weights"):
        balancing_flow("abc", "l2")
    start = balancing_flow((2, 3, 2), "l2", 0.1, rng=3).states[0]
    assert [a.shape for a in start] == [(3, 2), (2, 3)]
