"""Training flows: invariants (C1), gradient descent mode, ACH theorem (C4, C9), bad input."""

import io
from contextlib import redirect_stderr

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds.core.network import _dphi_adjoint, end_to_end, invariants
from dlnmanifolds.flows import (
    Energy,
    FlowBlowUpError,
    end_to_end_flow,
    gradient_flow,
    quadratic_energy,
)
from tests.helpers import balanced_point, random_layers


def quartic_test_energy(rng, m, n):
    """E = 1/2 ||X - Y||^2 + 0.025 sum (C ∘ X)^4 (row C1)."""
    y = rng.standard_normal((m, n))
    c = rng.standard_normal((m, n))
    return Energy(
        lambda x: 0.5 * np.sum((x - y) ** 2) + 0.025 * np.sum((c * x) ** 4),
        lambda x: (x - y) + 0.1 * c**4 * x**3,
    )


def invariant_drift(result):
    g0, g1 = invariants(result.states[0]), invariants(result.states[-1])
    scale = max(np.max(np.abs(g)) for g in g0)
    return max(np.max(np.abs(a - b)) for a, b in zip(g0, g1)) / scale


@given(
    widths=st.sampled_from([(3, 5, 4, 2), (3, 3, 3, 3), (2, 4, 3), (2, 3, 5, 4, 3)]),
    seed=st.integers(0, 2**31),
)
def test_invariants_conserved_from_unbalanced_starts(widths, seed):
    """C1: G_p constant along the gradient flow (rel drift <= 1e-8 over t = 1, rtol 1e-10)."""
    rng = np.random.default_rng(seed)
    energy = quartic_test_energy(rng, widths[-1], widths[0])
    start = [w / np.sqrt(w.shape[1]) for w in random_layers(widths, rng)]  # ||X|| = O(1)
    result = gradient_flow(energy, start, 1.0, rtol=1e-10, atol=1e-12)
    assert result.success and result.t[-1] == 1.0
    assert invariant_drift(result) <= 1e-8
    assert result.energy[-1] < result.energy[0]
    assert np.all(np.diff(result.energy) <= 1e-9 * abs(result.energy[0]))  # gradient flow


def test_weight_decay_invariants_decay_exponentially(rng):
    """C1: with weight decay lambda, G(t) = e^{-2 lambda t} G(0) (1e-9)."""
    widths = (3, 5, 4, 2)
    lam = 0.3
    energy = quartic_test_energy(rng, 2, 3)
    result = gradient_flow(
        energy, random_layers(widths, rng), 1.0, weight_decay=lam, method="DOP853",
        rtol=1e-11, atol=1e-13,
    )
    for g0, g1 in zip(invariants(result.states[0]), invariants(result.states[-1])):
        assert np.max(np.abs(g1 - np.exp(-2 * lam) * g0)) <= 1e-9 * np.max(np.abs(g0))


def test_gd_mode_is_plain_gradient_descent(rng):
    """method='gd' with step h: W_{k+1} = W_k - h (Dphi^* E'(X_k) + lambda W_k) exactly."""
    widths = (3, 4, 2)
    energy = quartic_test_energy(rng, 2, 3)
    w = random_layers(widths, rng)
    h, lam = 0.01, 0.1
    result = gradient_flow(energy, w, 0.05, method="gd", step=h, weight_decay=lam)
    manual = [a.copy() for a in w]
    for _ in range(5):
        grad = _dphi_adjoint(manual, energy.gradient(end_to_end(manual)))
        manual = [a - h * (g + lam * a) for a, g in zip(manual, grad)]
    assert result.n_steps == 5 and result.n_gradient_evaluations == 5
    assert np.allclose(result.t, np.arange(6) * h)
    for a, b in zip(result.final_state, manual):
        assert np.allclose(a, b, rtol=1e-14, atol=1e-14)


