"""The fiber phi^{-1}(X) as a ``geoopt.Manifold`` on packed networks (math.md §5).

Also home of ``_LayerPointSet``, the machinery shared with ``GroupOrbit``: a
submanifold of the layer space through a given point, with the induced Frobenius
metric, a group-action retraction, and points packed as ONE 1-d tensor
(``LayerPacking``: the layers' row-major entries, W_1 first). Every formula is the
array-generic one of ``dlnmanifolds.core`` (``core.fiber``, ``core.orbit``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import geoopt
import numpy as np
import torch

from dlnmanifolds.core import _backend
from dlnmanifolds.core._validate import as_weights, widths_of
from dlnmanifolds.core.fiber import (
    FiberSolver,
    _fiber_retraction,
    _fiber_solver,
    _gl_action,
    _projective_fiber_retraction,
    _reproject,
    fiber_dimension,
    orbit_is_open,
)
from dlnmanifolds.core.layer_retraction import second_order_retraction
from dlnmanifolds.core.network import _end_to_end
from dlnmanifolds.core.operator import require_full_rank
from dlnmanifolds.geoopt._layers import LayerPacking, projection_tangent_check
from dlnmanifolds.geoopt.manifolds import _check, _haar

RETRACTIONS = ("second_order", "exponential")


def _torch_layers(weights, name: str = "weights") -> tuple[torch.Tensor, ...]:
    """The layers as torch tensors: numpy arrays are converted here, once (float64)."""
    if isinstance(weights, (np.ndarray, torch.Tensor)) and weights.ndim == 3:
        weights = list(weights)
    if isinstance(weights, Sequence) and not isinstance(weights, (str, bytes)):
        weights = [
            torch.as_tensor(np.asarray(w, dtype=np.float64)) if not torch.is_tensor(w) else w
            for w in weights
        ]
    return as_weights(weights, name)


class _LayerPointSet(geoopt.Manifold):
    """Shared parts of ``Fiber`` and ``GroupOrbit`` (see the module docstring).

    Subclasses implement ``_build`` (per-point data: a factored solver, frames),
    ``_project`` (the tangent projection of a packed vector), ``_first_order``
    (the group-action retraction on layers), ``projx`` and ``random``.
    """

    ndim = 1
    reversible = False

    def __init__(self, layers: Sequence[torch.Tensor], dim: int, retraction: str):
        super().__init__()
        if retraction not in RETRACTIONS:
            raise ValueError(f"retraction must be one of {RETRACTIONS}, got {retraction!r}")
        self.packing = LayerPacking(widths_of(layers))
        self.dim = dim
        self.retraction = retraction
        # Buffers: ``manifold.to(device)`` moves them, ``manifold.device``/``dtype`` read them.
        self.register_buffer("base", self.packing.pack([w.detach() for w in layers]).clone())
        self.register_buffer("target", _end_to_end(list(layers)).detach().clone())
        self._cache: list[tuple[torch.Tensor, object]] = []

    # -- layers ------------------------------------------------------------------
    @property
    def widths(self) -> tuple[int, ...]:
        return self.packing.widths

    @property
    def depth(self) -> int:
        return self.packing.depth

    def layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The layer views W_p (d_p x d_{p-1}) of a packed point or vector."""
        self.packing.check(x, "x")
        return self.packing.unpack(x)

    def pack(self, layers: Sequence[torch.Tensor]) -> torch.Tensor:
        """The packed 1-d tensor of layers (W_1, ..., W_N)."""
        return self.packing.pack(list(layers))

    def end_to_end(self, x: torch.Tensor) -> torch.Tensor:
        """phi(x) = W_N ... W_1 (differentiable)."""
        return _end_to_end(self.layers(x))

    def extra_repr(self) -> str:
        return f"widths={self.widths}, retraction={self.retraction!r}"

    def _target(self, like: torch.Tensor) -> torch.Tensor:
        return self.target.to(dtype=like.dtype, device=like.device)

    # -- per-point data ----------------------------------------------------------
    def _data(self, x: torch.Tensor):
        """``_build`` at x, cached for the last two points (an optimizer step queries x
        and then the new point, which becomes the next x after ``copy_``); the key is the
        point's values, so in-place updates are seen."""
        key = x.detach()
        for stored, data in self._cache:
            if (
                stored.dtype == key.dtype
                and stored.device == key.device
                and torch.equal(stored, key)
            ):
                return data
        if not _backend.all_finite(key):
            raise ValueError("x must contain only finite values (found NaN or inf)")
        stored = key.clone()
        data = self._build(self.packing.unpack(stored))
        self._cache = [(stored, data)] + self._cache[:1]
        return data

    def _build(self, layers: list[torch.Tensor]):  # pragma: no cover - abstract
        raise NotImplementedError

    def _project(self, data, u: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _first_order(self, data, layers, xi) -> list:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- geoopt API --------------------------------------------------------------
    def _check_shape(self, shape, name):
        if tuple(shape) != (self.packing.size,):
            return False, (
                f"{name} must be a packed network of widths {self.widths}: a 1-d tensor of "
                f"length {self.packing.size} (the layers' entries, W_1 first), got shape "
                f"{tuple(shape)}"
            )
        return True, None

    def _phi_error(self, x: torch.Tensor) -> tuple[float, float]:
        target = self._target(x)
        return float((_end_to_end(self.layers(x)) - target).abs().max()), float(target.abs().max())

    def _check_point_on_manifold(self, x, *, atol=1e-5, rtol=1e-5):
        err, scale = self._phi_error(x)
        if not err <= atol + rtol * scale:
            return False, (
                f"x is not on the {self.name}: max |phi(x) - X| = {err:.3g} > "
                f"atol + rtol max |X| = {atol + rtol * scale:.3g}"
            )
        return True, None

    def _check_vector_on_tangent(self, x, u, *, atol=1e-5, rtol=1e-5):
        return projection_tangent_check(self.proju, x, u, atol, rtol)

    def proju(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Orthogonal (Frobenius) projection of the packed u onto the tangent space at x."""
        _check(("x", "u"), x, u)
        self.packing.check(u, "u")
        return self._project(self._data(x), u)

    def egrad2rgrad(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The Riemannian gradient of the induced Frobenius metric: ``proju(x, u)``."""
        return self.proju(x, u)

    def inner(self, x: torch.Tensor, u: torch.Tensor, v=None, *, keepdim=False) -> torch.Tensor:
        """The Frobenius inner product sum_p <u_p, v_p> of packed vectors (induced metric)."""
        v = u if v is None else v
        _check(("x", "u", "v"), x, u, v)
        return (u * v).sum(-1, keepdim=keepdim)

    def transp(self, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Vector transport by projection onto the tangent space at y."""
        _check(("x", "y", "v"), x, y, v)
        return self.proju(y, v)

    def retr(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The group-action retraction R_x(u), made second order (default) by
        R_x(u - P_x(R_x(u) - x - u)) (``core.layer_retraction.second_order_retraction``)."""
        _check(("x", "u"), x, u)
        self.packing.check(u, "u")
        if not _backend.all_finite(u):
            raise ValueError("u must contain only finite values (found NaN or inf)")
        data = self._data(x)
        layers = self.packing.unpack(x.detach())
        xi = self.packing.unpack(u)
        if self.retraction == "exponential":
            return self.pack(self._first_order(data, layers, xi))
        return self.pack(
            second_order_retraction(
                layers,
                xi,
                lambda v: self._first_order(data, layers, v),
                lambda v: self.packing.unpack(self._project(data, self.pack(v))),
            )
        )

    def expmap(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The retraction ``retr``: there is no closed-form exponential map here."""
        return self.retr(x, u)


class Fiber(_LayerPointSet):
    """The fiber F = phi^{-1}(X) through W (full-rank X = phi(W)), as a ``geoopt.Manifold``.

    All networks with one end-to-end matrix, a submanifold of the layer space with
    the induced Frobenius metric, of dimension sum_p d_p d_{p-1} - d_N d_0 (math.md
    §5). The geoopt counterpart of ``dlnmanifolds.pymanopt.Fiber``, with the same maps.

    **Points** are packed networks: one 1-d tensor of length sum_p d_p d_{p-1}, the
    layers' row-major entries, W_1 first (``layers(x)``, ``pack(layers)``,
    ``end_to_end(x)``); tangent vectors are packed the same way, so optimizer buffers
    are plain tensors of the parameter's shape. Single points (no batch axes);
    float32 or float64, CPU or CUDA (``manifold.to(device)`` moves the stored W and X).

    **Maps.**

    - ``proju`` = ``egrad2rgrad``: P_F u = u - Q Q^T u, Q from the thin QR of the
      matrix of Dphi(x)^* (``core.fiber.fiber_solver``; cached for the last two
      points, O(D (mn)^2) once per point, then O(D mn));
    - ``retr``: the GL action R_x(u)_p = e^{A_p} W_p e^{-A_{p-1}}, A the min-norm
      generators of u, re-projected onto phi = X (``core.fiber.fiber_retraction``:
      phi kept to rounding for any step), made second order by the tangential
      correction R(u - P(R(u) - x - u)) (``retraction="second_order"``, default;
      ``"exponential"``: first order); ``expmap`` is this retraction (documented:
      no closed-form exponential map);
    - ``inner``: Frobenius; ``transp``: projection at the new point;
    - ``projx(x)``: a point of the fiber near x, namely x with its last layer (its
      first when d_0 > d_N) changed by the least-norm amount that restores phi = X
      (``core.fiber._reproject``). It is the nearest point of the fiber among those
      that differ from x in that one layer (exact when the product of the other
      layers has full rank), the identity on the fiber; it is NOT the
      Frobenius-nearest point of the whole fiber, which has no closed form;
    - ``random``: g.W for g_p = O_p e^{S_p}, O_p Haar, S_p symmetric with entries of
      size 0.3/sqrt(d_p) (the orbit of the given point; for non-square widths the
      fiber may hold several GL orbits).

    Parameters
    ----------
    weights : (W_1, ..., W_N), torch tensors (numpy arrays are converted once, here,
        to float64 CPU tensors), with full-rank phi(W). Where the GL orbit of W is not
        open in the fiber (checked once, one SVD of the matrix of C_W: e.g. balanced
        factorizations with non-square widths, whose layers have rank r), the group step
        cannot follow every tangent vector and the first-order retraction is
        W + u re-projected onto phi = X (``core.fiber._projective_fiber_retraction``).
    retraction : "second_order" (default) or "exponential".

    Example
    -------
    >>> import torch
    >>> from dlnmanifolds.geoopt import Fiber
    >>> g = torch.Generator().manual_seed(0)
    >>> W = [torch.randn(3, 2, generator=g, dtype=torch.float64),
    ...      torch.randn(2, 3, generator=g, dtype=torch.float64)]
    >>> F = Fiber(W)
    >>> F.dim  # 3*2 + 2*3 - 2*2
    8
    >>> x = F.random(generator=g)
    >>> u = F.proju(x, torch.randn(12, generator=g, dtype=torch.float64))
    >>> y = F.retr(x, 0.1 * u)
    >>> bool(torch.allclose(F.end_to_end(y), W[1] @ W[0], atol=1e-12))
    True
    """

    name = "Fiber"

    def __init__(self, weights: Sequence[torch.Tensor], retraction: str = "second_order"):
        layers = _torch_layers(weights)
        require_full_rank(
            _end_to_end(layers), "weights", "a full-rank end-to-end matrix: Dphi surjective"
        )
        super().__init__(layers, fiber_dimension(widths_of(layers)), retraction)
        self._open_orbit = orbit_is_open(layers)

    def solver(self, x: torch.Tensor) -> FiberSolver:
        """The factored Dphi(x)^* at x (``core.fiber.FiberSolver``), cached."""
        _check(("x",), x)
        self.packing.check(x, "x")
        return self._data(x)

    def _build(self, layers):
        return _fiber_solver(layers)

    def _project(self, data: FiberSolver, u: torch.Tensor) -> torch.Tensor:
        return data.project_flat(u)

    def _first_order(self, data: FiberSolver, layers, xi) -> list:
        # Re-projected onto phi = X of the manifold, not of the (rounded) current point.
        if not self._open_orbit:
            return _projective_fiber_retraction(data.weights, xi, self._target(layers[0]))
        return _fiber_retraction(data.weights, xi, self._target(layers[0]))

    def projx(self, x: torch.Tensor) -> torch.Tensor:
        """x with one end layer moved (least norm) onto phi = X (class docstring)."""
        _check(("x",), x)
        layers = self.layers(x)
        if not _backend.all_finite(x):
            raise ValueError("x must contain only finite values (found NaN or inf)")
        return self.pack(_reproject(list(layers), self._target(x)))

    def random(self, *size, dtype=None, device=None, generator=None, **kwargs) -> torch.Tensor:
        """g.W for g_p = O_p e^{S_p} (class docstring); dtype/device default to W's."""
        if size and tuple(size) not in ((self.packing.size,), ((self.packing.size,),)):
            raise ValueError(f"size must be ({self.packing.size},) (or omitted), got {size}")
        dtype = self.base.dtype if dtype is None else dtype
        device = self.base.device if device is None else device
        group, inverse = [], []
        for d in self.widths[1:-1]:
            s = torch.randn(d, d, generator=generator, dtype=dtype, device=device)
            sym = (0.5 * (0.3 / math.sqrt(d))) * (s + s.T)
            rotation = _haar(d, d, generator, dtype, device)
            # (O e^S)^{-1} = e^{-S} O^T exactly: no inversion.
            group.append(rotation @ torch.linalg.matrix_exp(sym))
            inverse.append(torch.linalg.matrix_exp(-sym) @ rotation.T)
        base = self.packing.unpack(self.base.to(dtype=dtype, device=device))
        moved = _gl_action(base, group, inverse) if group else [w.clone() for w in base]
        target = self.target.to(dtype=dtype, device=device)
        return self.pack(_reproject(moved, target))

    random_normal = random
