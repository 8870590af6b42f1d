"""The examples in the docstrings run (doctest) and give what they show.

Every module of the package is imported and its docstring examples executed with
single-threaded BLAS. Every public name of core, pymanopt, flows, testing, compare,
optimizers and problems carries one (the outputs are exact, or booleans of
``np.allclose`` on seeded data, so they do not depend on the BLAS build).
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import dlnmanifolds

MODULES = sorted(
    m.name
    for m in pkgutil.walk_packages(dlnmanifolds.__path__, prefix="dlnmanifolds.")
    if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    if name.startswith("dlnmanifolds.geoopt"):
        pytest.importorskip("geoopt")  # the optional torch extra
    module = importlib.import_module(name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    for test in finder.find(module, name):
        if test.examples:
            runner.run(test)
    result = runner.summarize(verbose=False)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
