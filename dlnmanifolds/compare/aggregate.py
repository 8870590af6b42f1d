"""Honest aggregates of a comparison: success counts, medians, a ranking and a winner.

A *method* is one (geometry, depth, solver) cell; its *runs* are the seeds. A run is a
*success* when it reached the target training MSE (status ``converged``). Per method:

* ``runs``, ``successes`` and ``success_rate = successes / runs``;
* time and iterations **to target**: median, minimum and maximum over the successful
  seeds only (they are undefined for a run that never got there);
* final **train MSE** and **test MSE**: median over **all** seeds, where a run that
  diverged or raised counts as +inf (it has no finite answer), so a cell with two
  diverged runs out of three shows ``inf`` and never the value of the one survivor;
  ``failures`` counts the runs that did not reach the target beside them;
* the ranking sorts by (success rate, descending; median time to target; median train
  MSE), and :func:`winner_line` names the winner and the runner-up with the ratio of
  their median times to target.

Every status a run can end with is explained in :data:`STATUS_MEANINGS` (printed under
the table).

Example
-------
>>> records = [
...     {"geometry": "factors", "depth": 3, "solver": "gd", "seed": s, "status": st,
...      "final_loss": loss, "test_mse": loss, "iterations": it, "seconds": t}
...     for s, (st, loss, it, t) in enumerate([("converged", 1e-7, 100, 2.0),
...                                            ("converged", 1e-7, 300, 4.0),
...                                            ("diverged", None, 50, 1.0)])
... ]
>>> row = aggregate(records)[0]
>>> row["successes"], row["runs"], row["time_to_target"]
(2, 3, (3.0, 2.0, 4.0))
>>> row["train_mse"]  # median of (1e-7, 1e-7, inf)
1e-07
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

#: What each run status means (the footer of every table).
STATUS_MEANINGS: dict[str, str] = {
    "converged": "reached the target train MSE (a success, unless --test-target is missed)",
    "max-iterations": "used the whole iteration budget (--max-iterations) before the target",
    "max-time": "used the whole time budget (--max-time) before the target",
    "stalled": (
        "the solver stopped on its own before the target: its step size or gradient norm "
        "fell below its tolerance (a local minimum, a saddle, or the numerical floor)"
    ),
    "diverged": "the train MSE became non-finite or grew past 1e8 x its initial value",
    "error": "the run raised an exception (the message is in results.csv)",
}

#: Statuses without a finite final answer: their train/test MSE counts as +inf.
NO_ANSWER = frozenset({"diverged", "error"})


def _key(rec: dict) -> tuple:
    return (rec["geometry"], rec["depth"], rec["solver"])


def _value(rec: dict, name: str) -> float:
    """A run's metric for a median over all seeds: +inf without an answer, NaN if unknown."""
    if rec["status"] in NO_ANSWER:
        return math.inf
    value = rec.get(name)
    return math.nan if value is None else float(value)


def _median_all(values: list[float]) -> float | None:
    """Median over all seeds; None when the metric is unknown for every run (no truth)."""
    known = [v for v in values if not math.isnan(v)]
    if not known:
        return None
    return float(statistics.median(known))


def _spread(values: list[float]) -> tuple[float, float, float] | None:
    """(median, min, max), or None for an empty list."""
    if not values:
        return None
    return (float(statistics.median(values)), float(min(values)), float(max(values)))


def succeeded(rec: dict, test_target: float | None = None) -> bool:
    """Whether a run is a success: it reached the train target (status ``converged``)
    and, when ``test_target`` is given, ended with test MSE <= test_target."""
    if rec["status"] != "converged":
        return False
    if test_target is None:
        return True
    value = rec.get("test_mse")
    return value is not None and value <= test_target


