"""Conformance checks for Geomstats spaces, metrics and fiber bundles.

The Geomstats counterpart of ``check_manifold``. Geomstats argument order is
``metric.exp(tangent_vec, base_point)``, ``metric.log(point, base_point)``;
points carry the space's ``shape``.

* space: random points belong; ``projection`` lands on the space and is
  idempotent; ``to_tangent`` gives tangent vectors (``is_tangent``) and is an
  idempotent, Frobenius-self-adjoint projection whose rank is ``space.dim``;
* metric: symmetric, positive definite (Gram matrix on a tangent basis), norm
  consistent; exp lands on the space and is first order; log inverts exp and
  exp inverts log; dist equals the norm of log;
* bundle (``FiberBundle``): tangent vectors split as vertical + horizontal,
  orthogonal for the total-space metric; the differential of the submersion
  kills vertical vectors; horizontal lifts are horizontal and project back;
  ``riemannian_submersion(lift(b)) = b``; optionally ``align`` stays in the fiber.

Backend-neutral: points and vectors stay in the space's own kind (numpy arrays, or
torch tensors under ``GEOMSTATS_BACKEND=pytorch``) for every call into the space. Only
the error numbers are computed in numpy, from ``_host`` copies
(``.detach().cpu().numpy()`` for tensors); the checker's own random directions are
drawn from its numpy Generator and handed over once, in the point's dtype and device
(``_like``).
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from dlnmanifolds.core._validate import as_rng, check_positive_int
from dlnmanifolds.testing._vectors import seeded_global_numpy
from dlnmanifolds.testing.manifold_checks import _Skip
from dlnmanifolds.testing.membership import ATOL_LADDER
from dlnmanifolds.testing.report import (
    CheckResult,
    ConformanceReport,
    judge,
    run_check_group,
)
from dlnmanifolds.testing.slopes import STEP_WINDOW, STEPS, loglog_slope

#: Tolerances of the Geomstats checks (slopes and eigenvalues with ``>=``).
GEOMSTATS_TOLERANCES: dict[str, float] = {
    "point.belongs": 1e-8,
    "projection.belongs": 1e-8,
    "projection.idempotent": 1e-8,
    "tangent.is_tangent": 1e-8,
    "to_tangent.is_tangent": 1e-8,
    "to_tangent.idempotent": 1e-8,
    "to_tangent.self_adjoint": 1e-8,
    "dim.tangent_rank": 0.0,
    "metric.symmetric": 1e-8,
    "metric.norm_consistent": 1e-8,
    "metric.positive_definite": 1e-12,
    "exp.belongs": 1e-8,
    "exp.first_order": 1.9,
    "exp_log.inverse": 1e-6,
    "log_exp.inverse": 1e-6,
    "dist.log_norm": 1e-6,
    "bundle.decomposition": 1e-8,
    "bundle.orthogonal": 1e-8,
    "bundle.horizontal_idempotent": 1e-8,
    "bundle.is_horizontal": 1e-8,
    "bundle.is_vertical": 1e-8,
    "bundle.submersion_kills_vertical": 1e-8,
    "bundle.lift_horizontal": 1e-8,
    "bundle.lift_projects_back": 1e-8,
    "bundle.section": 1e-8,
    "bundle.align_in_fiber": 1e-6,
    "bundle.align_not_farther": 1e-8,
}
_GREATER = {"metric.positive_definite", "exp.first_order"}


def _host(a: Any) -> np.ndarray:
    """A numpy copy of an array or tensor, for the error numbers only (never passed back
    to the space)."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # a torch tensor (no torch import)
        return a.detach().cpu().numpy()
    return np.asarray(a)


def _like(values: np.ndarray, point: Any) -> Any:
    """numpy ``values`` in the kind of ``point``: unchanged for numpy points, a tensor of
    the point's dtype and device for torch points (the checker's random directions)."""
    if isinstance(point, np.ndarray) or not hasattr(point, "new_tensor"):
        return values
    return point.new_tensor(values)


def _size(point: Any) -> int:
    return int(np.prod(tuple(point.shape)))


def _norm(a: Any) -> float:
    return float(np.linalg.norm(np.ravel(_host(a))))


def _rel(a: Any, b: Any, scale: Any) -> float:
    diff = np.linalg.norm(np.ravel(_host(a) - _host(b)))
    return float(diff / max(_norm(scale), 1e-300))


def _smallest_atol(test: Callable[[float], Any]) -> float:
    for atol in ATOL_LADDER:
        if bool(np.all(_host(test(atol)))):
            return atol
    return math.inf


