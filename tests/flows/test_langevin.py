"""Riemannian Langevin samplers (math.md §8; rows C8, C11, C12).

Statistical tests are seeded. Chains start from exact draws of the target law
(tests/flows/stationary.py), so a correct sampler keeps it and a wrong drift moves
away from it; per-path time averages are i.i.d. across paths, so their mean has a
standard error from the sample spread. Fast versions use fewer paths and shorter
runs (tolerances: |z| <= 4 and relative error <= 1e-2 for a correct chain; the
ablations are required to miss by |z| >= 5); the C11/C12 sizes are marked slow.
"""

import numpy as np
import pytest
from scipy import integrate, stats

from dlnmanifolds.core.balanced import balanced_factors
from dlnmanifolds.flows import (
    Energy,
    FlowBlowUpError,
    langevin,
    spectral_quartic_energy,
)
from tests.flows.stationary import lambda_moments, path_means, sample_end_to_end
from tests.helpers import balanced_point

QUARTIC = spectral_quartic_energy(2.0)


def zscores(samples, target):
    """(mean - target) / standard error, per column."""
    return (samples.mean(axis=0) - target) / (samples.std(axis=0, ddof=1) / np.sqrt(len(samples)))


def lift(xs, depth, rng):
    """Balanced lifts with Haar gauge: the conditional law on each orbit O_X (math.md §6)."""
    layers = [balanced_factors(x, depth, rng=rng) for x in xs]
    return [np.stack([w[p] for w in layers]) for p in range(depth)]


def one_by_one_lambda_cdf(depth, beta, center):
    """CDF of lam = x^{1/N} for the 1x1 law exp(-beta (x - c)^2 / 2) |x|^{-(1 - 1/N)} dx.

    For d = 1, S = 0 and vol_g = A^{-1/2} dx = (N |x|^{2(N-1)/N})^{-1/2} dx; with x = lam^N the
    density in lam is proportional to exp(-beta (lam^N - c)^2 / 2), smooth (no quadrature
    singularity). The mass at x < 0, ~exp(-beta c^2 / 2), is negligible here.
    """
    grid = np.linspace(0.0, (center + 12 / np.sqrt(beta)) ** (1 / depth), 40001)
    values = integrate.cumulative_trapezoid(
        np.exp(-beta * 0.5 * (grid**depth - center) ** 2), grid, initial=0.0
    )
    return lambda lam: np.interp(lam, grid, values / values[-1])


def test_one_by_one_stationary_law_and_ablation():
    """1x1, N = 3: the law exp(-beta E) vol_g (KS test); dropping the Ito term fails it."""
    depth, beta, center, paths = 3, 4.0, 2.0, 6000
    energy = Energy(
        lambda x: 0.5 * np.sum((x - center) ** 2, axis=(-2, -1)), lambda x: x - center,
        batched=True,
    )
    cdf = one_by_one_lambda_cdf(depth, beta, center)
    start = np.full((1, 1), center)
    options = dict(depth=depth, step=1e-3, t_final=0.6, n_paths=paths, rng=11)
    run = langevin(energy, start, beta, "end_to_end", potential="free_energy", **options)
    assert stats.kstest(np.cbrt(run.end_to_end[-1][:, 0, 0]), cdf).pvalue >= 1e-3
    wrong = langevin(energy, start, beta, "end_to_end", _ito_correction=False, **options)
    assert stats.kstest(np.cbrt(wrong.end_to_end[-1][:, 0, 0]), cdf).pvalue <= 1e-10


def run_downstairs(paths, step, t_final, seed, **options):
    rng = np.random.default_rng(seed)
    target = lambda_moments(3, 6.0, entropy=options.get("potential") == "free_energy")
    start = sample_end_to_end(3, 6.0, paths, rng, entropy=options.get("potential") == "free_energy")
    run = langevin(QUARTIC, start, 6.0, "end_to_end", depth=3, step=step, t_final=t_final,
                   record_every=10, rng=rng, **options)
    return path_means(run, 3, 0.2 * t_final), target


