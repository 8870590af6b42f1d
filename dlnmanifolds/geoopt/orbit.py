"""The orthogonal-group orbit O_W as a ``geoopt.Manifold`` on packed networks (math.md §6)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from dlnmanifolds.core._validate import widths_of
from dlnmanifolds.core.balanced import BalancedFrames, _balanced_frames, _polar
from dlnmanifolds.core.entropy import boltzmann_entropy
from dlnmanifolds.core.fiber import _gl_action
from dlnmanifolds.core.network import _end_to_end, _imbalance
from dlnmanifolds.core.operator import numerical_rank
from dlnmanifolds.core.orbit import (
    _check_balanced,
    _orbit_projection_in_frames,
    _orbit_retraction,
    orbit_dimension,
)
from dlnmanifolds.geoopt.fiber import _LayerPointSet, _torch_layers
from dlnmanifolds.geoopt.manifolds import _check, _haar


class GroupOrbit(_LayerPointSet):
    """The orbit O_W = {(Q_p W_p Q_{p-1}^T)_p : Q_p in O(d_p), Q_0 = Q_N = I} of a balanced
    W, with the induced Frobenius metric, as a ``geoopt.Manifold`` (math.md §6).

    O_W = phi^{-1}(X) ∩ M: every point is balanced and has end-to-end matrix X; its
    dimension is sum_{p=1}^{N-1} (d_p r - r(r+1)/2), r = rank X. The geoopt
    counterpart of ``dlnmanifolds.pymanopt.GroupOrbit``, with the same maps.

    **Points** are packed networks (one 1-d tensor, ``LayerPacking``: the layers'
    row-major entries, W_1 first; ``layers(x)``, ``pack(layers)``, ``end_to_end(x)``);
    tangent vectors are packed the same way. Single points; float32 or float64, CPU or
    CUDA (``manifold.to(device)`` moves the stored W, X and frames).

    **Maps.**

    - ``proju`` = ``egrad2rgrad``: P_V u = C_x(G^+ C_x^* u) solved in the balanced
      frames of x (Jacobi tridiagonal systems, O(N d^3); ``core.orbit``), frames cached
      for the last two points;
    - ``retr``: R_x(u)_p = e^{Omega_p} W_p e^{-Omega_{p-1}}, Omega the minimum-norm skew
      generators of u (exactly balanced, phi kept to rounding), made second order by the
      tangential correction (``retraction="second_order"``, default; ``"exponential"``:
      first order); ``expmap`` is this retraction (documented: no closed-form
      exponential map);
    - ``inner``: Frobenius; ``transp``: projection at the new point;
    - ``projx(x)``: a point of the orbit near x, by layer-wise Procrustes in the frames
      of W: Q_0 = V (the right frame of X), Q_p = polar(x_p Q_{p-1} Lambda) for
      p = 1..N-1 (the best frame of layer p given the previous one), Q_N = U; returns
      W'_p = Q_p Lambda Q_{p-1}^T. Every such tuple lies on the orbit, and on the orbit
      the map is the identity; it is NOT the Frobenius-nearest point of the orbit (a
      coupled problem over all frames, no closed form);
    - ``random``: Q.W with Haar Q_p in O(d_p), the normalised volume measure of the
      orbit (math.md §6).

    Parameters
    ----------
    weights : (W_1, ..., W_N), a balanced point (max |G_p| <= 1e-10 relative), torch
        tensors (numpy arrays are converted once, here, to float64 CPU tensors).
    retraction : "second_order" (default) or "exponential".

    Example
    -------
    >>> import numpy as np
    >>> import torch
    >>> from dlnmanifolds import balanced_factors
    >>> from dlnmanifolds.geoopt import GroupOrbit
    >>> O = GroupOrbit(balanced_factors(np.diag([2.0, 1.0, 0.5]), 3, rng=0))
    >>> O.dim  # (N - 1) d (d - 1) / 2: one O(3) per inner layer
    6
    >>> g = torch.Generator().manual_seed(0)
    >>> x = O.random(generator=g)
    >>> u = O.proju(x, torch.randn(27, generator=g, dtype=torch.float64))
    >>> y = O.retr(x, 0.5 * u)
    >>> O.check_point_on_manifold(y, atol=1e-12, rtol=1e-12)
    True
    """

    name = "GroupOrbit"

    def __init__(self, weights: Sequence[torch.Tensor], retraction: str = "second_order"):
        layers = _torch_layers(weights)
        _check_balanced(layers, "weights")
        self.rank = numerical_rank(torch.linalg.svdvals(_end_to_end(layers)))
        if self.rank == 0:
            raise ValueError("weights: the end-to-end matrix is zero (an orbit of one point)")
        widths = widths_of(layers)
        super().__init__(layers, orbit_dimension(widths, self.rank), retraction)
        frames = _balanced_frames(list(layers), self.rank)
        # The orbit's fixed data for projx: Q_0 = V, Q_N = U and Lambda (shared by all points).
        self.register_buffer("frame_in", frames.q[0].clone())
        self.register_buffer("frame_out", frames.q[-1].clone())
        self.register_buffer("lam", frames.lam.clone())

    def log_volume(self) -> torch.Tensor:
        """log vol(O_W) = S(X), the Boltzmann entropy of X = phi(W) (math.md §6;
        Menon & Yu 2025, Thm 4), a 0-d tensor on the orbit's device."""
        return boltzmann_entropy(self.target, self.depth, self.widths)

    def frames(self, x: torch.Tensor) -> BalancedFrames:
        """The balanced frames of x (``core.balanced.balanced_frames``), cached."""
        _check(("x",), x)
        self.packing.check(x, "x")
        return self._data(x)

    def _build(self, layers) -> BalancedFrames:
        return _balanced_frames(list(layers), self.rank)

    def _project(self, data: BalancedFrames, u: torch.Tensor) -> torch.Tensor:
        frame_form = data.to_frames(self.packing.unpack(u))
        return self.pack(data.from_frames(_orbit_projection_in_frames(frame_form, data.lam)))

    def _first_order(self, data: BalancedFrames, layers, xi) -> list:
        return _orbit_retraction(layers, data, xi)

    def _check_point_on_manifold(self, x, *, atol=1e-5, rtol=1e-5):
        ok, reason = super()._check_point_on_manifold(x, atol=atol, rtol=rtol)
        if not ok:
            return ok, reason
        layers = self.layers(x)
        scale = max(float(w.abs().max()) for w in layers) ** 2
        imbalance = _imbalance(layers)
        if not imbalance <= atol + rtol * scale:
            return False, (
                f"x is not balanced: max |W_(p+1)^T W_(p+1) - W_p W_p^T| = {imbalance:.3g} > "
                f"atol + rtol max |W|^2 = {atol + rtol * scale:.3g}"
            )
        return True, None

    def projx(self, x: torch.Tensor) -> torch.Tensor:
        """The layer-wise Procrustes point of the orbit near x (class docstring)."""
        _check(("x",), x)
        layers = self.layers(x)
        if not bool(torch.isfinite(x).all()):
            raise ValueError("x must contain only finite values (found NaN or inf)")
        lam = self.lam.to(dtype=x.dtype, device=x.device)
        frame = self.frame_in.to(dtype=x.dtype, device=x.device)
        out = []
        for w in layers[:-1]:
            following = _polar((w @ frame) * lam)
            out.append((following * lam) @ frame.mT)
            frame = following
        last = self.frame_out.to(dtype=x.dtype, device=x.device)
        out.append((last * lam) @ frame.mT)
        return self.pack(out)

    def random(self, *size, dtype=None, device=None, generator=None, **kwargs) -> torch.Tensor:
        """Q.W with Haar Q_p in O(d_p); dtype/device default to W's."""
        if size and tuple(size) not in ((self.packing.size,), ((self.packing.size,),)):
            raise ValueError(f"size must be ({self.packing.size},) (or omitted), got {size}")
        dtype = self.base.dtype if dtype is None else dtype
        device = self.base.device if device is None else device
        rotations = [_haar(d, d, generator, dtype, device) for d in self.widths[1:-1]]
        base = self.packing.unpack(self.base.to(dtype=dtype, device=device))
        if not rotations:
            return self.pack([w.clone() for w in base])
        return self.pack(_gl_action(base, rotations, [q.mT for q in rotations]))

    random_normal = random
