"""compare(): grid validation, determinism (serial = parallel), resume, divergence, files,
and the mathematics the comparison is for (depth ordering, rank discovery)."""

import json

import numpy as np
import pytest

from dlnmanifolds.compare import (
    FixedProblem,
    ProblemSpec,
    RunSettings,
    RunSpec,
    build_grid,
    compare,
    run_one,
)
from dlnmanifolds.problems import MatrixCompletion

SMALL = ProblemSpec(size=12, rank=2, observations=80)
FAST = RunSettings(rank=2, max_iterations=200, max_time=20.0, learning_rate=3.0)
NUMBERS = ("status", "final_loss", "test_mse", "relative_error", "iterations")


def numbers(records):
    out = {}
    for r in records:
        out[r["key"]] = tuple(r[k] for k in NUMBERS) + (tuple(r["history"]["loss"]),)
    return out


def test_run_is_deterministic_and_seeded():
    spec = RunSpec(SMALL, "balanced", 2, "conjugate-gradient", 0, FAST)
    a, b = run_one(spec), run_one(spec)
    assert numbers([a]) == numbers([b])
    other = run_one(RunSpec(SMALL, "balanced", 2, "conjugate-gradient", 1, FAST))
    assert other["final_loss"] != a["final_loss"] or other["test_mse"] != a["test_mse"]
    # All solvers on one geometry start from the same point (seed from seed, geometry, depth).
    gd = run_one(RunSpec(SMALL, "balanced", 2, "gradient-descent", 0, FAST))
    assert gd["history"]["loss"][0] == a["history"]["loss"][0]


def test_serial_and_parallel_give_the_same_numbers(tmp_path):
    kwargs = dict(geometries=["factors", "dln-matrices"], depths=[1, 2],
                  solvers=["conjugate-gradient", "gradient-descent"], seeds=2,
                  settings=FAST, progress=False, plots=False)
    serial = compare(SMALL, output=tmp_path / "serial", **kwargs)
    parallel = compare(SMALL, output=tmp_path / "parallel", jobs=2, **kwargs)
    assert numbers(serial.records) == numbers(parallel.records)
    assert [r["key"] for r in serial.records] == [r["key"] for r in parallel.records]
    # dln-matrices at depth 1 is factors at depth 1 (Euclidean on X): skipped, said why.
    assert len(serial.records) == (2 * 2 + 1 * 2) * 2
    assert sum("same Euclidean problem on X as factors N=1" in s for s in serial.skipped) == 2


def test_files_table_and_plots(tmp_path):
    result = compare(SMALL, ["factors", "fixed-rank"], [1, 2],
                     ["steepest-descent", "trust-regions"], seeds=1, settings=FAST,
                     output=tmp_path, progress=False)
    for name in ("runs.jsonl", "results.csv", "results.json", "curves.png", "profile.png",
                 "time_to_target.png", "report.html"):
        assert (tmp_path / name).stat().st_size > 0
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    payload = json.loads((tmp_path / "results.json").read_text())
    # factors: 2 depths x 2 solvers; fixed-rank: depth 1 only, trust-regions included
    # (its Hessian is the depth-1 case of the rank-r Hessian).
    assert len(payload["runs"]) == len(result.records) == 6
    assert not any("trust-regions on fixed-rank" in s for s in payload["skipped"])
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("geometry,depth,solver,seed,status")
    assert len(csv_lines) == 7
    table = result.table()
    for word in ("geometry", "solver", "reached target", "train MSE, median of 1",
                 "test MSE, median of 1", "iterations to target", "Winner"):
        assert word in table


def test_resume_skips_finished_runs(tmp_path):
    kwargs = dict(geometries=["factors", "balanced"], depths=[2], solvers=["gradient-descent"],
                  seeds=2, settings=FAST, output=tmp_path, progress=False, plots=False)
    full = compare(SMALL, **kwargs)
    lines = (tmp_path / "runs.jsonl").read_text().splitlines()
    # Simulate an interruption: two runs finished, the third was being written.
    (tmp_path / "runs.jsonl").write_text("\n".join(lines[:2]) + "\n" + lines[2][:20])
    kept = {json.loads(line)["key"]: json.loads(line) for line in lines[:2]}
    with pytest.raises(FileExistsError, match="resume"):
        compare(SMALL, **kwargs)
    resumed = compare(SMALL, resume=True, **kwargs)
    assert numbers(resumed.records) == numbers(full.records)
    for rec in resumed.records:
        if rec["key"] in kept:  # not redone: identical, timings included
            assert rec == kept[rec["key"]]
    with pytest.raises(ValueError, match="different configuration"):
        compare(SMALL, resume=True, **{**kwargs, "settings": RunSettings(rank=2)})
    again = compare(SMALL, overwrite=True, **kwargs)
    assert numbers(again.records) == numbers(full.records)


