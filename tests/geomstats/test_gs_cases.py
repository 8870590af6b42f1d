"""Geomstats' own property test cases run on BalancedSpace, DLNMetric and DLNBundle.

Test cases: geomstats.test_cases (LevelSetTestCase, RiemannianMetricTestCase,
FiberBundleTestCase); data classes: gs_test_data.py (vendored + the list of skips).
Small sizes (n = 2, depth 2-3) keep the run short: geodesics are ODE solves.

Backend-neutral: tests/geomstats_torch re-runs these classes on ``GEOMSTATS_BACKEND=pytorch``
(the generators draw from numpy generators and hand the samples over with ``gs.array``).
"""

import geomstats.backend as gs
import numpy as np
import pytest
from geomstats.geometry.general_linear import GeneralLinear
from geomstats.test.parametrizers import DataBasedParametrizer
from geomstats.test.random import EmbeddedSpaceRandomDataGenerator, RandomDataGenerator
from geomstats.test_cases.geometry.base import LevelSetTestCase
from geomstats.test_cases.geometry.fiber_bundle import FiberBundleTestCase
from geomstats.test_cases.geometry.riemannian_metric import RiemannianMetricTestCase
from gs_test_data import (
    BalancedMetricTestData,
    BalancedSpaceTestData,
    DLNBundleTestData,
    DLNMetricTestData,
    QuotientMetricTestData,
)

from dlnmanifolds.geomstats import BalancedSpace, DLNMetric


class EndToEndGenerator(RandomDataGenerator):
    """Well-conditioned points of GL+(n) (end-to-end maps of BalancedSpace.random_point) and
    tangent vectors of moderate g^N length, so geodesics stay away from singular matrices.

    Geomstats' GeneralLinear.random_point draws Gaussian matrices of either determinant
    sign; g^N geodesics cannot join the two components (they hit det = 0 at finite distance).
    """

    def __init__(self, n, depth, seed, scale=0.15):
        self._balanced = BalancedSpace(n, depth, rng=seed, equip=False)
        self._rng = np.random.default_rng(seed + 1)
        self.scale = scale
        self.n = n

    def random_point(self, n_points=1):
        w = self._balanced.random_point(n_points)
        out = w[..., -1, :, :]
        for p in range(w.shape[-3] - 2, -1, -1):
            out = out @ w[..., p, :, :]
        return out

    def random_tangent_vec(self, base_point):
        batch = tuple(base_point.shape[:-2])
        return self.scale * gs.array(self._rng.standard_normal(batch + (self.n, self.n)))


class NearbyBalancedGenerator(RandomDataGenerator):
    """Points of M near one base point (its component of M: the layer determinant signs are
    shared) and small tangent vectors, so every pair is joined by a short geodesic.

    BalancedSpace.random_point draws Haar gauges, whose pairs mostly lie in different
    components of M (no geodesic joins them; log rejects them up front).
    """

    def __init__(self, space, seed, spread=0.15, scale=0.15):
        self.space = space
        self._rng = np.random.default_rng(seed)
        self._base = space.random_point()
        self.spread, self.scale = spread, scale

    def random_point(self, n_points=1):
        noise = self.spread * self._rng.standard_normal((n_points,) + self.space.shape)
        points = self.space.projection(self._base + gs.array(noise))
        return points[0] if n_points == 1 else points

    def random_tangent_vec(self, base_point):
        batch = tuple(base_point.shape[:-3])
        vector = gs.array(self._rng.standard_normal(batch + self.space.shape))
        return self.scale * self.space.to_tangent(vector, base_point)


class TestBalancedSpace(LevelSetTestCase, metaclass=DataBasedParametrizer):
    space = BalancedSpace(2, 3, rng=11)
    data_generator = EmbeddedSpaceRandomDataGenerator(space)
    testing_data = BalancedSpaceTestData()


class TestBalancedSpaceDepth2Size3(LevelSetTestCase, metaclass=DataBasedParametrizer):
    space = BalancedSpace(3, 2, rng=12)
    data_generator = EmbeddedSpaceRandomDataGenerator(space)
    testing_data = BalancedSpaceTestData()


class TestDLNMetric(RiemannianMetricTestCase, metaclass=DataBasedParametrizer):
    space = GeneralLinear(2, equip=False)
    space.equip_with_metric(DLNMetric, depth=3)
    data_generator = EndToEndGenerator(2, 3, seed=13)
    testing_data = DLNMetricTestData()


class TestBalancedMetric(RiemannianMetricTestCase, metaclass=DataBasedParametrizer):
    space = BalancedSpace(2, 2, rng=16)
    data_generator = NearbyBalancedGenerator(space, seed=17)
    testing_data = BalancedMetricTestData()


class TestQuotientMetric(RiemannianMetricTestCase, metaclass=DataBasedParametrizer):
    space = BalancedSpace(2, 2, rng=18).equip_with_quotient()
    data_generator = EndToEndGenerator(2, 2, seed=19)
    testing_data = QuotientMetricTestData()


class TestDLNBundle(FiberBundleTestCase, metaclass=DataBasedParametrizer):
    total_space = BalancedSpace(2, 2, rng=14)
    base = total_space.equip_with_quotient()
    data_generator = RandomDataGenerator(total_space)
    base_data_generator = EndToEndGenerator(2, 2, seed=15)
    testing_data = DLNBundleTestData()


@pytest.mark.parametrize("n, depth", [(2, 3)])
def test_quotient_structure_is_registered(n, depth):
    space = BalancedSpace(n, depth, rng=0)
    base = space.equip_with_quotient()
    assert isinstance(base, GeneralLinear)
    assert space.fiber_bundle.__class__.__name__ == "DLNBundle"
