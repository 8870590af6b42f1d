"""dlnmanifolds compare --data PATH [--one-based] --holdout FRACTION: a user's matrix."""

import numpy as np
import pytest

from dlnmanifolds.compare.cli import main
from dlnmanifolds.problems import MatrixCompletion


@pytest.fixture
def data_file(tmp_path):
    mc = MatrixCompletion.generate(20, 2, 240, rng=0)
    path = tmp_path / "u.data"
    lines = [f"{r + 1}\t{c + 1}\t{float(v)!r}\t0" for r, c, v in zip(mc.rows, mc.cols, mc.values)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_compare_on_a_data_file_reports_holdout_rmse(data_file, tmp_path, capsys):
    code = main(
        [
            "compare",
            "--data",
            str(data_file),
            "--one-based",
            "--holdout",
            "0.2",
            "--geometries",
            "dln-fixed-rank",
            "--depths",
            "2",
            "--solvers",
            "rank-adaptive-cg",
            "--target",
            "1e-12",
            "--output",
            str(tmp_path / "out"),
            "--no-plots",
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "192 training entries, 48 held out" in out
    rmse = float(out.split("holdout test RMSE dln-fixed-rank N=2 rank-adaptive-cg: ")[1].split()[0])
    assert rmse < 1e-3  # a rank-2 matrix is recovered: the held-out entries too
    assert np.isfinite(rmse)


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--holdout", "1.5"], "expected a fraction in \\(0, 1\\)"),
        (["--holdout", "0"], "expected a fraction in \\(0, 1\\)"),
        (["--holdout", "nan"], "expected a fraction in \\(0, 1\\)"),
    ],
)
def test_bad_holdout_is_refused_before_any_run(data_file, tmp_path, capsys, extra, match):
    with pytest.raises(SystemExit):
        main(["compare", "--data", str(data_file), "--output", str(tmp_path / "o"), *extra])
    assert pytest.importorskip("re").search(match, capsys.readouterr().err)
    assert not (tmp_path / "o").exists()


def test_bad_data_file_names_file_and_line(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    path.write_text("1,1,2.0\n2,2\n")
    with pytest.raises(SystemExit):
        main(["compare", "--data", str(path), "--output", str(tmp_path / "o")])
    assert "bad.csv, line 2: expected at least 3 columns" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["compare", "--holdout", "0.2", "--output", str(tmp_path / "o")])
    assert "need --data" in capsys.readouterr().err