def aggregate(records: Sequence[dict], test_target: float | None = None) -> list[dict]:
    """One row per method (geometry, depth, solver), ranked best first.

    A success is a run that reached the target train MSE and, when ``test_target`` is
    given, whose final test MSE is <= test_target (it *recovered* the matrix, not only
    fitted the observations).

    Each row holds ``geometry``, ``depth``, ``solver``, ``runs``, ``successes``,
    ``success_rate``, ``failures`` (runs - successes), ``statuses`` (status -> count),
    ``time_to_target`` and ``iterations_to_target`` ((median, min, max) over the
    successful seeds, or None), ``train_mse`` and ``test_mse`` (median over all seeds,
    diverged/error runs counted as +inf; None when unknown for every seed, e.g. the test
    MSE without ground truth) and ``rank`` (1 = best).
    """
    groups: dict[tuple, list[dict]] = {}
    for rec in records:
        groups.setdefault(_key(rec), []).append(rec)
    rows = []
    for (geometry, depth, solver), recs in groups.items():
        good = [r for r in recs if succeeded(r, test_target)]
        statuses: dict[str, int] = {}
        for r in recs:
            statuses[r["status"]] = statuses.get(r["status"], 0) + 1
        times = [float(r["seconds"]) for r in good if r.get("seconds") is not None]
        iterations = [float(r["iterations"]) for r in good if r.get("iterations") is not None]
        rows.append(
            {
                "geometry": geometry,
                "depth": depth,
                "solver": solver,
                "runs": len(recs),
                "successes": len(good),
                "success_rate": len(good) / len(recs),
                "failures": len(recs) - len(good),
                "statuses": dict(sorted(statuses.items())),
                "time_to_target": _spread(times),
                "iterations_to_target": _spread(iterations),
                "train_mse": _median_all([_value(r, "final_loss") for r in recs]),
                "test_mse": _median_all([_value(r, "test_mse") for r in recs]),
            }
        )

    # Ties (e.g. methods that never succeed) go by the error that defines success.
    third = "train_mse" if test_target is None else "test_mse"

    def order(row):
        time = row["time_to_target"][0] if row["time_to_target"] else math.inf
        loss = row[third] if row[third] is not None else math.inf
        return (-row["success_rate"], time, loss)

    rows.sort(key=order)
    for k, row in enumerate(rows):
        row["rank"] = k + 1
    return rows


def method_name(row: dict) -> str:
    """'geometry N=depth solver' (the label of a method in tables and figures)."""
    return f"{row['geometry']} N={row['depth']} {row['solver']}"


def _target_text(target: float | None, test_target: float | None = None) -> str:
    text = "the target" if target is None else f"train MSE <= {target:g}"
    if test_target is not None:
        text += f" with test MSE <= {test_target:g}"
    return text


def winner_line(
    rows: Sequence[dict], target: float | None = None, test_target: float | None = None
) -> str:
    r"""One sentence naming the winner and the runner-up with the ratio of their times.

    ``rows`` must be ranked (as :func:`aggregate` returns them).

    >>> rows = [{"geometry": "g", "depth": 3, "solver": "a", "runs": 2, "successes": 2,
    ...          "time_to_target": (0.5, 0.4, 0.6), "train_mse": 1e-7},
    ...         {"geometry": "g", "depth": 1, "solver": "b", "runs": 2, "successes": 2,
    ...          "time_to_target": (2.0, 1.0, 3.0), "train_mse": 1e-7}]
    >>> print(winner_line(rows, 1e-6).replace("; ", ";\n"))
    Winner: g N=3 a (2/2 runs reached train MSE <= 1e-06, median 0.5 s);
    runner-up: g N=1 b (2/2, median 2 s), 4.0x slower.
    """
    if not rows:
        return "No runs."
    best = rows[0]
    goal = _target_text(target, test_target)
    if best["successes"] == 0:
        finite = [r for r in rows if r["train_mse"] is not None and math.isfinite(r["train_mse"])]
        if not finite:
            return f"No method reached {goal}, and none ended with a finite train MSE."
        low = min(finite, key=lambda r: r["train_mse"])
        return (
            f"No method reached {goal}; the lowest median train MSE is "
            f"{low['train_mse']:.2e} ({method_name(low)})."
        )
    t1 = best["time_to_target"][0]
    line = (
        f"Winner: {method_name(best)} ({best['successes']}/{best['runs']} runs reached "
        f"{goal}, median {t1:.3g} s)"
    )
    if len(rows) == 1:
        return line + "; no runner-up."
    second = rows[1]
    if second["successes"] == 0:
        return line + f"; no other method reached {goal} (runner-up {method_name(second)})."
    t2 = second["time_to_target"][0]
    ratio = t2 / t1 if t1 > 0 else math.inf
    rate = (
        ""
        if second["successes"] * best["runs"] == best["successes"] * second["runs"]
        else ", a lower success rate"
    )
    return (
        line + f"; runner-up: {method_name(second)} ({second['successes']}/{second['runs']}, "
        f"median {t2:.3g} s{rate}), {ratio:.1f}x slower."
    )


