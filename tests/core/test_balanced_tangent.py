"""Tangent, normal, horizontal and vertical spaces of M (math.md §2.3–2.4; C3, C10, C13)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds import dln_inner, dln_operator, dphi, dphi_adjoint, end_to_end
from dlnmanifolds.core.balanced import balanced_frames
from dlnmanifolds.core.balanced_tangent import (
    horizontal_lift,
    horizontal_projection,
    normal_generator,
    normal_multipliers,
    tangent_projection,
)
from dlnmanifolds.pymanopt.balanced import balanced_dimension
from tests.helpers import (
    balanced_point,
    dense_matrix,
    dg,
    flatten,
    parametrisation_span,
    random_layers,
    span_projection,
    unflatten,
)

SQUARE_SPECTRA = [
    ((3, 3, 3, 3), (2.0, 1.0, 1.0)),
    ((4, 4, 4, 4, 4), (1.0, 1.0, 1.0, 1.0)),
    ((4, 4, 4, 4), (2.0, 2.0, 0.7, 0.7)),
    ((3, 3, 3), None),
    ((2, 2, 2, 2, 2, 2), (1.0, 1.0)),
]
GENERAL = [(3, 5, 4, 2), (4, 6, 5, 4), (2, 3, 5, 4, 3), (5, 3), (3, 4, 4, 3)]


def ker_dg_projection(w):
    jac = dense_matrix(lambda xi: dg(w, xi), w)
    _, s, vt = np.linalg.svd(jac)
    rank = int(np.sum(s > 1e-10 * s[0]))
    null = vt[rank:].T
    return null @ null.T, rank


@pytest.mark.parametrize("widths,sigma", SQUARE_SPECTRA)
def test_frame_projection_equals_ker_dg_projection(widths, sigma, rng):
    """C10: Jacobi frame projection = ker DG projection (main case, incl. repeated
    singular values), idempotent, residual in C_W(Sym) (1e-12)."""
    w = balanced_point(widths, rng, sigma=sigma)
    frames = balanced_frames(w)
    dense, _ = ker_dg_projection(w)
    xi = random_layers(widths, rng)
    p = tangent_projection(frames, xi)
    assert np.max(np.abs(flatten(p) - dense @ flatten(xi))) <= 1e-12
    pp = tangent_projection(frames, p)
    assert max(np.max(np.abs(a - b)) for a, b in zip(p, pp)) <= 1e-12
    residual = [a - b for a, b in zip(xi, p)]
    generated = normal_generator(w, normal_multipliers(frames, xi))
    assert max(np.max(np.abs(a - b)) for a, b in zip(residual, generated)) <= 1e-12


@pytest.mark.parametrize("widths", [(3, 3, 3), (4, 4, 4, 4, 4)])
def test_dimension_main_case(widths, rng):
    """C3: dim M = d^2 + (N-1)d(d-1)/2 = dim ker DG; rank DG = (N-1)d(d+1)/2."""
    w = balanced_point(widths, rng)
    d, depth = widths[0], len(widths) - 1
    dense, rank = ker_dg_projection(w)
    assert rank == (depth - 1) * d * (d + 1) // 2
    assert round(np.trace(dense)) == d * d + (depth - 1) * d * (d - 1) // 2
    assert balanced_dimension(widths, d) == round(np.trace(dense))


@pytest.mark.parametrize("widths", GENERAL)
def test_general_widths_projection_equals_parametrisation_span(widths, rng):
    """C10/C3: frame projection = projection onto the span of the frame
    parametrisation; its rank is dim M_r (math.md §2.3)."""
    w = balanced_point(widths, rng)
    frames = balanced_frames(w)
    reference = span_projection(parametrisation_span(w, frames))
    r = min(widths[0], widths[-1])
    assert round(np.trace(reference)) == balanced_dimension(widths, r)
    xi = random_layers(widths, rng)
    p = tangent_projection(frames, xi)
    assert np.max(np.abs(flatten(p) - reference @ flatten(xi))) <= 1e-12
    # the frame projector's own rank is dim M_r
    projector = dense_matrix(lambda v: tangent_projection(frames, v), w)
    assert np.linalg.matrix_rank(projector, tol=1e-8) == balanced_dimension(widths, r)
    assert np.allclose(projector, projector.T, atol=1e-12)


def test_dimension_counts_general_widths():
    """C3: dim M_r = r + sum_p (d_p r - r(r+1)/2): 18, 28, 14."""
    assert balanced_dimension((3, 5, 4, 2), 2) == 18
    assert balanced_dimension((4, 6, 5, 4), 2) == 28
    assert balanced_dimension((3, 3, 3, 3), 2) == 14


@pytest.mark.parametrize("widths", [(3, 3, 3, 3), (3, 5, 4, 2), (2, 3, 5, 4, 3)])
def test_horizontal_vertical_split(widths, rng):
    """C3: H ⊥ V, H, V ⊂ T_W M, dim H + dim V = dim T; dim V = orbit dimension (C13)."""
    w = balanced_point(widths, rng)
    frames = balanced_frames(w)
    xi = tangent_projection(frames, random_layers(widths, rng))
    h = horizontal_projection(w, xi)
    v = [a - b for a, b in zip(xi, h)]
    assert abs(sum(np.sum(a * b) for a, b in zip(h, v))) <= 1e-12
    for part in (h, v):
        back = tangent_projection(frames, part)
        assert max(np.max(np.abs(a - b)) for a, b in zip(back, part)) <= 1e-12
    assert np.max(np.abs(dphi(w, v))) <= 1e-12
    ph = dense_matrix(lambda t: horizontal_projection(w, tangent_projection(frames, t)), w)
    pt = dense_matrix(lambda t: tangent_projection(frames, t), w)
    r = min(widths[0], widths[-1])
    dim_h = np.linalg.matrix_rank(ph, tol=1e-8)
    dim_v = np.linalg.matrix_rank(pt - ph, tol=1e-8)
    assert dim_h == r * (widths[0] + widths[-1] - r)
    assert dim_v == sum(d * r - r * (r + 1) // 2 for d in widths[1:-1])
    assert dim_h + dim_v == balanced_dimension(widths, r)


@pytest.mark.parametrize("widths", [(3, 3, 3, 3), (3, 5, 4, 2), (4, 6, 5, 4), (2, 4, 3)])
def test_submersion_identities(widths, rng):
    """C3/C13: ||Dphi^* Z||^2 = <Z, A Z> = g(AZ, AZ); Dphi Dphi^* = A; the lift is
    horizontal with ||zeta^h||^2 = g(zeta, zeta)."""
    w = balanced_point(widths, rng)
    x = end_to_end(w)
    depth = len(w)
    z = rng.standard_normal(x.shape)
    az = dln_operator(x, z, depth)
    lifted = dphi_adjoint(w, z)
    norm2 = sum(np.sum(a * a) for a in lifted)
    assert np.isclose(norm2, np.sum(z * az), rtol=1e-11)
    assert np.isclose(norm2, dln_inner(x, az, az, depth), rtol=1e-11)
    assert np.linalg.norm(dphi(w, lifted) - az) <= 1e-11 * np.linalg.norm(az)
    zeta = rng.standard_normal(x.shape)
    lift = horizontal_lift(w, zeta)
    assert np.allclose(dphi(w, lift), zeta, atol=1e-11)
    assert np.isclose(sum(np.sum(a * a) for a in lift), dln_inner(x, zeta, zeta, depth), rtol=1e-11)


def test_horizontal_lift_frame_formula(rng):
    """C13: zeta^h_p = Q_p Lambda^{N-p} (zeta~ ⊘ K) Lambda^{p-1} Q_{p-1}^T (square (3,4))."""
    from dlnmanifolds.core.kernel import kernel_matrix

    widths = (3, 3, 3, 3, 3)
    depth = 4
    w = balanced_point(widths, rng)
    frames = balanced_frames(w)
    zeta = rng.standard_normal((3, 3))
    lam = frames.lam
    k = kernel_matrix(lam**depth, (3, 3), depth)
    zt = frames.q[-1].T @ zeta @ frames.q[0]
    expected = [
        frames.q[p]
        @ np.diag(lam ** (depth - p))
        @ (zt / k)
        @ np.diag(lam ** (p - 1))
        @ frames.q[p - 1].T
        for p in range(1, depth + 1)
    ]
    for a, b in zip(horizontal_lift(w, zeta), expected):
        assert np.max(np.abs(a - b)) <= 1e-13 * max(1, np.max(np.abs(b))) * 10


def test_horizontal_straight_lines_stay_balanced(rng):
    """C3: W_p + t Q_p D Q_{p-1}^T (D diagonal) stays balanced."""
    from dlnmanifolds import imbalance

    w = balanced_point((3, 5, 4, 2), rng)
    frames = balanced_frames(w)
    d = np.diag(rng.uniform(0.1, 0.3, frames.rank))
    for t in (0.1, 0.3):
        moved = [w[p - 1] + t * frames.q[p] @ d @ frames.q[p - 1].T for p in range(1, 4)]
        assert imbalance(moved) <= 1e-12


def adversarial_spectrum(kind: str, r: int, rng) -> np.ndarray:
    """Spectra down to sigma_min = 1e-12 sigma_max, repeated and nearly repeated."""
    return {
        "generic": np.sort(rng.uniform(0.5, 2.0, r))[::-1],
        "repeated": np.ones(r),
        "near": 1.0 + 1e-9 * np.arange(r)[::-1],
        "tiny": np.geomspace(1.0, 1e-12, r),
        "tiny_repeated": np.r_[1.0, np.full(r - 1, 1e-12)],
        "big_repeated_tiny": np.r_[np.ones(r - 1), 1e-12],
    }[kind]


SPECTRA = ["generic", "repeated", "near", "tiny", "tiny_repeated", "big_repeated_tiny"]
SHAPES = [
    (3, 3, 3, 3),
    (2, 2, 2),
    (3, 3),
    (3, 5, 4, 2),
    (2, 4, 3, 5, 3),
    (4, 4, 4, 4, 4, 4, 4),
    (3,) * 17,
    (2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2),
]


@given(st.integers(0, 2**32 - 1), st.sampled_from(SHAPES), st.sampled_from(SPECTRA))
def test_projection_properties_hypothesis(seed, widths, spectrum):
    """Issue 14 F3: for sigma_min down to 1e-12 sigma_max, repeated spectra, N <= 16 and
    non-square widths the frames are orthonormal and rebuild W to 1e-13 |W|, and the
    projection is idempotent, self-adjoint and tangent (DG(W)[P xi] = 0), all to 1e-12.
    The old recovery Q_p = W_p Q_{p-1} Lambda^{-1} failed all of these at 1e-6."""
    rng = np.random.default_rng(seed)
    r = min(widths[0], widths[-1])
    w = balanced_point(widths, rng, sigma=adversarial_spectrum(spectrum, r, rng))
    frames = balanced_frames(w)
    assert frames.rank == r
    scale = max(np.max(np.abs(x)) for x in w)
    for p, x in enumerate(w):
        rebuilt = (frames.q[p + 1] * frames.lam) @ frames.q[p].T
        assert np.max(np.abs(rebuilt - x)) <= 1e-13 * scale
    for q, qp in zip(frames.q, frames.q_perp):
        full = np.hstack([q, qp])
        assert np.max(np.abs(full.T @ full - np.eye(full.shape[1]))) <= 1e-13
    a, b = random_layers(widths, rng), random_layers(widths, rng)
    pa, pb = tangent_projection(frames, a), tangent_projection(frames, b)
    ppa = tangent_projection(frames, pa)
    assert max(np.max(np.abs(x - y)) for x, y in zip(pa, ppa)) <= 1e-12
    lhs = sum(np.sum(x * y) for x, y in zip(pa, b))
    rhs = sum(np.sum(x * y) for x, y in zip(a, pb))
    assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))
    # tangency, always: G vanishes on M, so DG(W) kills T_W M for every width pattern
    assert max((np.max(np.abs(g)) for g in dg(w, pa)), default=0.0) <= 1e-12 * max(1, scale)


@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([(2, 3), (3, 2), (3, 4), (3, 8), (3, 16), (2, 16), (4, 3)]),
    st.sampled_from(SPECTRA),
)
def test_projection_equals_dense_ker_dg_hypothesis(seed, shape, spectrum):
    """Issue 14 F3: frame projection = orthogonal projector onto ker DG (dense SVD
    oracle) to 1e-12 for sigma_min down to 1e-12 sigma_max, N <= 16, square widths.
    The oracle itself is only accurate to about eps cond(DG) (cond(DG) reaches 1e6
    at N = 2, sigma_min = 1e-12), so the tolerance is 1e-12 max(1, cond(DG)/1e3)."""
    d, depth = shape
    rng = np.random.default_rng(seed)
    w = balanced_point((d,) * (depth + 1), rng, sigma=adversarial_spectrum(spectrum, d, rng))
    frames = balanced_frames(w)
    jac = dense_matrix(lambda xi: dg(w, xi), w)
    _, s, vt = np.linalg.svd(jac)
    rank = (depth - 1) * d * (d + 1) // 2
    assert s[rank - 1] > 1e3 * s[rank]  # the kernel has the expected dimension
    null = vt[rank:].T
    dense = null @ null.T
    cond = s[0] / s[rank - 1]
    projector = dense_matrix(lambda v: tangent_projection(frames, v), w)
    assert np.max(np.abs(projector - dense)) <= 1e-12 * max(1.0, cond / 1e3)
    assert np.max(np.abs(projector @ projector - projector)) <= 1e-12


def test_unflatten_roundtrip(rng):
    w = random_layers((2, 3, 4), rng)
    back = unflatten(flatten(w), w)
    assert all(np.array_equal(a, b) for a, b in zip(w, back))
