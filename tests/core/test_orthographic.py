"""Orthographic projection onto M used by the upstairs Langevin step (math.md §2.5; C10)."""

import numpy as np
import pytest

from dlnmanifolds.core.balanced import balanced_frames
from dlnmanifolds.core.balanced_tangent import tangent_projection
from dlnmanifolds.core.network import imbalance
from dlnmanifolds.core.orthographic import orthographic_projection
from tests.helpers import balanced_point


@pytest.mark.parametrize(
    "widths, sigma",
    [((3, 3, 3, 3), None), ((3, 3, 3, 3), [1.0, 1.0, 1.0]), ((4, 4, 4), [2, 2, 0.5, 0.5]),
     ((2,) * 6, None)],
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
