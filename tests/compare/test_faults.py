"""Fault injection on ``dlnmanifolds compare``: after each fault, one ``--resume``
leaves exactly one record per run, and the command exits cleanly.

Every run lasts about RUN_TIME seconds (target 0 is never reached, so each run
stops on --max-time), so that the faults land mid-grid. Each scenario is a
subprocess with a timeout: a hang fails the test instead of blocking the suite.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlnmanifolds.compare import ProblemSpec, RunSettings, _pool
from dlnmanifolds.compare.journal import FolderLock, FolderLockedError, repair
from dlnmanifolds.compare.specs import RunSpec

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="POSIX signals and /proc")

ROOT = Path(__file__).resolve().parents[2]
RUN_TIME = 0.4
SLOW = 1.0  # where the fault must land while runs remain
# The second writer must reach its lock check while the first still runs: its start-up
# imports Pymanopt, which imports torch when it is installed (about 1 s, up to 7 s on a
# loaded 2-core machine), so the first command holds the lock for 6 x 3 s.
HOLD = 3.0
GRID = ["--size", "8", "--rank", "2", "--observations", "40", "--geometries", "factors",
        "--depths", "1,2", "--solvers", "gradient-descent", "--seeds", "3",
        "--learning-rate", "1", "--max-iterations", "10000000", "--target", "0",
        "--quiet", "--no-plots"]
RUNS = 6
KEYS = {f"factors|{d}|gradient-descent|{s}" for d in (1, 2) for s in range(3)}


def _env():
    env = dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    return env


def _start(out, *extra, run_time=RUN_TIME):
    # run_time is --max-time, part of the configuration: a scenario keeps one value.
    return subprocess.Popen(
        [sys.executable, "-m", "dlnmanifolds", "compare", *GRID, "--max-time", str(run_time),
         "--output", str(out), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(), cwd=ROOT,
    )


def _run(out, *extra, timeout=120, run_time=RUN_TIME):
    proc = _start(out, *extra, run_time=run_time)
    stdout, stderr = proc.communicate(timeout=timeout)
    return proc.returncode, stdout, stderr


def _lines(out):
    path = Path(out) / "runs.jsonl"
    return path.read_text().splitlines() if path.exists() else []


def _wait_for(predicate, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for the grid to make progress")


def _children(pid):
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry.name))
    return out


def _alive(pid):
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _assert_complete(out):
    keys = [json.loads(line)["key"] for line in _lines(out)]
    assert sorted(keys) == sorted(KEYS), keys  # one record per run: none lost, none twice


def _resume_and_check(out, run_time=RUN_TIME):
    code, _, stderr = _run(out, "--resume", run_time=run_time)
    assert code == 0, stderr
    assert "Traceback" not in stderr
    _assert_complete(out)


def test_kill_9_mid_grid_then_resume(tmp_path):
    proc = _start(tmp_path, run_time=SLOW)
    _wait_for(lambda: len(_lines(tmp_path)) >= 2)
    proc.kill()
    proc.communicate(timeout=30)
    assert 2 <= len(_lines(tmp_path)) < RUNS
    _resume_and_check(tmp_path, run_time=SLOW)


def test_torn_and_duplicated_lines_are_repaired(tmp_path):
    code, _, stderr = _run(tmp_path)
    assert code == 0, stderr
    lines = _lines(tmp_path)
    # A duplicated record, then a crash in the middle of writing the last one.
    (tmp_path / "runs.jsonl").write_text(
        "\n".join(lines[:3] + [lines[1]] + lines[3:5]) + "\n" + lines[5][:37]
    )
    code, stdout, stderr = _run(tmp_path, "--resume")
    assert code == 0, stderr
    assert "repaired" in stdout
    _assert_complete(tmp_path)
    kept = (tmp_path / "runs.jsonl.corrupt").read_text()
    assert kept.endswith(lines[5][:37])  # the original is kept for inspection
    assert len((tmp_path / "results.csv").read_text().splitlines()) == RUNS + 1


def test_repair_unit(tmp_path):
    path = tmp_path / "runs.jsonl"
    a, b = json.dumps({"key": "a", "v": 1}), json.dumps({"key": "b", "v": 2})
    path.write_text(f"{a}\n{b}\n{a}\n{{\"key\": \"c\", \"v")
    records, note = repair(path)
    assert [r["key"] for r in records] == ["a", "b"]
    assert "1 unreadable" in note and "1 duplicated" in note
    assert path.read_text() == f"{a}\n{b}\n"
    # A complete last record without its newline is kept and the line finished.
    path.write_text(f"{a}\n{b}")
    records, note = repair(path)
    assert note is None and len(records) == 2 and path.read_text() == f"{a}\n{b}\n"


def test_second_writer_is_refused_and_stale_lock_taken_over(tmp_path):
    # A live holder (this process): the command refuses at once, naming its pid.
    lock = FolderLock(tmp_path).acquire()
    try:
        code, _, stderr = _run(tmp_path)
        assert code == 2
        assert f"pid {os.getpid()}" in stderr and "error:" in stderr
        assert "Traceback" not in stderr
        with pytest.raises(FolderLockedError, match=f"pid {os.getpid()}"):
            FolderLock(tmp_path).acquire()
    finally:
        lock.release()
    assert not (tmp_path / "runs.jsonl").exists()
    # Two commands: the second is refused while the first runs; the first completes.
    first = _start(tmp_path, run_time=HOLD)
    _wait_for(lambda: (tmp_path / ".lock").exists() and (tmp_path / ".lock").read_text())
    code, _, stderr = _run(tmp_path, "--resume", run_time=HOLD)
    assert code == 2 and f"pid {first.pid}" in stderr, stderr
    first.communicate(timeout=120)
    assert first.returncode == 0
    _assert_complete(tmp_path)
    # A lock file left by a dead process is taken over.
    (tmp_path / ".lock").write_text("999999999\n")
    _resume_and_check(tmp_path, run_time=HOLD)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_with_two_jobs_stops_quickly_and_keeps_finished_runs(tmp_path, sig, code):
    proc = _start(tmp_path, "--jobs", "2", run_time=SLOW)
    _wait_for(lambda: len(_lines(tmp_path)) >= 1 and len(_children(proc.pid)) >= 1)
    workers = _children(proc.pid)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    assert not [w for w in workers if _alive(w)]  # the workers were stopped
    finished = _lines(tmp_path)
    assert 1 <= len(finished) < RUNS
    # The files describe what finished.
    assert len((tmp_path / "results.csv").read_text().splitlines()) == len(finished) + 1
    _resume_and_check(tmp_path, run_time=SLOW)


def test_killed_worker_is_retried_and_the_grid_goes_on(tmp_path):
    proc = _start(tmp_path, "--jobs", "2")
    _wait_for(lambda: len(_children(proc.pid)) >= 1)
    os.kill(_children(proc.pid)[0], signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "died" in stdout and "started again" in stdout
    _assert_complete(tmp_path)
    _resume_and_check(tmp_path)


def test_workers_die_with_a_killed_parent(tmp_path):
    proc = _start(tmp_path, "--jobs", "2", run_time=SLOW)
    _wait_for(lambda: len(_children(proc.pid)) >= 2)
    workers = _children(proc.pid)
    proc.kill()
    proc.communicate(timeout=30)
    _wait_for(lambda: not [w for w in workers if _alive(w)], timeout=10)
    _resume_and_check(tmp_path, run_time=SLOW)


def _suicide(spec):
    os.kill(os.getpid(), signal.SIGKILL)


def test_a_run_that_always_kills_its_worker_is_recorded_as_error(monkeypatch):
    monkeypatch.setattr(_pool, "run_one", _suicide)
    settings = RunSettings(rank=2, max_iterations=5)
    problem = ProblemSpec(size=8, rank=2, observations=40)
    specs = [RunSpec(problem, "factors", 1, "gradient-descent", s, settings) for s in (0, 1)]
    pool = _pool.WorkerPool(specs, jobs=2)
    try:
        records = list(pool.results())
    finally:
        pool.shutdown()
    assert sorted(r["key"] for r in records) == sorted(s.key for s in specs)
    assert all(r["status"] == "error" and "signal 9" in r["message"] for r in records)
    assert sum("started again" in note for note in pool.notes) == 2


def test_max_total_time_bounds_the_grid_and_resume_finishes(tmp_path):
    code, stdout, stderr = _run(tmp_path, "--max-total-time", str(2.5 * RUN_TIME))
    assert code == 0, stderr
    assert "max_total_time reached" in stdout
    assert 1 <= len(_lines(tmp_path)) < RUNS
    _resume_and_check(tmp_path)