@contextlib.contextmanager
def _seeded(gen: np.random.Generator):
    """Seed numpy's global generator from ``gen`` for the block, then restore it; on
    Geomstats' pytorch backend (which samples from torch's generator) torch's CPU
    generator too, from the freshly seeded numpy one (``gen`` advances as on numpy)."""
    backend = sys.modules.get("geomstats.backend")
    torch = sys.modules.get("torch")
    with seeded_global_numpy(gen):
        if torch is None or backend is None or not backend.__name__.endswith("pytorch"):
            yield
            return
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.randint(2**31 - 1)))
            yield


class _GeomstatsChecker:
    def __init__(self, subject: str, tol: dict[str, float], rng: np.random.Generator):
        self.tol = tol
        self.rng = rng
        self.report = ConformanceReport(subject)

    def result(self, name: str, value: float, note: str = "") -> CheckResult:
        return judge(name, value, self.tol[name], ">=" if name in _GREATER else "<=", note)

    def run(self, names: Sequence[str], check: Callable[[], list[CheckResult]]) -> None:
        run_check_group(self.report, names, check)


def _space_points(space, n_points, points, gen):
    if points is not None:
        return [p if _is_array(p) else np.asarray(p, dtype=float) for p in points]
    with _seeded(gen):
        return [space.random_point() for _ in range(n_points)]


def _is_array(p: Any) -> bool:
    return isinstance(p, np.ndarray) or hasattr(p, "new_tensor")


def _tangent(space, metric, x, gen):
    with _seeded(gen):
        v = space.random_tangent_vec(x)
    norm = float(metric.norm(v, x)) if metric is not None else _norm(v)
    return v / norm


def _check_common(space, n_points, rng, points, tolerances, max_ambient_dim, table, name):
    from geomstats.geometry.manifold import Manifold as GeomstatsManifold

    if not isinstance(space, GeomstatsManifold):
        raise TypeError(
            f"{name} must be a geomstats.geometry.manifold.Manifold, got {type(space).__name__}"
            " (for Pymanopt manifolds use check_manifold)"
        )
    check_positive_int(n_points, "n_points")
    check_positive_int(max_ambient_dim, "max_ambient_dim", minimum=0)
    if points is not None:
        if isinstance(points, (str, bytes)) or not isinstance(points, (Sequence, np.ndarray)):
            raise TypeError(f"points must be a sequence of points, got {type(points).__name__}")
        if len(points) == 0:
            raise ValueError("points must contain at least one point, got an empty sequence")
    tol = dict(table)
    if tolerances is not None:
        if not isinstance(tolerances, Mapping):
            raise TypeError(
                f"tolerances must be a mapping from check name to number, got "
                f"{type(tolerances).__name__}"
            )
        for key, value in tolerances.items():
            if key not in table:
                raise ValueError(f"tolerances: unknown check {key!r}; known: {sorted(table)}")
            if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
                raise TypeError(f"tolerances[{key!r}] must be a real number, got {value!r}")
            tol[key] = float(value)
    return tol, as_rng(rng)


