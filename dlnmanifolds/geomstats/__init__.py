"""Geomstats adapters: the DLN geometry as Geomstats Space / Metric / FiberBundle objects.

Points are stacked arrays of shape (..., N, n, n) (balanced networks, batch axes first) or
(..., n, n) (end-to-end matrices), as in Geomstats. The adapters need Geomstats' numpy
backend, which is selected here unless the user already chose one.
"""

import os

os.environ.setdefault("GEOMSTATS_BACKEND", "numpy")

import geomstats.backend as _gs  # noqa: E402

if not (_gs.__name__.endswith("numpy") or _gs.__name__.endswith("autograd")):
    raise ImportError(
        "dlnmanifolds.geomstats needs Geomstats' numpy (or autograd) backend, but "
        f"GEOMSTATS_BACKEND={os.environ.get('GEOMSTATS_BACKEND')!r} selected {_gs.__name__}; "
        "unset it or set GEOMSTATS_BACKEND=numpy before importing geomstats"
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
