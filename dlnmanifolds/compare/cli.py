"""The ``dlnmanifolds`` command line: ``dlnmanifolds compare ...``.

Example (the README's main job, about a minute on 2 cores)::

    dlnmanifolds compare --problem matrix-completion --size 40 --rank 2 \\
        --observations 500 --depths 1,3 --geometries factors,dln-matrices \\
        --solvers conjugate-gradient,gradient-descent --seeds 2 --jobs 2
"""

from __future__ import annotations

import argparse
import math
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from dlnmanifolds.compare.comparison import CompareInterrupted, compare
from dlnmanifolds.compare.data import data_problem, fraction, print_holdout
from dlnmanifolds.compare.journal import FolderLockedError
from dlnmanifolds.compare.solvers import SOLVERS
from dlnmanifolds.compare.specs import PROBLEMS, ProblemSpec, RunSettings
from dlnmanifolds.problems.geometries import GEOMETRIES, INITS, NEEDS_RANK


def _names(allowed: Sequence[str], what: str):
    def parse(text: str) -> list[str]:
        names = [t.strip() for t in text.split(",") if t.strip()]
        if not names:
            raise argparse.ArgumentTypeError(f"give at least one {what}")
        unknown = [t for t in names if t not in allowed]
        if unknown:
            raise argparse.ArgumentTypeError(
                f"unknown {what} {', '.join(unknown)}; choose from {', '.join(allowed)}"
            )
        return names

    return parse


#: Deepest network the CLI accepts (N layers of k x k each; deeper is a typo).
MAX_DEPTH = 1000


def _depths(text: str) -> list[int | float]:
    try:
        # "inf": the infinite-depth limit g^inf (dln-matrices only, math.md §4.6)
        depths = [math.inf if t.strip() == "inf" else int(t) for t in text.split(",") if t.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"depths must be integers like 1,2,3 or inf; got {text!r}"
        ) from exc
    if not depths or min(depths) < 1:
        raise argparse.ArgumentTypeError(f"depths must be integers >= 1, got {text!r}")
    finite = [d for d in depths if d != math.inf]
    if finite and max(finite) > MAX_DEPTH:
        raise argparse.ArgumentTypeError(
            f"depths must be at most {MAX_DEPTH} (or inf), got {max(finite)}"
        )
    return depths


def _finite(minimum: float | None = None):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"expected a number >= {minimum:g}, got {text!r}")
        return value

    return parse


# Checks run after parsing and before any run; each raises _UsageError naming
# the option or the path, which main() turns into exit 2 and an "error:" line.
class _UsageError(Exception):
    pass


def _check_output(path: str) -> None:
    """The output folder can be created and written (nothing above it is a file)."""
    out = Path(path)
    if out.exists() and not out.is_dir():
        raise _UsageError(f"--output: {out} exists and is not a folder")
    parent = out
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise _UsageError(f"--output: {out} lies under {parent}, which is a file")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise _UsageError(f"--output: cannot write to {parent} (permission denied)")
    for name in ("runs.jsonl", "results.csv", "results.json", "curves.png"):
        if (out / name).is_dir():
            raise _UsageError(f"--output: {out / name} exists as a folder; remove it")


def _check_memory(args: argparse.Namespace) -> None:
    """Refuse a problem that cannot fit in memory before allocating it."""
    m, n = args.rows or args.size, args.size
    finite = [d for d in args.depths if d != math.inf]
    k, depth = min(m, n), max(finite, default=1)  # depth inf keeps the matrix only
    if set(args.geometries) <= NEEDS_RANK and args.problem == "matrix-completion":
        # The rank-r paths are factored (no m x n array): Omega (indices, values, CSR
        # copies) plus ~10 copies of the (m + n) x r factors.
        rank = args.rank or 1
        per_run = 8.0 * (12.0 * (args.observations or 0) + 10.0 * depth * (m + n) * rank)
    else:
        # ~16 m x n arrays per run (truth, sampling permutation, SVDs, solver copies)
        # plus ~6 copies of the N layers of at most max(m, n) x k.
        per_run = 8.0 * (16.0 * m * n + 6.0 * depth * k * max(m, n))
    total = per_run * min(args.jobs, 64)
    try:
        available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        return
    if total > 0.5 * available:
        raise _UsageError(
            f"--size {n}"
            + (f" --rows {m}" if args.rows else "")
            + f" --depths {depth} --jobs {args.jobs} needs about {total / 2**30:.1f} GiB, "
            f"more than half of this machine's {available / 2**30:.1f} GiB"
        )


