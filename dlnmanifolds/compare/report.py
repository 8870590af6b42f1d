"""Read a comparison: the summary table, CSV/JSON files and the convergence plots."""

from __future__ import annotations

import csv
import json
import statistics
from collections.abc import Sequence
from pathlib import Path

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


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def method_label(rec: dict) -> str:
    return f"{rec['geometry']} N={rec['depth']} {rec['solver']}"


def summarize(records: Sequence[dict]) -> list[dict]:
    """One row per method (geometry, depth, solver): medians over seeds.

    Medians of loss, test MSE, iterations and seconds are over all runs that
    did not diverge or fail; ``status`` counts the outcomes.
    """
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        groups.setdefault((rec["geometry"], rec["depth"], rec["solver"]), []).append(rec)
    rows = []
    for (geometry, depth, solver), recs in groups.items():
        ok = [r for r in recs if r["status"] not in ("diverged", "error")]
        counts: dict[str, int] = {}
        for r in recs:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
        rows.append(
            {
                "geometry": geometry,
                "depth": depth,
                "solver": solver,
                "runs": len(recs),
                "status": ", ".join(f"{n} {s}" for s, n in sorted(counts.items())),
                "final_loss": _median(r["final_loss"] for r in ok),
                "test_mse": _median(r["test_mse"] for r in ok),
                "iterations": _median(r["iterations"] for r in ok),
                "seconds": _median(r["seconds"] for r in ok),
            }
        )
    return rows


def _fmt(value, kind):
    if value is None:
        return "-"
    if kind == "e":
        return f"{value:.2e}"
    if kind == "f":
        return f"{value:.2f}"
    return str(int(value)) if kind == "d" else str(value)


def format_table(rows: Sequence[dict]) -> str:
    """A plain-text table (medians over seeds)."""
    spec = [
        ("geometry", "s", "<"),
        ("depth", "d", ">"),
        ("solver", "s", "<"),
        ("status", "s", "<"),
        ("final_loss", "e", ">"),
        ("test_mse", "e", ">"),
        ("iterations", "d", ">"),
        ("seconds", "f", ">"),
    ]
    header = [
        "geometry",
        "depth",
        "solver",
        "status",
        "final loss",
        "test MSE",
        "iterations",
        "seconds",
    ]
    body = [[_fmt(row[name], kind) for name, kind, _ in spec] for row in rows]
    widths = [
        max(len(h), *(len(b[k]) for b in body)) if body else len(h) for k, h in enumerate(header)
    ]
    lines = ["  ".join(f"{h:{a}{w}}" for h, (_, _, a), w in zip(header, spec, widths))]
    lines.append("  ".join("-" * w for w in widths))
    for b in body:
        lines.append("  ".join(f"{v:{a}{w}}" for v, (_, _, a), w in zip(b, spec, widths)))
    return "\n".join(lines)


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


def plot_curves(records: Sequence[dict], path: Path) -> None:
    """2 x 2 PNG: train MSE and test MSE versus iterations and versus seconds.

    Colour = geometry and depth, line style = solver; every seed is drawn,
    the label once, in a legend beside the axes. Values below 1e-16 (exact
    zeros of a converged trust-region run) are drawn at 1e-16 so that they
    do not stretch the axis.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    floor = 1e-16
    fig, axes = plt.subplots(2, 2, figsize=(14, 8), sharey="row")
    groups = list(dict.fromkeys((r["geometry"], r["depth"]) for r in records))
    solvers = list(dict.fromkeys(r["solver"] for r in records))
    cmap = plt.get_cmap("tab20" if len(groups) > 10 else "tab10")
    colors = {g: cmap(k % cmap.N) for k, g in enumerate(groups)}
    styles = ["-", "--", ":", "-."]
    linestyle = {s: styles[k % len(styles)] for k, s in enumerate(solvers)}
    drawn = set()
    for rec in records:
        h = rec.get("history") or {}
        if not h.get("iteration"):
            continue
        label = method_label(rec)
        kwargs = {
            "color": colors[(rec["geometry"], rec["depth"])],
            "ls": linestyle[rec["solver"]],
            "lw": 1.3,
            "alpha": 0.85,
        }
        if label not in drawn:
            kwargs["label"] = label
            drawn.add(label)
        for row, quantity in enumerate(("loss", "test_mse")):
            ys = [float("nan") if v is None else max(v, floor) for v in h[quantity]]
            axes[row, 0].plot([k + 1 for k in h["iteration"]], ys, **kwargs)
            kwargs.pop("label", None)
            axes[row, 1].plot([t or 0.0 for t in h["time"]], ys, **kwargs)
    for row, name in enumerate(("train MSE", "test MSE")):
        for col, xname in enumerate(("iterations + 1", "seconds")):
            ax = axes[row, col]
            ax.set_yscale("log")
            ax.set_xscale("log" if col == 0 else "linear")
            ax.set_xlabel(xname)
            ax.set_ylabel(name)
            ax.grid(True, which="both", alpha=0.3)
    if drawn:
        fig.legend(loc="center left", bbox_to_anchor=(0.79, 0.5), fontsize=7, frameon=False)
    fig.tight_layout(rect=(0, 0, 0.78, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
