"""numpy = torch: the adapters on Geomstats' numpy and pytorch backends, same float64 inputs.

The numpy results come from a subprocess (GEOMSTATS_BACKEND=numpy) running
``backend_cases.py``; this process runs the same calls on CPU tensors. Agreement to 1e-12
relative to the result's size on generic and repeated spectra (measured: <= 4e-15); on graded
ones (sigma_min = 1e-12 sigma_max) to 1e-12 + 1e-14 cond(X). There X = phi(W) is a product
formed by each backend's BLAS, so its sigma_min is itself known only to relative
eps cond(X) ~ 1e-4, and every map through A_{N,X}^{-1} (K ~ sigma^{2(N-1)/N}) inherits that
(measured: <= 6e-4); numpy is no more accurate than torch there.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from backend_cases import evaluate

HERE = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def numpy_results(tmp_path_factory):
    out = tmp_path_factory.mktemp("numpy") / "results.npz"
    env = dict(os.environ, GEOMSTATS_BACKEND="numpy")
    env["PYTHONPATH"] = os.pathsep.join([str(HERE.parent.parent), env.get("PYTHONPATH", "")])
    subprocess.run(
        [sys.executable, str(HERE / "backend_cases.py"), str(out)],
        env=env,
        check=True,
        timeout=120,
        capture_output=True,
    )
    return dict(np.load(out))


def _tolerance(name: str, cond: float) -> float:
    return 1e-12 + 1e-14 * cond if "-graded-" in name else 1e-12


def test_torch_results_equal_numpy_results(numpy_results):
    torch_results = evaluate()
    assert set(torch_results) == {k for k in numpy_results if not k.endswith("__cond")}
    worst = []
    for name, (got, cond) in torch_results.items():
        ref = numpy_results[name]
        assert got.shape == ref.shape, name
        err = float(np.max(np.abs(got - ref), initial=0.0)) / max(1.0, np.max(np.abs(ref)))
        worst.append((err / _tolerance(name, cond), err, name))
    worst.sort(reverse=True)
    bad = [f"{name}: {err:.2e}" for ratio, err, name in worst if ratio > 1]
    assert not bad, "torch != numpy: " + ", ".join(bad)
