"""The solvers a comparison can run, by name.

Pymanopt's SteepestDescent, ConjugateGradient and TrustRegions, and plain
fixed-step gradient descent x <- R_x(-eta grad f(x)). On the ``factors``
geometry (unconstrained weights, Euclidean metric, retraction x + v) the latter
is exactly the training of Arora, Cohen, Hu & Luo 2019, the baseline.
``rank-adaptive-cg`` is ``dlnmanifolds.optimizers.RankAdaptive`` with
ConjugateGradient inside: the rank of a (DLN)FixedRank point is found, not given.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from pymanopt.optimizers import ConjugateGradient, SteepestDescent, TrustRegions

from dlnmanifolds.optimizers import RANK_ADAPTIVE_GEOMETRIES, RankAdaptive
from dlnmanifolds.problems.geometries import HAS_HESSIAN, GeometryProblem

#: Solver names, in the order the CLI documents them.
SOLVERS: tuple[str, ...] = (
    "steepest-descent",
    "conjugate-gradient",
    "trust-regions",
    "gradient-descent",
    "rank-adaptive-cg",
)
#: Solvers that need a Riemannian Hessian.
SECOND_ORDER = frozenset({"trust-regions"})
#: Solvers that find the rank themselves (they ignore a given rank).
RANK_ADAPTIVE = frozenset({"rank-adaptive-cg"})


def solver_supports(solver: str, geometry: str) -> str | None:
    """None if ``solver`` can run on ``geometry``, else the reason it cannot."""
    if solver in SECOND_ORDER and geometry not in HAS_HESSIAN:
        return "the geometry has no Hessian"
    if solver in RANK_ADAPTIVE and geometry not in RANK_ADAPTIVE_GEOMETRIES:
        return "it runs on dln-fixed-rank or fixed-rank only"
    return None


@dataclass(frozen=True)
class SolverOutcome:
    """How a solver stopped on its own (the runner may stop it earlier)."""

    point: object
    iterations: int
    reason: str  # "max-iterations", "max-time" or "stalled"
    matrix: object = None  # the end-to-end matrix (array or LowRank) when ``point`` is not on gp


def check_solver(name) -> str:
    if not isinstance(name, str) or name not in SOLVERS:
        raise ValueError(f"unknown solver {name!r}; expected one of {', '.join(SOLVERS)}")
    return name


def _reason(text: str) -> str:
    text = text.lower()
    if "max iterations" in text:
        return "max-iterations"
    if "max time" in text:
        return "max-time"
    return "stalled"


def gradient_descent(
    gp: GeometryProblem, learning_rate: float, max_iterations: int, max_time: float
) -> SolverOutcome:
    """Fixed-step Riemannian gradient descent x_{k+1} = R_{x_k}(-eta grad f(x_k)).

    On ``factors`` (Euclidean metric, retraction x + v) this is the Arora et al.
    (2019) training loop: one gradient of 3 (N - 1) matrix products per step
    (``geometries._pull_back``) and an in-place-free update W_p - eta dW_p, with no
    Pymanopt manifold calls in between.
    """
    x = gp.initial_point
    start = time.perf_counter()
    step = -learning_rate
    if gp.geometry == "factors":
        gradient = gp.problem.euclidean_gradient
        layers = [x] if isinstance(x, np.ndarray) else list(x)
        for k in range(max_iterations):
            if time.perf_counter() - start > max_time:
                return SolverOutcome(layers, k, "max-time")
            grads = gradient(layers)
            grads = [grads] if isinstance(grads, np.ndarray) else grads
            layers = [w + step * g for w, g in zip(layers, grads)]
        return SolverOutcome(layers, max_iterations, "max-iterations")
    manifold, gradient = gp.manifold, gp.problem.riemannian_gradient
    for k in range(max_iterations):
        if time.perf_counter() - start > max_time:
            return SolverOutcome(x, k, "max-time")
        x = manifold.retraction(x, step * gradient(x))
    return SolverOutcome(x, max_iterations, "max-iterations")


def run_solver(
    name: str,
    gp: GeometryProblem,
    max_iterations: int,
    max_time: float,
    learning_rate: float,
) -> SolverOutcome:
    """Run solver ``name`` on ``gp`` from its initial point.

    Pymanopt's gradient-norm and step-size tests are set to tiny values so that
    runs stop on the runner's target loss, the iteration budget or the time budget.
    """
    check_solver(name)
    if name == "gradient-descent":
        return gradient_descent(gp, learning_rate, max_iterations, max_time)
    if name == "rank-adaptive-cg":
        # The runner's callback stops the run at its target (it raises).
        optimizer = RankAdaptive(
            geometry=gp.geometry,
            depth=gp.depth,
            max_time=max_time,
            max_iterations=max_iterations,
            inner="conjugate-gradient",
            callback=gp.callback,
        )
        result = optimizer.run(gp.objective)
        return SolverOutcome(None, result.iterations, result.stopping_reason, matrix=result.point)
    common = dict(
        max_iterations=max_iterations,
        max_time=max_time,
        min_gradient_norm=1e-14,
        verbosity=0,
    )
    if name == "steepest-descent":
        optimizer = SteepestDescent(min_step_size=1e-16, **common)
    elif name == "conjugate-gradient":
        optimizer = ConjugateGradient(min_step_size=1e-16, **common)
    else:
        optimizer = TrustRegions(**common)
    with np.errstate(all="ignore"):
        result = optimizer.run(gp.problem, initial_point=gp.initial_point)
    return SolverOutcome(result.point, int(result.iterations), _reason(result.stopping_criterion))
