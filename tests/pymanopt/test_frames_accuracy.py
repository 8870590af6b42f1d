"""Issue 14, F3: the Pymanopt manifolds that share the balanced frames stay exact projectors
for sigma_min down to 1e-12 sigma_max (N <= 16, repeated spectra, non-square widths)."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds.core.balanced_tangent import horizontal_projection
from dlnmanifolds.pymanopt import BalancedManifold, LayerTuple
from dlnmanifolds.pymanopt.orbit import GroupOrbit
from tests.core.test_balanced_tangent import SPECTRA, adversarial_spectrum
from tests.helpers import balanced_point, dg, flatten, random_layers

SHAPES = [(3, 3, 3), (3, 3, 3, 3, 3, 3, 3, 3, 3), (3,) * 17, (3, 5, 4, 2), (2, 4, 3, 5, 3)]


def _max(layers) -> float:
    return max((float(np.max(np.abs(a))) for a in layers), default=0.0)


@given(st.integers(0, 2**32 - 1), st.sampled_from(SHAPES), st.sampled_from(SPECTRA))
def test_balanced_manifold_and_orbit_projections(seed, widths, spectrum):
    """BalancedManifold.projection and GroupOrbit.projection: idempotent, self-adjoint,
    tangent (DG = 0; the orbit part also Dphi = 0 and fixed by P_T), and P_V = P_T - P_H,
    all to 1e-12 at sigma_min = 1e-12 sigma_max."""
    rng = np.random.default_rng(seed)
    r = min(widths[0], widths[-1])
    w = balanced_point(widths, rng, sigma=adversarial_spectrum(spectrum, r, rng))
    point = LayerTuple(w)
    manifold = BalancedManifold(widths)
    orbit = GroupOrbit(w)
    a, b = LayerTuple(random_layers(widths, rng)), LayerTuple(random_layers(widths, rng))
    for proj in (manifold.projection, orbit.projection):
        pa, pb = proj(point, a), proj(point, b)
        assert _max(proj(point, pa) - pa) <= 1e-12
        lhs, rhs = flatten(pa) @ flatten(b), flatten(a) @ flatten(pb)
        assert abs(lhs - rhs) <= 1e-12 * max(1.0, abs(lhs))
        assert _max(dg(w, list(pa))) <= 1e-12 * max(1.0, _max(w))
    pv = orbit.projection(point, a)
    assert _max(manifold.projection(point, pv) - pv) <= 1e-12
    pt = manifold.projection(point, a)
    reference = pt - LayerTuple(horizontal_projection(w, list(pt)))
    # P_H = Dphi^* A^{-1} Dphi divides by kappa(sigma_min, sigma_min) ~ sigma_min^{2-2/N}:
    # its own round-off is eps sigma_max^{2-2/N} / sigma_min^{2-2/N} relative, a property of
    # A^{-1}, not of the frames; compare only where that is below 1e-13.
    sigma = adversarial_spectrum(spectrum, r, np.random.default_rng(0))
    depth = len(widths) - 1
    if (sigma.max() / sigma.min()) ** (2 - 2 / depth) < 1e3:
        assert _max(pv - reference) <= 1e-12
