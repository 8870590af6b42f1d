"""Conformance checks that any manifold (ours or a user's) can be run through.

``check_manifold`` tests a Pymanopt manifold, ``check_geomstats_space`` and
``check_geomstats_bundle`` a Geomstats space or fiber bundle; each returns a
``ConformanceReport`` (one ``CheckResult`` per check, with the measured number,
its tolerance and pass/fail). The ``assert_*`` variants raise one
``AssertionError`` listing every failure, for use inside pytest.
``forbid_array_conversions`` makes every numpy <-> torch copy inside a block an
error (the check that a PyTorch training step stays on its device).
"""

from dlnmanifolds.testing._vectors import Embedding, factored_embedding, identity_embedding
from dlnmanifolds.testing.conversions import forbid_array_conversions
from dlnmanifolds.testing.geomstats_checks import (
    assert_geomstats_conforms,
    check_geomstats_bundle,
    check_geomstats_space,
)
from dlnmanifolds.testing.manifold_checks import (
    DEFAULT_TOLERANCES,
    assert_manifold_conforms,
    check_manifold,
)
from dlnmanifolds.testing.report import CheckResult, ConformanceReport
from dlnmanifolds.testing.slopes import random_quadratic_cost

__all__ = [
    "DEFAULT_TOLERANCES",
    "CheckResult",
    "ConformanceReport",
    "Embedding",
    "assert_geomstats_conforms",
    "assert_manifold_conforms",
    "check_geomstats_bundle",
    "check_geomstats_space",
    "check_manifold",
    "factored_embedding",
    "forbid_array_conversions",
    "identity_embedding",
    "random_quadratic_cost",
]