@pytest.mark.parametrize("widths", [(3, 3, 3, 3), (3, 5, 4, 2)])
@pytest.mark.parametrize("lam", [0.0, 0.2])
def test_ach_theorem_upstairs_equals_downstairs(widths, lam, rng):
    """C4: from a balanced start, phi(W(t)) = X(t) of dX/dt = -A(E') - lambda N X (1e-7)."""
    w = balanced_point(widths, rng)
    energy = quadratic_energy(rng.standard_normal((widths[-1], widths[0])))
    times = np.linspace(0.0, 0.5, 11)
    common = dict(method="DOP853", rtol=1e-12, atol=1e-13, weight_decay=lam, t_eval=times)
    up = gradient_flow(energy, w, 0.5, **common)
    down = end_to_end_flow(energy, end_to_end(w), len(w), 0.5, **common)
    assert np.allclose(up.t, down.t)
    assert np.max(np.abs(up.end_to_end - down.end_to_end)) <= 1e-7
    assert np.max(up.distance_to_balanced) <= 1e-7 * (1 + lam * 10)
    assert np.allclose(up.energy, down.energy, rtol=1e-7)


def test_ach_unbalanced_start_differs(rng):
    """Control: an unbalanced start with the same X(0) does NOT follow the ACH flow."""
    widths = (3, 3, 3, 3)
    w = balanced_point(widths, rng)
    energy = quadratic_energy(rng.standard_normal((3, 3)))
    g = rng.standard_normal((3, 3)) + 2 * np.eye(3)  # GL gauge keeps phi, breaks balance
    unbalanced = [g @ w[0], w[1] @ np.linalg.inv(g), w[2]]
    assert np.allclose(end_to_end(unbalanced), end_to_end(w))
    up = gradient_flow(energy, unbalanced, 0.5, rtol=1e-10, atol=1e-12)
    down = end_to_end_flow(energy, end_to_end(w), 3, 0.5, rtol=1e-10, atol=1e-12)
    assert np.max(np.abs(up.end_to_end[-1] - down.end_to_end[-1])) > 1e-3


def test_rank_deficient_end_to_end_flow_on_fixed_rank(rng):
    """C9: rank-2 balanced start in (4,4,4,4): RK4 with rank-2 stages = upstairs (1e-9)."""
    from dlnmanifolds.core.balanced import balanced_factors
    from tests.helpers import matrix_with_spectrum

    x0 = matrix_with_spectrum(4, 4, [1.5, 0.7], rng)
    w = balanced_factors(x0, 3, (4, 4, 4, 4), rng)
    energy = quadratic_energy(rng.standard_normal((4, 4)))
    up = gradient_flow(energy, w, 0.5, method="DOP853", rtol=1e-12, atol=1e-14)
    down = end_to_end_flow(energy, x0, 3, 0.5, method="rk4", step=1e-3, rank=2, record_every=500)
    assert np.max(np.abs(up.end_to_end[-1] - down.end_to_end[-1])) <= 1e-9
    assert down.extras["singular_values"][-1][2] <= 1e-12  # stayed rank 2


def test_ach_gradient_descent_step_is_first_order(rng):
    """C4: phi(W - h grad L) = X - h A(E') + O(h^2): one GD step upstairs vs downstairs."""
    w = balanced_point((3, 3, 3, 3), rng)
    energy = quadratic_energy(rng.standard_normal((3, 3)))
    errors = []
    for h in (1e-2, 1e-3):
        up = gradient_flow(energy, w, h, method="gd", step=h)
        down = end_to_end_flow(energy, end_to_end(w), 3, h, method="gd", step=h)
        errors.append(np.max(np.abs(up.end_to_end[-1] - down.end_to_end[-1])))
    slope = np.log10(errors[0] / errors[1])
    assert 1.9 <= slope <= 2.1


def test_gaussian_start_from_widths_is_seeded():
    energy = quadratic_energy(np.eye(3))
    a = gradient_flow(energy, (3, 3, 3), 0.1, rng=5, init_scale=0.1)
    b = gradient_flow(energy, (3, 3, 3), 0.1, rng=np.random.default_rng(5), init_scale=0.1)
    assert np.array_equal(a.states[0][0], b.states[0][0])
    assert 0.01 < np.linalg.norm(a.end_to_end[0]) < 1.0  # ~ init_scale sqrt(d)
    c = end_to_end_flow(energy, (3, 3), 2, 0.1, rng=5, init_scale=0.1)
    assert c.end_to_end[0].shape == (3, 3)


