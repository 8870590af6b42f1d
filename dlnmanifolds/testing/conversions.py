"""A guard that turns every numpy <-> torch conversion into an error (issue 16).

Issue 16 asks for zero numpy <-> torch copies inside a Geoopt optimizer step; on a
CUDA device such a copy is a host synchronisation (or fails outright), so the CPU
tests check it by making the conversions raise:

>>> import numpy as np
>>> import torch
>>> with forbid_array_conversions():
...     y = torch.ones(2) * 3  # tensor arithmetic is fine
>>> with forbid_array_conversions():
...     torch.ones(2).numpy()
Traceback (most recent call last):
...
AssertionError: numpy <-> torch conversion: Tensor.numpy was called

Patched while the block runs: ``torch.Tensor.numpy``, ``torch.Tensor.__array__``,
``torch.from_numpy``, ``torch.as_tensor`` and (``numpy_constructors=True``, the
default) ``numpy.asarray`` and ``numpy.array``. Everything is restored on exit,
also when the block raises. Not thread-safe (it patches module attributes).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np


@contextlib.contextmanager
def forbid_array_conversions(numpy_constructors: bool = True) -> Iterator[None]:
    """Make every numpy <-> torch conversion inside the block an ``AssertionError``.

    ``numpy_constructors=False`` leaves ``numpy.asarray``/``numpy.array`` alone (for
    code that builds small numpy constants from Python numbers, such as Geomstats'
    pytorch backend), still refusing every tensor <-> array copy.
    """
    import torch

    targets = [
        (torch.Tensor, "numpy", "Tensor.numpy"),
        (torch.Tensor, "__array__", "Tensor.__array__"),
        (torch, "from_numpy", "torch.from_numpy"),
        (torch, "as_tensor", "torch.as_tensor"),
    ]
    if numpy_constructors:
        targets += [(np, "asarray", "numpy.asarray"), (np, "array", "numpy.array")]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in targets]

    def refusing(label: str):
        def refuse(*args, **kwargs):
            raise AssertionError(f"numpy <-> torch conversion: {label} was called")

        return refuse

    try:
        for owner, name, label in targets:
            setattr(owner, name, refusing(label))
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)
