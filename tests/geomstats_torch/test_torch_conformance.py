"""The conformance checker on Geomstats' pytorch backend: ``check_geomstats_space`` and
``check_geomstats_bundle`` run on torch ``BalancedSpace`` points (the space gets tensors;
only the error numbers are computed in numpy) and pass, as the numpy suite's do."""

import numpy as np
import torch

from dlnmanifolds.geomstats import BalancedSpace, DLNBundle
from dlnmanifolds.testing import (
    assert_geomstats_conforms,
    check_geomstats_bundle,
    check_geomstats_space,
    geomstats_checks,
)

GEODESIC_CHECKS = {
    "exp.belongs",
    "exp.first_order",
    "exp_log.inverse",
    "log_exp.inverse",
    "dist.log_norm",
}


def test_square_balanced_space_conforms_on_torch():
    space = BalancedSpace(widths=(2, 2, 2), rng=0)
    assert isinstance(space.random_point(), torch.Tensor)
    report = assert_geomstats_conforms(space, n_points=2, rng=0)
    for name in (
        "point.belongs",
        "projection.idempotent",
        "to_tangent.self_adjoint",
        "dim.tangent_rank",
        "metric.positive_definite",
        "exp_log.inverse",
    ):
        assert report[name].status == "pass", report


def test_general_widths_conform_on_torch_except_the_geodesics():
    """Off-square, exp/log are not supported (the documented ValueError); every other
    check passes on tensors."""
    report = check_geomstats_space(BalancedSpace(widths=(3, 4, 2), rng=0), n_points=2, rng=0)
    failed = {r.name for r in report.failures}
    assert failed <= GEODESIC_CHECKS, report
    assert all("equal widths" in r.note for r in report.failures), report
    assert report["dim.tangent_rank"].status == "pass", report


def test_bundle_conforms_on_torch():
    bundle = DLNBundle(BalancedSpace(widths=(2, 2, 2), rng=1))
    report = assert_geomstats_conforms(bundle, n_points=2, rng=1, check_align=False)
    assert report["bundle.orthogonal"].status == "pass"
    assert report["bundle.lift_projects_back"].status == "pass"


def test_checker_hands_the_space_tensors_only():
    """Every argument the space receives is a tensor: a space that refuses numpy
    input (as the pytorch-backend adapters do) is checked, not broken."""
    space = BalancedSpace(widths=(2, 2, 2), rng=2)
    seen = []
    original = space.to_tangent

    def to_tangent(vector, base_point=None):
        seen.append(type(vector))
        return original(vector, base_point)

    space.to_tangent = to_tangent
    report = check_geomstats_space(space, n_points=1, rng=2)
    assert seen and all(t is torch.Tensor for t in seen)
    assert report["to_tangent.idempotent"].status == "pass"


def test_a_defect_is_caught_on_torch():
    """A to_tangent that keeps the normal part is reported, on tensors as on numpy."""
    space = BalancedSpace(widths=(2, 2, 2), rng=3)
    space.to_tangent = lambda vector, base_point=None: vector
    report = check_geomstats_space(space, n_points=1, rng=3)
    assert {"to_tangent.is_tangent", "dim.tangent_rank"} <= {r.name for r in report.failures}


def test_host_copy_and_like():
    t = torch.arange(4.0, dtype=torch.float32, requires_grad=True)
    host = geomstats_checks._host(t * 2)
    assert isinstance(host, np.ndarray) and host.tolist() == [0.0, 2.0, 4.0, 6.0]
    back = geomstats_checks._like(np.ones(3), t)
    assert isinstance(back, torch.Tensor) and back.dtype == torch.float32
    assert geomstats_checks._like(np.ones(3), np.zeros(3)) is not None


def test_bundle_checker_runs_without_align():
    bundle = DLNBundle(BalancedSpace(widths=(3, 4, 2), rng=4))
    report = check_geomstats_bundle(bundle, n_points=1, rng=4, check_align=False)
    assert report["bundle.decomposition"].status == "pass", report
