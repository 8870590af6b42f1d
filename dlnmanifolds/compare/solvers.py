"""The solvers a comparison can run, by name.

Pymanopt's SteepestDescent, ConjugateGradient and TrustRegions, and plain
fixed-step gradient descent x <- R_x(-eta grad f(x)). On the ``factors``
geometry (unconstrained weights, Euclidean metric, retraction x + v) the latter
is exactly the training of Arora, Cohen, Hu & Luo 2019, the baseline.
``rank-adaptive-cg`` (``-tr``) is ``dlnmanifolds.optimizers.RankAdaptive`` with
ConjugateGradient (TrustRegions) inside: the rank of a (DLN)FixedRank point is found,
not given.
``nuclear-norm`` is the convex reference from outside the DLN family: soft-impute
(Mazumder, Hastie & Tibshirani 2010) on the ``euclidean`` geometry
(``dlnmanifolds.optimizers.soft_impute``).

Without a learning rate, ``gradient-descent`` takes Armijo backtracking steps
(a step that does not decrease the loss enough is halved; Nocedal & Wright 2006,
Algorithm 3.1), so it cannot diverge; with one it is the fixed-step method.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from pymanopt.optimizers import ConjugateGradient, SteepestDescent, TrustRegions

from dlnmanifolds.optimizers import RANK_ADAPTIVE_GEOMETRIES, RankAdaptive
from dlnmanifolds.optimizers.nuclear_norm import soft_impute
from dlnmanifolds.problems.geometries import HAS_HESSIAN, GeometryProblem

#: Solver names, in the order the CLI documents them.
SOLVERS: tuple[str, ...] = (
    "steepest-descent",
    "conjugate-gradient",
    "trust-regions",
    "gradient-descent",
    "rank-adaptive-cg",
    "rank-adaptive-tr",
    "nuclear-norm",
)
#: Solvers that need a Riemannian Hessian.
SECOND_ORDER = frozenset({"trust-regions"})
#: Solvers that find the rank themselves (they ignore a given rank).
RANK_ADAPTIVE = frozenset({"rank-adaptive-cg", "rank-adaptive-tr"})


def solver_supports(solver: str, geometry: str) -> str | None:
    """None if ``solver`` can run on ``geometry``, else the reason it cannot."""
    if solver in SECOND_ORDER and geometry not in HAS_HESSIAN:
        return "the geometry has no Hessian"
    if solver in RANK_ADAPTIVE and geometry not in RANK_ADAPTIVE_GEOMETRIES:
        return "it runs on dln-fixed-rank or fixed-rank only"
    if solver == "nuclear-norm" and geometry != "euclidean":
        return "it runs on the euclidean geometry only (a convex problem on X)"
    return None


@dataclass(frozen=True)
class SolverOutcome:
    """How a solver stopped on its own (the runner may stop it earlier).

    Example
    -------
    >>> import numpy as np
    >>> SolverOutcome(point=None, iterations=3, reason="stalled", matrix=np.zeros((2, 2))).reason
    'stalled'
    """

    point: object
    iterations: int
    reason: str  # "max-iterations", "max-time" or "stalled"
    matrix: object = None  # the end-to-end matrix (array or LowRank) when ``point`` is not on gp


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
    learning_rate: float | None,
    max_iterations: int,
    max_time: float,
    counter: IterationCounter | None = None,
) -> SolverOutcome:
    """Riemannian gradient descent x_{k+1} = R_{x_k}(-eta_k grad f(x_k)).

    ``learning_rate`` given: eta_k = learning_rate (the Arora et al. 2019 baseline).
    On ``factors`` (Euclidean metric, retraction x + v) this is their training loop:
    one gradient of 3 (N - 1) matrix products per step (``core.network._lifted_gradient``)
    and the update W_p - eta dW_p, with no Pymanopt manifold calls in between.
    None: Armijo backtracking, eta_k = the first of 2 eta_{k-1}, eta_{k-1}, eta_{k-1}/2,
    ... with f(x_{k+1}) <= f(x_k) - 1e-4 eta_k ||grad f(x_k)||^2 (Nocedal & Wright 2006,
    Algorithm 3.1, started from the last step so that it costs ~2 cost evaluations).
    """
    x = gp.initial_point
    start = time.perf_counter()
    if learning_rate is not None and gp.geometry == "factors":
        step = -learning_rate
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
    cost = gp.problem.cost
    eta, fx = 1.0, None
    for k in range(max_iterations):
        if counter is not None:
            counter.value = k
        if time.perf_counter() - start > max_time:
            return SolverOutcome(x, k, "max-time")
        g = gradient(x)
        if learning_rate is not None:
            x = manifold.retraction(x, -learning_rate * g)
            continue
        fx = cost(x) if fx is None else fx
        slope = float(manifold.inner_product(x, g, g))
        if not slope > 0:
            return SolverOutcome(x, k, "stalled")
        eta *= 2.0
        while True:
            candidate = manifold.retraction(x, -eta * g)
            fc = cost(candidate)
            if fc <= fx - 1e-4 * eta * slope:
                break
            eta *= 0.5
            if eta < 1e-20:
                return SolverOutcome(x, k, "stalled")
        x, fx = candidate, fc
    return SolverOutcome(x, max_iterations, "max-iterations")


def nuclear_norm(gp: GeometryProblem, max_iterations: int, max_time: float) -> SolverOutcome:
    """Soft-impute on E(X) + lambda ||X||_*, lambda path down to 1e-4 lambda_max."""
    result = soft_impute(
        gp.objective, max_iterations=max_iterations, max_time=max_time, callback=gp.callback
    )
    reason = "stalled" if result.reason == "converged" else result.reason
    return SolverOutcome(None, result.iterations, reason, matrix=result.matrix)


def run_solver(
    name: str,
    gp: GeometryProblem,
    max_iterations: int,
    max_time: float,
    learning_rate: float | None,
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
    if name == "nuclear-norm":
        return nuclear_norm(gp, max_iterations, max_time)
    if name in RANK_ADAPTIVE:
        # The runner's callback stops the run at its target (it raises).
        optimizer = RankAdaptive(
            geometry=gp.geometry,
            depth=gp.depth,
            max_time=max_time,
            max_iterations=max_iterations,
            inner="trust-regions" if name == "rank-adaptive-tr" else "conjugate-gradient",
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
