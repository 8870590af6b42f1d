"""Bounded geodesics of g^N and of M (core.dln_geodesic): closed forms against the integrator,
up-front rejection of bad points, caps with a residual, continuation, the scaling homothety.

No timing assertions: "rejected before integrating" is checked by replacing the integrator
with one that fails the test if it is called.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import expm

import dlnmanifolds.core.dln_geodesic as geo
from dlnmanifolds.core.balanced import balanced_factors, haar_stiefel
from dlnmanifolds.core.dln_geodesic import (
    GeodesicError,
    balanced_exp_stacked,
    balanced_log_stacked,
    dln_exp,
    dln_log,
)
from dlnmanifolds.core.network import _end_to_end
from dlnmanifolds.core.operator import dln_inner


def _orthogonal(n, rng, det=None):
    q = haar_stiefel(n, n, rng)
    if det is not None and np.sign(np.linalg.det(q)) != det:
        q[:, 0] *= -1
    return q


def _spd(n, rng, low=0.5, high=2.0):
    q = _orthogonal(n, rng)
    return (q * rng.uniform(low, high, n)) @ q.T


@pytest.fixture
def no_integration(monkeypatch):
    """Make any ODE integration fail the test: the call must raise before integrating."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the geodesic ODE was integrated for an input that is invalid")

    monkeypatch.setattr(geo, "_integrate", forbidden)
    monkeypatch.setattr(geo, "_integrate_fixed", forbidden)


def _numerical_log(y, x, depth):
    """dln_log with the closed forms switched off (pure shooting)."""
    with pytest.MonkeyPatch.context() as m:
        m.setattr(geo, "_closed_form_log", lambda *args: None)
        return dln_log(y, x, depth)


# ---- closed forms -----------------------------------------------------------------------

spectra = st.sampled_from(
    [
        ((1.5, 1.0, 0.6), (1.2, 1.3, 0.5)),
        ((1.0, 1.0, 1.0), (1.4, 0.8, 1.1)),  # repeated sigma in X
        ((1.3, 1.3, 0.7), (0.9, 0.9, 0.8)),  # repeated in both
        ((2.0, 0.05), (1.6, 0.08)),  # ill-conditioned
        ((1.0,), (1.7,)),
    ]
)


@settings(max_examples=12, deadline=None)
@given(pair=spectra, depth=st.integers(2, 4), seed=st.integers(0, 2**16))
def test_shared_singular_vectors_closed_form(pair, depth, seed):
    """X = U Sx V^T, Y = U Sy V^T: Log = U diag(N lx^{N-1}(ly - lx)) V^T (math.md §4.5),
    checked against the ODE: Exp_X(Log_X(Y)) = Y to 1e-10, and against the formula."""
    rng = np.random.default_rng(seed)
    sx, sy = (np.asarray(s) for s in pair)
    n = sx.size
    u, v = _orthogonal(n, rng), _orthogonal(n, rng)
    x, y = (u * sx) @ v.T, (u * sy) @ v.T
    log = dln_log(y, x, depth)
    lx, ly = sx ** (1 / depth), sy ** (1 / depth)
    assert np.allclose(log, (u * (depth * lx ** (depth - 1) * (ly - lx))) @ v.T, atol=1e-12)
    assert np.max(np.abs(dln_exp(x, log, depth) - y)) <= 1e-10


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(2, 3))
def test_depth_two_same_polar_factor_is_bures_wasserstein(seed, n):
    """N = 2, X = O Px, Y = O Py: Log = O((Px Py)^{1/2} + (Py Px)^{1/2} - 2 Px) agrees with
    the ODE (Exp(Log) = Y) and with plain shooting; g^2 = 2 BW on SPD: |Log|^2 = 2 BW^2."""
    rng = np.random.default_rng(seed)
    o = _orthogonal(n, rng)
    px, py = _spd(n, rng), _spd(n, rng)
    x, y = o @ px, o @ py
    log = dln_log(y, x, 2)
    assert np.max(np.abs(dln_exp(x, log, 2) - y)) <= 1e-10
    assert np.max(np.abs(_numerical_log(y, x, 2) - log)) <= 1e-9
    e, q = np.linalg.eigh(px)
    rx = (q * np.sqrt(e)) @ q.T
    e, q = np.linalg.eigh(rx @ py @ rx)
    bw2 = np.trace(px) + np.trace(py) - 2 * np.sum(np.sqrt(e))
    assert np.isclose(dln_inner(x, log, log, 2), 2 * bw2, rtol=1e-9)


