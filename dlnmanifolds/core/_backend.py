"""The array backend of core: numpy arrays or torch tensors, one formula each.

``namespace(*arrays)`` returns the module that a core formula calls its functions
from: ``numpy`` itself for numpy inputs (the fast path: no wrapper layer, no
import of array-api-compat, one ``type`` test per argument), and
``array_api_compat.torch`` for torch tensors (CPU or CUDA), whose names and keyword
arguments (``axis=``, ``linalg.svd(..., full_matrices=)``, ``expm1``, ``where``,
``einsum``, ``hstack``, ``swapaxes``) are the ones numpy uses. A core formula is
written once against that common subset plus the few helpers below (``zeros``,
``diag``, ``all_finite``), which dispatch per backend where the two disagree
(creation functions need a device; reductions to a Python bool).

The checks of issue 16 ("Bad input") live here too: mixed backends in one call,
tensors on different devices, and integer, complex, float16 or bfloat16 tensors
are a ``TypeError`` naming the argument (numpy integer arrays keep their old
behaviour: core casts them to float64).

Example
-------
>>> import numpy as np
>>> namespace(np.ones(2), 3.0) is np
True
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

_NUMPY_TYPES = (np.ndarray, np.generic, float, int)
_NUMPY_OR_NONE = (np.ndarray, np.generic, float, int, type(None))


def _is_torch(value: Any) -> bool:
    # No torch import: if torch was never imported, nothing is a tensor. Subclasses
    # (geoopt.ManifoldParameter, nn.Parameter) are tensors too.
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, getattr(torch, "Tensor", ()))


def _describe(value: Any) -> str:
    if _is_torch(value):
        return f"a torch tensor of dtype {value.dtype} on {value.device}"
    if isinstance(value, np.ndarray):
        return f"a numpy array of dtype {value.dtype}"
    return type(value).__name__


def is_numpy(value: Any) -> bool:
    """True for numpy arrays and scalars (and Python numbers, which go with numpy)."""
    return isinstance(value, _NUMPY_TYPES)


def namespace(*arrays: Any, names: tuple[str, ...] | None = None):
    """The array namespace of ``arrays``: ``numpy`` or ``array_api_compat.torch``.

    Python numbers and ``None`` go with either. Torch tensors must share one
    device and be float32 or float64. ``names`` (one per array) name the argument
    in the error.

    Raises
    ------
    TypeError
        a numpy array and a torch tensor in one call; tensors on different devices;
        a tensor of dtype other than float32/float64.
    """
    # Fast path (numpy inputs): one isinstance per argument, no enumerate, no import.
    for a in arrays:
        if not isinstance(a, _NUMPY_OR_NONE):
            break
    else:
        return np
    return _namespace_checked(arrays, names)


def _namespace_checked(arrays: tuple, names: tuple[str, ...] | None):
    torch_index = None
    numpy_index = None
    for k, a in enumerate(arrays):
        if isinstance(a, np.ndarray):
            numpy_index = k if numpy_index is None else numpy_index
        elif _is_torch(a):
            torch_index = k if torch_index is None else torch_index
    if torch_index is None:
        return np
    label = (lambda k: names[k]) if names is not None else (lambda k: f"argument {k}")
    if numpy_index is not None:
        raise TypeError(
            f"mixed array backends: {label(torch_index)} is {_describe(arrays[torch_index])} "
            f"but {label(numpy_index)} is {_describe(arrays[numpy_index])}; pass all arrays "
            f"of one call as numpy arrays or all as torch tensors"
        )
    device = arrays[torch_index].device
    for k, a in enumerate(arrays):
        if not _is_torch(a):
            continue
        if a.device != device:
            raise TypeError(
                f"{label(k)} is on device {a.device} but {label(torch_index)} is on "
                f"{device}; move all tensors of one call to one device"
            )
        check_float_dtype(a, label(k))
    import array_api_compat.torch

    return array_api_compat.torch


def check_float_dtype(value: Any, name: str) -> None:
    """TypeError naming ``name`` unless a torch tensor is float32 or float64."""
    import torch

    if value.dtype not in (torch.float32, torch.float64):
        kind = (
            "complex"
            if value.dtype.is_complex
            else "integer or boolean"
            if not value.dtype.is_floating_point
            else "half precision"
        )
        raise TypeError(
            f"{name} must be a real float32 or float64 tensor, got {kind} dtype {value.dtype}"
        )


def dtype_eps(array: Any) -> float:
    """Machine epsilon of ``array``'s float dtype (2.2e-16 in float64, 1.2e-7 in float32)."""
    if is_numpy(array):
        return float(np.finfo(np.asarray(array).dtype).eps) if _floating(array) else 2.2e-16
    import torch

    return float(torch.finfo(array.dtype).eps)


