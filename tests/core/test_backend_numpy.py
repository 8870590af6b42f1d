"""The array backend on numpy inputs: numpy itself, no torch import (issue 16)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from dlnmanifolds.core import _backend


def test_numpy_inputs_get_numpy_itself():
    assert _backend.namespace(np.ones(3), np.float64(2.0), 1.0, 3, None) is np
    assert _backend.namespace() is np
    x = np.arange(6.0).reshape(2, 3)
    assert _backend.zeros(x, (2, 2)).dtype == np.float64
    np.testing.assert_array_equal(_backend.diag(np.array([1.0, 2.0])), np.diag([1.0, 2.0]))
    assert _backend.all_finite(x) and not _backend.all_finite(np.array([np.nan]))
    copied = _backend.copy(x)
    copied[0, 0] = 9.0
    assert x[0, 0] == 0.0


def test_importing_the_package_and_using_core_does_not_import_torch():
    code = (
        "import sys, numpy as np, dlnmanifolds;"
        "from dlnmanifolds.core.operator import dln_operator;"
        "from dlnmanifolds.core.fixed_rank import fixed_rank_retraction;"
        "dln_operator(np.eye(3), np.ones((3, 3)), 3);"
        "assert 'torch' not in sys.modules, 'torch was imported';"
        "assert 'array_api_compat' not in sys.modules, 'array_api_compat was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
