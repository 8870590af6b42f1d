"""Boundary checks, batch handling and point layouts for the Geomstats adapters.

Backends. The adapters run on the Geomstats backend selected at import time: numpy (or
autograd) arrays, or torch tensors for ``GEOMSTATS_BACKEND=pytorch``. A point of the other
kind is a ``TypeError`` naming the argument; so are tensors of several devices or dtypes in
one call, and integer, complex, float16 or bfloat16 tensors (``core._backend``). The core
formulas the adapters call are array-generic, so tensors stay tensors (same dtype and
device, no numpy round trip), except in the geodesic solvers of ``core.dln_geodesic``
(scipy's DOP853 and the shooting): those cross ONE boundary, ``via_numpy``.

Batches. Geomstats broadcasts a single point against a batch; we allow exactly that and
reject two batches of different shapes with a ValueError (numpy would silently broadcast
(2, 1) with (3,)).

Layouts (``Packing``). A network W = (W_1, ..., W_N), W_p of shape (d_p, d_{p-1}), is one
array: for equal widths d_p = n the stack of shape (..., N, n, n); otherwise the packed
flat vector of shape (..., sum_p d_p d_{p-1}) holding the layers' row-major entries, W_1
first, the layout of ``dlnmanifolds.geoopt``'s ``LayerPacking`` (and of Geomstats' product
spaces with a flat point shape). The same two layouts hold lists of square blocks (the
invariants G_p and the group elements Q_p, of shape (d_p, d_p), p = 1..N-1).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import geomstats.backend as gs
import numpy as np

from dlnmanifolds.core import _backend
from dlnmanifolds.core.operator import RANK_RTOL

__all__ = [
    "TORCH_BACKEND",
    "Packing",
    "as_backend_array",
    "as_points",
    "broadcast",
    "common_batch",
    "from_numpy",
    "require_full_rank",
    "via_numpy",
]

#: True when Geomstats runs on its pytorch backend (points are torch tensors).
TORCH_BACKEND: bool = gs.__name__.endswith("pytorch")


def _kind(value: Any) -> str:
    if _backend._is_torch(value):
        return f"a torch tensor of dtype {value.dtype} on {value.device}"
    if isinstance(value, np.ndarray):
        return f"a numpy array of dtype {value.dtype}"
    return type(value).__name__


def as_backend_array(value: Any, name: str):
    """``value`` as an array of the active backend, without shape or finiteness checks.

    pytorch backend: a float32/float64 tensor (TypeError naming ``name`` for a numpy array
    or any other object, and for integer, complex, float16 or bfloat16 tensors). numpy
    backend: a float64 numpy array (TypeError for a tensor, complex or non-numeric data).
    """
    if TORCH_BACKEND:
        if not _backend._is_torch(value):
            raise TypeError(
                f"{name} must be a torch tensor (Geomstats' pytorch backend is selected, "
                f"GEOMSTATS_BACKEND=pytorch), got {_kind(value)}"
            )
        _backend.check_float_dtype(value, name)
        return value
    if _backend._is_torch(value):
        raise TypeError(
            f"{name} must be a numpy array (Geomstats' {gs.__name__.split('.')[-1]} "
            f"backend is selected; set GEOMSTATS_BACKEND=pytorch for tensors), got "
            f"{_kind(value)}"
        )
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a real array, got {type(value).__name__}")
    array = np.asarray(value)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
    ):
        raise TypeError(f"{name} must be a real numeric array, got dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


def as_points(value: Any, name: str, shape: tuple[int, ...]):
    """A finite float array (numpy backend) or tensor (pytorch backend) whose trailing axes
    are ``shape``.

    Raises ``TypeError`` as ``as_backend_array``; ``ValueError`` for a wrong trailing shape
    or NaN/inf entries.
    """
    array = as_backend_array(value, name)
    k = len(shape)
    got = tuple(array.shape)
    if len(got) < k or got[len(got) - k :] != shape:
        if k == 3 and len(got) >= 3 and got[-2:] == shape[-2:]:
            raise ValueError(
                f"{name}: depth mismatch, expected {shape[0]} stacked layers (..., "
                f"{shape[0]}, {shape[1]}, {shape[2]}), got {got[-3]} (shape {got})"
            )
        raise ValueError(f"{name} must have trailing shape {shape} (batch axes first), got {got}")
    # A meta tensor holds no values (it can only be a device mismatch, reported by
    # common_batch as a TypeError).
    if getattr(getattr(array, "device", None), "type", "cpu") != "meta":
        if not _backend.all_finite(array):
            raise ValueError(f"{name} must contain only finite values (found NaN or inf)")
    return array


def common_batch(point_ndim: int, **arrays: Any) -> tuple[int, ...]:
    """The shared batch shape: all batched arguments must have the same batch shape.

    Also the backend check of one call: tensors on one device with one dtype (TypeError
    naming the arguments otherwise).
    """
    names = tuple(arrays)
    _backend.namespace(*arrays.values(), names=names)
    if TORCH_BACKEND:
        dtypes = {k: a.dtype for k, a in arrays.items()}
        if len(set(dtypes.values())) > 1:
            detail = ", ".join(f"{k}: {d}" for k, d in dtypes.items())
            raise TypeError(f"the tensors of one call must share one dtype, got {detail}")
    batched = {k: tuple(a.shape[: a.ndim - point_ndim]) for k, a in arrays.items()}
    shapes = {s for s in batched.values() if s}
    if len(shapes) > 1:
        detail = ", ".join(f"{k}: {s}" for k, s in batched.items())
        raise ValueError(
            "batched arguments must have the same batch shape (or be single points), got " + detail
        )
    return shapes.pop() if shapes else ()


def broadcast(array: Any, batch: tuple[int, ...], point_ndim: int):
    shape = tuple(batch) + tuple(array.shape[array.ndim - point_ndim :])
    if tuple(array.shape) == shape:
        return array
    return _backend.namespace(array).broadcast_to(array, shape)


def require_full_rank(x: Any, name: str) -> None:
    """ValueError naming ``name`` unless every matrix of x (..., m, n) has full rank
    min(m, n): sigma_min > RANK_RTOL sigma_max (numpy or torch; no copy)."""
    s = _backend.svdvals(x)
    xp = _backend.namespace(s)
    smax = s[..., 0]
    ratio = s[..., -1] / xp.where(smax > 0, smax, xp.ones_like(smax))
    if bool(xp.any(ratio <= RANK_RTOL)) or bool(xp.any(smax == 0)):
        m, n = x.shape[-2:]
        what = "be invertible (full rank)" if m == n else f"have full rank min(m, n) = {min(m, n)}"
        raise ValueError(
            f"{name} must {what}; its smallest singular value is "
            f"{float(xp.min(ratio)):.3g} times its largest (need > {RANK_RTOL:g})"
        )


def from_numpy(array: np.ndarray, like: Any = None):
    """A freshly created numpy array as a point of the active backend: itself (numpy), or a
    tensor with the dtype and device of ``like`` (default float64 on the CPU)."""
    if not TORCH_BACKEND:
        return array
    import torch

    if like is None:
        return torch.as_tensor(np.ascontiguousarray(array), dtype=torch.float64)
    return torch.as_tensor(np.ascontiguousarray(array), dtype=like.dtype, device=like.device)


def via_numpy(func: Callable[..., np.ndarray], *arrays: Any) -> Any:
    """Run a numpy/scipy core routine (the geodesic solvers of ``core.dln_geodesic``) on
    tensors: the ONE numpy boundary of the adapters.

    numpy inputs: ``func(*arrays)`` itself. Torch inputs: CPU float64 numpy copies in (detached:
    no autograd through the solver), ``func`` on them, and the result back as a tensor of the
    first input's dtype and device.
    """
    if not any(_backend._is_torch(a) for a in arrays):
        return func(*arrays)
    like = next(a for a in arrays if _backend._is_torch(a))
    host = [
        a.detach().to(device="cpu").double().numpy() if _backend._is_torch(a) else a for a in arrays
    ]
    return from_numpy(np.asarray(func(*host)), like)


class Packing:
    """One array for a list of matrices of shapes ``shapes`` (module docstring).

    ``stacked`` (all shapes equal to (a, b)): shape (..., len, a, b); otherwise flat, shape
    (..., sum of sizes), row-major entries, the first matrix first. ``unpack`` returns views
    (numpy or torch alike), ``pack`` builds the array.
    """

    def __init__(self, shapes: Sequence[tuple[int, int]], stacked: tuple[int, int] | None):
        self.shapes = tuple(tuple(int(d) for d in s) for s in shapes)
        self.stacked = stacked
        sizes = [a * b for a, b in self.shapes]
        self.offsets = tuple(sum(sizes[:p]) for p in range(len(sizes) + 1))
        self.size = self.offsets[-1]
        if stacked is not None:
            self.shape: tuple[int, ...] = (len(self.shapes),) + tuple(stacked)
        else:
            self.shape = (self.size,)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def unpack(self, x: Any) -> list:
        """Views of shape (..., a_p, b_p) of the packed array x (..., *shape)."""
        if self.stacked is not None:
            return [x[..., p, :, :] for p in range(len(self.shapes))]
        batch = tuple(x.shape[:-1])
        return [
            x[..., self.offsets[p] : self.offsets[p + 1]].reshape(batch + shape)
            for p, shape in enumerate(self.shapes)
        ]

    def pack(self, mats: Sequence[Any], like: Any = None, batch: tuple[int, ...] = ()) -> Any:
        """The packed array of matrices (..., a_p, b_p); with no matrices (depth 1
        invariants), zeros of shape batch + shape with the dtype and device of ``like``."""
        if not mats:
            return _backend.zeros(like, tuple(batch) + self.shape)
        xp = _backend.namespace(*mats)
        if self.stacked is not None:
            return xp.stack(list(mats), axis=-3)
        batch = tuple(mats[0].shape[:-2])
        return xp.concat([m.reshape(batch + (-1,)) for m in mats], axis=-1)


def layer_packing(widths: tuple[int, ...]) -> Packing:
    """The layout of networks of widths (d_0, ..., d_N): W_p of shape (d_p, d_{p-1})."""
    square = len(set(widths)) == 1
    shapes = [(widths[p + 1], widths[p]) for p in range(len(widths) - 1)]
    return Packing(shapes, (widths[0], widths[0]) if square else None)


def block_packing(widths: tuple[int, ...]) -> Packing:
    """The layout of (B_1, ..., B_{N-1}), B_p of shape (d_p, d_p) (invariants, rotations)."""
    square = len(set(widths)) == 1
    shapes = [(d, d) for d in widths[1:-1]]
    return Packing(shapes, (widths[0], widths[0]) if square else None)
