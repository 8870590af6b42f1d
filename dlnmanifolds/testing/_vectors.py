"""Manifold-agnostic handling of points and tangent vectors.

Pymanopt manifolds represent points and tangent vectors as arrays, lists of
arrays (products, our ``LayerTuple``) or named tuples (fixed-rank). The checks
work on flat float vectors in an *ambient* Euclidean space and convert back:

* ``flatten`` / ``unflatten``: concatenate the ravelled entries of any nesting
  of arrays and sequences, and rebuild an object of the same type;
* ``Embedding``: how points and tangent vectors sit in the ambient space, and
  which object ``manifold.projection`` accepts as an ambient vector.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import autograd.numpy as anp
import numpy as np
from pymanopt.manifolds.manifold import Manifold


def is_sequence(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def flatten(value: Any) -> np.ndarray:
    """All entries of an array or (nested) sequence of arrays, as one float vector."""
    if is_sequence(value):
        if len(value) == 0:
            return np.zeros(0)
        return np.concatenate([flatten(v) for v in value])
    return np.ravel(np.asarray(value, dtype=float))


def _rebuild(like: Any, items: list) -> Any:
    kind = type(like)
    if hasattr(like, "_fields"):  # named tuples take positional fields
        return kind(*items)
    try:
        return kind(items)
    except TypeError:  # pragma: no cover - exotic containers
        return list(items)


def unflatten(vector: np.ndarray, like: Any) -> Any:
    """Inverse of ``flatten``: reshape ``vector`` into the structure and type of ``like``."""
    vector = np.asarray(vector, dtype=float)

    def build(template, start):
        if is_sequence(template):
            items = []
            for item in template:
                built, start = build(item, start)
                items.append(built)
            return _rebuild(template, items), start
        shape = np.shape(template)
        size = int(np.prod(shape))
        return vector[start : start + size].reshape(shape), start + size

    built, end = build(like, 0)
    if end != vector.size:  # pragma: no cover - internal misuse
        raise ValueError(f"vector has {vector.size} entries, the layout needs {end}")
    return built


def combine(like: Any, *terms: tuple[float, Any]) -> Any:
    """sum_k c_k v_k for vectors with the layout of ``like`` (no reliance on their +/*)."""
    total = sum(c * flatten(v) for c, v in terms)
    return unflatten(total, like)


@contextlib.contextmanager
def seeded_global_numpy(rng: np.random.Generator) -> Iterator[None]:
    """Seed numpy's global generator from ``rng`` for the block, then restore it.

    Pymanopt's and Geomstats' own samplers draw from ``numpy.random``; seeding it
    here makes their draws reproducible without leaking state to the caller.
    """
    state = np.random.get_state()
    np.random.seed(int(rng.integers(2**32 - 1)))
    try:
        yield
    finally:
        np.random.set_state(state)


def _overrides(manifold: Manifold, method: str) -> bool:
    own = getattr(type(manifold), method, None)
    return own is not None and own is not getattr(Manifold, method)


def _factored_matrix(u, s, vt):
    # Autograd-safe U diag(s) V^T for fixed-rank (U, S, V^T) points.
    return anp.dot(u * s, vt)


def _is_factored_point(point: Any) -> bool:
    return (
        is_sequence(point)
        and len(point) == 3
        and all(isinstance(a, np.ndarray) for a in point)
        and np.ndim(point[1]) == 1
        and np.ndim(point[0]) == 2
        and np.ndim(point[2]) == 2
    )


@dataclass(frozen=True)
class Embedding:
    """How a manifold's points and tangent vectors sit in a Euclidean ambient space.

    point(x)            -> flat ambient coordinates of x (None if unknown);
    tangent(x, v)       -> flat ambient coordinates of the tangent vector v;
    ambient(x, flat)    -> the object ``manifold.projection(x, .)`` accepts;
    size(x)             -> dimension of the ambient space;
    traced_point(*args) -> ambient coordinates of a point from the cost's
                           arguments, with autograd-safe operations only.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.testing import identity_embedding
    >>> e = identity_embedding()  # an Embedding
    >>> x = [np.eye(2), np.ones((2, 3))]
    >>> e.size(x), e.point(x)[:4]
    (10, array([1., 0., 0., 1.]))
    >>> bool(np.allclose(e.ambient(x, e.point(x))[1], x[1]))  # ambient inverts point
    True
    """

    point: Callable[[Any], np.ndarray | None]
    tangent: Callable[[Any, Any], np.ndarray]
    ambient: Callable[[Any, np.ndarray], Any]
    size: Callable[[Any], int]
    traced_point: Callable[..., Any]
    description: str = "identity"


def identity_embedding() -> Embedding:
    """Points and tangent vectors are already ambient arrays (or sequences of them).

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.testing import identity_embedding
    >>> identity_embedding().point([np.eye(2), np.zeros(1)])
    array([1., 0., 0., 1., 0.])
    """
    return Embedding(
        point=flatten,
        tangent=lambda x, v: flatten(v),
        ambient=lambda x, flat: unflatten(flat, x),
        size=lambda x: flatten(x).size,
        traced_point=lambda *args: anp.concatenate([anp.ravel(a) for a in args]),
        description="identity (points and tangent vectors are ambient arrays)",
    )


def embedded_tangent(manifold: Manifold, point: Any, vector: Any) -> np.ndarray:
    """Ambient form of a tangent vector through ``manifold.embedding``.

    Pymanopt's fixed-rank convention returns a factored triple (U, S, V) with
    ambient matrix U S V^T; anything else is taken as the ambient array itself.
    """
    out = manifold.embedding(point, vector)
    if is_sequence(out) and len(out) == 3 and np.ndim(out[1]) == 2:
        return np.ravel(out[0] @ out[1] @ np.swapaxes(out[2], -1, -2))
    return flatten(out)


def factored_embedding(manifold: Manifold) -> Embedding:
    """Fixed-rank style: points (U, s, V^T) embed as U diag(s) V^T, tangent vectors
    through ``manifold.embedding``, ambient vectors are m x n matrices.

    Example
    -------
    >>> import numpy as np
    >>> from pymanopt.manifolds import FixedRankEmbedded
    >>> from dlnmanifolds.testing import factored_embedding
    >>> M = FixedRankEmbedded(4, 3, 2)
    >>> u, s, vt = np.eye(4, 2), np.array([2.0, 1.0]), np.eye(2, 3)
    >>> e = factored_embedding(M)
    >>> e.size((u, s, vt)), bool(np.allclose(e.point((u, s, vt)), ((u * s) @ vt).ravel()))
    (12, True)
    """

    def shape(x):
        return (x[0].shape[0], x[2].shape[1])

    return Embedding(
        point=lambda x: np.ravel(_factored_matrix(*x)),
        tangent=lambda x, v: embedded_tangent(manifold, x, v),
        ambient=lambda x, flat: np.reshape(flat, shape(x)),
        size=lambda x: int(np.prod(shape(x))),
        traced_point=lambda *args: anp.ravel(_factored_matrix(*args)),
        description="factored (U, s, V^T) points, ambient m x n matrices",
    )


def trivialized_embedding(manifold: Manifold) -> Embedding:
    """Points are ambient arrays, tangent vectors are stored in another form and
    mapped to the ambient space by ``manifold.embedding`` (e.g. Pymanopt's
    SpecialOrthogonalGroup keeps the skew matrix Omega of the tangent vector X Omega)."""
    base = identity_embedding()
    return Embedding(
        point=base.point,
        tangent=lambda x, v: embedded_tangent(manifold, x, v),
        ambient=base.ambient,
        size=base.size,
        traced_point=base.traced_point,
        description="ambient points, tangent vectors through manifold.embedding",
    )


def default_embedding(manifold: Manifold, point: Any) -> Embedding:
    """Guess the embedding from the manifold and a sample point (override if wrong).

    Fixed-rank (U, s, V^T) points -> ``factored_embedding``; a manifold that
    overrides ``embedding`` -> ``trivialized_embedding``; else ``identity_embedding``.
    """
    if _overrides(manifold, "embedding"):
        if _is_factored_point(point):
            return factored_embedding(manifold)
        return trivialized_embedding(manifold)
    return identity_embedding()
