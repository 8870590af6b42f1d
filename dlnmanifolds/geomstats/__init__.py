"""Geomstats adapters: the DLN geometry as Geomstats Space / Metric / FiberBundle objects.

Points are stacked arrays of shape (..., N, n, n) (square balanced networks, batch axes
first), packed flat vectors (..., sum_p d_p d_{p-1}) (networks of general widths; see
``balanced_space``) or (..., m, n) (end-to-end matrices), as in Geomstats.

Backends: Geomstats' numpy and autograd backends (numpy arrays) and its pytorch backend
(``GEOMSTATS_BACKEND=pytorch``: torch tensors, CPU or CUDA, float32/float64). Geomstats
picks its backend when it is first imported; unless the user chose one, numpy is selected
here. On the pytorch backend every method runs on the tensors (array-generic core), except
the geodesic solvers (exp/log/dist/align/parallel transport), which are numpy/scipy and cross
one documented boundary (``_arrays.via_numpy``: CPU float64 numpy in, tensor of the input's
dtype and device out, no autograd through them).
"""

import os

os.environ.setdefault("GEOMSTATS_BACKEND", "numpy")

import geomstats.backend as _gs  # noqa: E402

if not _gs.__name__.endswith(("numpy", "autograd", "pytorch")):
    raise ImportError(
        "dlnmanifolds.geomstats runs on Geomstats' numpy, autograd or pytorch backend, but "
        f"GEOMSTATS_BACKEND={os.environ.get('GEOMSTATS_BACKEND')!r} selected {_gs.__name__}"
    )

from dlnmanifolds.geomstats.balanced_space import (  # noqa: E402
    BalancedMetric,
    BalancedSpace,
    LayerStacks,
    StackedFrobeniusMetric,
)
from dlnmanifolds.geomstats.bundle import DLNBundle, LayerRotationAction  # noqa: E402
from dlnmanifolds.geomstats.dln_metric import DLNMetric  # noqa: E402

__all__ = [
    "BalancedMetric",
    "BalancedSpace",
    "DLNBundle",
    "DLNMetric",
    "LayerRotationAction",
    "LayerStacks",
    "StackedFrobeniusMetric",
]
