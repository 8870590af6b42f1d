"""Assertion helpers around Pymanopt's diagnostics (which print instead of returning)."""

from __future__ import annotations

import contextlib
import io

import numpy as np
from pymanopt.tools.diagnostics import check_directional_derivative


def taylor_slope(problem, point, direction, hessian: bool = False) -> float:
    """Fitted log-log slope of the Taylor remainder (2 for gradients, 3 for Hessians)."""
    with contextlib.redirect_stdout(io.StringIO()):
        _, error, _, poly = check_directional_derivative(
            problem, point, direction, use_quadratic_model=hessian
        )
    if np.all(error < 1e-12):  # model exact: nothing to fit
        return 3.0 if hessian else 2.0
    return float(poly[0])


def retraction_slope(manifold, point, direction, project_tangential: bool) -> float:
    """Slope of ||R(t xi) - x - t xi|| (2 = first order); with project_tangential the
    tangential part only (3 = second order on a submanifold); inf when exact."""
    ts = np.logspace(-2.5, -0.5, 8)
    errors = []
    for t in ts:
        moved = manifold.retraction(point, t * direction)
        deviation = moved - point - t * direction
        if project_tangential:
            deviation = manifold.projection(point, deviation)
        errors.append(
            manifold.norm(point, deviation) if hasattr(deviation, "__len__") else abs(deviation)
        )
    if max(errors) < 1e-13:  # the retraction is exact along this line
        return float("inf")
    return float(np.polyfit(np.log(ts), np.log(errors), 1)[0])


def assert_taylor_slopes(problem, repeats: int = 2, hessian: bool = True) -> None:
    """Pymanopt's Taylor checks at ``repeats`` random points: gradient slope 2.00 ± 0.05
    and, with ``hessian``, Hessian slope 3.0 ± 0.1 (needs a second-order retraction)."""
    manifold = problem.manifold
    for _ in range(repeats):
        x = manifold.random_point()
        d = manifold.random_tangent_vector(x)
        assert abs(taylor_slope(problem, x, d) - 2.0) <= 0.05
        if hessian:
            assert abs(taylor_slope(problem, x, d, hessian=True) - 3.0) <= 0.1
