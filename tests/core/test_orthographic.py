"""Orthographic projection onto M used by the upstairs Langevin step (math.md §2.5; C10)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds.core.balanced import balanced_frames
from dlnmanifolds.core.balanced_tangent import tangent_projection
from dlnmanifolds.core.network import imbalance
from dlnmanifolds.core.orthographic import orthographic_projection
from tests.helpers import balanced_point


@pytest.mark.parametrize(
    "widths, sigma",
    [
        ((3, 3, 3, 3), None),
        ((3, 3, 3, 3), [1.0, 1.0, 1.0]),
        ((4, 4, 4), [2, 2, 0.5, 0.5]),
        ((2,) * 6, None),
    ],
)
def test_orthographic_retraction_second_order_and_on_m(widths, sigma, rng):
    """C10: on M (max |G| <= 1e-14 scale), correction normal, O(t^2) (slope 2), <= 3 Newton."""
    w = balanced_point(widths, rng, sigma=None if sigma is None else np.asarray(sigma, float))
    frames = balanced_frames(w)
    xi = tangent_projection(frames, [rng.standard_normal(a.shape) for a in w])
    xi = [a / np.sqrt(sum(np.sum(b**2) for b in xi)) for a in xi]
    sizes = []
    for t in (1e-1, 1e-2, 1e-3):
        v, iterations, residual = orthographic_projection(w, [a + t * b for a, b in zip(w, xi)])
        assert iterations <= 3 and residual <= 1e-13 and imbalance(v) <= 1e-13
        correction = [c - a - t * b for c, a, b in zip(v, w, xi)]
        tangent_part = tangent_projection(frames, correction)
        assert np.sqrt(sum(np.sum(c**2) for c in tangent_part)) <= 1e-12
        sizes.append(np.sqrt(sum(np.sum(c**2) for c in correction)))
    slopes = np.diff(np.log10(sizes)) / np.diff(np.log10([1e-1, 1e-2, 1e-3]))
    assert np.all(np.abs(slopes - 2.0) <= 0.05)


def test_batched_projection_matches_single(rng):
    w = balanced_point((3, 3, 3, 3), rng)
    batch = [np.stack([a] * 4) for a in w]
    ambient = [a + 0.05 * rng.standard_normal(a.shape) for a in batch]
    v, _, residual = orthographic_projection(batch, ambient)
    assert residual <= 1e-12
    for k in range(4):
        single, _, _ = orthographic_projection(w, [a[k] for a in ambient])
        for a, b in zip(v, single):
            assert np.allclose(a[k], b, atol=1e-12)


def _dense_reference(w, y, iterations=30):
    """Independent oracle: Newton on S with the dense Jacobian of S -> G(Y + C_W(S)),
    assembled column by column from the helpers' DG (small sizes only)."""
    from dlnmanifolds.core.balanced_tangent import normal_generator
    from tests.helpers import dg

    d, depth = w[0].shape[0], len(w)
    iu, ju = np.triu_indices(d)

    def sym_list(vec):
        out = []
        for k in range(depth - 1):
            s = np.zeros((d, d))
            s[iu, ju] = vec[k * iu.size : (k + 1) * iu.size]
            s[ju, iu] = s[iu, ju]
            out.append(s)
        return out

    def residual(v):
        return np.concatenate([(b.T @ b - a @ a.T)[iu, ju] for a, b in zip(v[:-1], v[1:])])

    vec = np.zeros((depth - 1) * iu.size)
    for _ in range(iterations):
        v = [a + c for a, c in zip(y, normal_generator(w, sym_list(vec)))]
        g = residual(v)
        if np.max(np.abs(g)) <= 1e-14:
            break
        cols = []
        for k in range(vec.size):
            e = np.zeros(vec.size)
            e[k] = 1.0
            cols.append(
                np.concatenate([a[iu, ju] for a in dg(v, normal_generator(w, sym_list(e)))])
            )
        vec = vec - np.linalg.solve(np.array(cols).T, g)
    return v


@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([(2, 2), (3, 3), (3, 5), (4, 2), (2, 8)]),
    st.sampled_from(["generic", "repeated", "spread"]),
    st.sampled_from([1e-3, 3e-2, 1e-1]),
)
def test_structured_newton_matches_dense_newton(seed, shape, spectrum, noise):
    """The frame-preconditioned Krylov Newton lands on the same point of M as a dense
    Newton oracle (1e-11), with G = 0 (1e-12 scale) and a correction in range C_W
    (its tangent part vanishes), batched over paths with different base points."""
    d, depth = shape
    rng = np.random.default_rng(seed)
    sigma = {
        "generic": None,
        "repeated": np.ones(d),
        "spread": np.geomspace(3.0, 0.3, d),
    }[spectrum]
    bases = [balanced_point((d,) * (depth + 1), rng, sigma=sigma) for _ in range(3)]
    batch = [np.stack([b[p] for b in bases]) for p in range(depth)]
    ambient = [a + noise * rng.standard_normal(a.shape) for a in batch]
    v, _, residual = orthographic_projection(batch, ambient)
    scale = max(1.0, max(np.max(np.abs(a)) for a in batch) ** 2)
    assert residual <= 1e-12 * scale
    for k, w in enumerate(bases):
        y = [a[k] for a in ambient]
        reference = _dense_reference(w, y)
        assert max(np.max(np.abs(a[k] - b)) for a, b in zip(v, reference)) <= 1e-11
        correction = [a[k] - b for a, b in zip(v, y)]
        tangent = tangent_projection(balanced_frames(w), correction)
        size = max(np.max(np.abs(c)) for c in correction)
        assert max(np.max(np.abs(t)) for t in tangent) <= 1e-12 * max(1.0, size)


def test_non_finite_ambient_fails_fast(rng):
    """A non-finite ambient point: reported as not converged (max_iter, non-finite
    residual) without iterating, so the Langevin driver raises its blow-up error."""
    w = balanced_point((3, 3, 3), rng)
    y = [a.copy() for a in w]
    y[1][0, 0] = np.inf
    v, iterations, residual = orthographic_projection(w, y, max_iter=7)
    assert iterations == 7 and not np.isfinite(residual)