def _floating(array: Any) -> bool:
    return np.issubdtype(np.asarray(array).dtype, np.floating)


def zeros(like: Any, shape: tuple[int, ...]):
    """Zeros of ``shape`` with the dtype and device of ``like``."""
    if is_numpy(like):
        return np.zeros(shape, dtype=like.dtype if isinstance(like, np.ndarray) else float)
    return like.new_zeros(shape)


def eye_batch(like: Any, n: int):
    """The n x n identity (``eye``) broadcast over the batch axes of ``like`` (a read-only
    view for numpy), with its dtype and device."""
    batch = tuple(like.shape[:-2])
    identity = eye(like, n)
    if not batch:
        return identity
    if is_numpy(like):
        return np.broadcast_to(identity, batch + (n, n))
    return identity.expand(batch + (n, n))


def diag(vector: Any):
    """The square matrix with ``vector`` (1-d) on its diagonal."""
    if is_numpy(vector):
        return np.diag(vector)
    import torch

    return torch.diag(vector)


def all_finite(array: Any) -> bool:
    """Python bool: every entry finite (one pass; a device sync for CUDA tensors)."""
    if is_numpy(array):
        return bool(np.all(np.isfinite(array)))
    import torch

    return bool(torch.isfinite(array).all())


def to_float(value: Any) -> float:
    """A 0-d array or tensor as a Python float."""
    return float(value)


def copy(array: Any):
    """A fresh copy (numpy ``copy``, torch ``clone``)."""
    return array.copy() if is_numpy(array) else array.clone()


def svdvals(x: Any):
    """Singular values (batched, decreasing) without the vectors."""
    if is_numpy(x):
        return np.linalg.svd(x, compute_uv=False)
    import torch

    return torch.linalg.svdvals(x)


def expm(x: Any):
    """The matrix exponential: ``scipy.linalg.expm`` or ``torch.linalg.matrix_exp``
    (float64 through ``_torch_expm``, which avoids its inaccurate degree-8 branch)."""
    if is_numpy(x):
        import scipy.linalg

        return scipy.linalg.expm(x)
    return _torch_expm(x)


# --- helpers of the balanced core (core/balanced.py, core/balanced_tangent.py)


def empty(like: Any, shape: tuple[int, ...]):
    """Uninitialised array of ``shape`` with the float dtype and device of ``like``."""
    if is_numpy(like):
        return np.empty(shape, dtype=like.dtype if isinstance(like, np.ndarray) else float)
    return like.new_empty(shape)


def asarray_like(array: Any, like: Any):
    """A numpy float ``array`` (e.g. random numbers drawn by a numpy Generator) in the
    backend, dtype and device of ``like``; unchanged for numpy ``like``.
    Construction-time only (a host-to-device copy), never inside a step."""
    if is_numpy(like):
        return array
    import torch

    return torch.as_tensor(np.asarray(array), dtype=like.dtype, device=like.device)


def arange_like(like: Any, n: int):
    """The integer indices 0..n-1 on the device of ``like`` (index maps for ``take``)."""
    if is_numpy(like):
        return np.arange(n)
    import torch

    return torch.arange(n, device=like.device)


def triu_indices_like(like: Any, r: int, k: int = 1):
    """(rows, cols) of the entries above the k-th diagonal of an r x r matrix, row-major
    (numpy ``triu_indices`` order), as index arrays on the device of ``like``."""
    if is_numpy(like):
        return np.triu_indices(r, k=k)
    import torch

    rows, cols = torch.triu_indices(r, r, k, device=like.device)
    return rows, cols


