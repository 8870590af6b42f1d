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

from dlnmanifolds.core import _backend


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


def check_positive_number(value: Any, name: str) -> float:
    """Return ``value`` as a float, finite and > 0, or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a finite number > 0, got {_describe(value)}")
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value}")
    return float(value)


def check_finite(array: np.ndarray, name: str) -> np.ndarray:
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
    return array


def as_real_array(value: Any, name: str) -> np.ndarray:
    """``value`` as a float64 array; complex, object or string data is a TypeError
    (numpy would drop an imaginary part with only a warning)."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real numeric array, got {_describe(value)}")
    try:
        array = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(f"{name} must be a real numeric array, got {_describe(value)}") from exc
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.floating)
        or np.issubdtype(array.dtype, np.integer)
        or np.issubdtype(array.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must be a real numeric array, got dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


def require_finite_arrays(arrays: Sequence[Any], name: str) -> None:
    """Hot-path guard: every array finite (cheap, run before any LAPACK call).

    numpy's SVD and eigensolvers may not return on inf, and print OpenBLAS
    ``DLASCL`` lines on NaN; one ``isfinite`` pass per new point avoids both.
    """
    for p, a in enumerate(arrays):
        check_finite(a, name if len(arrays) == 1 else f"{name}[{p}]")


def as_matrix(value: Any, name: str, batch: bool = False) -> np.ndarray:
    """Convert to a finite float array of ndim 2 (or >= 2 with ``batch``).

    A torch tensor is checked (float32/float64, shape, finite) and returned as it
    is: same dtype and device, no copy to numpy.
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real matrix, got {_describe(value)}")
    if not isinstance(value, np.ndarray) and _backend._is_torch(value):
        return _as_torch_matrix(value, name, batch)
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


def _as_torch_matrix(value: Any, name: str, batch: bool):
    _backend.check_float_dtype(value, name)
    if (value.ndim != 2 and not batch) or value.ndim < 2:
        expected = "a 2-d tensor" if not batch else "a tensor with ndim >= 2"
        raise ValueError(f"{name} must be {expected}, got shape {tuple(value.shape)}")
    if 0 in value.shape[-2:]:
        raise ValueError(f"{name} must be a non-empty matrix, got shape {tuple(value.shape)}")
    if not _backend.all_finite(value):
        raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
    return value


def as_weights(
    weights: Any, name: str = "weights", widths: tuple[int, ...] | None = None
) -> tuple[np.ndarray, ...]:
    """Validate a sequence of layer matrices (W_1, ..., W_N) with chained shapes.

    ``W_p`` has shape ``(d_p, d_{p-1})``, so ``W_{p+1}.shape[1] == W_p.shape[0]``.
    """
    if (isinstance(weights, np.ndarray) or _backend._is_torch(weights)) and weights.ndim == 3:
        weights = tuple(weights)
    if isinstance(weights, (str, bytes)) or not isinstance(weights, Sequence):
        raise TypeError(
            f"{name} must be a sequence (W_1, ..., W_N) of matrices, got {_describe(weights)}"
        )
    if len(weights) == 0:
        raise ValueError(f"{name} must contain at least one layer, got none")
    layers = tuple(as_matrix(w, f"{name}[{p}]") for p, w in enumerate(weights))
    # one backend, one device, one dtype family per network (TypeError naming the layer)
    _backend.namespace(*layers, names=tuple(f"{name}[{p}]" for p in range(len(layers))))
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
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng < 0:
        raise ValueError(f"{name} must be a non-negative int seed, got {rng}")
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


def _magnitudes(value: Any) -> tuple[float, float] | None:
    """(smallest nonzero, largest) |entry| of an array or a sequence of arrays."""
    try:
        if isinstance(value, np.ndarray):
            arrays = [value]
        elif (
            isinstance(value, (list, tuple))
            and value
            and all(isinstance(v, np.ndarray) for v in value)
        ):
            arrays = list(value)
        else:
            return None
        flat = np.concatenate([np.abs(np.asarray(a, dtype=float)).ravel() for a in arrays])
    except (TypeError, ValueError):
        return None
    flat = flat[np.isfinite(flat) & (flat > 0)]
    if flat.size == 0:
        return None
    return float(flat.min()), float(flat.max())


def guard_numerics(func):
    """Wrap a public function: an OverflowError, FloatingPointError or LinAlgError
    from the numerics becomes a ValueError naming the function and the argument
    whose entries are the most extreme (what to rescale).

    The math is homogeneous in the scale of its input, so out-of-range inputs
    (entries near 1e-160 or 1e160, whose squares leave double range) are the
    usual cause; the error says so instead of leaking a bare numpy error.
    """
    import functools
    import inspect

    signature = inspect.signature(func)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except (OverflowError, FloatingPointError, np.linalg.LinAlgError) as exc:
            try:
                bound = signature.bind(*args, **kwargs).arguments
            except TypeError:  # pragma: no cover - the call itself failed to bind
                bound = {}
            worst, name = None, None
            for arg, value in bound.items():
                mags = _magnitudes(value)
                if mags is None:
                    continue
                extreme = max(abs(np.log10(mags[0])), abs(np.log10(mags[1])))
                if worst is None or extreme > worst[0]:
                    worst, name = (extreme, mags), arg
            where = (
                f"; argument {name} has entries from {worst[1][0]:.3g} to {worst[1][1]:.3g} "
                f"in absolute value: rescale it to entries of order 1"
                if name is not None
                else ""
            )
            raise ValueError(
                f"{func.__name__}: numerical failure on this input "
                f"({type(exc).__name__}: {exc}){where}"
            ) from exc

    return wrapper


#: Scale window of the numerical geodesics: their ODEs square the entries.
SCALE_WINDOW = (1e-100, 1e100)


def guard_scale(
    func,
    names: Sequence[str],
    window: tuple[float, float] = SCALE_WINDOW,
    tolerances: Sequence[str] = (),
    counts: Sequence[str] = (),
):
    """Wrap a homogeneous function to reject arguments ``names`` whose largest
    entry is outside ``window``, where its ODE solvers overflow or stall.

    For ``dln_exp`` and ``dln_log``: g^N_{cX}(cY, cY) = c^{2/N} g^N_X(Y, Y)
    (A_{N,X} is homogeneous of degree 2(N-1)/N in X, math.md §4), so X -> cX is
    a homothety of g^N, maps geodesics to geodesics, and
    Exp_{cX}(cV) = c Exp_X(V), Log_{cX}(cY) = c Log_X(Y): the message says to
    rescale. ``tolerances`` (finite > 0) and ``counts`` (ints >= 1) are the
    scalar options checked on the way in."""
    import functools
    import inspect

    signature = inspect.signature(func)
    low, high = window

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            bound = signature.bind(*args, **kwargs).arguments
        except TypeError:
            return func(*args, **kwargs)
        for name in tolerances:
            if name in bound:
                check_positive_number(bound[name], name)
        for name in counts:
            if name in bound:
                check_positive_int(bound[name], name)
        for name in names:
            value = bound.get(name)
            if not isinstance(value, np.ndarray) or value.dtype.kind not in "fi":
                continue
            with np.errstate(invalid="ignore"):
                size = float(np.max(np.abs(value))) if value.size else 0.0
            if np.isfinite(size) and size > 0 and not (low <= size <= high):
                raise ValueError(
                    f"{name} has largest entry {size:.3g}, outside [{low:g}, {high:g}] "
                    f"where {func.__name__} is computed reliably; scaling all its matrix "
                    f"arguments by c scales the result by c, so call it on the arguments / c "
                    f"and multiply the result by c"
                )
        return func(*args, **kwargs)

    return wrapper
