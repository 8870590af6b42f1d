"""The ``dlnmanifolds`` command line and ``python -m dlnmanifolds``."""

import json
import subprocess
import sys

import pytest

from dlnmanifolds.compare.cli import main

SMALL = ["--size", "10", "--rank", "2", "--observations", "60", "--max-iterations", "150",
         "--learning-rate", "3", "--quiet"]


def test_help_documents_compare(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    assert "compare" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["compare", "--help"])
    text = capsys.readouterr().out
    for option in ("--problem", "--size", "--rank", "--observations", "--depths", "--solvers",
                   "--geometries", "--seeds", "--jobs", "--scheduler", "--resume", "--output"):
        assert option in text


def test_compare_command_runs_and_resumes(tmp_path, capsys):
    argv = ["compare", *SMALL, "--depths", "1,2", "--geometries", "factors,dln-fixed-rank",
            "--solvers", "conjugate-gradient,trust-regions,gradient-descent", "--seeds", "2",
            "--output", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "train MSE" in out and "test MSE" in out and "Winner" in out
    # dln-fixed-rank has a Riemannian Hessian: trust-regions runs there too.
    assert "trust-regions on dln-fixed-rank" not in out
    first = (tmp_path / "runs.jsonl").read_text().splitlines()
    assert len(first) == (2 * 3 + 2 * 3) * 2
    assert any('"trust-regions"' in line and '"dln-fixed-rank"' in line for line in first)
    assert main(argv + ["--resume"]) == 0  # nothing left to do
    assert (tmp_path / "runs.jsonl").read_text().splitlines() == first
    assert json.loads(first[0])["config"]
    assert (tmp_path / "curves.png").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--solvers", "newton"], "unknown solver newton"),
        (["--geometries", "torus"], "unknown geometry torus"),
        (["--depths", "0,2"], "depths must be integers >= 1"),
        (["--rank", "11"], "rank must be at most"),
        (["--observations", "0"], "expected a positive int"),
        (["--observations", "101"], "observations must be at most"),
    ],
)
def test_bad_arguments_exit_with_a_clear_message(tmp_path, capsys, args, message):
    with pytest.raises(SystemExit) as exit_info:
        main(["compare", *SMALL, *args, "--output", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out" / "runs.jsonl").exists()


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "dlnmanifolds", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0
    assert "compare" in done.stdout


def test_compare_at_infinite_depth(tmp_path, capsys):
    """--depths 2,inf: g^inf runs on dln-matrices (first order); the rest is skipped, said why."""
    argv = ["compare", *SMALL, "--depths", "2,inf", "--geometries", "dln-matrices,balanced",
            "--solvers", "conjugate-gradient,trust-regions", "--seeds", "1",
            "--init", "spectral", "--output", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "skipped trust-regions on dln-matrices (depth inf): there is no Hessian" in out
    assert "conjugate-gradient on balanced (depth inf)" in out
    runs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    infinite = [r for r in runs if r["depth"] == float("inf")]
    assert [(r["geometry"], r["solver"]) for r in infinite] == [
        ("dln-matrices", "conjugate-gradient")]
    assert infinite[0]["status"] != "diverged"
    assert infinite[0]["final_loss"] < infinite[0]["history"]["loss"][0]
    with pytest.raises(SystemExit):
        main(["compare", *SMALL, "--depths", "2,infinity", "--output", str(tmp_path / "x")])
    assert "or inf" in capsys.readouterr().err