@pytest.mark.parametrize("potential", ["free_energy", "energy"])
def test_downstairs_keeps_its_stationary_law(potential):
    """C11 (fast): d=2, N=3, beta=6, E = 1/4 sum(sigma^2-2)^2; lam-moments vs quadrature."""
    means, target = run_downstairs(1500, 1e-3, 0.8, 5, potential=potential)
    assert np.all(np.abs(zscores(means, target)) <= 4)
    assert np.all(np.abs(means.mean(axis=0) / target - 1) <= 1e-2)


def test_downstairs_without_drift_correction_fails():
    """C11 ablation (fast): without the beta^{-1} drift terms the law is lost (|z| >= 5)."""
    means, target = run_downstairs(1500, 1e-3, 0.8, 5, potential="free_energy",
                                   _ito_correction=False)
    assert np.max(np.abs(zscores(means, target))) >= 5


def two_sample_z(a, b):
    se = lambda v: v.std(axis=0, ddof=1) / np.sqrt(len(v))  # noqa: E731
    return (a.mean(axis=0) - b.mean(axis=0)) / np.sqrt(se(a) ** 2 + se(b) ** 2)


def compare_up_and_down(paths, step, t_final, seed, depth=2, beta=6.0):
    """Per-path lam-averages: upstairs (push-forward), downstairs F chain and E chain.

    Each chain starts from draws of its own stationary law: the upstairs and the
    F chain from exp(-beta F) vol_g (lifted with Haar gauge upstairs), the E chain
    from exp(-beta E) vol_g; then the comparison measures stationary laws directly.
    """
    rng = np.random.default_rng(seed)
    xs = sample_end_to_end(depth, beta, paths, rng, entropy=True)
    up = langevin(QUARTIC, lift(xs, depth, rng), beta, "balanced", step=step, t_final=t_final,
                  record_every=10, rng=rng)
    burn = 0.2 * t_final
    out = {"up": path_means(up, depth, burn), "imbalance": np.max(up.distance_to_balanced),
           "newton": np.max(up.extras["newton_iterations"])}
    starts = {"free_energy": xs, "energy": sample_end_to_end(depth, beta, paths, rng, False)}
    for potential, start in starts.items():
        down = langevin(QUARTIC, start, beta, "end_to_end", depth=depth, potential=potential,
                        step=step, t_final=t_final, record_every=10, rng=rng)
        out[potential] = path_means(down, depth, burn)
    return out, lambda_moments(depth, beta, entropy=True)


def test_upstairs_pushforward_is_free_energy_chain():
    """C12 (fast, d=2, N=2, beta=3): phi(upstairs RLE) ~ downstairs RLE of F = E - S/beta
    (two-sample |z| <= 4) but not ~ the downstairs RLE of E (|z| >= 5): the entropy matters."""
    out, target = compare_up_and_down(2000, 1e-3, 0.5, 21, beta=3.0)
    # beta = 3 puts more mass near lam_2 = 0, where M is strongly curved: more Newton steps
    assert out["imbalance"] <= 1e-11 and out["newton"] <= 15
    assert np.all(np.abs(zscores(out["up"], target)) <= 4)
    assert abs(out["up"].mean(axis=0)[0] / target[0] - 1) <= 1e-2  # lam_2: s.e. ~ 1e-2
    assert np.all(np.abs(two_sample_z(out["up"], out["free_energy"])) <= 4)
    assert np.max(np.abs(two_sample_z(out["up"], out["energy"]))) >= 5


@pytest.mark.slow
def test_downstairs_c11_full_size():
    """C11 (1e4 paths, dt = 2e-4, t = 1 from exact stationary draws; the row used 2e4 paths
    to t = 1.5 from near-stationary starts): rel error <= 1e-2; without beta^{-1} terms fails."""
    means, target = run_downstairs(10000, 2e-4, 1.0, 7, potential="free_energy")
    assert np.all(np.abs(means.mean(axis=0) / target - 1) <= 1e-2)
    assert np.all(np.abs(zscores(means, target)) <= 4)
    wrong, _ = run_downstairs(10000, 2e-4, 1.0, 7, potential="free_energy", _ito_correction=False)
    assert np.max(np.abs(zscores(wrong, target))) >= 10


