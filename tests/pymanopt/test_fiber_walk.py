"""Long retraction walks stay on the fiber: phi(W_k) = X to 1e-10 relative
(issue 13: the group steps' rounding used to accumulate at depth >= 16)."""

import numpy as np
import pytest

from dlnmanifolds.core.fiber import fiber_retraction
from dlnmanifolds.core.network import _end_to_end
from dlnmanifolds.pymanopt import Fiber
from tests.helpers import random_layers


def _walk(widths, steps, retraction, seed=0, step=0.1):
    rng = np.random.default_rng(seed)
    manifold = Fiber(random_layers(widths, rng), retraction=retraction, rng=seed)
    x, target = manifold.random_point(), manifold.target
    worst, largest = 0.0, 0.0
    for k in range(steps):
        gaussian = [rng.standard_normal(w.shape) for w in x]
        x = manifold.retraction(x, step * manifold.projection(x, gaussian))
        if k % 25 == 0 or k == steps - 1:
            err = np.linalg.norm(_end_to_end(list(x)) - target) / np.linalg.norm(target)
            worst = max(worst, err)
            largest = max(largest, max(float(np.abs(w).max()) for w in x))
    return worst, largest


@pytest.mark.parametrize("widths, retraction, steps", [
    ((3,) * 17, "second_order", 200),
    ((2, 3, 4, 3, 3, 3, 3, 4, 2), "exponential", 100),
    ((3,) * 33, "exponential", 200),
])
def test_walk_keeps_phi(widths, retraction, steps):
    worst, largest = _walk(widths, steps, retraction)
    assert worst < 1e-10, worst
    assert np.isfinite(largest)


@pytest.mark.slow
@pytest.mark.parametrize("retraction", ["second_order", "exponential"])
def test_ten_thousand_steps_at_depth_32(retraction):
    worst, _ = _walk((3,) * 33, 10_000, retraction)
    assert worst < 1e-10, worst


def test_core_retraction_is_reprojected_exactly():
    """The public retraction keeps phi(W) of its input, also from a rounded point."""
    rng = np.random.default_rng(4)
    w = random_layers((3, 4, 4, 2), rng)
    target = _end_to_end(w)
    xi = [0.3 * rng.standard_normal(a.shape) for a in w]
    moved = fiber_retraction(w, xi)
    assert not np.allclose(moved[0], w[0])  # it moved along the fiber ...
    np.testing.assert_allclose(_end_to_end(moved), target, rtol=0, atol=1e-14)  # ... not off it
