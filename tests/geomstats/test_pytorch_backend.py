"""Run tests/geomstats_torch on Geomstats' pytorch backend, in a subprocess.

Geomstats fixes its backend at its first import (numpy in this process), so the torch suite
needs its own interpreter with GEOMSTATS_BACKEND=pytorch. Skipped without torch.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[2]


def test_the_adapters_pass_the_suite_on_the_pytorch_backend():
    env = dict(os.environ, GEOMSTATS_BACKEND="pytorch")
    env.pop("PYTEST_XDIST_WORKER", None)
    env.pop("PYTEST_ADDOPTS", None)
    command = [
        sys.executable,
        "-m",
        "pytest",
        str(ROOT / "tests" / "geomstats_torch"),
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "-W",
        "ignore::DeprecationWarning",
    ]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    tail = "\n".join(done.stdout.splitlines()[-40:])
    assert done.returncode == 0, f"tests/geomstats_torch failed on the pytorch backend:\n{tail}"
    assert " passed" in tail and " error" not in tail, tail
