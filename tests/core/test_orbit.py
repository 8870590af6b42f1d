"""Orthogonal-group orbits in the balanced manifold (math.md §2.4, §6; rows C3, C5, C13)."""

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds.core.balanced import balanced_factors, balanced_frames, haar_stiefel
from dlnmanifolds.core.balanced_tangent import horizontal_projection, tangent_projection
from dlnmanifolds.core.fiber import fiber_projection
from dlnmanifolds.core.network import _dphi, _end_to_end, _imbalance
from dlnmanifolds.core.orbit import (
    orbit_dimension,
    orbit_generator,
    orbit_generators,
    orbit_hessian,
    orbit_projection,
    orbit_retraction,
    orthogonal_action,
)
from tests.helpers import (
    assert_hessian_is_projected_derivative,
    balanced_point,
    dense_matrix,
    flatten,
    matrix_with_spectrum,
    random_layers,
)

# (widths, rank, sigma): main case, repeated sigma, general widths, rank deficient.
CASES = [
    ((3, 3, 3, 3), 3, None),
    ((3, 3, 3, 3), 3, [2.0, 1.0, 1.0]),
    ((4, 4, 4), 4, [1.0, 1.0, 1.0, 1.0]),
    ((3, 5, 4, 2), 2, None),
    ((4, 6, 5, 4), 2, [1.5, 0.7]),
    ((2, 3, 5, 4, 3), 2, None),
]


def point(widths, rank, sigma, rng):
    if sigma is None:
        sigma = np.sort(rng.uniform(0.5, 2.0, rank))[::-1]
    x = matrix_with_spectrum(widths[-1], widths[0], sigma, rng)
    return list(balanced_factors(x, len(widths) - 1, widths, rng))


def random_skews(widths, rng):
    out = []
    for d in widths[1:-1]:
        a = rng.standard_normal((d, d))
        out.append(a - a.T)
    return out


@pytest.mark.parametrize("widths,rank,sigma", CASES)
def test_projection_equals_vertical_projection(widths, rank, sigma, rng):
    """P_V = P_T - P_H (math.md §2.4) at every case; projector of rank dim O (C13)."""
    w = point(widths, rank, sigma, rng)
    frames = balanced_frames(w, rank)
    xi = random_layers(widths, rng)
    pv = orbit_projection(w, xi)
    if rank == min(widths[0], widths[-1]):  # P_H needs full-rank phi
        pt = tangent_projection(frames, xi)
        ref = [a - b for a, b in zip(pt, horizontal_projection(w, pt))]
        assert np.abs(flatten(pv) - flatten(ref)).max() <= 1e-12 * np.abs(flatten(xi)).max()
    proj = dense_matrix(lambda v: orbit_projection(w, v), w)
    assert np.abs(proj - proj.T).max() <= 1e-12
    assert np.abs(proj @ proj - proj).max() <= 1e-12
    assert np.linalg.matrix_rank(proj, tol=1e-8) == orbit_dimension(widths, rank)
    # V_W is tangent to M and lies in ker Dphi.
    assert np.abs(flatten(tangent_projection(frames, pv)) - flatten(pv)).max() <= 1e-12
    assert np.abs(_dphi(w, pv)).max() <= 1e-12


def test_orbit_dimensions_c13():
    """C13: orbit dimensions 12, 16, 15 for the general-width cases; (N-1)d(d-1)/2 square."""
    assert orbit_dimension((3, 5, 4, 2), 2) == 12
    assert orbit_dimension((4, 6, 5, 4), 2) == 16
    assert orbit_dimension((2, 3, 5, 4, 3), 2) == 15
    assert orbit_dimension((3, 3, 3, 3), 3) == 2 * 3


