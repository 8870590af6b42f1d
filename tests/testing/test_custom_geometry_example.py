"""The "adding your own DLN geometry" example runs and reaches the documented verdicts."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "custom_geometry.py"


def _load():
    spec = importlib.util.spec_from_file_location("custom_geometry", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_verdicts(tmp_path, capsys):
    result = _load().main(["--fast", "--output", str(tmp_path)])  # --output is a directory
    out = tmp_path / "custom_geometry.json"
    assert (tmp_path / "custom_geometry.png").stat().st_size > 0
    good = {r["name"]: r for r in result["good"]["results"]}
    bad = {r["name"]: r for r in result["wrong_gradient"]["results"]}
    assert all(r["status"] != "fail" for r in good.values())
    assert good["gradient.taylor_slope"]["status"] == "pass"
    assert good["metric.positive_definite"]["status"] == "pass"
    assert good["dim.tangent_rank"]["value"] == 16
    assert bad["gradient.riesz"]["status"] == "fail"
    assert bad["gradient.taylor_slope"]["status"] == "fail"
    # N g^N -> g^inf at rate 1/N (math.md §4.6): each tenfold depth gains a factor ~10.
    gaps = result["depth_limit_gap"]
    assert gaps[0] < 5e-2 and 7 < gaps[0] / gaps[1] < 13 and 7 < gaps[1] / gaps[2] < 13
    assert json.loads(out.read_text())["good"]["subject"].startswith("infinite-depth")
    assert "gradient.riesz" in capsys.readouterr().out


def test_infinite_depth_manifold_rejects_bad_points():
    module = _load()
    manifold = module.InfiniteDepthMatrices(3, rng=0)
    assert not manifold.belongs(np.zeros((3, 3)))
    assert manifold.belongs(manifold.random_point())



def test_builtin_infinite_depth_matches_the_user_built_one():
    """The example's hand-written g^inf is the built-in DLNMatrices(n, n, math.inf)."""
    import math

    from dlnmanifolds.pymanopt import DLNMatrices
    from dlnmanifolds.testing import assert_manifold_conforms

    module = _load()
    user = module.InfiniteDepthMatrices(3, rng=0)
    builtin = DLNMatrices(3, 3, math.inf, rng=1)
    rng = np.random.default_rng(5)
    for _ in range(3):
        x = user.random_point()
        a, b, g = (rng.standard_normal((3, 3)) for _ in range(3))
        assert builtin.inner_product(x, a, b) == pytest.approx(user.inner_product(x, a, b),
                                                               rel=1e-13)
        np.testing.assert_allclose(builtin.euclidean_to_riemannian_gradient(x, g),
                                   user.euclidean_to_riemannian_gradient(x, g), rtol=1e-13,
                                   atol=1e-14)
    assert_manifold_conforms(builtin, n_points=2, rng=rng)
