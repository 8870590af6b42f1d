"""Pytest wiring for Geomstats' parametrized test cases (from geomstats/tests/conftest.py).

Geomstats' ``DataBasedParametrizer`` marks inactive tests with ``ignore``; its collection hook
deselects them. Its random sizes come from ``random``/``gs.random``, seeded here. These are the
numpy-backend tests: in a process started with GEOMSTATS_BACKEND=pytorch they collect nothing
(tests/geomstats_torch is that backend's suite).
"""

import os
import random

import geomstats.backend as gs
from geomstats.test.conf import pytest_collection_modifyitems  # noqa: F401

import dlnmanifolds.geomstats  # noqa: F401  (selects the numpy backend before use)
from tests.helpers import register_geomstats_markers

collect_ignore_glob = ["test_*.py"] if os.environ.get("GEOMSTATS_BACKEND") == "pytorch" else []

random.seed(20241109)
gs.random.seed(20241109)


def pytest_configure(config):
    register_geomstats_markers(config)