def test_depth_one_is_the_segment():
    rng = np.random.default_rng(0)
    x = np.eye(3) + 0.2 * rng.standard_normal((3, 3))
    y = np.eye(3) + 0.2 * rng.standard_normal((3, 3))
    assert np.allclose(dln_log(y, x, 1), y - x, atol=1e-15)
    assert np.allclose(dln_exp(x, y - x, 1), y, atol=1e-15)
    with pytest.raises(GeodesicError, match="singular"):
        dln_exp(np.eye(2), np.diag([-2.0, 0.0]), 1)


# ---- shooting -----------------------------------------------------------------------------


@settings(max_examples=10, deadline=None)
@given(
    sigma=st.sampled_from([(1.0, 1.0, 1.0), (1.8, 1.0, 0.4), (1.0, 1.0 + 1e-9, 0.7), (2.0, 0.02)]),
    depth=st.integers(2, 4),
    length=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**16),
)
def test_exp_after_log_is_identity(sigma, depth, length, seed):
    """Random pairs at g^N distance <= 1 (the benchmark's): Exp_X(Log_X(Y)) = Y to 1e-9 and
    Log_X(Exp_X(V)) = V; repeated and nearly repeated sigma included."""
    rng = np.random.default_rng(seed)
    n = len(sigma)
    x = (_orthogonal(n, rng) * np.asarray(sigma)) @ _orthogonal(n, rng).T
    v = rng.standard_normal((n, n))
    v *= length * min(1.0, np.min(sigma) ** (1 / depth)) / np.sqrt(dln_inner(x, v, v, depth))
    y = dln_exp(x, v, depth)
    log = dln_log(y, x, depth)
    assert np.max(np.abs(dln_exp(x, log, depth) - y)) <= 1e-9 * max(1.0, np.max(np.abs(y)))
    assert np.max(np.abs(log - v)) <= 1e-8


def test_distance_is_symmetric():
    rng = np.random.default_rng(3)
    x = expm(0.25 * rng.standard_normal((3, 3)))
    y = dln_exp(x, 0.4 * rng.standard_normal((3, 3)), 3)
    forward, backward = dln_log(y, x, 3), dln_log(x, y, 3)
    assert np.isclose(
        dln_inner(x, forward, forward, 3), dln_inner(y, backward, backward, 3), rtol=1e-9
    )


def test_batched_log_matches_pairwise():
    rng = np.random.default_rng(4)
    x = np.stack([expm(0.25 * rng.standard_normal((3, 3))) for _ in range(3)])
    v = 0.3 * rng.standard_normal((3, 3, 3))
    y = dln_exp(x, v, 3)
    batched = dln_log(y, x, 3)
    assert np.max(np.abs(batched - v)) <= 1e-9
    assert np.max(np.abs(batched[1] - dln_log(y[1], x[1], 3))) <= 1e-10


@pytest.mark.parametrize("scale", [1e-150, 1e150])
def test_scaling_is_a_homothety(scale):
    """Exp_{cX}(cV) = c Exp_X(V), Log_{cX}(cY) = c Log_X(Y): extreme scales work."""
    rng = np.random.default_rng(5)
    x = expm(0.25 * rng.standard_normal((3, 3)))
    v = 0.3 * rng.standard_normal((3, 3))
    y = dln_exp(x, v, 3)
    assert np.max(np.abs(dln_exp(scale * x, scale * v, 3) / scale - y)) <= 1e-10
    assert np.max(np.abs(dln_log(scale * y, scale * x, 3) / scale - v)) <= 1e-9


