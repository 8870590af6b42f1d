"""Order-of-accuracy measurements: log-log slopes and the default test cost.

A quantity e(t) = O(t^k) has slope k in log-log coordinates. Points at the
round-off floor carry no information and are dropped; when fewer than three
remain the quantity is exact to round-off (slope reported as +inf).
"""

from __future__ import annotations

import contextlib
import io
import math
from typing import Any

import autograd.numpy as anp
import numpy as np
import pymanopt
from pymanopt.tools.diagnostics import check_directional_derivative

from dlnmanifolds.testing._vectors import Embedding

#: Step sizes for retraction-order slopes (unit tangent vectors).
STEPS = np.logspace(-4.0, -1.0, 13)
#: Consecutive steps in the most-linear-run fit (see ``loglog_slope``).
STEP_WINDOW = 5


def loglog_slope(
    steps: np.ndarray,
    errors: np.ndarray,
    floor: float,
    window: int | None = None,
    pick: str = "smallest",
) -> float:
    """Least-squares slope of log e against log t over the points with e > floor.

    With ``window``, only ``window`` consecutive points above the floor are fitted:
    the smallest steps (``pick="smallest"``; an order is an asymptotic t -> 0
    statement, and at larger t a small t^3 coefficient against a t^4 term bent a
    second-order curve to local slopes 2.6-2.9 at t ~ 1e-2), or the most linear
    run (``pick="most_linear"``, Pymanopt's rule, for dense grids where the
    points just above the floor are noisy).
    """
    steps = np.asarray(steps, dtype=float)
    errors = np.asarray(errors, dtype=float)
    if not np.all(np.isfinite(errors)):
        return float("nan")
    order = np.argsort(steps)
    steps, errors = steps[order], errors[order]
    keep = errors > floor
    if np.sum(keep) < 3:
        return math.inf
    logt, loge = np.log(steps[keep]), np.log(errors[keep])
    if window is None or logt.size <= window:
        return float(np.polyfit(logt, loge, 1)[0])
    if pick == "smallest":
        return float(np.polyfit(logt[:window], loge[:window], 1)[0])
    best, slope = math.inf, math.nan
    for k in range(logt.size - window + 1):
        fit, residual, *_ = np.polyfit(logt[k : k + window], loge[k : k + window], 1, full=True)
        res = float(residual[0]) if residual.size else 0.0
        if res < best:
            best, slope = res, float(fit[0])
    return slope


def taylor_slope(problem: pymanopt.Problem, point: Any, direction: Any, hessian: bool) -> float:
    """Slope of |f(R_x(h d)) - model(h)| from Pymanopt's diagnostic (stdout silenced).

    2 for a correct gradient, 3 for a correct Hessian along a second-order
    retraction (or the exponential map); +inf when the model is exact.
    Pymanopt computes the remainders, but its "most linear window" fit can pick
    the flat round-off floor (slope ~ 0), so the same rule is applied here to the
    remainders above 100 eps (1 + |f(x)|) only.
    """
    with contextlib.redirect_stdout(io.StringIO()):
        steps, error, _, _ = check_directional_derivative(
            problem, point, direction, use_quadratic_model=hessian
        )
    floor = 1e2 * np.finfo(float).eps * (1.0 + abs(float(problem.cost(point))))
    return loglog_slope(steps, error, floor, window=10, pick="most_linear")


def random_quadratic_cost(
    manifold: pymanopt.manifolds.manifold.Manifold,
    embedding: Embedding,
    point: Any,
    rng: np.random.Generator,
    rank: int = 3,
) -> pymanopt.autodiff.Function | pymanopt.Problem:
    """f(x) = 1/2 y^T (diag(c) + B B^T) y + b^T y with y the ambient coordinates of x.

    c ~ N(0, 1), B ~ N(0, 1/n) (n x rank), b ~ N(0, 1): an indefinite quadratic
    whose Euclidean gradient is generically not normal, so Riemannian
    gradients and Hessians exercise their curvature terms. O(n) to evaluate.
    Returns an autograd cost, or, for a manifold with
    ``ambient_euclidean_derivatives = True`` (factored points, e.g. ``DLNFixedRank``),
    a ``pymanopt.Problem`` with the ambient gradient and Hessian written out.

    Example
    -------
    >>> import numpy as np, pymanopt
    >>> from pymanopt.manifolds import Sphere
    >>> from dlnmanifolds.testing import identity_embedding, random_quadratic_cost
    >>> S = Sphere(3)
    >>> x = np.array([0.0, 0.0, 1.0])
    >>> cost = random_quadratic_cost(S, identity_embedding(), x, np.random.default_rng(0))
    >>> grad = pymanopt.Problem(S, cost).riemannian_gradient(x)
    >>> bool(abs(x @ grad) < 1e-12)  # the Riemannian gradient is tangent
    True
    """
    n = embedding.size(point)
    diag = rng.standard_normal(n)
    low_rank = rng.standard_normal((n, rank)) / np.sqrt(n)
    linear = rng.standard_normal(n)

    @pymanopt.function.autograd(manifold)
    def cost(*args):
        y = embedding.traced_point(*args)
        projected = anp.dot(y, low_rank)
        return 0.5 * (anp.sum(diag * y * y) + anp.sum(projected * projected)) + anp.dot(linear, y)

    if not getattr(manifold, "ambient_euclidean_derivatives", False):
        return cost

    # Manifolds of factored points whose Hessian needs the ambient E'(X) and
    # E''(X)[xi] (``DLNFixedRank``): the same quadratic with those derivatives
    # written out, xi arriving as Pymanopt's factored embedding (a, b, c) = a b c^T.
    layout = manifold.point_layout
    shape = np.shape(_factored_ambient(point))

    def hess_y(flat):
        return diag * flat + low_rank @ (low_rank.T @ flat)

    @pymanopt.function.numpy(manifold)
    def ambient_cost(*args):
        y = np.ravel(_factored_ambient(args))
        return float(0.5 * np.dot(y, hess_y(y)) + np.dot(linear, y))

    @pymanopt.function.numpy(manifold)
    def ambient_gradient(*args):
        return np.reshape(hess_y(np.ravel(_factored_ambient(args))) + linear, shape)

    @pymanopt.function.numpy(manifold)
    def ambient_hessian(*args):
        return np.reshape(hess_y(np.ravel(_factored_ambient(args[layout:]))), shape)

    return pymanopt.Problem(
        manifold,
        ambient_cost,
        euclidean_gradient=ambient_gradient,
        euclidean_hessian=ambient_hessian,
    )


def _factored_ambient(triple) -> np.ndarray:
    """a diag(b) c for a point (u, s, vt), a b c^T for an embedded tangent (a, b, c)."""
    a, b, c = triple
    return (a * b) @ c if np.ndim(b) == 1 else a @ b @ c.T
