"""Rank-adaptive conjugate gradient on (M_r, g^N): the rank is found, not given.

Small-initialization DLN training learns the singular components one after
another (incremental learning; the g^N flow grows sigma_k at rate
N sigma_k^{2-2/N}, math.md §3.1). This solver takes that picture literally:

1. start from X = 0, rank r = 0;
2. add one component along the top singular pair (u, v) of the part of
   -E'(X) normal to the current rank-r manifold, (I - U U^T) E'(X) (I - V V^T),
   with the exactly line-searched step t = <E'(X), u v^T> / <u v^T, E''[u v^T]>
   (exact for quadratic losses; a safeguarded step otherwise);
3. run Pymanopt's ConjugateGradient on rank r + 1 (``DLNFixedRank`` at depth N,
   or ``FixedRankEmbedded``) until the training loss stalls (less than a
   ``stall`` fraction of decrease over ``window`` iterations);
4. repeat until the runner's target loss is reached or the budget is spent.

The rank is never an input: it rises only while the training loss stalls.
"""

from __future__ import annotations

import time

import numpy as np
from pymanopt.optimizers import ConjugateGradient

from dlnmanifolds.problems.geometries import GeometryProblem, make_problem

#: Geometries the rank-adaptive solver can run on.
RANK_ADAPTIVE_GEOMETRIES = frozenset({"dln-fixed-rank", "fixed-rank"})


class _StageDone(Exception):
    pass


class _StallMonitor:
    """Wraps the runner's callback; ends a stage when the loss stops decreasing."""

    def __init__(self, objective, outer, window: int, stall: float):
        self.objective, self.outer = objective, outer
        self.window, self.stall = window, stall
        self.losses: list[float] = []
        self.last: np.ndarray | None = None

    def __call__(self, x: np.ndarray) -> None:
        if self.outer is not None:
            self.outer(x)
        self.last = x
        self.losses.append(self.objective.train_mse(x))
        w = self.window
        if len(self.losses) > w and self.losses[-1] > (1.0 - self.stall) * self.losses[-1 - w]:
            raise _StageDone


def _add_component(objective, x: np.ndarray, rank: int) -> np.ndarray:
    """X + t u v^T along the top singular pair of the normal part of -E'(X)."""
    g = objective.gradient(x)
    if rank > 0:
        u, _, vt = np.linalg.svd(x, full_matrices=False)
        u, v = u[:, :rank], vt[:rank].T
        g = g - u @ (u.T @ g)
        g = g - (g @ v) @ v.T
    uu, ss, vvt = np.linalg.svd(g, full_matrices=False)
    direction = -np.outer(uu[:, 0], vvt[0])
    curvature = float(np.vdot(direction, objective.hessian(x, direction)))
    slope = float(np.vdot(g, direction))  # = -ss[0] < 0
    step = -slope / curvature if curvature > 0 else 1.0
    return x + step * direction


def rank_adaptive_cg(
    gp: GeometryProblem,
    max_iterations: int,
    max_time: float,
    window: int = 10,
    stall: float = 0.1,
):
    """Run the rank-adaptive solver on ``gp``'s objective, geometry and depth.

    Returns (X, iterations, reason) with reason "max-iterations", "max-time"
    or "stalled" (the rank reached min(m, n) without meeting the target).
    """
    objective = gp.objective
    m, n = objective.shape
    x = np.zeros((m, n))
    start = time.perf_counter()
    used = 0
    for rank in range(1, min(m, n) + 1):
        x = _add_component(objective, x, rank - 1)
        monitor = _StallMonitor(objective, gp.callback, window, stall)
        stage = make_problem(
            objective, gp.geometry, gp.depth, rank=rank, initial_matrix=x, callback=monitor
        )
        left_time = max_time - (time.perf_counter() - start)
        left_iterations = max_iterations - used
        if left_time <= 0 or left_iterations <= 0:
            return x, used, "max-time" if left_time <= 0 else "max-iterations"
        optimizer = ConjugateGradient(
            max_iterations=left_iterations,
            max_time=left_time,
            min_gradient_norm=1e-14,
            min_step_size=1e-16,
            verbosity=0,
        )
        try:
            result = optimizer.run(stage.problem, initial_point=stage.initial_point)
            x = stage.to_matrix(result.point)
        except _StageDone:
            x = monitor.last
        used += len(monitor.losses)
    return x, used, "stalled"