def count_above(values: Any, threshold: Any) -> int:
    """Python int: the number of entries of ``values`` greater than ``threshold``."""
    return int((values > threshold).sum())


# --- triangular and least-squares solves (core.fiber) ------------------------------


def solve_triangular(r: Any, b: Any, transpose: bool = False):
    """x with R x = b (``transpose=False``) or R^T x = b, R upper triangular.

    ``b`` is a vector or a matrix of right-hand sides (columns). numpy:
    ``scipy.linalg.solve_triangular``; torch: ``torch.linalg.solve_triangular``
    (CPU or CUDA), on R^T as a lower-triangular matrix for ``transpose``.
    """
    if is_numpy(r):
        import scipy.linalg

        return scipy.linalg.solve_triangular(r, b, trans="T" if transpose else "N")
    import torch

    column = b.ndim == 1
    rhs = b[:, None] if column else b
    a = r.mT if transpose else r
    x = torch.linalg.solve_triangular(a, rhs, upper=not transpose)
    return x[:, 0] if column else x


def lstsq(a: Any, b: Any, rcond: float | None = None):
    """Minimum-norm least-squares solution x of a x ~ b (SVD-based, rank revealing).

    Singular values of ``a`` at most ``rcond`` times the largest are treated as zero
    (default: eps * max(a.shape), numpy's and torch's convention). numpy: LAPACK
    gelsd (``numpy.linalg.lstsq``); torch CPU: gelsd too; torch CUDA, whose only
    driver (gels) assumes full rank, the same solution from the thin SVD,
    V diag(1/s, s > rcond s_1) U^T b. ``b`` is a vector or a matrix (columns).
    """
    if is_numpy(a):
        return np.linalg.lstsq(a, b, rcond=rcond)[0]
    import torch

    column = b.ndim == 1
    rhs = b[:, None] if column else b
    if a.device.type == "cpu":
        x = torch.linalg.lstsq(a, rhs, rcond=rcond, driver="gelsd").solution
    else:
        u, s, vh = torch.linalg.svd(a, full_matrices=False)
        cut = (float(torch.finfo(a.dtype).eps) * max(a.shape) if rcond is None else rcond) * s[0]
        inverse = torch.where(s > cut, 1.0 / torch.where(s > cut, s, 1.0), 0.0)
        x = vh.mT @ (inverse[:, None] * (u.mT @ rhs))
    return x[:, 0] if column else x


def kron(a: Any, b: Any):
    """Kronecker product of two matrices, kron(A, B)[(i, k), (j, l)] = A[i, j] B[k, l].

    One broadcast product and a reshape on both backends (``torch.kron`` rejects
    transposed, non-contiguous inputs; ``numpy.kron`` is no faster).
    """
    (m, n), (p, q) = a.shape, b.shape
    return (a[:, None, :, None] * b[None, :, None, :]).reshape(m * p, n * q)


def _torch_expm(x: Any):
    """``torch.linalg.matrix_exp`` with float64 matrices of 1-norm in (1e-4, 0.06) shifted.

    torch 2.13's float64 matrix_exp uses a degree-8 Taylor polynomial for 1-norms in
    (3.4e-4, 0.05] that loses up to ~4e-11 relative (measured against scipy's expm and
    against exact rotations: a 2 x 2 skew matrix of angle 0.049 is off by 2.3e-10),
    where every other branch is at ~1e-16. exp(A) = e^{-1} exp(A + I) exactly (I commutes
    with A), and A + I has 1-norm near 1, where the degree-18 branch is accurate; the
    shift rounds A's diagonal at eps, so the result keeps ~1e-16. Per matrix of a batch,
    with no host sync. float32 is left alone (its branches are within its eps).
    """
    import torch

    if x.dtype != torch.float64:
        return torch.linalg.matrix_exp(x)
    norm = x.abs().sum(-2).amax(-1)
    shift = ((norm > 1e-4) & (norm < 0.06)).to(x.dtype)
    eye = torch.eye(x.shape[-1], dtype=x.dtype, device=x.device)
    out = torch.linalg.matrix_exp(x + shift[..., None, None] * eye)
    return out * torch.exp(-shift)[..., None, None]