def check_geomstats_space(
    space: Any,
    n_points: int = 3,
    rng: np.random.Generator | int | None = None,
    *,
    points: Sequence[Any] | None = None,
    tolerances: Mapping[str, float] | None = None,
    max_ambient_dim: int = 200,
    verbose: bool = False,
) -> ConformanceReport:
    """Run the conformance checks on a Geomstats space and its equipped metric.

    Parameters
    ----------
    space : a ``geomstats.geometry.manifold.Manifold`` (metric checks are
        skipped if it has no ``metric``).
    n_points : number of random points (``space.random_point``).
    rng : Generator or seed; Geomstats' global-numpy samplers are seeded from it.
    points : check at these points instead.
    tolerances : per-check overrides of ``GEOMSTATS_TOLERANCES``.
    max_ambient_dim : largest ambient size for the dense rank/Gram checks.

    Example
    -------
    >>> import geomstats.backend  # noqa: F401 (numpy backend, selected by dlnmanifolds)
    >>> from geomstats.geometry.hypersphere import Hypersphere
    >>> from dlnmanifolds.testing import check_geomstats_space
    >>> report = check_geomstats_space(Hypersphere(2), n_points=1, rng=0)
    >>> report.passed
    True
    """
    tol, gen = _check_common(
        space, n_points, rng, points, tolerances, max_ambient_dim, GEOMSTATS_TOLERANCES, "space"
    )
    xs = _space_points(space, n_points, points, gen)
    metric = getattr(space, "metric", None)
    c = _GeomstatsChecker(f"{type(space).__name__} (Geomstats, dim {space.dim})", tol, gen)
    c.report.settings.update(n_points=len(xs), metric=type(metric).__name__)

    def belongs():
        worst = max(_smallest_atol(lambda a, x=x: space.belongs(x, atol=a)) for x in xs)
        return [c.result("point.belongs", worst, "smallest atol accepted by belongs")]

    def projection():
        bel = idem = 0.0
        for x in xs:
            near = x + 1e-2 * _like(gen.standard_normal(tuple(x.shape)), x)
            p = space.projection(near)
            bel = max(bel, _smallest_atol(lambda a, p=p: space.belongs(p, atol=a)))
            idem = max(idem, _rel(space.projection(p), p, p))
        return [c.result("projection.belongs", bel), c.result("projection.idempotent", idem)]

    def tangents():
        rand = tt = idem = adj = 0.0
        for x in xs:
            v = _tangent(space, metric, x, gen)
            rand = max(rand, _smallest_atol(lambda a, v=v, x=x: space.is_tangent(v, x, atol=a)))
            a = gen.standard_normal(tuple(x.shape))
            b = gen.standard_normal(tuple(x.shape))
            pa, pb = space.to_tangent(_like(a, x), x), space.to_tangent(_like(b, x), x)
            tt = max(tt, _smallest_atol(lambda t, pa=pa, x=x: space.is_tangent(pa, x, atol=t)))
            idem = max(idem, _rel(space.to_tangent(pa, x), pa, pa))
            ha, hb = _host(pa), _host(pb)
            adj = max(
                adj, abs(np.sum(ha * b) - np.sum(a * hb)) / (np.linalg.norm(a) * np.linalg.norm(b))
            )
        return [
            c.result("tangent.is_tangent", rand, "random_tangent_vec; smallest atol accepted"),
            c.result("to_tangent.is_tangent", tt, "smallest atol accepted by is_tangent"),
            c.result("to_tangent.idempotent", idem),
            c.result("to_tangent.self_adjoint", adj, "ambient Frobenius product"),
        ]

    def dimension():
        x = xs[0]
        n = _size(x)
        if n > max_ambient_dim:
            raise _Skip(f"ambient dimension {n} > max_ambient_dim = {max_ambient_dim}")
        shape = tuple(x.shape)
        cols = np.array(
            [np.ravel(_host(space.to_tangent(_like(e.reshape(shape), x), x))) for e in np.eye(n)]
        ).T
        u, s, _ = np.linalg.svd(cols)
        rank = int(np.sum(s > 1e-8 * max(s[0], 1e-300)))
        out = [
            judge(
                "dim.tangent_rank",
                rank,
                int(space.dim),
                "==",
                f"rank of the to_tangent matrix ({n} x {n})",
            )
        ]
        if metric is None:
            out.append(CheckResult("metric.positive_definite", "skip", note="no metric"))
            return out
        basis = [_like(np.ascontiguousarray(u[:, k].reshape(shape)), x) for k in range(rank)]
        gram = np.array([[float(metric.inner_product(a, b, x)) for b in basis] for a in basis])
        eig = np.linalg.eigvalsh(0.5 * (gram + gram.T))
        out.append(
            c.result(
                "metric.positive_definite",
                float(eig[0] / eig[-1]),
                "min/max eigenvalue of the Gram matrix on a tangent basis",
            )
        )
        return out

    def metric_checks():
        if metric is None:
            raise _Skip("space has no metric")
        sym = cons = 0.0
        for x in xs:
            u, v = _tangent(space, metric, x, gen), _tangent(space, metric, x, gen)
            sym = max(
                sym,
                abs(float(metric.inner_product(u, v, x)) - float(metric.inner_product(v, u, x))),
            )
            cons = max(
                cons, abs(float(metric.norm(u, x)) ** 2 - float(metric.inner_product(u, u, x)))
            )
        return [c.result("metric.symmetric", sym), c.result("metric.norm_consistent", cons)]

    def exp_checks():
        if metric is None:
            raise _Skip("space has no metric")
        bel = 0.0
        slope = math.inf
        for x in xs:
            v = _tangent(space, metric, x, gen)
            errors = []
            for t in STEPS:
                y = metric.exp(t * v, x)
                bel = max(bel, _smallest_atol(lambda a, y=y: space.belongs(y, atol=a)))
                errors.append(_norm(y - x - t * v))
            floor = 1e2 * np.finfo(float).eps * max(1.0, _norm(x))
            slope = min(slope, loglog_slope(STEPS, errors, floor, window=STEP_WINDOW))
        return [
            c.result("exp.belongs", bel),
            c.result("exp.first_order", slope, "slope of |exp_x(t v) - x - t v|"),
        ]

    def exp_log():
        if metric is None:
            raise _Skip("space has no metric")
        x = xs[0]
        v = 0.3 * _tangent(space, metric, x, gen)
        back = metric.log(metric.exp(v, x), x)
        return [c.result("exp_log.inverse", _rel(back, v, v), "|log(exp(v)) - v| / |v|")]

    def log_exp():
        if metric is None:
            raise _Skip("space has no metric")
        x = xs[0]
        y = metric.exp(0.5 * _tangent(space, metric, x, gen), x)
        there = metric.exp(metric.log(y, x), x)
        return [c.result("log_exp.inverse", _rel(there, y, y))]

    def dist_log():
        if metric is None:
            raise _Skip("space has no metric")
        x = xs[0]
        y = metric.exp(0.5 * _tangent(space, metric, x, gen), x)
        d = float(metric.dist(y, x))
        return [c.result("dist.log_norm", abs(d - float(metric.norm(metric.log(y, x), x))) / d)]

    c.run(["point.belongs"], belongs)
    c.run(["projection.belongs", "projection.idempotent"], projection)
    c.run(
        [
            "tangent.is_tangent",
            "to_tangent.is_tangent",
            "to_tangent.idempotent",
            "to_tangent.self_adjoint",
        ],
        tangents,
    )
    c.run(["dim.tangent_rank", "metric.positive_definite"], dimension)
    c.run(["metric.symmetric", "metric.norm_consistent"], metric_checks)
    c.run(["exp.belongs", "exp.first_order"], exp_checks)
    c.run(["exp_log.inverse"], exp_log)
    c.run(["log_exp.inverse"], log_exp)
    c.run(["dist.log_norm"], dist_log)
    if verbose:
        print(c.report.table())
    return c.report


