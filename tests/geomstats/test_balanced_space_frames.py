"""Issue 14, F3: BalancedSpace.to_tangent shares the balanced frames; it stays the exact
orthogonal projector onto ker DG for sigma_min down to 1e-12 sigma_max."""

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds.geomstats import BalancedSpace
from tests.core.test_balanced_tangent import SPECTRA, adversarial_spectrum
from tests.helpers import balanced_point, dense_matrix, dg


@given(
    st.integers(0, 2**32 - 1),
    st.sampled_from([(3, 2), (3, 4), (2, 8), (3, 16)]),
    st.sampled_from(SPECTRA),
)
def test_to_tangent_is_ker_dg_projector(seed, shape, spectrum):
    """to_tangent = dense ker DG projector (tolerance 1e-12 max(1, cond DG / 1e3), the
    oracle's own accuracy), idempotent to 1e-12, batched calls agree with single ones."""
    n, depth = shape
    rng = np.random.default_rng(seed)
    w = balanced_point((n,) * (depth + 1), rng, sigma=adversarial_spectrum(spectrum, n, rng))
    space = BalancedSpace(n, depth)
    point = np.stack(w)

    def project(layers):
        return list(space.to_tangent(np.stack(layers), point))

    jac = dense_matrix(lambda xi: dg(w, xi), w)
    _, s, vt = np.linalg.svd(jac)
    rank = (depth - 1) * n * (n + 1) // 2
    null = vt[rank:].T
    projector = dense_matrix(project, w)
    tol = 1e-12 * max(1.0, s[0] / s[rank - 1] / 1e3)
    assert np.max(np.abs(projector - null @ null.T)) <= tol
    assert np.max(np.abs(projector @ projector - projector)) <= 1e-12
    vectors = rng.standard_normal((2, depth, n, n))
    batched = space.to_tangent(vectors, np.stack([point, point]))
    single = space.to_tangent(vectors[1], point)
    assert np.max(np.abs(batched[1] - single)) <= 1e-15 * max(1.0, np.max(np.abs(single)))
