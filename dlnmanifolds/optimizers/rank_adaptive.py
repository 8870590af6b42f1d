"""Rank-adaptive Riemannian optimization on (M_r, g^N): the rank is found, not given.

The method follows the rank-increase and rank-reduction steps of Gao & Absil 2022
("A Riemannian rank-adaptive method for low-rank matrix completion", Comput. Optim.
Appl. 81, Alg. 1 and Sec. 3), with the DLN metric g^N of ``DLNFixedRank`` (or the
Euclidean metric of ``FixedRankEmbedded``) on each fixed-rank stage:

1. **Spectral start.** The k leading singular values sigma_1 >= ... >= sigma_k of
   the spectral matrix (m n / |Omega|) P_Omega(X*) (Keshavan, Montanari & Oh 2010)
   by ``scipy.sparse.linalg.svds``; the start rank r_0 is the index of the largest
   gap sigma_i / sigma_{i+1} when that gap stands out of the spectrum's noise
   (its excess over 1 is at least ``gap`` times the median excess), else the
   number of sigma_i above the sampling-noise edge (``_above_noise``), at least 1.
2. **Fixed-rank stage.** A Pymanopt first-order optimizer (``inner``) on rank r
   until the train MSE reaches ``target``, or the rank shows too small, or the
   stage stalls (less than a ``stall`` fraction of decrease over ``window``
   iterations). The rank is too small when the point nears a critical point of
   M_r whose Euclidean gradient G = E'(X) is mostly normal:
   ||P_T G||_F <= ``deficient`` * ||P_N G||_F, with
   ||P_T G||^2 = ||G V||^2 + ||U^T G||^2 - ||U^T G V||^2 and
   ||P_N G||^2 = ||G||^2 - ||P_T G||^2 (Vandereycken 2013, eq. 2.5). Such a
   point is not critical on the bounded-rank variety M_{<=r+1}, whose tangent
   cone contains the normal directions (Schneider & Uschmajew 2015, Thm 3.2), so
   the stage ends without waiting for the stall window; at the right rank the
   leak of P_Omega into the normal space keeps the ratio well above ``deficient``
   (>= 0.07 on the Arora 100^2 problems, where the test fires at 0.05 after
   8-15 evaluations instead of 19-32 for the stall test).
3. **Rank reduction.** Singular values below ``collapse`` * sigma_max are
   dropped (Gao & Absil, Sec. 3.2: a collapsing sigma means a too large rank).
4. **Rank increase.** The top singular pairs (u_i, sigma_i, v_i) of the normal
   part of the Euclidean gradient, N = (I - U U^T) E'(X) (I - V V^T), by svds on
   a sparse + low-rank ``LinearOperator`` (never an m x n array for matrix
   completion); l pairs are added, l from the same gap rule on sigma(N) (else 1;
   at most ``max_increment``), with the exact line-searched step along
   D = -sum_i sigma_i u_i v_i^T, t = sum sigma_i^2 / <D, E''[D]> (Gao & Absil,
   Sec. 3.1; exact for the quadratic matrix-completion loss). Since u_i is
   orthogonal to U and v_i to V, the new point is again a thin SVD.

Steps 2-4 repeat until the target or the budgets (``max_iterations`` counts
gradient evaluations, about one per inner iteration; ``max_time`` in seconds).
When the rank can no longer change usefully (a negligible normal part, the rank
cap, or a rank that collapses back after an increase, which would cycle), a last
"patient" stage runs without the stall test until the inner optimizer's own
stopping tests ("stalled"), the target or the budgets.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pymanopt.optimizers import ConjugateGradient, SteepestDescent, TrustRegions
from pymanopt.optimizers.line_search import AdaptiveLineSearcher, BackTrackingLineSearcher
from pymanopt.optimizers.optimizer import Optimizer

from dlnmanifolds.core._validate import check_depth, check_positive_int
from dlnmanifolds.problems._objective import MatrixObjective
from dlnmanifolds.problems.geometries import make_problem
from dlnmanifolds.problems.lowrank import (
    LowRank,
    as_low_rank,
    dense,
    gather,
    normal_singular_pairs,
    truncate,
)
from dlnmanifolds.problems.matrix_completion import MatrixCompletion

#: Geometries the rank-adaptive optimizer runs on.
RANK_ADAPTIVE_GEOMETRIES: tuple[str, ...] = ("dln-fixed-rank", "fixed-rank")
#: Inner optimizers by name.
INNER: dict[str, type[Optimizer]] = {
    "conjugate-gradient": ConjugateGradient,
    "steepest-descent": SteepestDescent,
    # Both geometries have a Riemannian Hessian (problems.geometries.HAS_HESSIAN).
    "trust-regions": TrustRegions,
}
#: Why ``RankAdaptive.run`` stopped.
STOPPING_REASONS: tuple[str, ...] = ("target", "max-iterations", "max-time", "stalled")


@dataclass
class RankAdaptiveResult:
    """What ``RankAdaptive.run`` found.

    point : the factored ``LowRank(u, s, vt)`` end point.
    rank : its rank.
    rank_history : the rank of each fixed-rank stage, in order.
    loss : train MSE of ``point`` (2 E / count).
    iterations : gradient evaluations (about one per inner iteration), all stages.
    time : wall seconds.
    stopping_reason : one of ``STOPPING_REASONS``.
    losses : train MSE at every gradient evaluation.
    """

    point: LowRank
    rank: int
    rank_history: list[int]
    loss: float
    iterations: int
    time: float
    stopping_reason: str
    losses: list[float] = field(default_factory=list)


class _Budget(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class _StageDone(Exception):
    pass


def rank_from_gap(values: np.ndarray, gap: float) -> int | None:
    """The index r of the largest ratio sigma_r / sigma_{r+1}, when it stands out.

    It stands out when its excess over 1 is at least ``gap`` times the median
    excess of all the ratios (the spectrum's noise level); None otherwise.
    """
    values = np.asarray(values, dtype=float)
    values = values[values > 0]
    if values.size < 3:
        return None
    excess = values[:-1] / values[1:] - 1.0
    best = int(np.argmax(excess))
    noise = float(np.median(excess))
    if excess[best] >= gap * max(noise, 1e-12) and excess[best] > 0.05:
        return best + 1
    return None


class RankAdaptive:
    """Rank-adaptive optimizer for matrix completion on (M_r, g^N) (Gao & Absil 2022).

    Parameters
    ----------
    geometry : "dln-fixed-rank" (g^N, ``DLNFixedRank``) or "fixed-rank" (Euclidean,
        Pymanopt ``FixedRankEmbedded``).
    depth : N >= 1 of the DLN metric (ignored by "fixed-rank").
    target : stop when the train MSE is <= target (> 0, finite); None: run until
        stalled or out of budget.
    max_time : wall seconds (> 0).
    max_iterations : gradient evaluations in all (>= 1).
    inner : "conjugate-gradient", "steepest-descent", "trust-regions" (second order,
        through the rank-r Hessian of g^N), a Pymanopt ``Optimizer`` subclass, or an
        instance (copied per stage, its budgets capped).
    max_rank : the largest rank tried (default: the largest r with r (m + n - r) <=
        the number of residuals, at most min(m, n) - 1 and 200).
    probe : singular values computed for the spectral start and each increase.
    gap : how far the largest spectral gap must stand out of the median (rank rule).
    max_increment : the most pairs added in one increase.
    collapse : singular values below collapse * sigma_max are dropped.
    window, stall : a stage ends when the train MSE fell by less than a ``stall``
        fraction over ``window`` gradient evaluations (default: 10, or 3 with
        trust-regions, whose steps each cost several Hessian products).
    deficient : a stage ends (the rank is too small) when ||P_T E'(X)||_F <=
        deficient * ||P_N E'(X)||_F after at least ``settle`` evaluations; in [0, 1)
        (0 switches the test off).
    settle : gradient evaluations of a stage before the ``deficient`` test applies.
    callback : called as ``callback(x)`` with the factored ``LowRank`` point at
        every gradient evaluation; exceptions it raises propagate (a way to stop).

    Example
    -------
    >>> from dlnmanifolds.problems import MatrixCompletion
    >>> mc = MatrixCompletion.generate(60, 3, 1500, rng=0)
    >>> result = RankAdaptive(depth=3, target=1e-10, max_time=30).run(mc)
    >>> result.rank, result.stopping_reason
    (3, 'target')
    """

    def __init__(
        self,
        geometry: str = "dln-fixed-rank",
        depth: int = 3,
        target: float | None = None,
        max_time: float = 60.0,
        max_iterations: int = 10000,
        inner: Any = "conjugate-gradient",
        max_rank: int | None = None,
        probe: int = 20,
        gap: float = 4.0,
        max_increment: int = 10,
        collapse: float = 1e-3,
        window: int | None = None,
        stall: float = 0.1,
        deficient: float = 0.05,
        settle: int = 3,
        callback: Callable[[LowRank], None] | None = None,
    ):
        if geometry not in RANK_ADAPTIVE_GEOMETRIES:
            raise ValueError(
                f"geometry must be one of {', '.join(RANK_ADAPTIVE_GEOMETRIES)}, got {geometry!r}"
            )
        self.geometry = geometry
        self.depth = check_depth(depth)
        self.target = None if target is None else _positive_float(target, "target")
        self.max_time = _positive_float(max_time, "max_time")
        self.max_iterations = check_positive_int(max_iterations, "max_iterations")
        self._inner = _check_inner(inner)
        self.inner = inner
        self.max_rank = None if max_rank is None else check_positive_int(max_rank, "max_rank")
        self.probe = check_positive_int(probe, "probe", minimum=2)
        self.gap = _positive_float(gap, "gap")
        self.max_increment = check_positive_int(max_increment, "max_increment")
        self.collapse = _positive_float(collapse, "collapse")
        if self.collapse >= 1:
            raise ValueError(f"collapse must lie in (0, 1), got {collapse}")
        if window is None:
            second_order = self._inner is TrustRegions or isinstance(self._inner, TrustRegions)
            window = 3 if second_order else 10
        self.window = check_positive_int(window, "window")
        self.stall = _positive_float(stall, "stall")
        if self.stall >= 1:
            raise ValueError(f"stall must lie in (0, 1), got {stall}")
        if isinstance(deficient, bool) or not isinstance(
            deficient, (int, float, np.integer, np.floating)
        ):
            raise TypeError(f"deficient must be a number in [0, 1), got {deficient!r}")
        if not (math.isfinite(float(deficient)) and 0 <= float(deficient) < 1):
            raise ValueError(f"deficient must lie in [0, 1), got {deficient}")
        self.deficient = float(deficient)
        self.settle = check_positive_int(settle, "settle")
        if callback is not None and not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}")
        self.callback = callback

    # -- driver --------------------------------------------------------------
    def run(self, problem: MatrixObjective, initial_point=None) -> RankAdaptiveResult:
        """Minimize ``problem``'s train MSE over matrices of unknown rank.

        problem : a ``MatrixCompletion`` (O(|Omega| r) evaluations) or any
            ``MatrixObjective`` (its defaults densify: small problems).
        initial_point : optional factored ``(u, s, vt)`` start (skips the spectral start).
        """
        if not isinstance(problem, MatrixObjective):
            raise TypeError(
                f"problem must be a MatrixObjective (e.g. MatrixCompletion), got "
                f"{type(problem).__name__}"
            )
        m, n = problem.shape
        if min(m, n) < 2:
            raise ValueError(f"problem must be at least 2 x 2, got {m} x {n}")
        # Identifiability: a rank-r matrix has r (m + n - r) degrees of freedom, no
        # more than there are residuals (Candes & Recht 2009; Gao & Absil 2022, Sec. 4).
        dof = max(r for r in range(1, min(m, n) + 1) if r == 1 or r * (m + n - r) <= problem.count)
        max_rank = min(self.max_rank or 200, min(m, n) - 1, dof) if min(m, n) > 2 else 1
        start = time.perf_counter()
        self._last_step = 0.0
        losses: list[float] = []
        history: list[int] = []
        state = {"x": None}

        def monitor(x: LowRank) -> None:
            # One train MSE per gradient evaluation, from the residual the cost
            # already cached (MatrixCompletion) at this very point.
            loss = float(problem.train_mse(x))
            losses.append(loss)
            state["x"] = x
            if self.callback is not None:
                self.callback(x)
            if self.target is not None and loss <= self.target:
                raise _Budget("target")
            if len(losses) >= self.max_iterations:
                raise _Budget("max-iterations")
            if time.perf_counter() - start >= self.max_time:
                raise _Budget("max-time")
            if patient[0]:
                return
            w = self.window
            if stage_calls() > w and loss > (1.0 - self.stall) * losses[-1 - w]:
                raise _StageDone
            if (
                self.deficient > 0
                and stage_calls() >= self.settle
                and x.rank < ceiling_now[0]
                and _tangent_fraction(problem, x) <= self.deficient
            ):
                raise _StageDone

        stage_start = [0]
        # A patient stage runs until the inner optimizer's own tests, the target or
        # the budgets (no stall test): after the rank can no longer usefully change.
        patient = [False]
        ceiling = max_rank
        # The rank test only matters when the rank may still grow.
        ceiling_now = [ceiling]

        def stage_calls() -> int:
            return len(losses) - stage_start[0]

        with np.errstate(all="ignore"):
            if initial_point is None:
                x = self._spectral_start(problem, max_rank)
            else:
                x = as_low_rank(initial_point)
                if x is None or x.shape != (m, n):
                    raise ValueError(
                        f"initial_point must be a factored (u, s, vt) of an {m} x {n} matrix"
                    )
                x = truncate(x, min(x.rank, max_rank))
            reason = "stalled"
            while True:
                history.append(x.rank)
                stage_start[0] = len(losses)
                state["x"] = x
                try:
                    x = self._stage(problem, x, monitor, start, len(losses))
                    if patient[0]:
                        reason = "stalled"  # the inner optimizer converged on its own
                        break
                except _StageDone:
                    x = state["x"]
                except _Budget as stop:
                    x, reason = state["x"], stop.reason
                    break
                if self.target is not None and problem.train_mse(x) <= self.target:
                    reason = "target"
                    break
                if time.perf_counter() - start >= self.max_time:
                    reason = "max-time"
                    break
                if len(losses) >= self.max_iterations:
                    reason = "max-iterations"
                    break
                reduced = self._reduce(x)
                if reduced is not None:
                    if reduced.rank in history:
                        # Increase then collapse back: that rank is the answer; no
                        # more increases (no cycling), finish at it patiently.
                        ceiling = min(ceiling, reduced.rank)
                        ceiling_now[0] = ceiling
                        patient[0] = True
                    x = reduced
                    continue
                grown = self._increase(problem, x, ceiling)
                if grown is None:
                    patient[0] = True
                    continue
                x = grown
        x = LowRank(*x)
        return RankAdaptiveResult(
            point=x,
            rank=x.rank,
            rank_history=history,
            loss=float(problem.train_mse(x)),
            iterations=len(losses),
            time=time.perf_counter() - start,
            stopping_reason=reason,
            losses=losses,
        )

    # -- steps ---------------------------------------------------------------
    def _spectral_start(self, problem: MatrixObjective, max_rank: int) -> LowRank:
        probe = min(self.probe, max_rank + 1, min(problem.shape) - 1)
        while True:
            start = problem.spectral_factors(probe)
            rank = rank_from_gap(start.s, self.gap)
            # A gap at the end of the probe may continue: look further.
            if rank == probe - 1 and probe < max_rank + 1:
                probe = min(2 * probe, max_rank + 1, min(problem.shape) - 1)
                if probe > start.rank:
                    continue
            break
        if rank is None:
            rank = _above_noise(problem, start.s, problem.values if _is_mc(problem) else None)
        rank = max(1, min(rank, max_rank))
        return LowRank(start.u[:, :rank], start.s[:rank], start.vt[:rank])

    def _stage(self, problem, x: LowRank, monitor, start: float, used: int) -> LowRank:
        stage = make_problem(
            problem, self.geometry, self.depth, rank=x.rank, initial_matrix=x, callback=monitor
        )
        left_time = self.max_time - (time.perf_counter() - start)
        left_iterations = self.max_iterations - used
        optimizer = self._make_inner(max(left_iterations, 1), max(left_time, 1e-3), problem)
        result = optimizer.run(stage.problem, initial_point=stage.initial_point)
        return LowRank(*result.point)

    def _make_inner(self, iterations: int, seconds: float, problem=None) -> Optimizer:
        inner = self._inner
        if isinstance(inner, Optimizer):
            optimizer = copy.copy(inner)
            # Pymanopt keeps its budgets in these attributes; cap them by ours.
            optimizer._max_iterations = min(optimizer._max_iterations, iterations)
            optimizer._max_time = min(optimizer._max_time, seconds)
            return optimizer
        options = dict(
            max_iterations=iterations,
            max_time=seconds,
            min_gradient_norm=1e-14,
            min_step_size=1e-16,
            verbosity=0,
        )
        if inner in (ConjugateGradient, SteepestDescent) and isinstance(problem, MatrixCompletion):
            options["line_searcher"] = _QuadraticStepSearcher(problem)
        elif inner is ConjugateGradient:
            options["line_searcher"] = self._searcher(_RecordingAdaptive)
        elif inner is SteepestDescent:
            options["line_searcher"] = self._searcher(_RecordingBackTracking)
        return inner(**options)

    def _searcher(self, kind):
        # Pymanopt's default line searches (CG: adaptive, SD: backtracking) start
        # each new stage at the unit length 1 / ||d||; near the target ||d|| is
        # tiny, 10 halvings of a unit step fail and the stage ends at once ("min
        # step_size"). A new stage starts at twice the last accepted step length.
        last = self._last_step
        return kind(self, initial_step_size=2 * last if last > 0 else 1)

    def _reduce(self, x: LowRank) -> LowRank | None:
        keep = int(np.count_nonzero(x.s >= self.collapse * x.s.max()))
        if keep == x.rank or keep == 0:
            return None
        order = np.argsort(x.s)[::-1][:keep]
        return LowRank(x.u[:, order], x.s[order], x.vt[order])

    def _increase(self, problem, x: LowRank, max_rank: int) -> LowRank | None:
        room = max_rank - x.rank
        if room <= 0:
            return None
        m, n = problem.shape
        k = min(self.probe, room + 1, min(m, n) - x.rank - 1)
        if k < 1:
            return None
        # The top pairs of N = (I - UU^T) E'(X) (I - VV^T), an operator (svds).
        a, sig, bt = normal_singular_pairs(problem.gradient_matrix(x), x.u, x.vt.T, k)
        if not sig.size or not sig[0] > 1e-14 * max(float(np.max(x.s)), 1e-300):
            return None
        # The noise-edge rule is not used here: the residual on Omega of a fitted
        # point underestimates X - X* (it is fitted), so the edge would be too low.
        rule = rank_from_gap(sig, self.gap) if sig.size >= 3 else None
        count = max(1, min(rule or 1, self.max_increment, room))
        a, sig, bt = a[:, :count], sig[:count], bt[:count]
        # Exact step along D = -A diag(sig) B^T: t = sum sig^2 / <D, E''[D]>.
        direction = LowRank(a, sig, bt)
        curvature = _curvature(problem, x, direction)
        step = float(np.sum(sig**2)) / curvature if curvature > 0 else 1.0
        grown = LowRank(
            np.hstack([x.u, a]), np.concatenate([x.s, -step * sig]), np.vstack([x.vt, bt])
        )
        # Re-orthonormalize and sort (a, bt are orthogonal to U, V up to rounding;
        # the negative weights become signs of the singular vectors).
        return truncate(grown, grown.rank)


class _Recording:
    """A Pymanopt line search that reports its accepted step lengths to its owner."""

    def __init__(self, owner, **kwargs):
        super().__init__(**kwargs)
        self._owner = owner

    def __deepcopy__(self, memo):
        # Pymanopt deep-copies its line searcher per run: keep the owner shared.
        clone = copy.copy(self)
        clone.__dict__ = {
            k: copy.deepcopy(v, memo) if k != "_owner" else v for k, v in self.__dict__.items()
        }
        return clone

    def search(self, objective, manifold, x, d, f0, df0):
        step_size, newx = super().search(objective, manifold, x, d, f0, df0)
        if step_size > 0:
            self._owner._last_step = float(step_size)
        return step_size, newx


class _RecordingAdaptive(_Recording, AdaptiveLineSearcher):
    pass


class _RecordingBackTracking(_Recording, BackTrackingLineSearcher):
    pass


class _QuadraticStepSearcher:
    """Pymanopt's adaptive line search whose first trial in a stage is the exact step
    of the quadratic along the direction (no memory of a previous stage's step).

    For matrix completion f(X) = c/2 ||P_Omega(X - M)||^2 the cost along the
    tangent line X + t D is c/2 ||r + t P_Omega(D)||^2, minimized at
    t* = -df0 / (c ||P_Omega(D)||^2) (Vandereycken 2013, Sec. 4.3, the initial step of
    LRGeomCG); D = U M V^T + U_p V^T + U V_p^T = U (V M^T + V_p)^T + U_p V^T is
    gathered on Omega in O(|Omega| r) and checked by Armijo backtracking. Later
    steps follow Pymanopt's ``AdaptiveLineSearcher`` rule (the last accepted
    alpha, doubled after a very good or a much backtracked step): the exact step
    at every iteration saved 10-15% of the iterations at 100^2 but cost one more
    rank-2r gather per iteration (+40% time at 1000^2). Pymanopt's own first trial,
    the unit length 1 / ||d||, is far too long near the target: 10 halvings fail
    and a new stage ended at once ("min step_size").
    """

    def __init__(self, problem: MatrixCompletion, max_iterations: int = 25):
        self._problem = problem
        self._max_iterations = max_iterations
        self._oldalpha: float | None = None

    def search(self, objective, manifold, x, d, f0, df0):
        if self._oldalpha is not None:
            return self._adaptive(objective, manifold, x, d, f0, df0)
        u, s, vt = x
        up, mm, vp = d
        problem = self._problem
        rr = 2.0 * problem.loss(LowRank(u, s, vt))  # ||r||^2, from the cached residual
        # Two rank-r gathers (not one of rank 2r): the temporaries of a cost evaluation.
        ones = np.ones(u.shape[1])
        rows, cols = problem.rows, problem.cols
        dvals = gather(LowRank(u, ones, (vt.T @ mm.T + vp).T), rows, cols)
        dvals += gather(LowRank(up, ones, vt), rows, cols)
        # c = f0 / (||r||^2 / 2): the geometry's scale of the loss.
        curvature = (2.0 * f0 / rr) * float(np.dot(dvals, dvals)) if rr > 0 else 0.0
        norm_d = manifold.norm(x, d)
        if curvature > 0 and df0 < 0 and math.isfinite(curvature):
            alpha = -df0 / curvature
        else:
            alpha = 1.0 / norm_d if norm_d > 0 else 0.0
        newx = manifold.retraction(x, alpha * d)
        newf = objective(newx)
        count = 1
        while newf > f0 + 1e-4 * alpha * df0 and count <= self._max_iterations:
            alpha *= 0.5
            newx = manifold.retraction(x, alpha * d)
            newf = objective(newx)
            count += 1
        if newf > f0:
            return 0.0, x
        self._oldalpha = alpha if count <= 2 else 2 * alpha
        return alpha * norm_d, newx

    def _adaptive(self, objective, manifold, x, d, f0, df0):
        norm_d = manifold.norm(x, d)
        alpha = self._oldalpha
        newx = manifold.retraction(x, alpha * d)
        newf = objective(newx)
        count = 1
        while newf > f0 + 0.5 * alpha * df0 and count <= 10:
            alpha *= 0.5
            newx = manifold.retraction(x, alpha * d)
            newf = objective(newx)
            count += 1
        if newf > f0:
            alpha, newx = 0.0, x
        self._oldalpha = alpha if count == 2 else 2 * alpha
        return alpha * norm_d, newx


#: Margin over the Bai-Yin edge of the sampling noise (finite-size fluctuations and
#: the non-identical entry variances put the observed edge at ~1.15-1.2 times it).
NOISE_MARGIN = 1.3


def _is_mc(problem) -> bool:
    return isinstance(problem, MatrixCompletion)


def _above_noise(problem, values: np.ndarray, entries: np.ndarray | None) -> int:
    """How many ``values`` exceed the noise edge of uniform sampling, else 0.

    (m n / |Omega|) P_Omega(Y) - Y has independent entries of variance
    Y_ij^2 (1 - p) / p, p = |Omega| / (m n), so its spectral norm is about
    sqrt((1 - p) / p) rms(Y) (sqrt(m) + sqrt(n)) (Bai-Yin; Keshavan, Montanari &
    Oh 2010, Thm 1.1); rms(Y) is estimated from the observed ``entries``.
    """
    if entries is None:
        return 0
    m, n = problem.shape
    p = problem.count / (m * n)
    if p >= 1.0:
        return 0
    edge = np.sqrt((1 - p) / p) * np.sqrt(np.mean(entries**2)) * (np.sqrt(m) + np.sqrt(n))
    return int(np.count_nonzero(values > NOISE_MARGIN * edge))


def _tangent_fraction(problem, x: LowRank) -> float:
    """||P_T G||_F / ||P_N G||_F for G = E'(X) at X = U S V^T on M_r (inf if P_N G = 0).

    ||P_T G||^2 = ||G V||^2 + ||U^T G||^2 - ||U^T G V||^2 (Vandereycken 2013, eq. 2.5)
    from the cached products G V, G^T U; ||G||^2 = sum of squared residuals for
    matrix completion (O(|Omega| r) in all).
    """
    gv, gtu = problem.gradient_products(x)
    if isinstance(problem, MatrixCompletion):
        r = problem.residual(x)
        total = float(np.dot(r, r))
    else:
        g = problem.gradient_matrix(x)
        total = float(np.vdot(g, g))
    tangent = float(np.sum(gv * gv) + np.sum(gtu * gtu) - np.sum((x.u.T @ gv) ** 2))
    tangent = min(max(tangent, 0.0), total)
    normal = total - tangent
    if normal <= 1e-24 * max(total, 1e-300):
        return math.inf
    return math.sqrt(tangent / normal)


def _curvature(problem, x: LowRank, d: LowRank) -> float:
    """<D, E''(X)[D]>; for matrix completion ||P_Omega(D)||^2 in O(|Omega| r)."""
    if isinstance(problem, MatrixCompletion):
        values = gather(d, problem.rows, problem.cols)
        return float(np.dot(values, values))
    dd = dense(d)
    return float(np.vdot(dd, problem.hessian(dense(x), dd)))


def _positive_float(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number > 0, got {value!r}")
    value = float(value)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return value


def _check_inner(inner: Any):
    if isinstance(inner, str):
        if inner not in INNER:
            raise ValueError(
                f"inner must be one of {', '.join(INNER)} or a Pymanopt optimizer, got {inner!r}"
            )
        return INNER[inner]
    if isinstance(inner, type) and issubclass(inner, Optimizer):
        return inner
    if isinstance(inner, Optimizer):
        return inner
    raise TypeError(
        f"inner must be a name ({', '.join(INNER)}), a Pymanopt Optimizer class or "
        f"instance, got {type(inner).__name__}"
    )