def check_geomstats_bundle(
    bundle: Any,
    n_points: int = 3,
    rng: np.random.Generator | int | None = None,
    *,
    base: Any | None = None,
    points: Sequence[Any] | None = None,
    check_align: bool = True,
    tolerances: Mapping[str, float] | None = None,
    verbose: bool = False,
) -> ConformanceReport:
    """Run the conformance checks on a Geomstats ``FiberBundle``.

    Parameters
    ----------
    bundle : a ``geomstats.geometry.fiber_bundle.FiberBundle`` whose total space
        carries a metric.
    base : the base space, if explicit (then submersion images must belong to it).
    points : total-space points to check at (default random ones).
    check_align : also check ``align`` (may run an optimizer).

    Example
    -------
    The DLN bundle M -> (GL(2), g^N) passes every check, ``align`` included:

    >>> from dlnmanifolds.geomstats import BalancedSpace
    >>> from dlnmanifolds.testing import check_geomstats_bundle
    >>> space = BalancedSpace(2, depth=3, rng=0)
    >>> _ = space.equip_with_quotient()
    >>> report = check_geomstats_bundle(space.fiber_bundle, n_points=1, rng=0)
    >>> report.passed, report["bundle.orthogonal"].status
    (True, 'pass')
    """
    from geomstats.geometry.fiber_bundle import FiberBundle

    if not isinstance(bundle, FiberBundle):
        raise TypeError(
            "bundle must be a geomstats.geometry.fiber_bundle.FiberBundle, got "
            f"{type(bundle).__name__}"
        )
    total = bundle._total_space  # Geomstats keeps the total space private
    tol, gen = _check_common(
        total, n_points, rng, points, tolerances, 10**9, GEOMSTATS_TOLERANCES, "bundle total space"
    )
    if not isinstance(check_align, bool):
        raise TypeError(f"check_align must be a bool, got {type(check_align).__name__}")
    metric = total.metric
    xs = _space_points(total, n_points, points, gen)
    c = _GeomstatsChecker(
        f"{type(bundle).__name__} over {type(total).__name__} (Geomstats)", tol, gen
    )
    c.report.settings.update(n_points=len(xs))

    def split():
        dec = orth = idem = hor = ver = kill = 0.0
        for x in xs:
            v = _tangent(total, metric, x, gen)
            h = bundle.horizontal_projection(v, x)
            w = bundle.vertical_projection(v, x)
            dec = max(dec, _rel(h + w, v, v))
            orth = max(orth, abs(float(metric.inner_product(h, w, x))))
            idem = max(idem, _rel(bundle.horizontal_projection(h, x), h, v))
            hor = max(hor, _smallest_atol(lambda a, h=h, x=x: bundle.is_horizontal(h, x, atol=a)))
            ver = max(ver, _smallest_atol(lambda a, w=w, x=x: bundle.is_vertical(w, x, atol=a)))
            image = bundle.tangent_riemannian_submersion(v, x)
            kill = max(kill, _rel(bundle.tangent_riemannian_submersion(w, x), 0.0, image))
        return [
            c.result("bundle.decomposition", dec, "|hor(v) + ver(v) - v| / |v|"),
            c.result("bundle.orthogonal", orth, "g(hor v, ver v), unit v"),
            c.result("bundle.horizontal_idempotent", idem),
            c.result("bundle.is_horizontal", hor, "smallest atol accepted"),
            c.result("bundle.is_vertical", ver, "smallest atol accepted"),
            c.result("bundle.submersion_kills_vertical", kill),
        ]

    def lifts():
        hor = back = section = 0.0
        for x in xs:
            v = _tangent(total, metric, x, gen)
            w = bundle.tangent_riemannian_submersion(v, x)
            b = bundle.riemannian_submersion(x)
            lifted = bundle.horizontal_lift(w, fiber_point=x)
            hor = max(
                hor,
                _smallest_atol(
                    lambda a, lifted=lifted, x=x: bundle.is_horizontal(lifted, x, atol=a)
                ),
            )
            back = max(back, _rel(bundle.tangent_riemannian_submersion(lifted, x), w, w))
            section = max(section, _rel(bundle.riemannian_submersion(bundle.lift(b)), b, b))
        out = [
            c.result("bundle.lift_horizontal", hor, "smallest atol accepted"),
            c.result("bundle.lift_projects_back", back, "|dpi(lift w) - w| / |w|"),
            c.result("bundle.section", section, "|pi(lift(b)) - b| / |b|"),
        ]
        if base is not None:
            worst = max(
                _smallest_atol(lambda a, x=x: base.belongs(bundle.riemannian_submersion(x), atol=a))
                for x in xs
            )
            out.append(
                judge("bundle.submersion_belongs", worst, 1e-8, "<=", "pi(x) in the base space")
            )
        return out

    def align():
        if not check_align:
            raise _Skip("check_align=False")
        x = xs[0]
        # A second point of the total space: with one sample, step along a geodesic
        # (x + 0.1 v leaves a curved total space, and align rejects it).
        y = xs[1] if len(xs) > 1 else metric.exp(0.1 * _tangent(total, metric, xs[0], gen), xs[0])
        aligned = bundle.align(y, x)
        b = bundle.riemannian_submersion(y)
        closer = float(metric.dist(aligned, x)) - float(metric.dist(y, x))
        return [
            c.result("bundle.align_in_fiber", _rel(bundle.riemannian_submersion(aligned), b, b)),
            c.result(
                "bundle.align_not_farther", max(closer, 0.0), "dist(align(y), x) - dist(y, x)"
            ),
        ]

    c.run(
        [
            "bundle.decomposition",
            "bundle.orthogonal",
            "bundle.horizontal_idempotent",
            "bundle.is_horizontal",
            "bundle.is_vertical",
            "bundle.submersion_kills_vertical",
        ],
        split,
    )
    c.run(["bundle.lift_horizontal", "bundle.lift_projects_back", "bundle.section"], lifts)
    c.run(["bundle.align_in_fiber", "bundle.align_not_farther"], align)
    if verbose:
        print(c.report.table())
    return c.report


def assert_geomstats_conforms(subject: Any, **kwargs: Any) -> ConformanceReport:
    """``check_geomstats_space`` (or ``check_geomstats_bundle`` for a FiberBundle);
    raise one AssertionError listing every failed check.

    Example
    -------
    >>> from dlnmanifolds.geomstats import BalancedSpace
    >>> from dlnmanifolds.testing import assert_geomstats_conforms
    >>> report = assert_geomstats_conforms(BalancedSpace(2, depth=2, rng=0), n_points=1, rng=0)
    >>> report.passed  # it raises AssertionError, listing the failures, when not
    True
    """
    from geomstats.geometry.fiber_bundle import FiberBundle

    check = check_geomstats_bundle if isinstance(subject, FiberBundle) else check_geomstats_space
    report = check(subject, **kwargs)
    report.raise_for_failures()
    return report