def test_divergence_is_recorded_and_others_go_on():
    settings = RunSettings(rank=2, max_iterations=200, learning_rate=1e4)
    result = compare(SMALL, ["factors"], [2], ["gradient-descent", "conjugate-gradient"],
                     seeds=1, settings=settings, progress=False)
    status = {r["solver"]: r["status"] for r in result.records}
    assert status["gradient-descent"] == "diverged"
    assert status["conjugate-gradient"] != "diverged"
    assert "diverged" in result.table()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"solvers": ["newton"]}, ValueError, "unknown solver 'newton'"),
        ({"geometries": ["torus"]}, ValueError, "unknown geometry 'torus'"),
        ({"depths": [0]}, ValueError, "depths\\[0\\]"),
        ({"problem": ProblemSpec(size=5, rank=6)}, ValueError, "rank must be at most"),
        ({"problem": ProblemSpec(size=5, rank=2, observations=0)}, ValueError, "observations"),
        ({"problem": ProblemSpec(kind="sudoku")}, ValueError, "unknown problem"),
        ({"settings": RunSettings(rank=None), "geometries": ["dln-fixed-rank"]}, ValueError,
         "needs the rank"),
        ({"settings": RunSettings(rank=13)}, ValueError, "rank must be at most"),
        ({"settings": RunSettings(rank=2, max_time=-1.0)}, ValueError, "max_time"),
        ({"seeds": 0}, ValueError, "seeds"),
        ({"seeds": [1, 1]}, ValueError, "distinct"),
        ({"solvers": []}, ValueError, "must not be empty"),
    ],
)
def test_bad_input_fails_before_any_run(tmp_path, kwargs, error, match):
    args = dict(problem=SMALL, geometries=["factors"], depths=[1], solvers=["gradient-descent"],
                seeds=1, settings=FAST)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        compare(**args, output=tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_user_problem_from_triplets():
    truth = np.outer(np.arange(1.0, 7.0), np.ones(6))
    rng = np.random.default_rng(0)
    mask = rng.random((6, 6)) < 0.6
    rows, cols = np.nonzero(mask)
    problem = FixedProblem(MatrixCompletion.from_triplets(rows, cols, truth[rows, cols],
                                                          shape=(6, 6), truth=truth))
    result = compare(problem, ["dln-fixed-rank"], [2], ["rank-adaptive-cg"], seeds=1,
                     settings=RunSettings(rank=None), progress=False)
    assert result.records[0]["status"] == "converged"


def test_depth_ordering_of_gradient_descent():
    """Arora et al. 2019 in miniature: depth 3 generalizes far better than depth 1."""
    problem = ProblemSpec(size=20, rank=2, observations=150)
    settings = RunSettings(rank=2, learning_rate=2.0, max_iterations=3000, target=1e-4)
    result = compare(problem, ["factors"], [1, 3], ["gradient-descent"], seeds=1,
                     settings=settings, progress=False)
    test = {r["depth"]: r["test_mse"] for r in result.records}
    assert all(r["status"] == "converged" for r in result.records)
    assert test[3] < 1e-2 * test[1]


def test_rank_adaptive_finds_the_rank_without_being_told():
    problem = ProblemSpec(size=20, rank=3, observations=200)
    spec = RunSpec(problem, "dln-fixed-rank", 3, "rank-adaptive-cg", 0,
                   RunSettings(rank=None, target=1e-10, max_iterations=3000))
    rec = run_one(spec)
    assert rec["status"] == "converged"
    assert rec["test_mse"] < 1e-7  # exact recovery of the rank-3 truth
    build_grid(problem, ["dln-fixed-rank"], [3], ["rank-adaptive-cg"], 1, RunSettings())
