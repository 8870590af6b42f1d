"""Every built-in manifold passes ``check_manifold`` at several shapes and depths.

Adding a manifold to the suite is one line in ``REGISTRY``: an id and a factory
``factory(rng) -> (manifold, points or None)``. Factories of modules that are not
integrated yet skip (``_optional``).
"""

from __future__ import annotations

import importlib
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds.pymanopt import BalancedManifold, DLNMatrices, validated
from dlnmanifolds.testing import assert_manifold_conforms, check_manifold
from tests.helpers import balanced_point, matrix_with_spectrum, random_layers

#: Checks that must run and pass on every built-in manifold (never skipped).
REQUIRED = (
    "point.on_manifold",
    "zero_vector.is_zero",
    "tangent.is_tangent",
    "projection.idempotent",
    "projection.self_adjoint",
    "metric.symmetric",
    "metric.positive",
    "metric.positive_definite",
    "dim.tangent_rank",
    "retraction.at_zero",
    "retraction.on_manifold",
    "retraction.first_order",
    "gradient.tangent",
    "gradient.riesz",
    "gradient.taylor_slope",
    "transport.tangent",
)
#: Required in addition when the manifold provides a Hessian / claims a second-order retraction.
HESSIAN = ("hessian.tangent", "hessian.linear", "hessian.symmetric")
SECOND_ORDER = ("retraction.second_order", "hessian.taylor_slope")