@pytest.mark.parametrize("widths,rank,sigma", CASES)
def test_action_generator_and_retraction(widths, rank, sigma, rng):
    """Q.W is balanced with the same phi; C_W(Omega) = d/dt e^{t Omega}.W; the
    exponential retraction stays balanced (1e-14) with phi kept, first order."""
    w = point(widths, rank, sigma, rng)
    x = _end_to_end(w)
    rotations = [haar_stiefel(d, d, rng) for d in widths[1:-1]]
    moved = orthogonal_action(w, rotations)
    assert _imbalance(moved) <= 1e-13
    assert np.abs(_end_to_end(moved) - x).max() <= 1e-13
    skews = random_skews(widths, rng)
    h = 1e-5
    plus = orthogonal_action(w, [scipy.linalg.expm(h * a) for a in skews])
    minus = orthogonal_action(w, [scipy.linalg.expm(-h * a) for a in skews])
    fd = flatten([(p - m) / (2 * h) for p, m in zip(plus, minus)])
    exact = flatten(orbit_generator(w, skews))
    assert np.linalg.norm(fd - exact) <= 1e-8 * np.linalg.norm(exact)
    xi = orbit_projection(w, random_layers(widths, rng))
    xi = [v / np.linalg.norm(flatten(xi)) for v in xi]
    for t in (1.0, 0.1):
        y = orbit_retraction(w, [t * v for v in xi])
        assert _imbalance(y) <= 1e-14 * 10
        assert np.abs(_end_to_end(y) - x).max() <= 1e-13
    ts = np.logspace(-4, -2, 5)
    errs = [
        np.linalg.norm(
            flatten(orbit_retraction(w, [t * v for v in xi])) - flatten(w) - t * flatten(xi)
        )
        for t in ts
    ]
    assert np.polyfit(np.log(ts), np.log(errs), 1)[0] == pytest.approx(2.0, abs=0.05)


def test_generators_recovered_main_case(rng):
    """The action is free in the main case: orbit_generators(C_W(Omega)) = Omega."""
    w = balanced_point((3, 3, 3, 3, 3), rng)
    skews = random_skews((3, 3, 3, 3, 3), rng)
    back = orbit_generators(w, orbit_generator(w, skews))
    assert np.abs(flatten(back) - flatten(skews)).max() <= 1e-11


def test_orbit_is_fiber_intersect_balanced(rng):
    """C13: two balanced factorizations of X with aligned Q_0 differ by O_p = Q'_p Q_p^T;
    the orbit tangent is the fiber tangent intersected with T_W M."""
    x = matrix_with_spectrum(3, 3, [2.0, 1.2, 0.5], rng)
    w = balanced_factors(x, 4, rng=rng)
    other = balanced_factors(x, 4, rng=rng)
    fw, fo = balanced_frames(w), balanced_frames(other)
    rotations = [fo.q[p] @ fw.q[p].T for p in range(1, 4)]
    back = orthogonal_action(w, rotations)
    assert np.abs(flatten(back) - flatten(other)).max() <= 1e-12
    xi = random_layers((3,) * 5, rng)
    pv = orbit_projection(w, xi)
    # P_F P_T restricted: V = T_W F ∩ T_W M, so P_V xi is fixed by both projections.
    assert np.abs(flatten(fiber_projection(w, pv)) - flatten(pv)).max() <= 1e-12


def _orbit_test_function(widths, rng):
    b = random_layers(widths, rng)
    c = [rng.standard_normal((d, d)) for d in widths[1:]]

    def egrad(w):
        return [bb + 0.1 * v @ v.T @ v + (cc + cc.T) @ v for v, bb, cc in zip(w, b, c)]

    def ehess(w, xi):
        return [
            0.1 * (x @ v.T @ v + v @ x.T @ v + v @ v.T @ x) + (cc + cc.T) @ x
            for v, x, cc in zip(w, xi, c)
        ]

    return egrad, ehess


@pytest.mark.parametrize("widths,rank,sigma", CASES)
def test_hessian_matches_fd_along_retraction_and_is_self_adjoint(widths, rank, sigma, rng):
    """Weingarten Hessian vs central FD (t = 1e-5) of P_V grad f along the retraction,
    projected (the C3 protocol), 1e-6 relative; self-adjoint to 1e-10."""
    w = point(widths, rank, sigma, rng)
    egrad, ehess = _orbit_test_function(widths, rng)
    xi = orbit_projection(w, random_layers(widths, rng))
    eta = orbit_projection(w, random_layers(widths, rng))
    assert_hessian_is_projected_derivative(
        w, xi, eta, orbit_projection, orbit_retraction, orbit_hessian, egrad, ehess
    )


