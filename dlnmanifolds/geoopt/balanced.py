"""The balanced manifold of deep linear networks as a ``geoopt.Manifold`` (math.md §2).

A point is a whole balanced network (W_1, ..., W_N) packed into ONE 1-d tensor
(``LayerPacking``: the layers' row-major entries, W_1 first), so that
``geoopt.ManifoldParameter`` and the Riemannian optimizers (one momentum / Adam
buffer per parameter) see an ordinary tensor. Every map is a formula of
``dlnmanifolds.core`` applied to views of that tensor; the adapter only packs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import geoopt
import torch

from dlnmanifolds.core import _backend
from dlnmanifolds.core.balanced import (
    BalancedFrames,
    _balanced_frames,
    _complement,
    _layers_from_frames,
    _rebalance,
    balanced_dimension,
    full_rank_widths,
)
from dlnmanifolds.core.balanced_tangent import tangent_projection
from dlnmanifolds.core.layer_retraction import second_order_retraction
from dlnmanifolds.core.network import _end_to_end, _imbalance
from dlnmanifolds.core.operator import RANK_RTOL
from dlnmanifolds.geoopt._layers import LayerPacking, projection_tangent_check
from dlnmanifolds.geoopt.manifolds import _check, _haar, _random_spectrum

#: How many recent points keep their frames (the point of a step and the new point
#: the momentum is transported to, which is the next step's point).
_FRAME_CACHE_SIZE = 2


def _require_finite(value: torch.Tensor, name: str) -> None:
    # Before LAPACK: an SVD of non-finite entries raises a bare LinAlgError (or hangs).
    if not _backend.all_finite(value):
        raise ValueError(
            f"{name} must contain only finite values (found NaN or inf; a diverged step? "
            f"lower the learning rate)"
        )


class BalancedManifold(geoopt.Manifold):
    """Balanced networks with full-rank end-to-end matrix, as a ``geoopt.Manifold``.

    M = {W : W_{p+1}^T W_{p+1} = W_p W_p^T (p = 1..N-1), rank W_N ... W_1 = r},
    r = min(d_0, d_N), a Riemannian submanifold of the layer space with the
    induced Frobenius metric (Arora, Cohen & Hazan 2018; Menon 2024; math.md §2.2-2.5).
    The same manifold, with the same maps, as ``dlnmanifolds.pymanopt.BalancedManifold``.

    **Representation.** A point is one tensor of shape (D,), D = sum_p d_p d_{p-1}
    (``layers(x)`` gives the views W_p, ``pack(layers)`` the tensor); tangent vectors
    have the same layout. Batched points (..., D) (several networks in one parameter)
    go through every map at once: the core formulas are batched (batched SVDs, QR and
    pair sweeps), no loop over the networks.

    **Maps** (formulas of ``dlnmanifolds.core``):

    - ``proju(x, u)`` = ``egrad2rgrad(x, u)``: the orthogonal (Frobenius) projection
      P_T onto T_W M in the balanced frames (math.md §2.4, O(N d^3)); with the induced
      metric the Riemannian gradient is the projected Euclidean gradient;
    - ``inner(x, u, v)`` = sum_p tr(u_p^T v_p);
    - ``retr(x, u)``: the polar re-balancing R(W + u) (``core.balanced._rebalance``),
      made second order by R(u - P_T(R(u) - W - u)) (``retraction="second_order"``,
      the default; ``core.layer_retraction``) or first order (``"polar"``); both land
      exactly on M. ``expmap`` is this retraction (no closed-form exponential map of
      the balanced manifold is known; documented, as in ``DLNMatrices``);
    - ``transp(x, y, v)`` = P_T at y (projection transport);
    - ``projx(x)``: the re-balancing map, the identity on M (to round-off);
    - ``random``: a balanced network over U diag(s) V^T, s ~ U[0.5, 2], Haar frames
      and gauge, from a ``torch.Generator``.

    The frames of the last two points are kept (compared by value): ``retr`` keeps
    those of the point it returns, read off the re-balancing's own SVDs (Q_p = R_p V,
    ``core.balanced._rebalance``), so in a training loop ``egrad2rgrad``, the
    projection inside ``retr`` and ``transp`` at the new point (the next step's
    point) compute no frames at all after the first step: a second-order step costs
    2(N + 1) thin SVDs, all in the two re-balancings. Frames are taken from
    ``x.detach()``: the maps are not differentiated through (use them in optimizer
    steps, not inside a loss).
    float32 and float64, CPU or CUDA (nothing leaves the device).

    Parameters
    ----------
    widths : (d_0, ..., d_N), N >= 1; every width must be >= min(d_0, d_N).
    retraction : "second_order" (default) or "polar".

    Example
    -------
    >>> import torch
    >>> from dlnmanifolds import imbalance
    >>> manifold = BalancedManifold((3, 4, 2))
    >>> x = manifold.random(generator=torch.Generator().manual_seed(0))
    >>> tuple(x.shape), [tuple(w.shape) for w in manifold.layers(x)]
    ((20,), [(4, 3), (2, 4)])
    >>> u = manifold.proju(x, torch.ones_like(x))
    >>> bool(torch.allclose(manifold.proju(x, u), u))  # a projection
    True
    >>> y = manifold.retr(x, 0.1 * u)
    >>> bool(imbalance(list(manifold.layers(y))) < 1e-12)  # still balanced
    True
    """

    name = "BalancedManifold"
    ndim = 1
    reversible = False

    def __init__(self, widths: Sequence[int], retraction: str = "second_order"):
        super().__init__()
        widths, rank = full_rank_widths(widths)
        if retraction not in ("second_order", "polar"):
            raise ValueError(f"retraction must be 'second_order' or 'polar', got {retraction!r}")
        self.packing = LayerPacking(widths)
        self.widths = widths
        self.rank = rank
        #: dim M = r + sum_p (d_p r - r(r+1)/2) (math.md §2.3)
        self.dim = balanced_dimension(widths, rank)
        self.retraction_order = 2 if retraction == "second_order" else 1
        self._frame_cache: list[tuple[torch.Tensor, BalancedFrames]] = []

    @property
    def depth(self) -> int:
        return self.packing.depth

    def extra_repr(self) -> str:
        order = "second_order" if self.retraction_order == 2 else "polar"
        return f"widths={self.widths}, retraction={order!r}"

    # -- packing ---------------------------------------------------------------
    def _unpack(self, x: torch.Tensor, name: str) -> list[torch.Tensor]:
        # One packed network (D,) or a batch (..., D): views of shape (..., d_p, d_{p-1}).
        self.packing.check(x, name)
        return self.packing.unpack(x)

    def _pair(self, x: torch.Tensor, u: torch.Tensor, names=("x", "u")):
        """The layers of x and u (one network or a batch of the same shape)."""
        if u.shape != x.shape:
            raise ValueError(
                f"{names[1]} must have the shape of {names[0]} {tuple(x.shape)}, got "
                f"{tuple(u.shape)}"
            )
        return self._unpack(x, names[0]), self._unpack(u, names[1])

    def layers(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The layers W_1, ..., W_N of a packed point or tangent (views, differentiable;
        (..., d_p, d_{p-1}) for a batch)."""
        _check(("x",), x)
        return self._unpack(x, "x")

    def pack(self, layers: Sequence[torch.Tensor]) -> torch.Tensor:
        """The packed tensor of layers (W_1, ..., W_N)."""
        _check(tuple(f"layers[{p}]" for p in range(len(layers))), *layers)
        return self.packing.pack(layers)

    def end_to_end(self, x: torch.Tensor) -> torch.Tensor:
        """phi(W) = W_N ... W_1 of a packed point (differentiable: write the loss on it)."""
        return _end_to_end(self.layers(x))

    def _frames(self, x: torch.Tensor) -> BalancedFrames:
        """The balanced frames of x (math.md §2.2), reused for the last two points."""
        x = x.detach()
        for k, (key, frames) in enumerate(self._frame_cache):
            if key.shape == x.shape and key.dtype == x.dtype and key.device == x.device:
                if torch.equal(key, x):
                    if k:  # most recent first
                        self._frame_cache.insert(0, self._frame_cache.pop(k))
                    return frames
        _require_finite(x, "x")
        frames = _balanced_frames(self._unpack(x, "x"), self.rank)
        self._remember(x, frames)
        return frames

    def _remember(self, x: torch.Tensor, frames: BalancedFrames) -> None:
        self._frame_cache.insert(0, (x.detach().clone(), frames))
        del self._frame_cache[_FRAME_CACHE_SIZE:]

    # -- membership --------------------------------------------------------------
    def _check_shape(self, shape, name):
        if len(shape) < 1 or shape[-1] != self.packing.size:
            return False, (
                f"{name} must have shape (..., {self.packing.size}) for widths {self.widths}, "
                f"got {tuple(shape)}"
            )
        return True, None

    def _check_point_on_manifold(self, x, *, atol=1e-5, rtol=1e-5):
        """Balanced (max |G_p| <= atol max(1, max |W_p|^2)) with end-to-end rank r
        (every network of a batch)."""
        for row in x.detach().reshape(-1, self.packing.size):
            ok, reason = self._check_one_point(row, atol)
            if not ok:
                return ok, reason
        return True, None

    def _check_one_point(self, x, atol):
        layers = self._unpack(x, "x")
        scale = max(1.0, float(x.detach().abs().max()) ** 2)
        off = _imbalance(layers)
        if off > atol * scale:
            return False, (
                f"x is not balanced: max |W_(p+1)^T W_(p+1) - W_p W_p^T| = {off:.3g} > "
                f"{atol * scale:.3g}"
            )
        s = torch.linalg.svdvals(_end_to_end(layers))
        if not bool(s[-1] > RANK_RTOL * s[0]):
            ratio = float(s[-1] / s[0]) if float(s[0]) > 0 else 0.0
            return False, (
                f"x must have a full-rank end-to-end matrix (rank {self.rank}): "
                f"sigma_min / sigma_max = {ratio:.3g}"
            )
        return True, None

    def _check_vector_on_tangent(self, x, u, *, atol=1e-5, rtol=1e-5):
        """u = P_T u up to atol + rtol |u| (the tangent space of math.md §2.3)."""
        return projection_tangent_check(self.proju, x, u, atol, rtol)

    # -- metric ----------------------------------------------------------------
    def projx(self, x: torch.Tensor) -> torch.Tensor:
        """The polar re-balancing of x (onto M; the identity on M to round-off)."""
        _check(("x",), x)
        return self.packing.pack(_rebalance(self._unpack(x, "x")))

    def proju(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """P_T u, the orthogonal projection onto T_x M (math.md §2.4)."""
        _check(("x", "u"), x, u)
        layers = self._pair(x, u)[1]
        return self.packing.pack(tangent_projection(self._frames(x), layers))

    def egrad2rgrad(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The Riemannian gradient of the induced metric: P_T of the Euclidean one."""
        return self.proju(x, u)

    def inner(self, x: torch.Tensor, u: torch.Tensor, v=None, *, keepdim=False) -> torch.Tensor:
        """<u, v>_F = sum_p tr(u_p^T v_p)."""
        v = u if v is None else v
        _check(("x", "u", "v"), x, u, v)
        value = (u * v).sum(dim=-1)
        return value.reshape(value.shape + (1,)) if keepdim else value

    def norm(self, x: torch.Tensor, u: torch.Tensor, *, keepdim=False) -> torch.Tensor:
        return self.inner(x, u, keepdim=keepdim).sqrt()

    def retr(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """R(x, u): polar re-balancing of W + u, second order by default (class docstring)."""
        _check(("x", "u"), x, u)
        w, xi = self._pair(x, u)
        _require_finite(u, "u")

        last = {}

        def retract(v):
            # Keep the frames of the result (from the re-balancing's own SVDs): they are
            # the frames of the new point, which transp and the next step query.
            layers, q, lam = _rebalance([a + b for a, b in zip(w, v)], with_frames=True)
            last["frames"] = BalancedFrames(q, [_complement(f) for f in q], lam, {})
            return layers

        if self.retraction_order == 1:
            y = self.packing.pack(retract(xi))
        else:
            frames = self._frames(x)
            y = self.packing.pack(
                second_order_retraction(w, xi, retract, lambda v: tangent_projection(frames, v))
            )
        self._remember(y, last["frames"])
        return y

    def expmap(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The retraction ``retr`` (documented: no closed-form Exp on the balanced manifold)."""
        return self.retr(x, u)

    def transp(self, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Projection transport: P_T at y of v."""
        _check(("x", "y", "v"), x, y, v)
        return self.proju(y, v)

    def random(self, *size, dtype=None, device=None, generator=None, **kwargs) -> torch.Tensor:
        """A balanced network over X = U diag(s) V^T, s ~ U[0.5, 2] decreasing, with Haar
        U, V and Haar inner frames Q_p (W_p = Q_p diag(s^{1/N}) Q_{p-1}^T, math.md §2.2);
        float64 by default, drawn from ``generator`` on ``device``; ``size`` (..., D)
        draws a batch of independent networks."""
        if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
            size = tuple(size[0])
        if size and size[-1] != self.packing.size:
            raise ValueError(
                f"size must be (..., {self.packing.size}) (or omitted), got {tuple(size)}"
            )
        if len(size) > 1:
            count = math.prod(size[:-1])
            points = [
                self.random(dtype=dtype, device=device, generator=generator) for _ in range(count)
            ]
            return torch.stack(points).reshape(tuple(size))
        dtype = torch.float64 if dtype is None else dtype
        r, widths = self.rank, self.widths
        frames = [_haar(d, r, generator, dtype, device) for d in widths]
        lam = _random_spectrum(r, generator, dtype, device) ** (1.0 / self.depth)
        return self.packing.pack(_layers_from_frames(frames, lam))

    random_normal = random
