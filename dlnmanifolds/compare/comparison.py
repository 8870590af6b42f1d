"""Run a geometry x depth x solver x seed grid: serially, on local cores or on Dask.

Records are appended to ``runs.jsonl`` in the output directory as each run
finishes, so an interrupted comparison loses nothing; ``resume=True`` skips the
runs already there. At the end the summary table, ``results.csv``,
``results.json`` and ``curves.png`` are written.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from dlnmanifolds.compare._pool import TotalTimeExceeded, WorkerPool
from dlnmanifolds.compare.config import package_versions
from dlnmanifolds.compare.journal import FolderLock, Journal, read_journal, repair
from dlnmanifolds.compare.report import (
    format_table,
    problem_title,
    summarize,
    write_csv,
    write_json,
    write_report,
)
from dlnmanifolds.compare.run import run_one
from dlnmanifolds.compare.solvers import (
    RANK_ADAPTIVE,
    SECOND_ORDER,
    check_solver,
    solver_supports,
)
from dlnmanifolds.compare.specs import (
    FixedProblem,
    ProblemSpec,
    RunSettings,
    RunSpec,
    config_hash,
)
from dlnmanifolds.core._validate import check_depth, check_positive_int
from dlnmanifolds.problems.geometries import (
    DEPTH_FREE,
    INFINITE_DEPTH,
    INITS,
    NEEDS_RANK,
    check_geometry,
)

RUNS_FILE = "runs.jsonl"


@dataclass
class Grid:
    r"""The runs to do and the combinations skipped (with the reason).

    Example
    -------
    >>> from dlnmanifolds.compare import ProblemSpec, RunSettings, build_grid
    >>> grid = build_grid(ProblemSpec(size=8, rank=1, observations=40),
    ...                   ["factors", "euclidean"], [1], ["nuclear-norm"], 2,
    ...                   RunSettings(rank=1))
    >>> [r.key for r in grid.runs]
    ['euclidean|1|nuclear-norm|0', 'euclidean|1|nuclear-norm|1']
    >>> print(grid.skipped[0].replace(": ", ":\n"))
    nuclear-norm on factors (depth 1):
    it runs on the euclidean geometry only (a convex problem on X)
    """

    runs: list[RunSpec]
    skipped: list[str] = field(default_factory=list)


def _as_list(values, name) -> list:
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"{name} must be a sequence, got {type(values).__name__}")
    values = list(values)
    if not values:
        raise ValueError(f"{name} must not be empty")
    return values


def _seeds(seeds) -> list[int]:
    if isinstance(seeds, (int,)) and not isinstance(seeds, bool):
        return list(range(check_positive_int(seeds, "seeds")))
    values = _as_list(seeds, "seeds")
    for k, s in enumerate(values):
        check_positive_int(s, f"seeds[{k}]", minimum=0)
    if len(set(values)) != len(values):
        raise ValueError(f"seeds must be distinct, got {values}")
    return [int(s) for s in values]


def infinite_depth_support(solver: str, geometry: str) -> str | None:
    """None if ``solver`` can run on ``geometry`` at depth math.inf, else why not."""
    if geometry not in INFINITE_DEPTH:
        return "depth inf exists on dln-matrices only (no balanced lift at infinite depth)"
    if solver in SECOND_ORDER:
        return "there is no Hessian at depth inf"
    return None


#: At depth 1 these geometries are all plain Euclidean optimization of X (g^1 is the
#: Frobenius metric, a 1-layer balanced network is any matrix): one run is enough.
SAME_AT_DEPTH_ONE = ("factors", "euclidean", "balanced", "dln-matrices")


def _duplicate(geometry: str, depth: int, solver: str, ran: set) -> str | None:
    """The reason to skip a cell that repeats one already in the grid, else None."""
    if depth != 1 or geometry not in SAME_AT_DEPTH_ONE:
        return None
    for other in SAME_AT_DEPTH_ONE:
        if other != geometry and (other, 1, solver) in ran:
            return f"at depth 1 it is the same Euclidean problem on X as {other} N=1"
    return None


def build_grid(
    problem: ProblemSpec | FixedProblem,
    geometries: Sequence[str],
    depths: Sequence[int],
    solvers: Sequence[str],
    seeds: int | Sequence[int],
    settings: RunSettings,
) -> Grid:
    """Validate every name and number, then list the runs (before any run starts).

    Depth-free geometries (``fixed-rank``, ``euclidean``) run once, at depth 1.
    Second-order solvers are skipped on geometries without a Hessian, and at depth 1
    ``euclidean``, ``balanced`` and ``dln-matrices`` repeat ``factors`` (the first of them
    in the grid runs). Depth ``math.inf`` runs on ``dln-matrices`` with first-order
    solvers only (g^inf, math.md §4.6); the other cells at that depth are skipped with
    the reason.
    """
    if not isinstance(problem, (ProblemSpec, FixedProblem)):
        raise TypeError(
            f"problem must be a ProblemSpec or FixedProblem, got {type(problem).__name__}"
        )
    problem.validate()
    if not isinstance(settings, RunSettings):
        raise TypeError(f"settings must be RunSettings, got {type(settings).__name__}")
    geometries = _as_list(geometries, "geometries")
    depths = [
        check_depth(d, f"depths[{k}]", allow_inf=True)
        for k, d in enumerate(_as_list(depths, "depths"))
    ]
    solvers = [check_solver(s) for s in _as_list(solvers, "solvers")]
    seeds = _seeds(seeds)
    rank = settings.rank
    for g in geometries:
        check_geometry(g, 1, rank if rank is not None else 1)
        if g in NEEDS_RANK and rank is None and not set(solvers) <= RANK_ADAPTIVE:
            raise ValueError(f"geometry {g!r} needs the rank (settings.rank / --rank)")
    if settings.init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {settings.init!r}")
    if settings.init == "spectral" and rank is None:
        raise ValueError("init 'spectral' needs the rank")
    if rank is not None:
        shape = problem.build(seeds[0]).shape
        if rank > min(shape):
            raise ValueError(f"rank must be at most min(m, n) = {min(shape)}, got {rank}")
    for name in ("max_iterations", "history_points"):
        check_positive_int(getattr(settings, name), name)
    for name in ("max_time", "learning_rate", "init_scale", "divergence"):
        value = getattr(settings, name)
        if name == "learning_rate" and value is None:
            continue  # Armijo backtracking
        if not isinstance(value, (int, float)) or not value > 0 or value == float("inf"):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not isinstance(settings.target, (int, float)) or settings.target < 0:
        raise ValueError(f"target must be a number >= 0, got {settings.target!r}")

    runs, skipped, seen, ran = [], [], set(), set()
    for geometry in dict.fromkeys(geometries):
        for depth in dict.fromkeys(depths):
            depth = 1 if geometry in DEPTH_FREE else depth
            for solver in dict.fromkeys(solvers):
                if (geometry, depth, solver) in seen:
                    continue
                seen.add((geometry, depth, solver))
                reason = solver_supports(solver, geometry) or _duplicate(
                    geometry, depth, solver, ran
                )
                if reason is None and depth == math.inf:
                    reason = infinite_depth_support(solver, geometry)
                if reason is not None:
                    skipped.append(f"{solver} on {geometry} (depth {depth}): {reason}")
                    continue
                ran.add((geometry, depth, solver))
                runs.extend(RunSpec(problem, geometry, depth, solver, s, settings) for s in seeds)
    return Grid(runs, skipped)


@dataclass
class ComparisonResult:
    """Records of every run (grid order), the skipped combinations, the output directory.

    Example
    -------
    >>> from dlnmanifolds.compare import ProblemSpec, RunSettings, compare
    >>> result = compare(ProblemSpec(size=8, rank=1, observations=40), ["dln-fixed-rank"],
    ...                  [2], ["conjugate-gradient"], seeds=2,
    ...                  settings=RunSettings(rank=1, max_time=5.0), progress=False)
    >>> row = result.summary()[0]
    >>> row["successes"], row["runs"]
    (2, 2)
    >>> result.table().splitlines()[0].split()[:4]
    ['#', 'geometry', 'N', 'solver']
    """

    records: list[dict]
    skipped: list[str]
    output: Path | None = None
    target: float | None = None
    test_target: float | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> list[dict]:
        """One row per method, ranked (see ``aggregate.aggregate``)."""
        return summarize(self.records, self.test_target)

    def table(self) -> str:
        """The ranked table, the winner line and the meaning of each status."""
        return format_table(self.summary(), self.target, self.test_target)


def load_records(path: Path) -> list[dict]:
    """Complete records of a ``runs.jsonl`` file (torn or unreadable lines left out;
    ``compare(resume=True)`` repairs the file itself, see ``journal.repair``)."""
    return read_journal(Path(path))[0]


class CompareInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a comparison after its files were written.

    ``result`` holds the finished runs; ``exit_code`` is 130 (SIGINT) or 143 (SIGTERM).
    """

    def __init__(self, result: ComparisonResult, exit_code: int, remaining: int):
        super().__init__(f"interrupted: {remaining} runs not done")
        self.result, self.exit_code, self.remaining = result, exit_code, remaining


