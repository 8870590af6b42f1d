"""Boundary checks and batch handling for the Geomstats adapters.

Geomstats broadcasts a single point against a batch; we allow exactly that and reject two
batches of different shapes with a ValueError (numpy would silently broadcast (2, 1) with (3,)).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dlnmanifolds.core._validate import as_matrix
from dlnmanifolds.core.dln_geodesic import _require_invertible as require_invertible

__all__ = ["as_points", "broadcast", "common_batch", "map_batch", "require_invertible"]


def as_points(value, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """A finite float array whose trailing axes are ``shape`` ((N, n, n) or (n, n))."""
    array = as_matrix(value, name, batch=True)
    k = len(shape)
    if array.ndim < k or array.shape[-k:] != shape:
        if k == 3 and array.ndim >= 3 and array.shape[-2:] == shape[-2:]:
            raise ValueError(
                f"{name}: depth mismatch, expected {shape[0]} stacked layers (..., "
                f"{shape[0]}, {shape[1]}, {shape[2]}), got {array.shape[-3]} (shape "
                f"{array.shape})"
            )
        raise ValueError(
            f"{name} must have trailing shape {shape} (batch axes first), got {array.shape}"
        )
    return array


def common_batch(point_ndim: int, **arrays: np.ndarray) -> tuple[int, ...]:
    """The shared batch shape: all batched arguments must have the same batch shape."""
    batched = {k: a.shape[: a.ndim - point_ndim] for k, a in arrays.items()}
    shapes = {s for s in batched.values() if s}
    if len(shapes) > 1:
        detail = ", ".join(f"{k}: {s}" for k, s in batched.items())
        raise ValueError(
            "batched arguments must have the same batch shape (or be single points), got " + detail
        )
    return shapes.pop() if shapes else ()


def broadcast(array: np.ndarray, batch: tuple[int, ...], point_ndim: int) -> np.ndarray:
    return np.broadcast_to(array, batch + array.shape[array.ndim - point_ndim :])


def map_batch(
    func: Callable[..., np.ndarray],
    batch: tuple[int, ...],
    point_ndims: tuple[int, ...],
    *arrays: np.ndarray,
) -> np.ndarray:
    """Apply an unbatched ``func`` to each batch entry and stack (a thin loop over core)."""
    flat = [
        broadcast(a, batch, k).reshape((-1,) + a.shape[a.ndim - k :])
        for a, k in zip(arrays, point_ndims)
    ]
    out = np.stack([np.asarray(func(*args)) for args in zip(*flat)])
    return out.reshape(batch + out.shape[1:])
