"""Read a comparison: the ranked table, CSV/JSON files, the figures and report.html."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

from dlnmanifolds.compare.aggregate import aggregate, format_aggregate
from dlnmanifolds.compare.figures import plot_convergence, write_figures

COLUMNS = (
    "geometry",
    "depth",
    "solver",
    "seed",
    "status",
    "final_loss",
    "test_mse",
    "relative_error",
    "iterations",
    "evaluations",
    "seconds",
    "message",
)


def method_label(rec: dict) -> str:
    return f"{rec['geometry']} N={rec['depth']} {rec['solver']}"


def summarize(records: Sequence[dict], test_target: float | None = None) -> list[dict]:
    """One row per method (geometry, depth, solver), ranked (see ``aggregate.aggregate``).

    Success counts, time and iterations to target over the successful seeds, train
    and test MSE medians over all seeds with diverged runs counted as inf.
    """
    return aggregate(records, test_target)


def format_table(
    rows: Sequence[dict], target: float | None = None, test_target: float | None = None
) -> str:
    """The ranked plain-text table, the winner line and the meaning of each status."""
    return format_aggregate(rows, target, test_target)


def problem_title(problem) -> str:
    """A one-line description of a comparison's problem (the figures' titles)."""
    d = problem.describe()
    kind = d.get("kind", "problem")
    if kind == "matrix-completion" and "size" in d:
        m = d.get("rows") or d["size"]
        return (
            f"matrix completion {m}x{d['size']}, rank {d['rank']}, {d['observations']} observations"
        )
    if kind == "regression" and "size" in d:
        m = d.get("rows") or d["size"]
        return f"regression W* {m}x{d['size']}, rank {d['rank']}, {d['samples']} samples"
    rank = d.get("rank")
    return f"{kind}" + (f", rank {rank}" if rank else "")


def write_csv(records: Sequence[dict], path: Path) -> None:
    """One row per run (no history)."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for rec in records:
            writer.writerow({k: ("" if rec.get(k) is None else rec.get(k)) for k in COLUMNS})


def write_json(records: Sequence[dict], path: Path, **extra) -> None:
    """All records with their histories, plus ``extra`` top-level entries."""
    with open(path, "w") as handle:
        json.dump({"runs": list(records), **extra}, handle, indent=1)


def plot_curves(records: Sequence[dict], path: Path, title: str = "") -> None:
    """The convergence small multiples (``figures.plot_convergence``)."""
    plot_convergence(records, path, title=title)


def write_report(
    records: Sequence[dict],
    directory: Path,
    *,
    title: str = "",
    target: float | None = None,
    test_target: float | None = None,
    skipped: Sequence[str] = (),
    plots: bool = True,
    metadata: dict | None = None,
) -> list[str]:
    """Figures (when ``plots``) and ``report.html`` in ``directory``; return the files."""
    from dlnmanifolds.compare.html import write_html

    directory = Path(directory)
    figures = write_figures(records, directory, title, test_target) if plots else []
    rows = summarize(records, test_target)
    write_html(
        directory / "report.html",
        rows,
        figures,
        title=title,
        target=target,
        test_target=test_target,
        skipped=skipped,
        metadata=metadata,
    )
    return figures + ["report.html"]