def test_autograd_energy_callable(rng):
    """A bare callable energy gets its gradient from autograd; same flow as the explicit one."""
    import autograd.numpy as anp

    y = rng.standard_normal((2, 2))
    w = random_layers((2, 2, 2), rng)
    auto = gradient_flow(lambda x: 0.5 * anp.sum((x - y) ** 2), w, 0.2, rtol=1e-10, atol=1e-12)
    explicit = gradient_flow(quadratic_energy(y), w, 0.2, rtol=1e-10, atol=1e-12)
    assert np.allclose(auto.end_to_end[-1], explicit.end_to_end[-1], atol=1e-12)


def test_callback_stops_and_progress_bar(rng):
    energy = quadratic_energy(np.eye(2))
    w = random_layers((2, 2, 2), rng)
    seen = []
    result = gradient_flow(
        energy, w, 1.0, method="gd", step=0.01, callback=lambda t, s: seen.append(t) or t >= 0.1
    )
    assert result.status == 1 and abs(result.t[-1] - 0.1) < 1e-12 and len(seen) == 10
    buffer = io.StringIO()
    with redirect_stderr(buffer):
        result = gradient_flow(energy, w, 0.05, method="rk4", step=0.01, progress=True)
    assert result.success and "0.05" in buffer.getvalue()  # tqdm wrote its bar


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_blow_up_reports_time_quantity_and_trajectory():
    """E = -1/4 ||X||^4 blows up in finite time: clear error with the trajectory so far."""
    energy = Energy(lambda x: -0.25 * np.sum(x**2) ** 2, lambda x: -np.sum(x**2) * x)
    w = [np.eye(2), np.eye(2)]
    with pytest.raises(FlowBlowUpError, match=r"non-finite.*t = ") as info:
        gradient_flow(energy, w, 10.0, method="gd", step=0.05)
    err = info.value
    assert err.result.status == -1 and len(err.result.t) >= 1
    assert err.time > err.result.t[-1] - 1e-12 and 0 < err.time < 10
    assert np.all(np.isfinite(err.result.energy))
    with pytest.raises(FlowBlowUpError) as info:
        end_to_end_flow(energy, 2 * np.eye(2), 2, 10.0)
    assert info.value.result.t.size >= 1 and info.value.quantity


def test_bad_input(rng):
    energy = quadratic_energy(np.eye(2))
    w = random_layers((2, 2, 2), rng)
    with pytest.raises(ValueError, match="method"):
        gradient_flow(energy, w, method="leapfrog")
    with pytest.raises(ValueError, match="t_final"):
        gradient_flow(energy, w, -1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        gradient_flow(energy, w, weight_decay=-0.1)
    with pytest.raises(ValueError, match="gradient"):
        gradient_flow(Energy(lambda x: 0.0, lambda x: np.zeros(3)), w)
    with pytest.raises(TypeError, match="energy"):
        gradient_flow(3.0, w)
    with pytest.raises(ValueError, match="chain"):
        gradient_flow(energy, [np.eye(2), np.ones((3, 3))])
    with pytest.raises(ValueError, match="finite"):
        gradient_flow(energy, [np.eye(2), np.full((2, 2), np.nan)])
    with pytest.raises(ValueError, match="t_eval"):
        gradient_flow(energy, w, method="gd", t_eval=[0.5])
    with pytest.raises(ValueError, match="fixed-step"):
        end_to_end_flow(energy, np.eye(2), 2, rank=1)
    with pytest.raises(ValueError, match="rank"):
        end_to_end_flow(energy, np.eye(2), 2, method="rk4", rank=3)
    with pytest.raises(ValueError, match="depth"):
        end_to_end_flow(energy, np.eye(2), 0)
    with pytest.raises(TypeError, match="callback"):
        gradient_flow(energy, w, callback=3)
    with pytest.raises(ValueError, match="record_every"):
        gradient_flow(energy, w, record_every=0)
