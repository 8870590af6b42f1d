"""The checker itself: it passes correct manifolds and catches each kind of defect."""

from __future__ import annotations

import json

import autograd.numpy as anp
import numpy as np
import pymanopt
import pytest
from pymanopt import manifolds as pm

from dlnmanifolds.testing import (
    DEFAULT_TOLERANCES,
    CheckResult,
    ConformanceReport,
    assert_manifold_conforms,
    check_manifold,
)

GOOD = [
    pm.Sphere(4),
    pm.Stiefel(5, 2),
    pm.Stiefel(4, 2, retraction="polar"),
    pm.SpecialOrthogonalGroup(3),
    pm.SymmetricPositiveDefinite(3),
    pm.Euclidean(3, 2),
    pm.Oblique(3, 4),
    pm.Product([pm.Sphere(3), pm.Euclidean(2)]),
]


@pytest.mark.parametrize("manifold", GOOD, ids=lambda m: type(m).__name__)
def test_pymanopt_builtins_conform(manifold):
    report = assert_manifold_conforms(manifold, n_points=2, rng=0)
    for name in ("point.on_manifold", "projection.idempotent", "retraction.first_order",
                 "gradient.taylor_slope", "hessian.symmetric", "dim.tangent_rank"):
        assert report[name].status == "pass", report


@pytest.mark.parametrize(
    "manifold, order",
    [(pm.Stiefel(5, 2), 1), (pm.Stiefel(5, 2, retraction="polar"), 2),
     (pm.SpecialOrthogonalGroup(3), 1), (pm.SpecialOrthogonalGroup(3, retraction="polar"), 2),
     (pm.Sphere(4), 2)],
)
def test_measures_retraction_order_of_pymanopt_builtins(manifold, order):
    """QR retractions are first order, polar and sphere normalization second order
    (Absil et al. 2008, §4.1; Pymanopt docstrings)."""
    slope = check_manifold(manifold, n_points=2, rng=1)["retraction.second_order"].value
    assert (abs(slope - 2.0) < 0.1) if order == 1 else (slope >= 2.9)


def test_false_second_order_claim_fails():
    report = check_manifold(pm.Stiefel(5, 2), n_points=2, rng=2, retraction_order=2)
    assert report["retraction.second_order"].status == "fail"
    assert abs(report["retraction.second_order"].value - 2.0) < 0.1


# -- deliberately broken manifolds -------------------------------------------------
class _NotIdempotent(pm.Sphere):
    def projection(self, point, vector):
        return vector - 0.5 * (point @ vector) * point  # removes only half the normal part

    to_tangent_space = projection


class _WrongDim(pm.Sphere):
    @property
    def dim(self):
        return 4


class _UnprojectedGradient(pm.Sphere):
    def euclidean_to_riemannian_gradient(self, point, euclidean_gradient):
        return euclidean_gradient


class _AsymmetricMetric(pm.Sphere):
    def inner_product(self, point, a, b):
        return float(a @ b + 0.1 * a[0] * b[1])


class _LeavesManifold(pm.Sphere):
    def retraction(self, point, tangent_vector):
        return point + tangent_vector


class _ZeroStepMoves(pm.Sphere):
    def retraction(self, point, tangent_vector):
        y = point + tangent_vector + 1e-3 * np.roll(point, 1)
        return y / np.linalg.norm(y)


class _BadTransport(pm.Sphere):
    def transport(self, point_a, point_b, tangent_vector_a):
        return tangent_vector_a


class _BadHessian(pm.Sphere):
    def euclidean_to_riemannian_hessian(self, point, egrad, ehess, tangent_vector):
        return self.projection(point, ehess)  # missing the Weingarten term


@pytest.mark.parametrize(
    "manifold, failing",
    [
        (_NotIdempotent(4), {"projection.idempotent", "tangent.is_tangent"}),
        (_WrongDim(4), {"dim.tangent_rank"}),
        (_UnprojectedGradient(4), {"gradient.tangent"}),
        (_AsymmetricMetric(4), {"metric.symmetric"}),
        (_LeavesManifold(4), {"retraction.on_manifold"}),
        (_ZeroStepMoves(4), {"retraction.at_zero", "retraction.first_order"}),
        (_BadTransport(4), {"transport.tangent"}),
        (_BadHessian(4), {"hessian.taylor_slope", "hessian.fd_projected_gradient"}),
    ],
    ids=lambda v: type(v).__name__.strip("_") if not isinstance(v, set) else "",
)
def test_each_defect_is_caught(manifold, failing):
    report = check_manifold(manifold, n_points=2, rng=3)
    failed = {r.name for r in report.failures}
    assert failing <= failed, report
    with pytest.raises(AssertionError) as info:
        assert_manifold_conforms(manifold, n_points=2, rng=3)
    message = str(info.value)
    assert all(f"- {name} =" in message for name in failed)  # every failure listed once
    assert f"fails {len(failed)} conformance check(s)" in message