def _optional(module: str, name: str):
    """The class ``module.name``, or skip the test if that module is not integrated yet."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        pytest.skip(f"{module}.{name} not available yet: {exc}")


def _fiber(widths):
    def factory(rng):
        cls = _optional("dlnmanifolds.pymanopt.fiber", "Fiber")
        return cls(random_layers(widths, rng), rng=rng), None

    return factory


def _orbit(widths):
    def factory(rng):
        cls = _optional("dlnmanifolds.pymanopt.orbit", "GroupOrbit")
        return cls(balanced_point(widths, rng), rng=rng), None

    return factory


def _fixed_rank(m, n, rank, depth):
    def factory(rng):
        cls = _optional("dlnmanifolds.pymanopt.fixed_rank", "DLNFixedRank")
        return cls(m, n, rank, depth, rng=rng), None

    return factory


def _invariant(widths):
    def factory(rng):
        cls = _optional("dlnmanifolds.pymanopt.invariant", "InvariantManifold")
        start = [rng.standard_normal((widths[p + 1], widths[p])) for p in range(len(widths) - 1)]
        return cls.through(start, rng=rng), None

    return factory


REGISTRY = [
    ("balanced-2x2-depth1", lambda rng: (BalancedManifold((2, 2), rng=rng), None)),
    ("balanced-3-depth2", lambda rng: (BalancedManifold((3, 3, 3), rng=rng), None)),
    ("balanced-3-depth3-polar",
     lambda rng: (BalancedManifold((3, 3, 3, 3), retraction="polar", rng=rng), None)),
    ("balanced-2-depth5", lambda rng: (BalancedManifold((2,) * 6, rng=rng), None)),
    ("balanced-3542", lambda rng: (BalancedManifold((3, 5, 4, 2), rng=rng), None)),
    ("balanced-24-wide", lambda rng: (BalancedManifold((2, 4, 3, 3), rng=rng), None)),
    ("dlnmatrices-3x3-depth1", lambda rng: (DLNMatrices(3, 3, 1, rng=rng), None)),
    ("dlnmatrices-3x3-depth3", lambda rng: (DLNMatrices(3, 3, 3, rng=rng), None)),
    ("dlnmatrices-2x4-depth2", lambda rng: (DLNMatrices(2, 4, 2, rng=rng), None)),
    ("dlnmatrices-4x2-depth6", lambda rng: (DLNMatrices(4, 2, 6, rng=rng), None)),
    ("fiber-3333", _fiber((3, 3, 3, 3))),
    ("fiber-3542", _fiber((3, 5, 4, 2))),
    ("orbit-3333", _orbit((3, 3, 3, 3))),
    ("orbit-222", _orbit((2, 2, 2))),
    ("fixedrank-5x4-r2-depth3", _fixed_rank(5, 4, 2, 3)),
    ("fixedrank-4x4-r1-depth2", _fixed_rank(4, 4, 1, 2)),
    ("dlnmatrices-3x3-depth-inf", lambda rng: (DLNMatrices(3, 3, math.inf, rng=rng), None)),
    ("invariant-3333", _invariant((3, 3, 3, 3))),
    ("invariant-3542", _invariant((3, 5, 4, 2))),
    ("invariant-2222-2", _invariant((2, 2, 2, 2, 2, 2))),
    # The validating wrapper must pass the same suite as the manifold it wraps.
    ("validated-balanced-3542",
     lambda rng: (validated(BalancedManifold((3, 5, 4, 2), rng=rng)), None)),
    ("validated-dlnmatrices-3x3-depth3",
     lambda rng: (validated(DLNMatrices(3, 3, 3, rng=rng)), None)),
    ("validated-fiber-3333", lambda rng: (validated(_fiber((3, 3, 3, 3))(rng)[0]), None)),
    ("validated-fixedrank-5x4-r2-depth3",
     lambda rng: (validated(_fixed_rank(5, 4, 2, 3)(rng)[0]), None)),
]


def _assert_required(report, manifold) -> None:
    required = list(REQUIRED)
    order = getattr(manifold, "retraction_order", 1)
    if report["hessian.symmetric"].status != "skip" or order >= 2:
        required += HESSIAN
    if order >= 2:
        required += SECOND_ORDER
    not_run = [n for n in required if report[n].status != "pass"]
    assert not not_run, f"required checks did not pass: {not_run}\n{report}"


@pytest.mark.parametrize("factory", [f for _, f in REGISTRY], ids=[i for i, _ in REGISTRY])
def test_builtin_manifold_conforms(factory):
    rng = np.random.default_rng(8)
    manifold, points = factory(rng)
    report = assert_manifold_conforms(manifold, n_points=2, rng=rng, points=points)
    _assert_required(report, manifold)


@pytest.mark.parametrize(
    "manifold, expected",
    [
        (BalancedManifold((3, 3, 3), rng=0), 2),
        (BalancedManifold((3, 3, 3), retraction="polar", rng=0), 1),
        (DLNMatrices(3, 3, 3), 2),
    ],
    ids=["balanced-second-order", "balanced-polar", "dlnmatrices"],
)
def test_measured_orders_match_declared_retraction_order(manifold, expected):
    """The slope of the tangential remainder (submanifolds) or of the Hessian Taylor
    remainder is 2 (+-0.1) for a first-order retraction and >= 2.9 for a second-order one."""
    report = check_manifold(manifold, n_points=2, rng=3)
    if isinstance(manifold, BalancedManifold):
        measured = report["retraction.second_order"].value  # |P_x(R - x - t xi)| = O(t^{k+1})
    else:
        measured = report["hessian.taylor_slope"].value
    if expected == 1:
        assert abs(measured - 2.0) < 0.1, str(report)
    else:
        assert measured >= 2.9, str(report)


def _spectrum(draw, r):
    """Singular values in [0.5, 2] with optional near-repeats and one tiny value."""
    base = draw(st.lists(st.floats(0.5, 2.0), min_size=r, max_size=r))
    sigma = np.sort(np.array(base))[::-1]
    if r >= 2 and draw(st.booleans()):  # nearly repeated pair
        gap = draw(st.sampled_from([0.0, 1e-12, 1e-9, 1e-6]))
        sigma[1] = sigma[0] * (1.0 - gap)
    if draw(st.booleans()):  # one tiny singular value
        sigma[-1] = draw(st.sampled_from([1e-2, 1e-3]))
    return np.sort(sigma)[::-1]


@given(data=st.data())
def test_balanced_conforms_at_hard_spectra(data):
    """Repeated, nearly repeated and small singular values (math.md §2.4: the frame
    projection is exact there, verified C10)."""
    widths = data.draw(st.sampled_from([(3, 3, 3), (3, 3, 3, 3), (2, 3, 3), (3, 4, 4, 2)]))
    seed = data.draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    sigma = _spectrum(data.draw, min(widths[0], widths[-1]))
    point = balanced_point(widths, rng, sigma=sigma)
    manifold = BalancedManifold(widths, rng=rng)
    report = assert_manifold_conforms(manifold, rng=rng, points=[point])
    _assert_required(report, manifold)


@given(data=st.data())
def test_dlnmatrices_conforms_at_hard_spectra(data):
    """g^N at nearly repeated singular values (stable kappa, math.md §3.2) and at a
    singular value 1e-2..1e-3 (A ill-conditioned, ratio up to 1e6 at N = 3)."""
    m, n = data.draw(st.sampled_from([(3, 3), (2, 3), (4, 2)]))
    depth = data.draw(st.integers(1, 5))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    point = matrix_with_spectrum(m, n, _spectrum(data.draw, min(m, n)), rng)
    manifold = DLNMatrices(m, n, depth, rng=rng)
    report = assert_manifold_conforms(manifold, rng=rng, points=[point])
    _assert_required(report, manifold)


def test_registry_covers_every_pymanopt_export():
    """Every manifold class exported by dlnmanifolds.pymanopt has a registry entry."""
    from pymanopt.manifolds.manifold import Manifold

    import dlnmanifolds.pymanopt as pkg

    exported = {
        name for name in getattr(pkg, "__all__", [])
        if isinstance(getattr(pkg, name), type) and issubclass(getattr(pkg, name), Manifold)
    }
    prefixes = {"BalancedManifold": "balanced", "DLNMatrices": "dlnmatrices", "Fiber": "fiber",
                "GroupOrbit": "orbit", "DLNFixedRank": "fixedrank",
                "InvariantManifold": "invariant", "ValidatedManifold": "validated"}
    ids = [i for i, _ in REGISTRY]
    missing = [c for c in exported if not any(i.startswith(prefixes.get(c, c)) for i in ids)]
    assert not missing, f"add these manifolds to REGISTRY: {missing}"