def test_continuation_recovers_when_direct_shooting_fails(monkeypatch):
    """If the direct Newton solve fails, continuation along O(s)P(s) still finds the log."""
    rng = np.random.default_rng(6)
    x = expm(0.25 * rng.standard_normal((3, 3)))
    v = 0.5 * rng.standard_normal((3, 3))
    y = dln_exp(x, v, 3)
    real_newton, calls = geo._newton, []

    def first_call_fails(pairs, idx, p, *args, **kwargs):
        calls.append(1)
        out = real_newton(pairs, idx, p, *args, **kwargs)
        if len(calls) == 1:
            return out[0], out[1], out[2], np.zeros_like(out[3])
        return out

    monkeypatch.setattr(geo, "_newton", first_call_fails)
    log = dln_log(y, x, 3)
    assert len(calls) > 2  # direct attempt, continuation stages, final solve
    assert np.max(np.abs(log - v)) <= 1e-8


def test_far_apart_pairs_end_with_a_result_or_a_geodesic_error():
    """Gaussian pairs (often far apart, near singular): a log that reproduces Y, or a
    GeodesicError carrying the residual reached, within the caps."""
    rng = np.random.default_rng(7)
    outcomes = []
    for _ in range(3):
        x, y = rng.standard_normal((2, 3, 3))
        if np.linalg.det(x) * np.linalg.det(y) < 0:
            y[0] *= -1
        try:
            log = dln_log(y, x, 3, max_time=0.5)
        except GeodesicError as exc:
            assert "residual" in str(exc)
            assert np.isfinite(exc.residual) or np.isnan(exc.residual)
            outcomes.append("error")
        else:
            assert np.max(np.abs(dln_exp(x, log, 3) - y)) <= 1e-9 * max(1, np.max(np.abs(y)))
            outcomes.append("ok")
    assert len(outcomes) == 3


def test_max_iter_cap_reports_the_residual():
    rng = np.random.default_rng(8)
    x = expm(0.25 * rng.standard_normal((3, 3)))
    y = dln_exp(x, 1.2 * rng.standard_normal((3, 3)) / 3, 3)
    with pytest.raises(GeodesicError, match="residual") as info:
        dln_log(y, x, 3, max_iter=1)
    assert info.value.residual > 0


# ---- bad input: rejected before any integration ---------------------------------------


def test_opposite_determinants_rejected_before_integrating(no_integration):
    x = np.eye(3)
    y = np.diag([1.0, 2.0, -1.0])
    with pytest.raises(ValueError, match="opposite sign"):
        dln_log(y, x, 3)
    with pytest.raises(ValueError, match=r"opposite sign.*batch entry \(1,\)"):
        dln_log(np.stack([2 * x, y]), x, 3)


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.full((3, 3), np.nan), "finite"),
        (np.diag([1.0, 1.0, 0.0]), "invertible"),
        (np.diag([1.0, 1.0, 1e-15]), "invertible"),
        (np.ones((2, 3)), "square"),
    ],
)
def test_bad_points_rejected_before_integrating(no_integration, bad, match):
    good = np.eye(3) if bad.shape == (3, 3) else np.eye(2)
    with pytest.raises(ValueError, match=match):
        dln_log(bad, good if bad.shape[0] == bad.shape[1] else bad, 3)
    if bad.shape[0] == bad.shape[1]:
        with pytest.raises(ValueError, match=match):
            dln_exp(bad, good, 3)


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"max_time": 0.0}, ValueError),
        ({"max_time": "5"}, TypeError),
        ({"max_iter": 0}, ValueError),
    ],
)
def test_bad_caps_rejected(no_integration, kwargs, error):
    with pytest.raises(error, match=next(iter(kwargs))):
        dln_log(2 * np.eye(2), np.eye(2), 3, **kwargs)


def _balanced(x, depth, rng=None):
    return np.stack(balanced_factors(x, depth, rng=rng))


