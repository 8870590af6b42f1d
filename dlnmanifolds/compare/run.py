"""One run of a comparison: build the problem, start the solver, record, stop.

A ``Recorder`` sees the end-to-end matrix at every gradient evaluation (once per
iteration). It keeps a thinned history of (iteration, time, train MSE, test
MSE), and stops the solver by raising when the target training loss is reached
or the run diverges. ``run_one`` is a pure function of its ``RunSpec`` apart
from the timings, so serial and parallel executions give the same numbers.
"""

from __future__ import annotations

import contextlib
import time
import traceback

import numpy as np

from dlnmanifolds.compare.solvers import RANK_ADAPTIVE, IterationCounter, run_solver
from dlnmanifolds.compare.specs import RunSpec, config_hash
from dlnmanifolds.problems.geometries import make_problem
from dlnmanifolds.problems.lowrank import is_finite, snapshot


class _Stop(Exception):
    def __init__(self, status: str):
        super().__init__(status)
        self.status = status


class Recorder:
    """Monitor of one run; raises ``_Stop`` on convergence, divergence or time out.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.problems import MatrixCompletion
    >>> data = MatrixCompletion.from_dense([[1.0, np.nan], [np.nan, 4.0]])
    >>> recorder = Recorder(data, target=1e-6, divergence=1e8, points=10)
    >>> recorder(np.zeros((2, 2)))  # far from the target: recorded, no stop
    >>> recorder.history["loss"]
    [8.5]

    ``calls`` counts gradient evaluations (the ``evaluations`` column); the
    solver's iterations are counted by the solver (``solvers.IterationCounter``).
    ``max_time`` is checked at every evaluation, so that a solver whose own
    clock is checked once per (long) iteration still stops on time.
    """

    def __init__(
        self,
        objective,
        target: float,
        divergence: float,
        points: int,
        max_time: float = float("inf"),
    ):
        self.objective = objective
        self.max_time = max_time
        self.target = target
        self.divergence = divergence
        self.points = max(points, 2)
        self.calls = 0
        self.initial = None
        self.last = None
        self.start = time.perf_counter()
        self.history: dict[str, list] = {"iteration": [], "time": [], "loss": [], "test_mse": []}

    def _keep(self, k: int) -> bool:
        # Dense at first, then geometrically thinned: O(points) entries in all.
        stride = max(1, 2 ** int(np.log2(max(k, 1) / self.points + 1)))
        return k <= self.points // 2 or k % stride == 0

    def record(self, x: np.ndarray, k: int) -> None:
        h = self.history
        h["iteration"].append(k)
        h["time"].append(time.perf_counter() - self.start)
        h["loss"].append(float(self.objective.train_mse(x)))
        h["test_mse"].append(float(self.objective.test_mse(x)))

    def __call__(self, x: np.ndarray) -> None:
        k = self.calls
        self.calls += 1
        loss = float(self.objective.train_mse(x))
        if self.initial is None:
            self.initial = loss
        if (
            not np.isfinite(loss)
            or not is_finite(x)
            or (loss > self.divergence * max(self.initial, 1e-300))
        ):
            raise _Stop("diverged")
        self.last = snapshot(x)  # stays factored (LowRank) on rank-r geometries
        if loss <= self.target:
            self.record(x, k)
            raise _Stop("converged")
        kept = self._keep(k)
        if kept:
            self.record(x, k)
        if time.perf_counter() - self.start > self.max_time:
            if not kept:
                self.record(x, k)
            raise _Stop("max-time")


def _blas_limit(threads):
    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional dependency
        return contextlib.nullcontext()
    return threadpool_limits(threads)


def _finite_or_none(value: float):
    return float(value) if np.isfinite(value) else None


def _identity(spec: RunSpec) -> dict:
    return {
        "key": spec.key,
        "config": config_hash(spec.problem, spec.settings),
        "geometry": spec.geometry,
        "depth": spec.depth,
        "solver": spec.solver,
        "seed": spec.seed,
    }


def error_record(spec: RunSpec, message: str) -> dict:
    """The record of a run that produced nothing (e.g. its worker process died)."""
    record = _identity(spec)
    record.update(
        status="error",
        final_loss=None,
        test_mse=None,
        relative_error=None,
        iterations=0,
        evaluations=0,
        seconds=None,
        message=message,
        history={"iteration": [], "time": [], "loss": [], "test_mse": []},
    )
    return record


def run_one(spec: RunSpec) -> dict:
    """Run one grid cell and return its record (a JSON-serializable dict).

    ``iterations`` counts the solver's iterations, ``evaluations`` its gradient
    evaluations (Hessian-vector products of trust-regions evaluate the gradient
    too); the history is indexed by evaluation.
    """
    settings = spec.settings
    record = _identity(spec)
    counter = IterationCounter()
    with _blas_limit(settings.blas_threads), np.errstate(all="ignore"):
        objective = spec.problem.build(spec.seed)
        recorder = Recorder(
            objective,
            settings.target,
            settings.divergence,
            settings.history_points,
            max_time=settings.max_time,
        )
        message = ""
        try:
            # Rank-adaptive solvers are not told the rank: their geometry starts at 1.
            rank = 1 if spec.solver in RANK_ADAPTIVE else settings.rank
            gp = make_problem(
                objective,
                spec.geometry,
                spec.depth,
                rank=rank,
                init=settings.init,
                init_scale=settings.init_scale,
                rng=spec.init_seed,
                callback=recorder,
            )
            recorder.start = time.perf_counter()
            try:
                outcome = run_solver(
                    spec.solver,
                    gp,
                    settings.max_iterations,
                    settings.max_time,
                    settings.learning_rate,
                    counter=counter,
                )
                counter.value = outcome.iterations
                x = outcome.matrix if outcome.matrix is not None else gp.to_matrix(outcome.point)
                status = outcome.reason
                if not is_finite(x):
                    status = "diverged"
            except _Stop as stop:
                status = stop.status
                x = recorder.last
            seconds = time.perf_counter() - recorder.start
        except Exception as exc:  # a failing run is recorded; the others go on
            status, x, seconds = "error", None, float("nan")
            message = f"{type(exc).__name__}: {exc}"
            if not str(exc):
                message += " " + traceback.format_exc(limit=2)
        if x is not None and status != "diverged":
            metrics = objective.metrics(x)
            if metrics["train_mse"] <= settings.target:
                status = "converged"
            if recorder.history["iteration"][-1:] != [recorder.calls - 1]:
                recorder.record(x, recorder.calls)
        else:
            metrics = {
                "train_mse": float("nan"),
                "test_mse": float("nan"),
                "relative_error": float("nan"),
            }
    record.update(
        status=status,
        final_loss=_finite_or_none(metrics["train_mse"]),
        test_mse=_finite_or_none(metrics["test_mse"]),
        relative_error=_finite_or_none(metrics["relative_error"]),
        iterations=int(counter.value if counter.value is not None else recorder.calls),
        evaluations=int(recorder.calls),
        seconds=_finite_or_none(seconds),
        message=message,
        history={k: [_finite_or_none(v) for v in vals] for k, vals in recorder.history.items()},
    )
    return record
