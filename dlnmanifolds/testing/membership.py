"""Membership tests: how far a point is from lying on a manifold.

Our manifolds expose ``belongs(point, atol)`` (and ``check_point``), as Geomstats
spaces do. Pymanopt's own manifolds do not, so for its common built-ins we
measure a defect (0 on the manifold) directly; for anything else the check is
reported as skipped rather than failed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from pymanopt import manifolds as pm

#: Tolerances tried, tightest first, when a manifold only answers belongs(point, atol).
ATOL_LADDER = tuple(10.0**k for k in range(-15, -1))


def _orthonormality(q: np.ndarray) -> float:
    q = np.asarray(q, dtype=float)
    gram = np.swapaxes(q, -1, -2) @ q
    return float(np.max(np.abs(gram - np.eye(q.shape[-1]))))


def _finite(x: Any) -> bool:
    return bool(np.all(np.isfinite(np.asarray(x, dtype=float))))


def _guard(defect: Callable[[Any], float]) -> Callable[[Any], float]:
    def wrapped(point: Any) -> float:
        try:
            value = defect(point)
        except (ValueError, TypeError, IndexError, np.linalg.LinAlgError):
            return float("inf")
        return float("inf") if not np.isfinite(value) else float(value)

    return wrapped


def _spd_defect(x):
    x = np.asarray(x, dtype=float)
    sym = float(np.max(np.abs(x - np.swapaxes(x, -1, -2))))
    eig = np.linalg.eigvalsh(0.5 * (x + np.swapaxes(x, -1, -2)))
    return sym if np.all(eig > 0) else float("inf")


def _special_orthogonal_defect(q):
    det = np.linalg.det(np.asarray(q, dtype=float))
    return _orthonormality(q) + float(np.max(np.abs(det - 1.0)))


def _fixed_rank_defect(point):
    u, s, vt = point
    if not np.all(np.asarray(s) > 0):
        return float("inf")
    return max(_orthonormality(u), _orthonormality(np.asarray(vt).T))


_DEFECTS: dict[type, Callable[[Any], float]] = {
    pm.Euclidean: lambda x: 0.0 if _finite(x) else float("inf"),
    pm.Symmetric: lambda x: float(np.max(np.abs(x - np.swapaxes(x, -1, -2)))),
    pm.SkewSymmetric: lambda x: float(np.max(np.abs(x + np.swapaxes(x, -1, -2)))),
    pm.Sphere: lambda x: abs(float(np.linalg.norm(x)) - 1.0),
    pm.Stiefel: _orthonormality,
    pm.Grassmann: _orthonormality,
    pm.SpecialOrthogonalGroup: _special_orthogonal_defect,
    pm.Oblique: lambda x: float(np.max(np.abs(np.linalg.norm(x, axis=0) - 1.0))),
    pm.Positive: lambda x: 0.0 if np.all(np.asarray(x) > 0) else float("inf"),
    pm.SymmetricPositiveDefinite: _spd_defect,
    pm.FixedRankEmbedded: _fixed_rank_defect,
    pm.PoincareBall: lambda x: 0.0 if np.all(np.linalg.norm(x, axis=-1) < 1.0) else float("inf"),
}


def _belongs_defect(manifold: Any) -> Callable[[Any], float]:
    """Smallest atol on ATOL_LADDER at which ``manifold.belongs`` accepts the point."""

    def defect(point: Any) -> float:
        for atol in ATOL_LADDER:
            try:
                ok = manifold.belongs(point, atol=atol)
            except TypeError:  # belongs(point) without a tolerance
                ok = manifold.belongs(point)
            if bool(np.all(ok)):
                return atol
        return float("inf")

    return defect


def membership_test(manifold: Any) -> tuple[Callable[[Any], float] | None, str]:
    """A defect function (0 or tiny on the manifold, inf when off it) and its source.

    Order: ``belongs`` (our manifolds, Geomstats spaces), a known Pymanopt
    built-in, a Product of known factors; ``None`` when nothing is known.
    """
    if callable(getattr(manifold, "belongs", None)):
        return _belongs_defect(manifold), "belongs(point, atol): smallest passing atol"
    # Subclasses of a built-in (e.g. one overriding a method) keep its point set.
    known = next((_DEFECTS[c] for c in type(manifold).__mro__ if c in _DEFECTS), None)
    if known is not None:
        return _guard(known), f"defect for Pymanopt {type(manifold).__name__}"
    if isinstance(manifold, pm.Product):
        parts = [membership_test(m)[0] for m in manifold.manifolds]
        if all(p is not None for p in parts):
            return (
                lambda point: max(p(x) for p, x in zip(parts, point)),
                "maximum defect over the product factors",
            )
    return None, "not checked: no membership test (pass membership=...)"