@pytest.mark.slow
def test_upstairs_c12_full_size():
    """C12 (d=2, N=2, beta=6; 1e4 paths, h = 2e-4, t = 1 from exact stationary draws):
    rel error <= 1e-2, stays balanced, push-forward = F chain, != E chain."""
    out, target = compare_up_and_down(10000, 2e-4, 1.0, 8)
    assert out["imbalance"] <= 3.4e-12 * 10 and out["newton"] <= 9
    assert np.all(np.abs(out["up"].mean(axis=0) / target - 1) <= 1e-2)
    assert np.all(np.abs(zscores(out["up"], target)) <= 4)
    assert np.all(np.abs(two_sample_z(out["up"], out["free_energy"])) <= 4)
    assert np.max(np.abs(two_sample_z(out["up"], out["energy"]))) >= 5


def test_single_path_shapes_seeds_and_callback(rng):
    w = balanced_point((2, 2, 2), rng)
    a = langevin(QUARTIC, w, 3.0, step=1e-2, t_final=0.1, rng=4)
    b = langevin(QUARTIC, w, 3.0, step=1e-2, t_final=0.1, rng=np.random.default_rng(4))
    assert np.array_equal(a.end_to_end, b.end_to_end)
    assert a.end_to_end.shape == (11, 2, 2) and a.energy.shape == (11,)
    assert len(a.final_state) == 2 and a.final_state[0].shape == (2, 2)
    assert np.max(a.distance_to_balanced) <= 1e-11
    stop = langevin(QUARTIC, w, 3.0, step=1e-2, t_final=1.0, rng=4, callback=lambda t, s: t >= 0.05)
    assert stop.status == 1 and stop.n_steps == 5
    down = langevin(QUARTIC, np.eye(2), 3.0, "end_to_end", depth=2, step=1e-2, t_final=0.05,
                    n_paths=7, rng=1, progress=True)
    assert down.end_to_end.shape[1:] == (7, 2, 2) and down.energy.shape[1] == 7


def test_blow_up_returns_trajectory(rng):
    """An energy whose gradient overflows stops the run with time and quantity named."""
    energy = Energy(lambda x: np.sum(np.exp(x**4)), lambda x: 4 * x**3 * np.exp(x**4))
    with np.errstate(over="ignore", invalid="ignore"):
        with pytest.raises(FlowBlowUpError, match=r"t = ") as info:
            langevin(energy, 1.3 * np.eye(2), 1.0, "end_to_end", depth=2, step=0.1, t_final=5.0,
                     rng=0)
    assert info.value.result.t.size >= 1 and np.all(np.isfinite(info.value.result.energy))


def test_bad_input(rng):
    w = balanced_point((2, 2, 2), rng)
    with pytest.raises(ValueError, match="space"):
        langevin(QUARTIC, w, 1.0, space="fiber")
    with pytest.raises(ValueError, match="potential"):
        langevin(QUARTIC, np.eye(2), 1.0, "end_to_end", depth=2, potential="entropy")
    with pytest.raises(ValueError, match="potential"):
        langevin(QUARTIC, w, 1.0, potential="free_energy")
    with pytest.raises(ValueError, match="beta"):
        langevin(QUARTIC, w, 0.0)
    with pytest.raises(ValueError, match="balanced"):
        langevin(QUARTIC, [w[0], 2 * w[1]], 1.0)
    with pytest.raises(ValueError, match="square"):
        langevin(QUARTIC, [np.ones((2, 3)), np.ones((3, 3))], 1.0)
    with pytest.raises(ValueError, match="depth"):
        langevin(QUARTIC, np.eye(2), 1.0, "end_to_end")
    with pytest.raises(ValueError, match="full rank"):
        langevin(QUARTIC, np.diag([1.0, 0.0]), 1.0, "end_to_end", depth=2)
    with pytest.raises(ValueError, match="n_paths"):
        langevin(QUARTIC, np.stack([np.eye(2)] * 3), 1.0, "end_to_end", depth=2, n_paths=4)
    with pytest.raises(ValueError, match="step"):
        langevin(QUARTIC, w, 1.0, step=-1e-3)
    with pytest.raises(TypeError, match="rng"):
        langevin(QUARTIC, w, 1.0, rng="seed")
