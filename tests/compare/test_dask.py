"""Runs on a Dask cluster (a LocalCluster here) give the serial numbers."""

import pytest

from dlnmanifolds.compare import ProblemSpec, RunSettings, compare

distributed = pytest.importorskip(
    "dask.distributed", reason="dask[distributed] is not installed (pip install dlnmanifolds[dask])"
)


def test_local_cluster_matches_serial(tmp_path):
    problem = ProblemSpec(size=10, rank=2, observations=60)
    settings = RunSettings(rank=2, max_iterations=150, learning_rate=3.0)
    kwargs = dict(geometries=["factors", "dln-matrices"], depths=[2],
                  solvers=["conjugate-gradient", "gradient-descent"], seeds=2,
                  settings=settings, progress=False, plots=False)
    serial = compare(problem, **kwargs)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        remote = compare(problem, scheduler=cluster.scheduler_address, output=tmp_path, **kwargs)
    keys = ("key", "status", "final_loss", "test_mse", "iterations")
    assert [tuple(r[k] for k in keys) for r in remote.records] == [
        tuple(r[k] for k in keys) for r in serial.records
    ]
    assert len((tmp_path / "runs.jsonl").read_text().splitlines()) == 8
