"""The balanced-truncation example reaches its documented verdicts (issue 14, item 6)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _load():
    sys.path.insert(0, str(EXAMPLES))  # for examples/_figures.py
    try:
        spec = importlib.util.spec_from_file_location(
            "plot_balanced_truncation", EXAMPLES / "plot_balanced_truncation.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(EXAMPLES))
    return module


def test_balancing_flow_gives_scipy_balanced_truncation(tmp_path):
    report = _load().main(["--fast", "--output", str(tmp_path)])
    hsv = report["hsv_scipy"]
    # sigma(L R) and the balanced Gramian are the Hankel singular values of scipy's Gramians
    np.testing.assert_allclose(report["hsv_network"], hsv, rtol=1e-10)
    np.testing.assert_allclose(report["hsv_flow"], hsv, rtol=1e-9)
    assert report["gramian_gap"] <= 1e-9 and report["gramian_offdiag"] <= 1e-9
    for order, row in report["truncation"].items():
        # truncating a balanced realization keeps it balanced with the first k values,
        # and sigma_{k+1} <= ||G - G_k||_inf <= 2 sum_{i>k} sigma_i
        assert row["hsv_kept_gap"] <= 1e-9
        assert hsv[order] * (1 - 1e-3) <= row["max_error"] <= row["bound"]
    assert (tmp_path / "balanced_truncation.png").stat().st_size > 0