spectra = st.lists(
    st.one_of(st.floats(0.3, 3.0), st.sampled_from([1.0, 1.0 + 1e-12, 1e-5, 1e-7, 1e-12])),
    min_size=2,
    max_size=3,
)


@given(
    sigma=spectra,
    depth=st.sampled_from([2, 3, 4, 8, 16]),
    extra=st.sampled_from([(), (1, 0), (2, 1, 0)]),
    seed=st.integers(0, 2**31),
)
def test_repeated_and_tiny_singular_values(sigma, depth, extra, seed):
    """Repeated, nearly repeated and tiny sigma (down to 1e-12 sigma_max), N <= 16, square
    and wider inner layers: the orbit projection is idempotent, self-adjoint, tangent to M
    and vertical (Dphi P_V = 0) to 1e-12; the retraction stays balanced (issue 14, F3: the
    old frame recovery made these errors grow like eps (sigma_max/sigma_min)^2)."""
    gen = np.random.default_rng(seed)
    sigma = np.sort(np.array(sigma))[::-1]
    d = sigma.size
    inner = [d + extra[p % len(extra)] if extra else d for p in range(depth - 1)]
    widths = (d, *inner, d)
    w = balanced_point(widths, gen, sigma)
    frames = balanced_frames(w)
    a, b = random_layers(widths, gen), random_layers(widths, gen)
    xi, pb = orbit_projection(w, a), orbit_projection(w, b)
    assert np.all(np.isfinite(flatten(xi)))
    scale = max(1.0, np.abs(flatten(a)).max())
    assert np.abs(flatten(orbit_projection(w, xi)) - flatten(xi)).max() <= 1e-12 * scale
    lhs, rhs = flatten(xi) @ flatten(b), flatten(a) @ flatten(pb)
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))
    assert np.abs(flatten(tangent_projection(frames, xi)) - flatten(xi)).max() <= 1e-12 * scale
    assert np.abs(_dphi(w, xi)).max() <= 1e-12 * scale * max(1.0, sigma[0])
    y = orbit_retraction(w, xi)
    assert np.all(np.isfinite(flatten(y)))
    # exactly balanced in exact arithmetic; the round-off of expm grows with the angle,
    # and generators of pairs of tiny singular values are ~ 1/lam^2 large
    angle = max(1.0, max(np.abs(g).max() for g in orbit_generators(w, xi)))
    assert _imbalance(y) <= 1e-12 * max(1.0, sigma[0] ** (2 / depth)) * angle
    hess = orbit_hessian(w, xi, xi, xi)
    assert np.all(np.isfinite(flatten(hess)))


def test_bad_input(rng):
    w = balanced_point((3, 3, 3, 3), rng)
    unbalanced = random_layers((3, 3, 3, 3), rng)
    with pytest.raises(ValueError, match="balanced.*measured max \\|G_p\\| = [0-9.]+"):
        orbit_projection(unbalanced, unbalanced)
    with pytest.raises(ValueError, match="balanced"):
        orbit_retraction(unbalanced, unbalanced)
    with pytest.raises(ValueError, match="widths"):
        orbit_projection(w, random_layers((3, 2, 3, 3), rng))
    with pytest.raises(ValueError, match="orthogonal"):
        orthogonal_action(w, [np.eye(3), 2 * np.eye(3)])
    with pytest.raises(ValueError, match="N-1 = 2"):
        orthogonal_action(w, [np.eye(3)])
    with pytest.raises(ValueError, match="skew"):
        orbit_generator(w, [np.eye(3), np.zeros((3, 3))])
    with pytest.raises(ValueError, match="finite"):
        orbit_hessian(w, w, w, [np.full((3, 3), np.inf)] * 3)