def test_non_invariant_cost_on_quotient_breaks_hessian_symmetry():
    """On the Grassmannian a cost must be invariant under X -> XQ; the default random
    quadratic is not, and the checker shows it (Hessian not self-adjoint). With an
    invariant cost f(X) = tr(X^T A X) everything passes."""
    manifold = pm.Grassmann(5, 2)
    default = check_manifold(manifold, n_points=2, rng=4)
    assert default["hessian.symmetric"].status == "fail"
    a = np.random.default_rng(4).standard_normal((5, 5))
    a = a + a.T

    @pymanopt.function.autograd(manifold)
    def cost(x):
        return anp.trace(x.T @ a @ x)

    assert_manifold_conforms(manifold, cost=cost, n_points=2, rng=4)


def test_missing_hessian_crash_is_a_failure_and_clear_error_is_a_skip():
    """Pymanopt's FixedRankEmbedded has no Hessian and breaks with a bare numpy error
    (STYLE.md "Leave"): the checker reports a failure. A manifold that raises
    NotImplementedError with a reason (like DLNFixedRank) is reported as skipped."""
    report = check_manifold(pm.FixedRankEmbedded(5, 4, 2), n_points=2, rng=5)
    hessian = [r for r in report if r.name.startswith("hessian.")]
    assert all(r.status == "fail" and "raised ValueError" in r.note for r in hessian)
    assert {r.name for r in report.failures} == {r.name for r in hessian}, report

    class _SaysNoHessian(pm.Sphere):
        def euclidean_to_riemannian_hessian(self, *args):
            raise NotImplementedError("no Hessian here, use SteepestDescent")

    clear = check_manifold(_SaysNoHessian(3), n_points=1, rng=5)
    assert clear["hessian.symmetric"].status == "skip"
    assert "use SteepestDescent" in clear["hessian.symmetric"].note
    assert clear.passed

    class _Crashes(pm.Sphere):
        def transport(self, point_a, point_b, tangent_vector_a):
            raise RuntimeError("boom")

    crashed = check_manifold(_Crashes(3), n_points=1, rng=5)["transport.tangent"]
    assert crashed.status == "fail" and "RuntimeError: boom" in crashed.note


def test_no_membership_test_is_a_skip_not_a_failure():
    manifold = pm.PSDFixedRank(4, 2)  # no belongs(), not in the known-defect table
    report = check_manifold(manifold, n_points=1, rng=6)
    assert report["point.on_manifold"].status == "skip"
    assert "no membership test" in report["point.on_manifold"].note
    assert report["retraction.on_manifold"].status == "skip"
    user = check_manifold(manifold, n_points=1, rng=6,
                          membership=lambda y: 0.0 if np.linalg.matrix_rank(y) == 2 else np.inf)
    assert user["point.on_manifold"].status == "pass"
    assert user["retraction.on_manifold"].status == "pass"


def test_report_is_reproducible_and_serialisable(capsys):
    a = check_manifold(pm.Stiefel(4, 2), n_points=2, rng=7)
    b = check_manifold(pm.Stiefel(4, 2), n_points=2, rng=7)
    assert [r.value for r in a] == [r.value for r in b]
    data = json.loads(json.dumps(a.to_dict(), default=str))
    assert [r["name"] for r in data["results"]] == a.names
    table = a.table()
    assert all(name in table for name in a.names)
    check_manifold(pm.Sphere(3), n_points=1, rng=7, verbose=True)
    assert "retraction.first_order" in capsys.readouterr().out
    assert isinstance(a, ConformanceReport) and isinstance(a.results[0], CheckResult)
    assert set(a.names) >= {n for n in DEFAULT_TOLERANCES if not n.startswith(("exp", "log",
                                                                               "dist"))}


def test_tolerance_override_and_points_argument():
    sphere = pm.Sphere(3)
    x = np.array([1.0, 0.0, 0.0])
    strict = check_manifold(sphere, points=[x], rng=8,
                            tolerances={"retraction.first_order": 2.5})
    assert strict["retraction.first_order"].status == "fail"
    assert strict.settings["n_points"] == 1


def test_check_result_rejects_unknown_status():
    with pytest.raises(ValueError, match="status"):
        CheckResult("x", "maybe")