def _fmt_spread(spread, kind: str) -> str:
    if spread is None:
        return "-"
    med, lo, hi = spread
    if lo == hi:
        return f"{med:g}" if kind == "d" else f"{med:.3g}"
    if kind == "d":
        return f"{med:g} ({lo:g}-{hi:g})"
    return f"{med:.3g} ({lo:.3g}-{hi:.3g})"


def _fmt_mse(value: float | None) -> str:
    if value is None:
        return "n/a"
    if math.isinf(value):
        return "inf"
    return f"{value:.2e}"


def table_headers(rows: Sequence[dict]) -> list[tuple[str, str]]:
    """(header, alignment) of the table's columns; 'median of k' when every method ran
    k seeds."""
    counts = {r["runs"] for r in rows}
    over = f"median of {counts.pop()}" if len(counts) == 1 else "median over seeds"
    return [
        ("#", ">"),
        ("geometry", "<"),
        ("N", ">"),
        ("solver", "<"),
        ("reached target", ">"),
        ("time to target s", ">"),
        ("iterations to target", ">"),
        (f"train MSE, {over}", ">"),
        (f"test MSE, {over}", ">"),
        ("outcomes", "<"),
    ]


def table_cells(row: dict) -> list[str]:
    """The text of one row's cells, in the order of :func:`table_headers`."""
    return [
        str(row["rank"]),
        row["geometry"],
        str(row["depth"]),
        row["solver"],
        f"{row['successes']}/{row['runs']} ({100 * row['successes'] / row['runs']:.0f}%)",
        _fmt_spread(row["time_to_target"], "f"),
        _fmt_spread(row["iterations_to_target"], "d"),
        _fmt_mse(row["train_mse"]),
        _fmt_mse(row["test_mse"]),
        ", ".join(f"{n} {s}" for s, n in row["statuses"].items()),
    ]


def table_footer(
    rows: Sequence[dict], target: float | None = None, test_target: float | None = None
) -> list[str]:
    """Lines under the table: what the columns are and what each status seen means."""
    goal = _target_text(target, test_target)
    lines = [
        "Ranked by success rate, then median time to target.",
        f"reached target: runs that ended with {goal}.",
        "time / iterations to target: median (min-max) over the runs that reached it.",
        "train / test MSE: median over all seeds of the final value; a diverged or failed "
        "run counts as inf; n/a: no ground truth.",
        "outcomes: how each run stopped:",
    ]
    seen = sorted({s for row in rows for s in row["statuses"]})
    for status in seen:
        lines.append(f"  {status}: {STATUS_MEANINGS.get(status, 'see results.csv')}")
    return lines


def format_aggregate(
    rows: Sequence[dict], target: float | None = None, test_target: float | None = None
) -> str:
    """The ranked plain-text table, the winner line and the footer."""
    headers = table_headers(rows)
    header = [h for h, _ in headers]
    body = [table_cells(r) for r in rows]
    widths = [max([len(h)] + [len(b[k]) for b in body]) for k, h in enumerate(header)]
    align = [a for _, a in headers]

    def line(cells):
        return "  ".join(f"{c:{a}{w}}" for c, a, w in zip(cells, align, widths)).rstrip()

    out = [line(header), "  ".join("-" * w for w in widths)]
    out.extend(line(b) for b in body)
    out.append("")
    out.append(winner_line(rows, target, test_target))
    out.extend(table_footer(rows, target, test_target))
    return "\n".join(out)