def test_unbalanced_or_other_component_rejected_before_integrating(no_integration):
    rng = np.random.default_rng(9)
    w = _balanced(expm(0.25 * rng.standard_normal((3, 3))), 3)
    off = w.copy()
    off[1, 0, 1] += 1e-7
    with pytest.raises(ValueError, match="not on the balanced manifold"):
        balanced_log_stacked(off, w)
    with pytest.raises(ValueError, match="finite"):
        balanced_log_stacked(np.full_like(w, np.nan), w)
    flipped = w.copy()
    flipped[0] = np.diag([-1.0, 1.0, 1.0]) @ w[0]  # Q_1 -> D Q_1: a point of another component
    flipped[1] = w[1] @ np.diag([-1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="different components"):
        balanced_log_stacked(flipped, w)


def test_balanced_log_far_gauges_and_homothety():
    """Same component, Haar-random inner frames (far apart in the fiber): exp(log) = W1 to
    1e-9, and Log_{cW0}(cW1) = c Log_{W0}(W1) at c = 1e100."""
    rng = np.random.default_rng(10)
    x0 = expm(0.25 * rng.standard_normal((2, 2)))
    x1 = expm(0.25 * rng.standard_normal((2, 2)))
    w0 = _balanced(x0, 3)
    while True:  # Haar gauges until the layer determinant signs match those of w0
        w1 = _balanced(x1, 3, rng=rng)
        if np.all(np.linalg.det(w1) * np.linalg.det(w0) > 0):
            break
    try:
        log = balanced_log_stacked(w1, w0, max_time=3.0)
    except GeodesicError as exc:  # allowed: capped, with the residual
        assert "residual" in str(exc)
        return
    assert np.max(np.abs(balanced_exp_stacked(w0, log) - w1)) <= 1e-9
    assert np.max(np.abs(balanced_log_stacked(1e100 * w1, 1e100 * w0) / 1e100 - log)) <= 1e-8
    assert np.allclose(_end_to_end(list(balanced_exp_stacked(w0, log))), x1, atol=1e-9)


# ---- the integrator's pieces (shooting's fast paths) ----------------------------------------


@pytest.mark.parametrize(
    "sigma",
    [(1.0, 1.0, 1.0, 1.0), (1.0, 1.0, 0.3, 0.3), (1.0, 0.5, 1e-3, 1e-6), (2.0, 1.0 + 1e-9, 1.0)],
)
@pytest.mark.parametrize("depth", [2, 3, 5])
def test_one_frame_field_equals_the_two_frame_field(sigma, depth):
    """On M, V = X^T U Sigma^{-1} and nu = mu: the one-eigh field of the loose stages equals
    the two-eigh one (repeated, nearly repeated and 1e-6-spread sigma): A_X of the two Pdot
    agree to eps * cond (backward), the Pdot themselves to eps * cond^2 (A_X^{-1} is that
    ill-conditioned)."""
    rng = np.random.default_rng(len(sigma) + depth)
    n = len(sigma)
    x = (_orthogonal(n, rng) * np.asarray(sigma)) @ _orthogonal(n, rng).T
    w = geo.canonical_lift_stacked(x, depth)
    # A generic point of M over x (not the canonical gauge): rotate the inner frames.
    for p in range(depth - 1):
        q = _orthogonal(n, rng)
        w[p] = q @ w[p]
        w[p + 1] = w[p + 1] @ q.T
    p = rng.standard_normal((n, n))
    xi_a, pdot_a = geo._horizontal_geodesic_field(w, p)
    xi_b, pdot_b = geo._horizontal_geodesic_field(w, p, one_frame=True)
    cond = max(sigma) / min(sigma)
    assert np.array_equal(xi_a, xi_b)
    u, s, vt = np.linalg.svd(x)
    kernel = geo._kernel(s, depth)
    back_a = geo._apply_operator(u, kernel, vt, pdot_a, 1.0)
    back_b = geo._apply_operator(u, kernel, vt, pdot_b, 1.0)
    assert np.max(np.abs(back_a - back_b)) <= 1e-13 * cond * np.max(np.abs(back_a))
    assert np.max(np.abs(pdot_a - pdot_b)) <= 1e-14 * cond**2 * np.max(np.abs(pdot_a))


def test_fixed_step_rk4_is_fourth_order_on_the_geodesic_flow():
    """The RK4 probes of the shooting Jacobian: the end-point error against DOP853 at 1e-13
    drops by 2^4 per halving of the step (classical RK4)."""
    rng = np.random.default_rng(4)
    x = expm(0.25 * rng.standard_normal((4, 4)))
    w0 = geo.canonical_lift_stacked(x, 3)
    v = rng.standard_normal((4, 4))
    v *= 0.8 / np.sqrt(dln_inner(x, v, v, 3))
    u, s, vt = np.linalg.svd(x)
    p0 = geo._apply_operator(u, geo._kernel(s, 3), vt, v, -1.0)
    exact = geo._exp_momentum(w0, p0, 1e-13)
    errors = [np.max(np.abs(geo._exp_momentum(w0, p0, 1.0, steps=m) - exact)) for m in (4, 8, 16)]
    for coarse, fine in zip(errors, errors[1:]):
        assert 11.0 <= coarse / fine <= 22.0


def test_weingarten_field_is_normal_and_keeps_the_balance():
    """Wddot = C_W(S) (vectorised field): orthogonal to T_W M, and the second derivative of
    G along the curve vanishes, DG_W(Wddot) + 2 G(xi) = 0 with G(xi)_p = xi_(p+1)^T xi_(p+1)
    - xi_p xi_p^T (math.md §2.4); batched entries equal the single ones."""
    rng = np.random.default_rng(5)
    ws, xis = [], []
    for _ in range(3):
        x = expm(0.4 * rng.standard_normal((3, 3)))
        w = _balanced(x, 3, rng=rng)
        basis = geo.tangent_basis(w)
        xi = (basis @ rng.standard_normal(basis.shape[1])).reshape(w.shape)
        _, acc = geo._balanced_geodesic_field(w, xi)
        assert np.max(np.abs(basis.T @ acc.ravel())) <= 1e-12 * np.max(np.abs(acc))
        for p in range(2):
            dg = (
                acc[p + 1].T @ w[p + 1]
                + w[p + 1].T @ acc[p + 1]
                - acc[p] @ w[p].T
                - w[p] @ acc[p].T
            )
            g = xi[p + 1].T @ xi[p + 1] - xi[p] @ xi[p].T
            assert np.max(np.abs(dg + 2.0 * g)) <= 1e-11 * max(1.0, np.max(np.abs(g)))
        ws.append(w)
        xis.append(xi)
    _, batched = geo._balanced_geodesic_field(np.stack(ws), np.stack(xis))
    for w, xi, acc in zip(ws, xis, batched):
        assert np.allclose(geo._balanced_geodesic_field(w, xi)[1], acc, rtol=0, atol=1e-13)


@settings(max_examples=6, deadline=None)
@given(
    sigma=st.sampled_from(
        [
            (1.0, 1.0, 1.0, 1.0),
            (1.6, 1.0, 1.0, 0.3),
            (2.0, 1.0, 0.5, 0.05),
            (1.3, 1.0, 0.8, 0.6, 0.5),
        ]
    ),
    depth=st.integers(3, 4),
    length=st.floats(0.05, 1.0),
    seed=st.integers(0, 2**16),
)
def test_exp_after_log_is_identity_with_rk4_jacobians(sigma, depth, length, seed):
    """d >= 4 (d^2 >= 16 unknowns: RK4 Jacobian probes, its Newton step, cheap then accurate
    chord steps): Exp_X(Log_X(Y)) = Y to 1e-9 and Log_X(Exp_X(V)) = V, repeated sigma and
    sigma_min / sigma_max = 0.025 included."""
    rng = np.random.default_rng(seed)
    n = len(sigma)
    x = (_orthogonal(n, rng) * np.asarray(sigma)) @ _orthogonal(n, rng).T
    v = rng.standard_normal((n, n))
    v *= length * min(1.0, np.min(sigma) ** (1 / depth)) / np.sqrt(dln_inner(x, v, v, depth))
    y = dln_exp(x, v, depth)
    log = _numerical_log(y, x, depth)
    assert np.max(np.abs(dln_exp(x, log, depth) - y)) <= 1e-9 * max(1.0, np.max(np.abs(y)))
    assert np.max(np.abs(log - v)) <= 1e-8
