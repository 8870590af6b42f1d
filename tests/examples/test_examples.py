"""Every script in examples/ runs end to end in --fast mode (the examples are tests too).

Scripts are discovered with a glob, so examples added later are covered without
editing this file. Each runs in a fresh interpreter (``sys.executable``) with
single-threaded BLAS and the file-only Agg backend; ``plot_*`` scripts must write
at least one non-empty PNG into the --output directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCRIPTS = sorted(p for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
PLOT_SCRIPTS = [p for p in SCRIPTS if p.name.startswith("plot_")]
TIMEOUT = 120  # seconds per script; --fast runs take a few seconds


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               MPLBACKEND="Agg")
    env.pop("DISPLAY", None)  # prove that no display is needed
    return env


def _accepts_output(script: Path) -> bool:
    """Scripts that define --output themselves or through examples/_figures.py."""
    text = script.read_text(encoding="utf-8")
    return "--output" in text or "example_parser(" in text


def _run(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd, env=_env(), capture_output=True, text=True, timeout=TIMEOUT,
    )


def test_examples_are_discovered():
    names = {p.name for p in SCRIPTS}
    assert {"plot_conic_foliation.py", "plot_group_orbits.py", "new_cost_in_ten_lines.py"} <= names
    assert len(PLOT_SCRIPTS) >= 5


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.stem for p in SCRIPTS])
def test_example_runs_fast(script: Path, tmp_path: Path):
    out = tmp_path / "figures"
    args = ["--fast"] + (["--output", str(out)] if _accepts_output(script) else [])
    proc = _run(script, *args, cwd=tmp_path)
    assert proc.returncode == 0, (
        f"{script.name} --fast exited with {proc.returncode}\nstdout:\n{proc.stdout[-3000:]}\n"
        f"stderr:\n{proc.stderr[-3000:]}"
    )
    if script in PLOT_SCRIPTS:
        pngs = sorted(out.glob("*.png"))
        assert pngs, f"{script.name} wrote no PNG into {out}"
        for png in pngs:
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{png.name} is not a PNG"


@pytest.mark.parametrize("script", PLOT_SCRIPTS[:1], ids=lambda p: p.stem)
def test_output_that_is_a_file_is_rejected(script: Path, tmp_path: Path):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("x")
    proc = _run(script, "--fast", "--output", str(blocker), cwd=tmp_path)
    assert proc.returncode == 2
    assert "--output" in proc.stderr and "not a directory" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("script", PLOT_SCRIPTS[-1:], ids=lambda p: p.stem)
def test_help_documents_fast_and_output(script: Path, tmp_path: Path):
    proc = _run(script, "--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "--fast" in proc.stdout and "--output DIR" in proc.stdout


def test_examples_do_not_need_a_display(tmp_path: Path):
    """An interactive backend requested through MPLBACKEND is overridden by Agg."""
    script = EXAMPLES / "plot_group_orbits.py"
    env = _env()
    env["MPLBACKEND"] = "TkAgg"
    proc = subprocess.run(
        [sys.executable, str(script), "--fast", "--output", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=TIMEOUT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "group_orbits.png").stat().st_size > 0