class _Terminated(KeyboardInterrupt):
    pass


class _Signals:
    """SIGTERM -> ``_Terminated`` and the grid deadline -> ``TotalTimeExceeded``,
    both raised in the main thread, but never in the middle of a journal write."""

    def __init__(self, deadline: float | None):
        self.deadline = deadline
        self.critical = False
        self.pending: BaseException | None = None
        self.saved: dict = {}

    def _raise(self, exc: BaseException) -> None:
        if self.critical:
            self.pending = exc
        else:
            raise exc

    def __enter__(self) -> _Signals:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals reach the main thread only; the deadline is polled
        self.saved[signal.SIGTERM] = signal.signal(
            signal.SIGTERM, lambda *_: self._raise(_Terminated())
        )
        if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.saved[signal.SIGINT] = signal.signal(
                signal.SIGINT, lambda *_: self._raise(KeyboardInterrupt())
            )
        if self.deadline is not None and hasattr(signal, "setitimer"):
            self.saved[signal.SIGALRM] = signal.signal(
                signal.SIGALRM, lambda *_: self._raise(TotalTimeExceeded())
            )
            signal.setitimer(signal.ITIMER_REAL, max(self.deadline - time.monotonic(), 1e-3))
        return self

    def __exit__(self, *exc) -> None:
        if signal.SIGALRM in self.saved:
            signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in self.saved.items():
            signal.signal(sig, handler)

    @contextlib.contextmanager
    def protect(self):
        self.critical = True
        try:
            yield
        finally:
            self.critical = False
            if self.pending is not None:
                exc, self.pending = self.pending, None
                raise exc


