"""The lifted retraction on the rank lift equals phi(W + xi^h) on a balanced lift.

``dln_metric.lifted_retraction`` now evaluates phi(W + xi^h) on the rank lift of the
thin SVD (issue 16: one array-generic formula); the definition on any balanced lift
W of X with a random orthogonal gauge (math.md §4.2) must give the same matrix.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from dlnmanifolds.core.balanced import balanced_factors
from dlnmanifolds.core.dln_metric import lifted_retraction
from dlnmanifolds.core.network import dphi_adjoint, end_to_end
from dlnmanifolds.core.operator import dln_operator_inverse


@settings(max_examples=25, deadline=None)
@given(
    m=st.integers(1, 5),
    n=st.integers(1, 5),
    depth=st.integers(1, 6),
    ratio=st.sampled_from([1.0, 0.5, 1e-2, 1e-4]),
    seed=st.integers(0, 2**31),
)
def test_rank_lift_retraction_is_the_balanced_lift_definition(m, n, depth, ratio, seed):
    rng = np.random.default_rng(seed)
    k = min(m, n)
    s = np.geomspace(2.0, 2.0 * ratio, k)
    qu, _ = np.linalg.qr(rng.standard_normal((m, k)))
    qv, _ = np.linalg.qr(rng.standard_normal((n, k)))
    x = (qu * s) @ qv.T
    xi = 0.3 * s[-1] * rng.standard_normal((m, n))
    weights = balanced_factors(x, depth, rng=rng)  # a random gauge
    lift = dphi_adjoint(weights, dln_operator_inverse(x, xi, depth))
    expected = end_to_end([w + e for w, e in zip(weights, lift)])
    got = lifted_retraction(x, xi, depth)
    cond = ratio ** (-2.0 * (depth - 1) / depth)
    assert np.linalg.norm(got - expected) <= (1e-13 * cond + 1e-13) * np.linalg.norm(expected)
