"""Every CLI failure exits 2 with one ``error:`` line naming the option or the path,
before any run starts, and never with a traceback."""

import os

import pytest

from dlnmanifolds.compare.cli import main

SMALL = ["--size", "8", "--rank", "2", "--observations", "40", "--max-iterations", "20",
         "--geometries", "factors", "--depths", "1", "--solvers", "gradient-descent",
         "--quiet", "--no-plots"]


def _fails(argv, capsys):
    with pytest.raises(SystemExit) as info:
        main(["compare", *SMALL, *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2, err
    assert "error:" in err and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "args, names",
    [
        (["--target", "nan"], ["--target", "finite"]),
        (["--target", "inf"], ["--target", "finite"]),
        (["--target", "-1"], ["--target", ">= 0"]),
        (["--noise", "nan"], ["--noise"]),
        (["--depths", "100000"], ["--depths", "at most"]),
        (["--max-time", "nan"], ["--max-time"]),
        (["--max-total-time", "0"], ["--max-total-time"]),
        (["--size", "40000"], ["--size 40000", "GiB"]),
        (["--scheduler", "not an address"], ["--scheduler", "tcp://HOST:PORT"]),
        (["--scheduler", "tcp://127.0.0.1:1"], ["--scheduler", "cannot reach"]),
        (["--resume", "--overwrite"], ["--resume", "--overwrite"]),
    ],
)
def test_invalid_values_are_refused(tmp_path, capsys, args, names):
    out = tmp_path / "out"
    err = _fails([*args, "--output", str(out)], capsys)
    for name in names:
        assert name in err
    assert not (out / "runs.jsonl").exists()


def test_output_under_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    err = _fails(["--output", str(tmp_path / "file" / "out")], capsys)
    assert "--output" in err and str(tmp_path / "file") in err
    err = _fails(["--output", str(tmp_path / "file")], capsys)
    assert "not a folder" in err


def test_results_csv_as_a_folder_fails_before_any_run(tmp_path, capsys):
    (tmp_path / "results.csv").mkdir()
    err = _fails(["--output", str(tmp_path)], capsys)
    assert "results.csv" in err
    assert not (tmp_path / "runs.jsonl").exists()


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_folder(tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        err = _fails(["--output", str(locked / "out")], capsys)
    finally:
        locked.chmod(0o700)
    assert "--output" in err and "permission" in err