def _serial_results(specs, deadline):
    for s in specs:
        if deadline is not None and time.monotonic() >= deadline:
            raise TotalTimeExceeded
        yield run_one(s)


def _dask_results(specs, scheduler):
    try:
        from dask.distributed import Client
        from dask.distributed import as_completed as dask_completed
    except ImportError as exc:
        raise ImportError(
            "--scheduler needs dask.distributed: pip install 'dlnmanifolds[dask]'"
        ) from exc
    client = Client(scheduler, set_as_default=False, timeout=10)
    futures = []
    try:
        futures = [client.submit(run_one, s, pure=False) for s in specs]
        for future in dask_completed(futures, loop=client.loop):
            yield future.result()
    finally:
        client.cancel(futures)
        client.close(timeout=5)


def _open_output(out_dir: Path, config: str, resume: bool, overwrite: bool):
    """Check the folder, repair the journal on resume; (records done, repair note)."""
    runs_path = out_dir / RUNS_FILE
    if runs_path.exists() and not runs_path.is_file():
        raise ValueError(f"output: {runs_path} exists and is not a file")
    for name in ("results.csv", "results.json", "curves.png"):
        if (out_dir / name).is_dir():
            raise ValueError(f"output: {out_dir / name} exists as a folder; remove it")
    if overwrite:
        runs_path.unlink(missing_ok=True)
        return {}, None
    if not runs_path.exists() or runs_path.stat().st_size == 0:
        return {}, None
    if not resume:
        count = len(load_records(runs_path))
        raise FileExistsError(
            f"{runs_path} already holds {count} runs; pass resume=True "
            f"(--resume) to continue it or overwrite=True (--overwrite) to start over"
        )
    existing, note = repair(runs_path)
    done: dict[str, dict] = {}
    for rec in existing:
        if rec.get("config") != config:
            raise ValueError(
                f"{runs_path} holds runs of a different configuration "
                f"({rec.get('config')} != {config}); use another output directory "
                f"or overwrite=True"
            )
        done.setdefault(rec["key"], rec)
    return done, note


