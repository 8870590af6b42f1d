"""A validating wrapper for any Pymanopt manifold: the way to debug a cost.

The manifolds' hot-path methods (projection, retraction, inner product,
transport, Hessian conversion) validate nothing, as Pymanopt's do: they are
called thousands of times per solve. ``validated(manifold)`` returns a
manifold that behaves exactly like ``manifold`` but checks, on every call,
every point (finite, right shapes, on the manifold by the manifold's own
``check_point``), every tangent vector (finite, shaped like the point's
tangent vectors, tangent: ``|v - P_x v| <= tangent_rtol |v| + 1e-13 max(1, |x|)``
with P_x the manifold's ``to_tangent_space``) and every Euclidean gradient or Hessian
(finite, right shape), then the results. The first bad value raises a
``ValueError`` naming the method, the argument and what is wrong, e.g.::

    euclidean_to_riemannian_gradient: argument euclidean_gradient[1] contains
    3 NaN/inf entries (of 12)

This is the analogue of ManifoldsBase.jl's ``ValidationManifold``
(Axen, Baran, Bergmann & Rzecki 2023, "Manifolds.jl", ACM TOMS §3.5).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymanopt.manifolds.manifold import Manifold


def _arrays(value: Any, name: str) -> list[tuple[str, np.ndarray]]:
    """The arrays of a point or vector with their names: x, x[0], x[1], ..."""
    if isinstance(value, np.ndarray) or np.isscalar(value):
        return [(name, np.asarray(value))]
    if isinstance(value, (list, tuple)):
        out = []
        for k, item in enumerate(value):
            out.extend(_arrays(item, f"{name}[{k}]"))
        return out
    raise TypeError(f"{name} must be an array or a sequence of arrays, got {type(value).__name__}")


def _norm(arrays) -> float:
    return float(np.sqrt(sum(float(np.sum(a * a)) for _, a in arrays)))


#: Methods a Pymanopt manifold may leave to the base class (which raises); the
#: wrapper offers them only when the wrapped manifold does, so that tools probing
#: for them (Pymanopt's solvers, ``dlnmanifolds.testing``) see the same manifold.
_OPTIONAL = (
    "typical_dist",
    "dist",
    "euclidean_to_riemannian_hessian",
    "exp",
    "log",
    "transport",
    "embedding",
    "pair_mean",
)
_SUBCLASSES: dict[tuple[str, ...], type] = {}
#: Absolute floor of the tangency test, relative to the size of the point.
_FLOOR = 1e-13


def _provides(manifold: Manifold, name: str) -> bool:
    own = getattr(type(manifold), name, None)
    return own is not None and own is not getattr(Manifold, name, None)


class ValidatedManifold(Manifold):
    """``manifold`` with every point, tangent vector and result checked (see module doc).

    Parameters
    ----------
    manifold : a Pymanopt manifold offering ``check_point(point, atol)`` (every
        dlnmanifolds manifold does) that raises ValueError/TypeError off the manifold.
    atol : tolerance passed to ``check_point`` (None: the manifold's default).
    tangent_rtol : relative tolerance of the tangency test.
    check_results : also check the points and vectors the methods return.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.pymanopt import BalancedManifold, ValidatedManifold
    >>> M = ValidatedManifold(BalancedManifold((2, 2, 2), rng=0))
    >>> W = M.random_point()
    >>> M.inner_product(W, M.zero_vector(W), M.zero_vector(W))
    0.0
    >>> M.projection(W, [np.full((2, 2), np.nan), np.eye(2)])
    Traceback (most recent call last):
    ...
    ValueError: projection: argument vector[0] contains 4 NaN/inf entries (of 4)
    """

    def __new__(cls, manifold: Manifold, *args, **kwargs):
        inner = manifold.manifold if isinstance(manifold, ValidatedManifold) else manifold
        if cls is not ValidatedManifold or not isinstance(inner, Manifold):
            return super().__new__(cls)
        absent = tuple(name for name in _OPTIONAL if not _provides(inner, name))
        if not absent:
            return super().__new__(cls)
        if absent not in _SUBCLASSES:
            namespace = {name: getattr(Manifold, name) for name in absent}
            _SUBCLASSES[absent] = type("ValidatedManifold", (ValidatedManifold,), namespace)
        return super().__new__(_SUBCLASSES[absent])

    def __init__(
        self,
        manifold: Manifold,
        atol: float | None = None,
        tangent_rtol: float = 1e-8,
        check_results: bool = True,
    ):
        if isinstance(manifold, ValidatedManifold):
            manifold = manifold.manifold
        if not isinstance(manifold, Manifold):
            raise TypeError(f"manifold must be a pymanopt Manifold, got {type(manifold).__name__}")
        if not callable(getattr(manifold, "check_point", None)):
            raise TypeError(
                f"manifold {type(manifold).__name__} has no check_point(point, atol) "
                f"method; validated() needs one to test membership"
            )
        if atol is not None and not (isinstance(atol, (int, float)) and 0 <= atol < np.inf):
            raise ValueError(f"atol must be a finite number >= 0 or None, got {atol!r}")
        if not (isinstance(tangent_rtol, (int, float)) and 0 < tangent_rtol < np.inf):
            raise ValueError(f"tangent_rtol must be a finite number > 0, got {tangent_rtol!r}")
        self.manifold = manifold
        self.atol = atol
        self.tangent_rtol = float(tangent_rtol)
        self.check_results = bool(check_results)
        super().__init__(f"validated({manifold})", manifold.dim, point_layout=manifold.point_layout)

    # -- checks ------------------------------------------------------------------
    def _fail(self, method: str, name: str, what: str):
        raise ValueError(f"{method}: argument {name} {what}")

    def _finite(self, method: str, name: str, value) -> list[tuple[str, np.ndarray]]:
        try:
            arrays = _arrays(value, name)
        except TypeError as exc:
            raise TypeError(f"{method}: {exc}") from None
        for label, a in arrays:
            if a.dtype == object or not (
                np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)
            ):
                raise TypeError(f"{method}: argument {label} must be real numeric, got {a.dtype}")
            bad = int(a.size - np.count_nonzero(np.isfinite(a)))
            if bad:
                self._fail(method, label, f"contains {bad} NaN/inf entries (of {a.size})")
        return arrays

    def check_point(self, point, atol: float | None = None, method: str = "check_point"):
        """Raise ValueError naming ``method`` unless ``point`` lies on the manifold."""
        return self._point(method, "point", point, atol)

    def _point(self, method: str, name: str, point, atol=None):
        self._finite(method, name, point)
        tol = self.atol if atol is None else atol
        try:
            if tol is None:
                self.manifold.check_point(point)
            else:
                self.manifold.check_point(point, tol)
        except (ValueError, TypeError) as exc:
            raise type(exc)(
                f"{method}: argument {name} is not a point of the manifold: {exc}"
            ) from None
        return point

    def _shapes_like(self, method, name, arrays, reference, what):
        if len(arrays) != len(reference) or any(
            a.shape != r.shape for (_, a), (_, r) in zip(arrays, reference)
        ):
            got = [a.shape for _, a in arrays]
            want = [r.shape for _, r in reference]
            self._fail(method, name, f"must have the shapes of {what} {want}, got {got}")

    def _tangent(self, method: str, name: str, point, vector, point_name: str = "point"):
        arrays = self._finite(method, name, vector)
        # The shapes of the point's tangent vectors ((Up, M, Vp) for a (u, s, vt) point).
        zero = _arrays(self.manifold.zero_vector(point), "zero")
        self._shapes_like(method, name, arrays, zero, f"a tangent vector at {point_name}")
        projected = _arrays(self.manifold.to_tangent_space(point, vector), name)
        if len(projected) != len(arrays):
            return vector
        size = _norm(arrays)
        off = _norm([(n, a - p) for (n, a), (_, p) in zip(arrays, projected)])
        # A rounding-level vector (a difference of nearly equal vectors) has no
        # meaningful direction: below FLOOR * max(1, |x|) the test passes.
        floor = _FLOOR * max(1.0, _norm(_arrays(point, point_name)))
        if off > self.tangent_rtol * size + floor:
            self._fail(
                method,
                name,
                f"is not tangent at {point_name}: |v - P(v)| = {off:.3g} is "
                f"{off / max(size, np.finfo(float).tiny):.3g} of |v| = {size:.3g} "
                f"(tolerance {self.tangent_rtol:g})",
            )
        return vector

    def _ambient(self, method: str, name: str, point, value):
        """A Euclidean gradient/Hessian: finite, and shaped like the point if it can be."""
        arrays = self._finite(method, name, value)
        point_arrays = _arrays(point, "point")
        shape = getattr(self.manifold, "shape", None)
        if len(arrays) == 1 and shape is not None and len(point_arrays) != 1:
            if arrays[0][1].shape != tuple(shape):
                self._fail(
                    method, name, f"must have shape {tuple(shape)}, got {arrays[0][1].shape}"
                )
        else:
            self._shapes_like(method, name, arrays, point_arrays, "point")
        return value

    def _result_point(self, method, value):
        if self.check_results:
            self._point(method, "result", value)
        return value

    def _result_tangent(self, method, point, value, point_name="point"):
        if self.check_results:
            self._tangent(method, "result", point, value, point_name)
        return value

    def _scalar(self, method, value):
        if self.check_results and not np.isfinite(value):
            raise ValueError(f"{method}: result is not finite ({value})")
        return value

    # -- the manifold ------------------------------------------------------------
    @property
    def typical_dist(self):
        return self.manifold.typical_dist

    def inner_product(self, point, tangent_vector_a, tangent_vector_b):
        m = "inner_product"
        self._point(m, "point", point)
        self._tangent(m, "tangent_vector_a", point, tangent_vector_a)
        self._tangent(m, "tangent_vector_b", point, tangent_vector_b)
        return self._scalar(
            m, self.manifold.inner_product(point, tangent_vector_a, tangent_vector_b)
        )

    def norm(self, point, tangent_vector):
        self._point("norm", "point", point)
        self._tangent("norm", "tangent_vector", point, tangent_vector)
        return self._scalar("norm", self.manifold.norm(point, tangent_vector))

    def dist(self, point_a, point_b):
        self._point("dist", "point_a", point_a)
        self._point("dist", "point_b", point_b)
        return self._scalar("dist", self.manifold.dist(point_a, point_b))

    def projection(self, point, vector):
        self._point("projection", "point", point)
        self._ambient("projection", "vector", point, vector)
        return self._result_tangent("projection", point, self.manifold.projection(point, vector))

    def to_tangent_space(self, point, vector):
        self._point("to_tangent_space", "point", point)
        self._finite("to_tangent_space", "vector", vector)
        return self._result_tangent(
            "to_tangent_space", point, self.manifold.to_tangent_space(point, vector)
        )

    def euclidean_to_riemannian_gradient(self, point, euclidean_gradient):
        m = "euclidean_to_riemannian_gradient"
        self._point(m, "point", point)
        self._ambient(m, "euclidean_gradient", point, euclidean_gradient)
        return self._result_tangent(
            m, point, self.manifold.euclidean_to_riemannian_gradient(point, euclidean_gradient)
        )

    def euclidean_to_riemannian_hessian(
        self, point, euclidean_gradient, euclidean_hessian, tangent_vector
    ):
        m = "euclidean_to_riemannian_hessian"
        self._point(m, "point", point)
        self._ambient(m, "euclidean_gradient", point, euclidean_gradient)
        self._ambient(m, "euclidean_hessian", point, euclidean_hessian)
        self._tangent(m, "tangent_vector", point, tangent_vector)
        value = self.manifold.euclidean_to_riemannian_hessian(
            point, euclidean_gradient, euclidean_hessian, tangent_vector
        )
        return self._result_tangent(m, point, value)

    def retraction(self, point, tangent_vector):
        self._point("retraction", "point", point)
        self._tangent("retraction", "tangent_vector", point, tangent_vector)
        return self._result_point("retraction", self.manifold.retraction(point, tangent_vector))

    def exp(self, point, tangent_vector):
        self._point("exp", "point", point)
        self._tangent("exp", "tangent_vector", point, tangent_vector)
        return self._result_point("exp", self.manifold.exp(point, tangent_vector))

    def log(self, point_a, point_b):
        self._point("log", "point_a", point_a)
        self._point("log", "point_b", point_b)
        return self._result_tangent("log", point_a, self.manifold.log(point_a, point_b), "point_a")

    def transport(self, point_a, point_b, tangent_vector_a):
        m = "transport"
        self._point(m, "point_a", point_a)
        self._point(m, "point_b", point_b)
        self._tangent(m, "tangent_vector_a", point_a, tangent_vector_a, "point_a")
        value = self.manifold.transport(point_a, point_b, tangent_vector_a)
        return self._result_tangent(m, point_b, value, "point_b")

    def random_point(self):
        return self._result_point("random_point", self.manifold.random_point())

    def random_tangent_vector(self, point):
        self._point("random_tangent_vector", "point", point)
        return self._result_tangent(
            "random_tangent_vector", point, self.manifold.random_tangent_vector(point)
        )

    def zero_vector(self, point):
        self._point("zero_vector", "point", point)
        return self.manifold.zero_vector(point)

    def embedding(self, point, tangent_vector):
        self._point("embedding", "point", point)
        self._tangent("embedding", "tangent_vector", point, tangent_vector)
        return self.manifold.embedding(point, tangent_vector)

    def pair_mean(self, point_a, point_b):
        self._point("pair_mean", "point_a", point_a)
        self._point("pair_mean", "point_b", point_b)
        return self._result_point("pair_mean", self.manifold.pair_mean(point_a, point_b))

    def belongs(self, point, atol: float | None = None) -> bool:
        try:
            self.check_point(point, atol)
        except (ValueError, TypeError):
            return False
        return True

    def __getattr__(self, name: str):
        # Everything else (depth, widths, frames, end_to_end, ...) as the wrapped manifold.
        if name == "manifold":  # not yet set (during unpickling)
            raise AttributeError(name)
        return getattr(self.manifold, name)


def validated(
    manifold: Manifold,
    atol: float | None = None,
    tangent_rtol: float = 1e-8,
    check_results: bool = True,
) -> ValidatedManifold:
    """``manifold`` with every point and tangent vector checked on every call.

    Use it to debug a cost: build the problem on ``validated(manifold)``; a
    Euclidean gradient of the wrong shape or with NaN, a point pushed off the
    manifold, a vector that is not tangent, raise at once a ``ValueError``
    naming the method and the argument, instead of a wrong answer many
    iterations later. Remove it for speed (it adds a membership and a
    projection per argument).

    Works with any Pymanopt manifold offering ``check_point(point, atol)``
    (all dlnmanifolds manifolds). See ``ValidatedManifold`` for the checks.

    Example
    -------
    >>> import numpy as np, pymanopt
    >>> from dlnmanifolds.pymanopt import BalancedManifold, validated
    >>> manifold = validated(BalancedManifold((3, 3, 3), rng=0))
    >>> @pymanopt.function.numpy(manifold)
    ... def cost(w1, w2):
    ...     return float(np.sum((w2 @ w1 - np.eye(3)) ** 2))
    >>> @pymanopt.function.numpy(manifold)
    ... def gradient(w1, w2):  # bug: the gradient of the wrong layer order
    ...     r = 2 * (w2 @ w1 - np.eye(3))
    ...     return w2.T @ r, (r @ w1.T)[:2]
    >>> problem = pymanopt.Problem(manifold, cost, euclidean_gradient=gradient)
    >>> problem.riemannian_gradient(manifold.random_point())
    Traceback (most recent call last):
    ...
    ValueError: euclidean_to_riemannian_gradient: argument euclidean_gradient must have \
the shapes of point [(3, 3), (3, 3)], got [(3, 3), (2, 3)]
    """
    return ValidatedManifold(manifold, atol, tangent_rtol, check_results)
