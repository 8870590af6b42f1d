"""The Geomstats example runs headless and its geodesic is a g^N geodesic (slow: ~20 s)."""

import importlib.util
import pathlib

import numpy as np
import pytest

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "geomstats_geodesic.py"


@pytest.mark.slow
def test_example_fast(tmp_path):
    spec = importlib.util.spec_from_file_location("geomstats_geodesic_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.main(fast=True, output=str(tmp_path))
    assert pathlib.Path(out["figure"]).stat().st_size > 0
    path = out["paths"]["g^N (N=3)"]
    # Both paths join the same end points; the g^N path stays further from the singular
    # matrices than the straight line.
    sv_dln = np.linalg.svd(path, compute_uv=False)[:, 1]
    sv_flat = np.linalg.svd(out["paths"]["Euclidean"], compute_uv=False)[:, 1]
    assert np.min(sv_dln) > np.min(sv_flat)
    assert np.allclose(path[-1], out["paths"]["Euclidean"][-1], atol=1e-9)