def compare(
    problem: ProblemSpec | FixedProblem,
    geometries: Sequence[str] = ("factors", "balanced", "dln-matrices"),
    depths: Sequence[int] = (1, 2, 3),
    solvers: Sequence[str] = ("conjugate-gradient", "gradient-descent"),
    seeds: int | Sequence[int] = 1,
    settings: RunSettings | None = None,
    output: str | os.PathLike | None = None,
    jobs: int = 1,
    scheduler: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    plots: bool = True,
    test_target: float | None = None,
    metadata: dict | None = None,
    max_total_time: float | None = None,
    notes: list[str] | None = None,
) -> ComparisonResult:
    """Run the grid; the result holds one record per run (in grid order).

    Parameters
    ----------
    problem : ``ProblemSpec`` (synthetic, rebuilt per seed) or ``FixedProblem``.
    geometries, depths, solvers : names (see ``GEOMETRIES``, ``SOLVERS``) and depths.
    seeds : a count k (seeds 0..k-1) or explicit seeds.
    settings : ``RunSettings`` (budgets, target, init, learning rate).
    output : directory for runs.jsonl, results.csv, results.json, curves.png.
    jobs : local worker processes; scheduler : address of a Dask scheduler.
    resume : skip runs already in output/runs.jsonl (same configuration only);
        a torn last line or duplicated records are repaired first (journal.repair).
    overwrite : discard an existing output/runs.jsonl.
    max_total_time : seconds for the whole grid; runs not finished by then are
        left for a later ``resume`` (``result.notes`` says how many).
    notes : a list that receives notes as they happen (repairs, dead workers).
    test_target : a success must also end with test MSE <= test_target (recovery).
    metadata : stored in results.json and report.html (the CLI stores its config);
        the package versions are always added.

    The output folder is locked while the grid runs (``journal.FolderLock``):
    a second comparison on it fails with ``FolderLockedError``. Each record is
    appended to runs.jsonl and fsync-ed as its run finishes. On Ctrl-C or SIGTERM
    the queued runs are cancelled, the workers stopped, the files written for
    the runs that finished, and ``CompareInterrupted`` (a KeyboardInterrupt) is
    raised with the partial result.
    """
    settings = RunSettings() if settings is None else settings
    jobs = check_positive_int(jobs, "jobs")
    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other (--resume, --overwrite)")
    if max_total_time is not None and not (
        isinstance(max_total_time, (int, float)) and 0 < max_total_time < float("inf")
    ):
        raise ValueError(f"max_total_time must be a finite number > 0, got {max_total_time!r}")
    if test_target is not None and not (isinstance(test_target, (int, float)) and test_target >= 0):
        raise ValueError(f"test_target must be a number >= 0 or None, got {test_target!r}")
    grid = build_grid(problem, geometries, depths, solvers, seeds, settings)
    config = config_hash(problem, settings)
    out_dir = None if output is None else Path(output)
    lock = None
    if out_dir is not None:
        if out_dir.exists() and not out_dir.is_dir():
            raise ValueError(f"output: {out_dir} exists and is not a folder")
        out_dir.mkdir(parents=True, exist_ok=True)
        lock = FolderLock(out_dir).acquire()
    try:
        notes = notes if notes is not None else []
        done: dict[str, dict] = {}
        if out_dir is not None:
            done, note = _open_output(out_dir, config, resume, overwrite)
            if note:
                notes.append(note)
        wanted = {s.key for s in grid.runs}
        todo = [s for s in grid.runs if s.key not in done]
        records = [rec for key, rec in done.items() if key in wanted]
        deadline = None if max_total_time is None else time.monotonic() + max_total_time
        bar = tqdm(
            total=len(grid.runs),
            initial=len(records),
            desc="runs",
            disable=not progress,
            unit="run",
        )
        journal = None if out_dir is None else Journal(out_dir / RUNS_FILE)
        pool = None
        stopped: BaseException | None = None
        with _Signals(deadline) as signals:
            try:
                if scheduler is not None:
                    source = _dask_results(todo, scheduler)
                elif jobs > 1 and len(todo) > 1:
                    in_child = None if lock is None else lock.close_in_child
                    pool = WorkerPool(
                        todo, jobs, deadline=deadline, in_child=in_child, guard=signals.protect
                    )
                    source = pool.results()
                else:
                    source = _serial_results(todo, deadline)
                for rec in source:
                    with signals.protect():
                        records.append(rec)
                        if journal is not None:
                            journal.append(rec)
                    bar.set_postfix_str(
                        f"{rec['geometry']} N={rec['depth']} {rec['solver']}: {rec['status']}",
                        refresh=False,
                    )
                    bar.update(1)
            except (KeyboardInterrupt, TotalTimeExceeded) as exc:
                stopped = exc
            finally:
                # Runs under way are abandoned (not recorded): --resume redoes them.
                if pool is not None:
                    pool.shutdown()
                    notes.extend(pool.notes)
                bar.close()
                if journal is not None:
                    journal.close()
        order = {s.key: k for k, s in enumerate(grid.runs)}
        records.sort(key=lambda r: order[r["key"]])
        remaining = len(grid.runs) - len(records)
        if out_dir is not None:
            meta = {**(metadata or {}), "versions": package_versions()}
            write_csv(records, out_dir / "results.csv")
            write_json(
                records,
                out_dir / "results.json",
                skipped=grid.skipped,
                summary=summarize(records, test_target),
                **meta,
            )
            write_report(
                records,
                out_dir,
                title=problem_title(problem),
                target=settings.target,
                test_target=test_target,
                skipped=grid.skipped,
                plots=plots,
                metadata=meta,
            )
        result = ComparisonResult(
            records, grid.skipped, out_dir, settings.target, test_target, notes
        )
        if isinstance(stopped, TotalTimeExceeded):
            notes.append(
                f"max_total_time reached: {remaining} of {len(grid.runs)} runs not done "
                f"(resume to finish them)"
            )
        elif stopped is not None:
            code = 143 if isinstance(stopped, _Terminated) else 130
            raise CompareInterrupted(result, code, remaining) from None
        return result
    finally:
        if lock is not None:
            lock.release()
