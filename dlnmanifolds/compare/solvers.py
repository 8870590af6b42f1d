"""The solvers a comparison can run, by name.

Pymanopt's SteepestDescent, ConjugateGradient and TrustRegions, and plain
fixed-step gradient descent x <- R_x(-eta grad f(x)). On the ``factors``
geometry (unconstrained weights, Euclidean metric, retraction x + v) the latter
is exactly the training of Arora, Cohen, Hu & Luo 2019, the baseline.
``rank-adaptive-cg`` grows the rank of a (DLN)FixedRank point one component at
a time (``dlnmanifolds.compare.rank_adaptive``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from pymanopt.optimizers import ConjugateGradient, SteepestDescent, TrustRegions

from dlnmanifolds.compare.rank_adaptive import RANK_ADAPTIVE_GEOMETRIES, rank_adaptive_cg
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
    matrix: np.ndarray | None = None  # the end-to-end matrix when ``point`` is not on gp


class IterationCounter:
    """The solver's iteration count, kept up to date while it runs.

    The runner may stop a solver from inside a callback (target reached); the
    count is then read here. ``None``: the solver does not report iterations
    (``rank-adaptive-cg`` before it returns).
    """

    def __init__(self) -> None:
        self.value: int | None = None


class _Counted:
    """Mixin for Pymanopt optimizers: publish the iteration at every stopping test."""

    counter: IterationCounter | None = None

    def _check_stopping_criterion(self, *, start_time, iteration=-1, **kwargs):
        if self.counter is not None and iteration >= 0:
            self.counter.value = int(iteration)
        return super()._check_stopping_criterion(
            start_time=start_time, iteration=iteration, **kwargs
        )


class _SteepestDescent(_Counted, SteepestDescent):
    pass


class _ConjugateGradient(_Counted, ConjugateGradient):
    pass


class _TrustRegions(_Counted, TrustRegions):
    pass


class _TimeUp(Exception):
    def __init__(self, point):
        super().__init__("max-time")
        self.point = point


class _ClockedProblem:
    """A Pymanopt problem whose Hessian-vector products check the clock.

    TrustRegions tests ``max_time`` once per outer iteration, and one outer
    iteration (a truncated-CG solve, up to dim M Hessian products) can take far
    longer than the budget; checking before each product bounds the overrun by
    one product.
    """

    def __init__(self, problem, deadline: float):
        self._problem, self._deadline = problem, deadline
        hessian = problem.riemannian_hessian

        def riemannian_hessian(point, vector):
            if time.perf_counter() > deadline:
                raise _TimeUp(point)
            return hessian(point, vector)

        self.riemannian_hessian = riemannian_hessian

    def __getattr__(self, name):
        return getattr(self._problem, name)


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
    gp: GeometryProblem,
    learning_rate: float,
    max_iterations: int,
    max_time: float,
    counter: IterationCounter | None = None,
) -> SolverOutcome:
    """Fixed-step Riemannian gradient descent x_{k+1} = R_{x_k}(-eta grad f(x_k))."""
    manifold, gradient = gp.manifold, gp.problem.riemannian_gradient
    x = gp.initial_point
    start = time.perf_counter()
    for k in range(max_iterations):
        if counter is not None:
            counter.value = k
        if time.perf_counter() - start > max_time:
            return SolverOutcome(x, k, "max-time")
        x = manifold.retraction(x, -learning_rate * gradient(x))
    return SolverOutcome(x, max_iterations, "max-iterations")


def run_solver(
    name: str,
    gp: GeometryProblem,
    max_iterations: int,
    max_time: float,
    learning_rate: float,
    counter: IterationCounter | None = None,
) -> SolverOutcome:
    """Run solver ``name`` on ``gp`` from its initial point.

    Pymanopt's gradient-norm and step-size tests are set to tiny values so that
    runs stop on the runner's target loss, the iteration budget or the time budget.
    ``counter`` (optional) is kept at the current iteration while the solver runs.
    """
    check_solver(name)
    if name == "gradient-descent":
        return gradient_descent(gp, learning_rate, max_iterations, max_time, counter)
    if name == "rank-adaptive-cg":
        with np.errstate(all="ignore"):
            x, iterations, reason = rank_adaptive_cg(gp, max_iterations, max_time)
        return SolverOutcome(None, iterations, reason, matrix=x)
    common = dict(
        max_iterations=max_iterations,
        max_time=max_time,
        min_gradient_norm=1e-14,
        verbosity=0,
    )
    problem = gp.problem
    if name == "steepest-descent":
        optimizer = _SteepestDescent(min_step_size=1e-16, **common)
    elif name == "conjugate-gradient":
        optimizer = _ConjugateGradient(min_step_size=1e-16, **common)
    else:
        optimizer = _TrustRegions(**common)
        problem = _ClockedProblem(problem, time.perf_counter() + max_time)
    optimizer.counter = counter
    try:
        with np.errstate(all="ignore"):
            result = optimizer.run(problem, initial_point=gp.initial_point)
    except _TimeUp as up:
        iterations = counter.value if counter is not None and counter.value is not None else 0
        return SolverOutcome(up.point, iterations, "max-time")
    return SolverOutcome(result.point, int(result.iterations), _reason(result.stopping_criterion))