def _check_scheduler(address: str | None) -> None:
    """A Dask scheduler address that answers a TCP connection within 3 seconds."""
    if address is None:
        return
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("tcp", "tls") or not parts.hostname or port is None:
        raise _UsageError(f"--scheduler must look like tcp://HOST:PORT, got {address!r}")
    try:
        with socket.create_connection((parts.hostname, port), timeout=3.0):
            pass
    except OSError as exc:
        raise _UsageError(f"--scheduler: cannot reach {address} ({exc})") from None


def _check_args(args: argparse.Namespace) -> None:
    if args.resume and args.overwrite:
        raise _UsageError("--resume and --overwrite exclude each other")
    _check_output(args.output)
    _check_memory(args)
    _check_scheduler(args.scheduler)


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"expected a {kind.__name__}, got {text!r}") from exc
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value

    return parse


def _add_compare_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("problem")
    g.add_argument("--problem", choices=PROBLEMS, default="matrix-completion")
    g.add_argument(
        "--size",
        type=_positive(int),
        default=100,
        help="n: columns of X (and rows unless --rows); default 100",
    )
    g.add_argument("--rows", type=_positive(int), default=None, help="m: rows of X (default n)")
    g.add_argument(
        "--rank",
        type=_positive(int),
        default=5,
        help="rank of the ground truth; also given to rank-aware geometries",
    )
    g.add_argument(
        "--observations",
        type=_positive(int),
        default=2000,
        help="matrix completion: number of observed entries",
    )
    g.add_argument("--samples", type=_positive(int), default=200, help="regression: samples")
    g.add_argument(
        "--data",
        default=None,
        metavar="PATH",
        help="complete your own matrix: (row, col, value) triplets (CSV/TSV/whitespace, "
        "e.g. MovieLens u.data) or Matrix Market .mtx; replaces --problem/--size/--observations",
    )
    g.add_argument(
        "--one-based",
        action="store_true",
        help="--data indices start at 1 (default: detected, 1-based when no index is 0)",
    )
    g.add_argument(
        "--holdout",
        type=fraction,
        default=None,
        metavar="FRACTION",
        help="with --data: hold out this fraction of the entries (seed 0); test MSE/RMSE "
        "are measured on them",
    )
    g.add_argument("--noise", type=_finite(0.0), default=0.0, help="regression: label noise std")
    g = p.add_argument_group("grid")
    g.add_argument(
        "--geometries",
        type=_names(GEOMETRIES, "geometry"),
        default=["factors", "balanced", "dln-matrices"],
        help=f"comma list from {', '.join(GEOMETRIES)} (default factors,balanced,dln-matrices)",
    )
    g.add_argument("--depths", type=_depths, default=[1, 2, 3], help="comma list (default 1,2,3)")
    g.add_argument(
        "--solvers",
        type=_names(SOLVERS, "solver"),
        default=["conjugate-gradient", "gradient-descent"],
        help=f"comma list from {', '.join(SOLVERS)} (default conjugate-gradient,gradient-descent)",
    )
    g.add_argument("--seeds", type=_positive(int), default=1, help="number of seeds (0..k-1)")
    g = p.add_argument_group("runs")
    g.add_argument("--init", choices=INITS, default="small")
    g.add_argument("--init-scale", type=_positive(float), default=1e-3)
    g.add_argument(
        "--learning-rate",
        type=_positive(float),
        default=None,
        help="fixed step of gradient-descent on the mean-over-Omega loss "
        "(default: Armijo backtracking, which cannot diverge)",
    )
    g.add_argument("--max-iterations", type=_positive(int), default=5000)
    g.add_argument("--max-time", type=_positive(float), default=60.0, help="seconds per run")
    g.add_argument(
        "--max-total-time",
        type=_positive(float),
        default=None,
        metavar="SECONDS",
        help="bound on the whole grid; unfinished runs are left for --resume",
    )
    g.add_argument("--target", type=_finite(0.0), default=1e-6, help="stop at train MSE <= target")
    g = p.add_argument_group("execution and output")
    g.add_argument("--jobs", type=_positive(int), default=1, help="local worker processes")
    g.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS",
        help="run on a Dask cluster (e.g. tcp://host:8786); needs dask[distributed]",
    )
    g.add_argument(
        "--output",
        default="dln-compare",
        metavar="DIR",
        help="directory for runs.jsonl, results.csv/json, curves.png",
    )
    g.add_argument("--resume", action="store_true", help="skip runs already in DIR/runs.jsonl")
    g.add_argument("--overwrite", action="store_true", help="discard DIR/runs.jsonl first")
    g.add_argument("--no-plots", action="store_true")
    g.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_report_arguments(p: argparse.ArgumentParser) -> None:
    """--config FILE and --test-target (issue 15)."""
    p.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="read the options from a TOML file (keys = these flags without '--', e.g. "
        "max-time = 10; lists as arrays) or from a results.json; flags given here override",
    )
    p.add_argument(
        "--test-target",
        type=float,
        default=None,
        help="a run succeeds only if it also ends with test MSE <= this (recovery, not "
        "only fitting the observations); default: the train target alone",
    )


