"""Aggregates of a grid with planted failures: counts, medians, ranking and winner, exactly."""

import math

import pytest

from dlnmanifolds.compare.aggregate import (
    STATUS_MEANINGS,
    aggregate,
    format_aggregate,
    winner_line,
)


def run(geometry, depth, solver, seed, status, loss=None, test=None, iterations=10, seconds=1.0):
    return {
        "geometry": geometry,
        "depth": depth,
        "solver": solver,
        "seed": seed,
        "status": status,
        "final_loss": loss,
        "test_mse": test,
        "iterations": iterations,
        "seconds": seconds,
    }


# A: 3/3 successes, times 2, 4, 9 s. B: 3/3 successes, times 1, 1.5, 3 s (the winner).
# C: the misleading cell: 2 diverged and 1 max-iterations at loss 2.57e-6.
# D: 1 converged (0.5 s) and 1 stalled: success rate 1/2. E: 1 error, 1 max-time.
GRID = [
    run("factors", 3, "gd", 0, "converged", 1e-7, 1e-3, 100, 2.0),
    run("factors", 3, "gd", 1, "converged", 2e-7, 3e-3, 300, 4.0),
    run("factors", 3, "gd", 2, "converged", 4e-7, 2e-3, 200, 9.0),
    run("dln-fixed-rank", 3, "cg", 0, "converged", 5e-7, 1e-5, 30, 1.0),
    run("dln-fixed-rank", 3, "cg", 1, "converged", 6e-7, 2e-5, 40, 1.5),
    run("dln-fixed-rank", 3, "cg", 2, "converged", 7e-7, 3e-5, 50, 3.0),
    run("balanced", 2, "gd", 0, "diverged", None, None, 5, 0.1),
    run("balanced", 2, "gd", 1, "diverged", None, None, 6, 0.1),
    run("balanced", 2, "gd", 2, "max-iterations", 2.57e-6, 0.4, 5000, 30.0),
    run("dln-matrices", 1, "cg", 0, "converged", 9e-7, 0.9, 20, 0.5),
    run("dln-matrices", 1, "cg", 1, "stalled", 1e-2, 0.95, 80, 2.0),
    run("euclidean", 1, "nn", 0, "error", None, None, 0, None),
    run("euclidean", 1, "nn", 1, "max-time", 3e-4, 5e-2, 900, 60.0),
]


def by_name(rows):
    return {(r["geometry"], r["depth"], r["solver"]): r for r in rows}


def test_counts_rates_and_spreads_are_exact():
    rows = by_name(aggregate(GRID))
    a = rows[("factors", 3, "gd")]
    assert (a["runs"], a["successes"], a["failures"], a["success_rate"]) == (3, 3, 0, 1.0)
    assert a["time_to_target"] == (4.0, 2.0, 9.0)
    assert a["iterations_to_target"] == (200.0, 100.0, 300.0)
    assert a["train_mse"] == 2e-7 and a["test_mse"] == 2e-3
    c = rows[("balanced", 2, "gd")]
    assert (c["runs"], c["successes"], c["failures"]) == (3, 0, 3)
    assert c["statuses"] == {"diverged": 2, "max-iterations": 1}
    assert c["time_to_target"] is None and c["iterations_to_target"] is None
    # Median over all three seeds with the two diverged runs at +inf: inf, never 2.57e-6.
    assert c["train_mse"] == math.inf and c["test_mse"] == math.inf
    d = rows[("dln-matrices", 1, "cg")]
    assert (d["successes"], d["success_rate"]) == (1, 0.5)
    # Time to target over the successful seed only, not the midpoint of two unrelated runs.
    assert d["time_to_target"] == (0.5, 0.5, 0.5)
    assert d["train_mse"] == pytest.approx((9e-7 + 1e-2) / 2)
    e = rows[("euclidean", 1, "nn")]
    assert e["statuses"] == {"error": 1, "max-time": 1} and e["successes"] == 0
    assert e["train_mse"] == math.inf  # median of (inf, 3e-4) over two seeds


def test_ranking_and_winner_are_exact():
    rows = aggregate(GRID)
    order = [(r["geometry"], r["solver"]) for r in rows]
    # (success rate desc, median time to target, median train MSE)
    assert order == [
        ("dln-fixed-rank", "cg"),  # 3/3, 1.5 s
        ("factors", "gd"),  # 3/3, 4 s
        ("dln-matrices", "cg"),  # 1/2
        ("balanced", "gd"),  # 0/3, inf  (ties at inf: stable by insertion order)
        ("euclidean", "nn"),  # 0/2, inf
    ]
    assert [r["rank"] for r in rows] == [1, 2, 3, 4, 5]
    line = winner_line(rows, 1e-6)
    assert line.startswith("Winner: dln-fixed-rank N=3 cg (3/3 runs reached train MSE <= 1e-06")
    assert "runner-up: factors N=3 gd (3/3, median 4 s), 2.7x slower." in line


def test_test_target_turns_fitting_without_recovery_into_failure():
    rows = by_name(aggregate(GRID, test_target=1e-4))
    assert rows[("factors", 3, "gd")]["successes"] == 0  # test MSE 1e-3..3e-3 > 1e-4
    assert rows[("dln-fixed-rank", 3, "cg")]["successes"] == 3
    assert rows[("dln-matrices", 1, "cg")]["successes"] == 0
    ranked = aggregate(GRID, test_target=1e-4)
    assert "no other method reached" in winner_line(ranked, 1e-6, 1e-4)


def test_no_success_and_no_truth():
    records = [
        run("factors", 1, "gd", s, "max-time", loss, None) for s, loss in enumerate((3.0, 1.0))
    ]
    rows = aggregate(records)
    assert rows[0]["train_mse"] == 2.0 and rows[0]["test_mse"] is None
    assert winner_line(rows, 1e-6).startswith(
        "No method reached train MSE <= 1e-06; the lowest median train MSE is 2.00e+00"
    )
    text = format_aggregate(rows, 1e-6)
    assert "n/a" in text  # test MSE without ground truth
    diverged = aggregate([run("f", 1, "gd", 0, "diverged")])
    assert "none ended with a finite train MSE" in winner_line(diverged)


def test_table_says_what_columns_are_and_explains_every_status():
    text = format_aggregate(aggregate(GRID), 1e-6)
    header = text.splitlines()[0]
    for words in (
        "reached target",
        "time to target s",
        "train MSE, median over seeds",  # methods ran 2 or 3 seeds
        "test MSE, median over seeds",
    ):
        assert words in header
    for status in ("converged", "diverged", "max-iterations", "stalled", "error", "max-time"):
        assert f"  {status}: {STATUS_MEANINGS[status]}" in text
    assert "Winner: dln-fixed-rank N=3 cg" in text
    assert "median (min-max) over the runs that reached it" in text
    same = format_aggregate(aggregate(GRID[:6]))
    assert "train MSE, median of 3" in same.splitlines()[0]
