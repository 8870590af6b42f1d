"""The DLN manifolds as ``geoopt.Manifold`` subclasses (the ``torch`` extra).

Train a deep linear network's end-to-end matrix with ``geoopt.ManifoldParameter``
and ``geoopt.optim.RiemannianAdam``/``RiemannianSGD`` inside an ordinary PyTorch
loop, on CPU or CUDA: every method calls the array-generic formulas of
``dlnmanifolds.core`` on the tensors themselves (no numpy round trip).

- ``DLNMatrices(m, n, depth)``: full-rank m x n matrices with g^N (math.md §4.1);
  a point is the m x n tensor X.
- ``DLNFixedRank(m, n, rank, depth)``: rank-r m x n matrices with g^N; a point is
  the packed factorization [U; diag(s); V] of shape (m + r + n, r)
  (see ``DLNFixedRank``).
- ``BalancedManifold(widths)``: balanced networks (math.md §2), induced Frobenius
  metric; a point is the packed network (one tensor of trailing length
  sum_p d_p d_{p-1}, ``LayerPacking``), with optional leading batch axes.
- ``Fiber(weights)``: the networks with the end-to-end matrix of ``weights``
  (math.md §5), induced Frobenius metric; a point is the packed network (one 1-d
  tensor, ``LayerPacking``).
- ``GroupOrbit(weights)``: the orthogonal-group orbit of a balanced network (math.md
  §6), induced Frobenius metric; a point is the packed network.

Install with ``pip install "dlnmanifolds[torch]"`` (torch >= 2.4, geoopt >= 0.5).
"""

from __future__ import annotations

try:
    import geoopt  # noqa: F401
    import torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra
    raise ImportError(
        "dlnmanifolds.geoopt needs PyTorch and Geoopt: pip install 'dlnmanifolds[torch]' "
        f"(import failed: {exc})"
    ) from exc

from dlnmanifolds.geoopt.balanced import BalancedManifold
from dlnmanifolds.geoopt.fiber import Fiber
from dlnmanifolds.geoopt.manifolds import DLNFixedRank, DLNMatrices
from dlnmanifolds.geoopt.orbit import GroupOrbit

__all__ = ["BalancedManifold", "DLNFixedRank", "DLNMatrices", "Fiber", "GroupOrbit"]
