"""The Geomstats adapters on ``GEOMSTATS_BACKEND=pytorch`` (torch tensors).

Geomstats fixes its backend when it is first imported, so these tests run only in a process
started with GEOMSTATS_BACKEND=pytorch: ``tests/geomstats/test_pytorch_backend.py`` starts
``python -m pytest tests/geomstats_torch`` that way. In any other process (the default suite,
where Geomstats runs on numpy) this folder collects nothing. Also skipped without torch.
"""

import os
import random
import sys
from pathlib import Path

from tests.helpers import register_geomstats_markers

collect_ignore_glob = []
_ACTIVE = os.environ.get("GEOMSTATS_BACKEND") == "pytorch"
try:
    import torch  # noqa: F401
except ImportError:  # pragma: no cover - torch is an optional extra
    _ACTIVE = False
if not _ACTIVE or (
    "geomstats.backend" in sys.modules
    and not sys.modules["geomstats.backend"].__name__.endswith("pytorch")
):
    collect_ignore_glob = ["test_*.py"]
else:
    import geomstats.backend as gs
    from geomstats.test.conf import pytest_collection_modifyitems  # noqa: F401

    import dlnmanifolds.geomstats  # noqa: F401

    # The numpy suite's Geomstats cases (tests/geomstats/test_gs_cases.py) are re-run here.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "geomstats"))
    random.seed(20241109)
    gs.random.seed(20241109)


def pytest_configure(config):
    register_geomstats_markers(config)
