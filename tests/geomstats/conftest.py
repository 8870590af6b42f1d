"""Pytest wiring for Geomstats' parametrized test cases (from geomstats/tests/conftest.py).

Geomstats' ``DataBasedParametrizer`` marks inactive tests with ``ignore``; its collection hook
deselects them. Its random sizes come from ``random``/``gs.random``, seeded here.
"""

import random

import geomstats.backend as gs
from geomstats.test.conf import pytest_collection_modifyitems  # noqa: F401

import dlnmanifolds.geomstats  # noqa: F401  (selects the numpy backend before use)

random.seed(20241109)
gs.random.seed(20241109)


def pytest_configure(config):
    for name, text in [
        ("vec", "Geomstats vectorization tests"),
        ("random", "Geomstats tests with randomized data"),
        ("shape", "Geomstats array shape tests"),
        ("smoke", "Geomstats simple numerical tests"),
        ("ignore", "deselected Geomstats tests"),
        ("type", "Geomstats output type tests"),
        ("mathprop", "Geomstats mathematical property tests"),
        ("validation", "Geomstats validation tests"),
        ("redundant", "Geomstats redundant tests"),
    ]:
        config.addinivalue_line("markers", f"{name}: {text}")