# --- creation helpers of the Geomstats adapters --------------------------------


def eye(like: Any, n: int):
    """The n x n identity with the dtype and device of ``like`` (a fresh, writable array)."""
    if is_numpy(like):
        return np.eye(n, dtype=like.dtype if _floating(like) else float)
    import torch

    return torch.eye(n, dtype=like.dtype, device=like.device)


# --- index tensors (matrix completion's Omega) --------------------------


def check_index_tensor(value: Any, like: Any, name: str) -> None:
    """TypeError naming ``name`` unless ``value`` is an int64 torch tensor on ``like``'s
    device (the observed indices of a completion problem held as tensors)."""
    import torch

    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be an int64 torch tensor, got {_describe(value)}")
    if value.dtype != torch.int64:
        raise TypeError(f"{name} must be an int64 torch tensor, got dtype {value.dtype}")
    if value.device != like.device:
        raise TypeError(
            f"{name} is on device {value.device} but the point is on {like.device}; move "
            f"the problem with problem.to(device=...)"
        )


# --- kernels of the invariant, orthographic, entropy and free-energy core -------


def float_range(like: Any, n: int):
    """0.0, 1.0, ..., n - 1 in the float dtype and on the device of ``like``."""
    if is_numpy(like):
        return np.arange(n, dtype=float)
    import torch

    return torch.arange(n, dtype=like.dtype, device=like.device)


def lu_factor(a: Any) -> tuple[Any, float]:
    """LU factors of a square matrix and its 1-norm reciprocal condition number.

    numpy: ``scipy.linalg.lu_factor`` and LAPACK's O(n^2) estimate ``dgecon`` from the
    factors. torch (no ``gecon``): ``torch.linalg.lu_factor`` and the exact
    1 / (|A|_1 |A^{-1}|_1), with A^{-1} from the factors (O(n^3), the order of the
    factorization itself). Either way a singular matrix gives rcond 0 or NaN, never an
    exception: the caller compares rcond with its threshold.
    """
    if is_numpy(a):
        import warnings

        import scipy.linalg

        with warnings.catch_warnings():  # a singular pivot is the caller's rcond check
            warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
            factor = scipy.linalg.lu_factor(a, check_finite=False)
        rcond, _ = scipy.linalg.lapack.dgecon(factor[0], np.linalg.norm(a, 1), norm="1")
        return factor, float(rcond)
    import torch

    lu, pivots, _ = torch.linalg.lu_factor_ex(a)
    eye = torch.eye(a.shape[-1], dtype=a.dtype, device=a.device)
    inverse = torch.linalg.lu_solve(lu, pivots, eye)
    norms = torch.linalg.matrix_norm(a, ord=1) * torch.linalg.matrix_norm(inverse, ord=1)
    return (lu, pivots), float(1.0 / norms)


def lu_solve(factor: Any, b: Any):
    """Solve A x = b from ``lu_factor``'s factors; b a vector (n,) or a matrix (n, k)."""
    if isinstance(factor[0], np.ndarray):
        import scipy.linalg

        return scipy.linalg.lu_solve(factor, b, check_finite=False)
    import torch

    lu, pivots = factor
    if b.ndim == 1:
        return torch.linalg.lu_solve(lu, pivots, b[:, None])[:, 0]
    return torch.linalg.lu_solve(lu, pivots, b)


def namespace_of_layers(**groups: Any):
    """``namespace`` of every array in the given sequences of layers (``None`` skipped);
    a TypeError names the offending layer as ``group[p]`` (e.g. ``xi[1]``)."""
    arrays = [a for g in groups.values() if g is not None for a in g]
    for a in arrays:
        if not isinstance(a, _NUMPY_OR_NONE):
            break
    else:
        return np
    names = tuple(f"{k}[{p}]" for k, g in groups.items() if g is not None for p in range(len(g)))
    return namespace(*arrays, names=names)
