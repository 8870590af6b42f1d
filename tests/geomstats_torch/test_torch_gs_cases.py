"""Geomstats' own test cases on the pytorch backend: the classes of
tests/geomstats/test_gs_cases.py (LevelSet, RiemannianMetric and FiberBundle cases for
BalancedSpace, DLNMetric, BalancedMetric, the quotient metric and DLNBundle), collected
again here so that every one of them runs on torch tensors with the same data and skips.
"""

import geomstats.backend as gs
import torch
from test_gs_cases import (  # noqa: F401  (collected by pytest)
    TestBalancedMetric,
    TestBalancedSpace,
    TestBalancedSpaceDepth2Size3,
    TestDLNBundle,
    TestDLNMetric,
    TestQuotientMetric,
    test_quotient_structure_is_registered,
)


def test_the_backend_is_pytorch():
    assert gs.__name__.endswith("pytorch")
    point = TestBalancedSpace.space.random_point()
    assert isinstance(point, torch.Tensor) and point.dtype == torch.float64