def _parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse, reading --config FILE first so that flags on the command line win."""
    args = parser.parse_args(argv)
    if getattr(args, "config", None) is None:
        return args
    from dlnmanifolds.compare.config import config_to_argv, load_config, problem_tables

    try:
        config = load_config(args.config)
        problems = problem_tables(config.pop("problems", None))
        extra = config_to_argv(config)
    except ValueError as exc:
        parser.exit(2, f"dlnmanifolds compare: error: {exc}\n")
    k = argv.index("compare") + 1
    args = parser.parse_args([*argv[:k], *extra, *argv[k:]])
    if problems:
        # Each [[problems]] table: the same grid on another problem (in DIR/problem-k/).
        args.problems = [
            parser.parse_args([*argv[:k], *extra, *config_to_argv(p), *argv[k:]]) for p in problems
        ]
        args.problem_tables = problems
    return args


def run_problems(args: argparse.Namespace) -> int:
    """One comparison per [[problems]] table in DIR/problem-k/, then a combined report
    in DIR (time to target and performance profiles over problems and seeds)."""
    import json
    from pathlib import Path

    from dlnmanifolds.compare.config import package_versions, problem_label
    from dlnmanifolds.compare.report import format_table, summarize, write_json, write_report

    root = Path(args.output)
    records: list[dict] = []
    for k, (sub, table) in enumerate(zip(args.problems, args.problem_tables)):
        sub.output = str(root / f"problem-{k}")
        print(f"== problem {k}: {problem_label(table)}")
        run_compare(sub)
        payload = json.loads((Path(sub.output) / "results.json").read_text())
        for rec in payload["runs"]:
            records.append({**rec, "problem": f"{k}: {problem_label(table)}"})
    config = {**_stored_config(args), "problems": args.problem_tables}
    meta = {"config": config, "versions": package_versions()}
    title = f"{len(args.problems)} problems"
    write_json(records, root / "results.json", summary=summarize(records, args.test_target), **meta)
    write_report(
        records,
        root,
        title=title,
        target=args.target,
        test_target=args.test_target,
        plots=not args.no_plots,
        metadata=meta,
    )
    print(f"== all {len(args.problems)} problems (every seed of every problem is one run)")
    print(format_table(summarize(records, args.test_target), args.target, args.test_target))
    print(f"wrote the combined results.json and report.html to {root}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dlnmanifolds",
        description="Deep linear network geometry for Riemannian optimization.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    p = sub.add_parser(
        "compare",
        help="run solvers x DLN geometries x depths x seeds on a problem and compare",
        description=(
            "Run every solver on every geometry and depth for several seeds, print a table "
            "(medians over seeds), and write runs.jsonl (as runs finish), results.csv, "
            "results.json and curves.png to --output. Geometries: factors (plain weights), "
            "balanced (BalancedManifold), dln-matrices (g^N), dln-fixed-rank (g^N, rank "
            "known), fixed-rank (Pymanopt FixedRankEmbedded), euclidean. gradient-descent "
            "on factors is the Arora et al. (2019) baseline."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _add_compare_arguments(p)
    _add_report_arguments(p)
    return parser


def _stored_config(args: argparse.Namespace) -> dict:
    from dlnmanifolds.compare.config import resolved_config

    options = argparse.ArgumentParser(add_help=False)
    _add_compare_arguments(options)
    _add_report_arguments(options)
    return resolved_config(args, vars(options.parse_args([])))


def _skipped_lines(skipped: Sequence[str]) -> list[str]:
    """'skipped: A, B: reason', one line per reason (each note is 'cell: reason')."""
    by_reason: dict[str, list[str]] = {}
    for note in skipped:
        cell, _, reason = note.partition(": ")
        by_reason.setdefault(reason, []).append(cell)
    return [f"skipped {', '.join(cells)}: {reason}" for reason, cells in by_reason.items()]


def run_compare(args: argparse.Namespace) -> int:
    problem = data_problem(args) or ProblemSpec(
        kind=args.problem,
        size=args.size,
        rank=args.rank,
        observations=args.observations,
        rows=args.rows,
        samples=args.samples,
        noise=args.noise,
    )
    settings = RunSettings(
        rank=args.rank,
        init=args.init,
        init_scale=args.init_scale,
        learning_rate=args.learning_rate,
        max_iterations=args.max_iterations,
        max_time=args.max_time,
        target=args.target,
    )
    _check_args(args)
    notes: list[str] = []
    try:
        result = _compare(args, problem, settings, notes)
    except CompareInterrupted as stop:
        print(stop.result.table())
        for note in notes:
            print(f"note: {note}")
        why = "terminated" if stop.exit_code == 143 else "interrupted"
        print(
            f"{why}: {len(stop.result.records)} runs finished and written to "
            f"{stop.result.output}; {stop.remaining} not done (--resume continues)",
            file=sys.stderr,
        )
        return stop.exit_code
    print(result.table())
    if args.holdout is not None:
        print_holdout(result.records)
    for line in _skipped_lines(result.skipped):
        print(line)
    for note in notes:
        print(f"note: {note}")
    files = "runs.jsonl, results.csv, results.json, report.html" + (
        "" if args.no_plots else ", curves.png, time_to_target.png, profile.png"
    )
    print(f"wrote {files} to {result.output}")
    return 0


def _compare(args, problem, settings, notes):
    return compare(
        problem,
        args.geometries,
        args.depths,
        args.solvers,
        args.seeds,
        settings,
        output=args.output,
        jobs=args.jobs,
        scheduler=args.scheduler,
        resume=args.resume,
        overwrite=args.overwrite,
        progress=not args.quiet,
        plots=not args.no_plots,
        test_target=args.test_target,
        metadata={"config": _stored_config(args)},
        max_total_time=args.max_total_time,
        notes=notes,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``dlnmanifolds`` console script."""
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse(parser, argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        if getattr(args, "problems", None):
            return run_problems(args)
        return run_compare(args)
    except (
        _UsageError,
        ValueError,
        TypeError,
        FileExistsError,
        FolderLockedError,
        ImportError,
        MemoryError,
        OSError,
    ) as exc:
        text = str(exc) or type(exc).__name__
        if isinstance(exc, MemoryError):
            text = f"out of memory ({text}); try a smaller --size or fewer --jobs"
        parser.exit(2, f"dlnmanifolds compare: error: {text}\n")
    except KeyboardInterrupt:  # Ctrl-C before the grid started: no traceback
        print("interrupted", file=sys.stderr)
        return 130
    return 1  # pragma: no cover


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
