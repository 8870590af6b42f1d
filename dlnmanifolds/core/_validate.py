"""Input validation at the public boundary.

Every public function validates its arguments once, here, and raises a
``ValueError``/``TypeError`` that names the argument, what was expected and
what was given. Internal calls skip validation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__}"


def check_depth(depth: Any, name: str = "depth", allow_inf: bool = False) -> int | float:
    """Return ``depth`` as an int >= 1 (or ``math.inf`` where ``allow_inf``) or raise.

    ``math.inf`` is the infinite-depth limit on end-to-end matrices (Cohen, Menon &
    Veraszto 2022; math.md §4.6); layer-based geometries have no such limit.
    """
    expected = "a positive integer or math.inf" if allow_inf else "an integer >= 1"
    if isinstance(depth, (float, np.floating)) and np.isposinf(depth):
        if allow_inf:
            return math.inf
        raise ValueError(
            f"{name} must be {expected}, got inf (infinite depth is defined only on "
            f"end-to-end matrices: the kernel, dln_operator, DLNMatrices, end_to_end_flow)"
        )
    if isinstance(depth, bool) or not isinstance(depth, (int, np.integer)):
        raise TypeError(f"{name} must be {expected}, got {_describe(depth)}")
    if depth < 1:
        raise ValueError(f"{name} must be {expected}, got {depth}")
    return int(depth)


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """Return ``value`` as an int >= ``minimum`` or raise."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def check_widths(widths: Any, name: str = "widths") -> tuple[int, ...]:
    """Return ``widths`` (d_0, ..., d_N) as a tuple of positive ints, N >= 1."""
    if isinstance(widths, (str, bytes)) or not isinstance(widths, (Sequence, np.ndarray)):
        raise TypeError(
            f"{name} must be a sequence (d_0, ..., d_N) of positive integers, "
            f"got {_describe(widths)}"
        )
    widths = tuple(widths)
    if len(widths) < 2:
        raise ValueError(f"{name} must have at least two entries (d_0, d_1), got {widths}")
    for k, d in enumerate(widths):
        check_positive_int(d, f"{name}[{k}]")
    return tuple(int(d) for d in widths)


def check_finite(array: np.ndarray, name: str) -> np.ndarray:
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
    return array


def as_matrix(value: Any, name: str, batch: bool = False) -> np.ndarray:
    """Convert to a finite float array of ndim 2 (or >= 2 with ``batch``)."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real matrix, got {_describe(value)}")
    try:
        array = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(f"{name} must be a real matrix, got {_describe(value)}") from exc
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise TypeError(f"{name} must be a real numeric matrix, got dtype {array.dtype}")
    if (array.ndim != 2 and not batch) or array.ndim < 2:
        expected = "a 2-d array" if not batch else "an array with ndim >= 2"
        raise ValueError(f"{name} must be {expected}, got shape {array.shape}")
    if 0 in array.shape[-2:]:
        raise ValueError(f"{name} must be a non-empty matrix, got shape {array.shape}")
    array = array.astype(np.float64, copy=False)
    return check_finite(array, name)


def as_weights(
    weights: Any, name: str = "weights", widths: tuple[int, ...] | None = None
) -> tuple[np.ndarray, ...]:
    """Validate a sequence of layer matrices (W_1, ..., W_N) with chained shapes.

    ``W_p`` has shape ``(d_p, d_{p-1})``, so ``W_{p+1}.shape[1] == W_p.shape[0]``.
    """
    if isinstance(weights, np.ndarray) and weights.ndim == 3:
        weights = tuple(weights)
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise TypeError(
            f"{name} must be a sequence (W_1, ..., W_N) of matrices, got {_describe(weights)}"
        )
    if len(weights) == 0:
        raise ValueError(f"{name} must contain at least one layer, got none")
    layers = tuple(as_matrix(w, f"{name}[{p}]") for p, w in enumerate(weights))
    for p in range(1, len(layers)):
        if layers[p].shape[1] != layers[p - 1].shape[0]:
            raise ValueError(
                f"{name}: layer shapes do not chain; {name}[{p}] has shape "
                f"{layers[p].shape} but {name}[{p - 1}] has shape "
                f"{layers[p - 1].shape} (need {name}[{p}].shape[1] == "
                f"{name}[{p - 1}].shape[0])"
            )
    if widths is not None:
        got = widths_of(layers)
        if got != tuple(widths):
            raise ValueError(f"{name} must have widths {tuple(widths)}, got widths {got}")
    return layers


def widths_of(weights: Sequence[np.ndarray]) -> tuple[int, ...]:
    """The widths (d_0, ..., d_N) of a chained sequence of layers."""
    return (int(weights[0].shape[1]),) + tuple(int(w.shape[0]) for w in weights)


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_b} must have the same shape as {name_a} {a.shape}, got {b.shape}")


def as_rng(rng: Any, name: str = "rng") -> np.random.Generator:
    """Accept a Generator, an int seed or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool)):
        return np.random.default_rng(rng)
    raise TypeError(
        f"{name} must be a numpy.random.Generator, an int seed or None, got {_describe(rng)}"
    )


def check_end_to_end(
    W: Any, depth: Any, widths: Any = None
) -> tuple[np.ndarray, int, tuple[int, ...]]:
    """Validate an end-to-end matrix W (m x n), a depth N and widths (d_0 = n, ...,
    d_N = m); default widths have inner layers min(m, n)."""
    W = as_matrix(W, "W")
    depth = check_depth(depth)
    m, n = W.shape
    if widths is None:
        widths = (n,) + (min(m, n),) * (depth - 1) + (m,)
    widths = check_widths(widths)
    if len(widths) != depth + 1:
        raise ValueError(f"widths must have depth + 1 = {depth + 1} entries, got {len(widths)}")
    if widths[0] != n or widths[-1] != m:
        raise ValueError(
            f"widths must start with n = {n} and end with m = {m} for W of shape "
            f"{W.shape}, got {widths}"
        )
    return W, depth, widths
