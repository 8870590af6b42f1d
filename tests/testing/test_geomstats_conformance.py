"""check_geomstats_space / check_geomstats_bundle on Geomstats built-ins and ours."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
from geomstats.geometry.full_rank_matrices import FullRankMatrices
from geomstats.geometry.group_action import SpecialOrthogonalComposeAction
from geomstats.geometry.hypersphere import Hypersphere
from geomstats.geometry.matrices import MatricesMetric
from geomstats.geometry.rank_k_psd_matrices import BuresWassersteinBundle
from geomstats.geometry.spd_matrices import SPDMatrices

from dlnmanifolds.testing import (
    assert_geomstats_conforms,
    check_geomstats_bundle,
    check_geomstats_space,
)


def _bures_wasserstein_bundle(n=3, k=2):
    total = FullRankMatrices(n, k, equip=False)
    total.equip_with_metric(MatricesMetric)
    total.equip_with_group_action(SpecialOrthogonalComposeAction(k))
    return BuresWassersteinBundle(total)


@pytest.mark.parametrize("space", [Hypersphere(3), Hypersphere(2), SPDMatrices(3)],
                         ids=["S3", "S2", "SPD3"])
def test_geomstats_builtin_spaces_conform(space):
    report = assert_geomstats_conforms(space, n_points=2, rng=0)
    for name in ("point.belongs", "to_tangent.idempotent", "dim.tangent_rank",
                 "metric.positive_definite", "exp_log.inverse", "dist.log_norm"):
        assert report[name].status == "pass", report


def test_geomstats_builtin_bundle_conforms():
    report = assert_geomstats_conforms(_bures_wasserstein_bundle(), n_points=2, rng=1)
    assert report["bundle.decomposition"].status == "pass"
    assert report["bundle.lift_projects_back"].status == "pass"


class _LeakyTangent(Hypersphere):
    """to_tangent keeps the normal component: not tangent, but still idempotent."""

    def to_tangent(self, vector, base_point=None):
        return vector


class _WrongLog(Hypersphere):
    def __init__(self, dim):
        super().__init__(dim)
        metric = self.metric
        original = metric.log
        metric.log = lambda point, base_point: 0.5 * original(point, base_point)


@pytest.mark.parametrize(
    "space, failing",
    [(_LeakyTangent(2), {"to_tangent.is_tangent", "dim.tangent_rank"}),
     (_WrongLog(2), {"exp_log.inverse", "log_exp.inverse", "dist.log_norm"})],
    ids=["leaky-to_tangent", "wrong-log"],
)
def test_geomstats_defects_are_caught(space, failing):
    report = check_geomstats_space(space, n_points=2, rng=2)
    assert failing <= {r.name for r in report.failures}, report
    with pytest.raises(AssertionError, match="conformance check"):
        assert_geomstats_conforms(space, n_points=2, rng=2)


def test_bundle_with_broken_horizontal_projection_fails():
    bundle = _bures_wasserstein_bundle()
    bundle.horizontal_projection = lambda tangent_vec, base_point: 0.5 * tangent_vec
    report = check_geomstats_bundle(bundle, n_points=2, rng=3, check_align=False)
    failed = {r.name for r in report.failures}
    assert {"bundle.horizontal_idempotent", "bundle.is_horizontal"} <= failed, report
    assert report["bundle.align_in_fiber"].status == "skip"


def _ours(name):
    try:
        return getattr(importlib.import_module("dlnmanifolds.geomstats"), name)
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"dlnmanifolds.geomstats.{name} not available yet: {exc}")


def test_dln_balanced_space_conforms():
    space = _ours("BalancedSpace")(3, 2)
    assert_geomstats_conforms(space, n_points=2, rng=4)


def test_dln_bundle_conforms():
    bundle = _ours("DLNBundle")(_ours("BalancedSpace")(3, 2))
    assert_geomstats_conforms(bundle, n_points=2, rng=5, check_align=False)


def test_reports_are_reproducible():
    a = check_geomstats_space(SPDMatrices(2), n_points=2, rng=6)
    b = check_geomstats_space(SPDMatrices(2), n_points=2, rng=6)
    assert [r.value for r in a] == [r.value for r in b]
    assert np.isfinite([r.value for r in a if r.value is not None]).all()
