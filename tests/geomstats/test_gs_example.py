"""The Geomstats example runs headless, its geodesic is a g^N geodesic and its Fréchet mean
is converged (the mean of the logs vanishes)."""

import importlib.util
import pathlib

import numpy as np

EXAMPLE = pathlib.Path(__file__).parents[2] / "examples" / "geomstats_geodesic.py"


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
    # Converged Fréchet mean: mean_i Log_M(X_i) = 0, recomputed here with core.dln_log.
    from dlnmanifolds.core.dln_geodesic import dln_log
    from dlnmanifolds.core.operator import dln_inner

    mean = out["means"]["g^N (N=3)"]
    grad = np.mean(dln_log(out["samples"], mean, 3), axis=0)
    assert np.sqrt(dln_inner(mean, grad, grad, 3)) <= 1e-8
