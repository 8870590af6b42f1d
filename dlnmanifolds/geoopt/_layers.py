"""One tensor per network: the packing of (W_1, ..., W_N) used by the layer manifolds.

A ``geoopt.ManifoldParameter`` is one tensor, and Riemannian optimizers keep one
buffer (momentum, Adam's moments) of the parameter's shape. The manifolds whose
points are whole networks (``BalancedManifold``, ``Fiber``, ``GroupOrbit``) therefore
store x = (W_1, ..., W_N), W_p of shape (d_p, d_{p-1}), as one 1-d tensor of length
sum_p d_p d_{p-1}: the layers' row-major entries, W_1 first. ``unpack`` returns views
(no copy), so a formula of ``dlnmanifolds.core`` reads the layers for free; for equal
widths ``stack`` is the (N, d, d) view that batched products use.

Example
-------
>>> import torch
>>> layers = LayerPacking((2, 3, 3))
>>> x = layers.pack([torch.ones(3, 2), torch.zeros(3, 3)])
>>> x.shape, [tuple(w.shape) for w in layers.unpack(x)]
(torch.Size([15]), [(3, 2), (3, 3)])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dlnmanifolds.core._validate import check_widths


class LayerPacking:
    """The flat layout of networks with widths (d_0, ..., d_N) (see the module docstring)."""

    def __init__(self, widths: Sequence[int]):
        self.widths = check_widths(widths)
        self.shapes = tuple(
            (self.widths[p + 1], self.widths[p]) for p in range(len(self.widths) - 1)
        )
        sizes = [rows * cols for rows, cols in self.shapes]
        self.offsets = tuple(sum(sizes[:p]) for p in range(len(sizes) + 1))
        self.size = self.offsets[-1]

    @property
    def depth(self) -> int:
        return len(self.shapes)

    @property
    def square(self) -> bool:
        """All widths equal: the layers are one (N, d, d) stack."""
        return len(set(self.widths)) == 1

    def check(self, x: torch.Tensor, name: str) -> None:
        """ValueError naming ``name`` unless x has trailing length ``size``."""
        if x.ndim < 1 or x.shape[-1] != self.size:
            raise ValueError(
                f"{name} must be a packed network of widths {self.widths}: a tensor of "
                f"trailing length {self.size} (the layers' entries, W_1 first), got shape "
                f"{tuple(x.shape)}"
            )

    def unpack(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Views W_p of shape (..., d_p, d_{p-1}) of the packed tensor x (..., size)."""
        batch = tuple(x.shape[:-1])
        return [
            x[..., self.offsets[p] : self.offsets[p + 1]].reshape(batch + shape)
            for p, shape in enumerate(self.shapes)
        ]

    def stack(self, x: torch.Tensor) -> torch.Tensor:
        """The (..., N, d, d) view of x (equal widths only)."""
        if not self.square:
            raise ValueError(f"stack needs equal widths, got widths {self.widths}")
        d = self.widths[0]
        return x.reshape(tuple(x.shape[:-1]) + (self.depth, d, d))

    def pack(self, layers: Sequence[torch.Tensor]) -> torch.Tensor:
        """The packed tensor (..., size) of layers W_p (..., d_p, d_{p-1})."""
        if len(layers) != self.depth:
            raise ValueError(f"expected {self.depth} layers, got {len(layers)}")
        for p, (w, shape) in enumerate(zip(layers, self.shapes)):
            if tuple(w.shape[-2:]) != shape:
                raise ValueError(
                    f"layer {p} must have shape {shape} for widths {self.widths}, got "
                    f"{tuple(w.shape[-2:])}"
                )
        batch = tuple(layers[0].shape[:-2])
        return torch.cat([w.reshape(batch + (-1,)) for w in layers], dim=-1)


def projection_tangent_check(proju, x: torch.Tensor, u: torch.Tensor, atol: float, rtol: float):
    """geoopt's ``(ok, reason)`` for "u is tangent at x": |u - P u|_max <= atol + rtol |u|_max,
    P = ``proju`` (the orthogonal projection of a submanifold of the layer space)."""
    gap = float((u - proju(x, u)).abs().max())
    bound = atol + rtol * float(u.abs().max())
    if not gap <= bound:  # (a NaN gap is not tangent)
        return False, f"u is not tangent at x: max |u - proju(x, u)| = {gap:.3g} > {bound:.3g}"
    return True, None
