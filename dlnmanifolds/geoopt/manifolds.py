"""geoopt adapters over the array-generic core (math.md §3-4); thin: every formula is core's."""

from __future__ import annotations

import math
import weakref

import geoopt
import torch

from dlnmanifolds.core import _backend
from dlnmanifolds.core._validate import check_depth, check_positive_int
from dlnmanifolds.core.dln_metric import (
    infinite_depth_retraction,
    lifted_retraction_svd,
)
from dlnmanifolds.core.fixed_rank import (
    _inner,
    _lifted_retraction,
    _riemannian_gradient,
    _weights,
    tangent_part,
    transport_tangent,
)
from dlnmanifolds.core.operator import (
    RANK_RTOL,
    SVDFrame,
    _inner_in_frame,
    _operator_in_frame,
    check_infinite_depth_square,
    svd_frame,
)


def _check(names: tuple[str, ...], *tensors) -> None:
    """TypeError naming the argument for numpy input, mixed devices, or a non-float dtype."""
    for name, t in zip(names, tensors):
        if not isinstance(t, torch.Tensor):
            raise TypeError(
                f"{name} must be a torch tensor (dlnmanifolds.geoopt works on tensors; use "
                f"dlnmanifolds.pymanopt for numpy arrays), got {type(t).__name__}"
            )
    _backend.namespace(*tensors, names=names)


def _keep(value: torch.Tensor, keepdim: bool) -> torch.Tensor:
    return value.reshape(value.shape + (1, 1)) if keepdim else value


def _haar(rows: int, cols: int, generator, dtype, device) -> torch.Tensor:
    """A Haar-distributed rows x cols matrix with orthonormal columns (QR, signs fixed)."""
    g = torch.randn(rows, cols, generator=generator, dtype=dtype, device=device)
    q, r = torch.linalg.qr(g)
    return q * torch.sign(torch.diagonal(r))


def _random_spectrum(r: int, generator, dtype, device) -> torch.Tensor:
    s = 0.5 + 1.5 * torch.rand(r, generator=generator, dtype=dtype, device=device)
    return torch.sort(s, descending=True).values


class DLNMatrices(geoopt.Manifold):
    """Full-rank m x n matrices with the DLN metric g^N, as a ``geoopt.Manifold``.

    g^N_X(Y, Z) = tr(Y^T A_{N,X}^{-1}(Z)), A_{N,X}(Z) = sum_p (XX^T)^{(N-p)/N} Z
    (X^TX)^{(p-1)/N} (Arora, Cohen & Hazan 2018 Thm 1; Menon 2024; math.md §3.1, §4.1).
    A point is an m x n tensor X of full rank; tangent vectors are m x n tensors
    (the manifold is open in R^{m x n}).

    - ``egrad2rgrad(x, G) = A_{N,X}(G)``, the g^N Riesz map of the Euclidean
      gradient (math.md §4.1): ``inner(x, egrad2rgrad(x, G), xi) = <G, xi>_F``;
    - ``retr(x, u) = phi(W + u^h)``, the lifted retraction (second order;
      ``core.dln_metric.lifted_retraction``); ``depth=math.inf`` uses
      X expm(X^{-1} u) (first order, square X only);
    - ``expmap`` is the same retraction: g^N has no closed-form exponential map
      for general tangent vectors (math.md §4.5), so ``expmap`` is documented as,
      and is, the second-order retraction (exact along U diag(delta) V^T);
    - ``transp`` is the identity (every tangent space is R^{m x n}), ``proju`` and
      ``projx`` are the identity (an open set).

    Points are single matrices (no batch axes). float32 and float64, CPU or CUDA.
    The SVD of the last point is kept (keyed on the tensor object and its in-place
    version counter), so one optimizer step (egrad2rgrad, inner, retr at the same
    point) computes one SVD; the frame is taken from ``x.detach()``, so autograd
    does not differentiate the metric's dependence on the point.

    Example
    -------
    >>> import torch
    >>> manifold = DLNMatrices(3, 2, depth=3)
    >>> x = manifold.random(generator=torch.Generator().manual_seed(0))
    >>> g = torch.ones(3, 2, dtype=torch.float64)
    >>> xi = torch.eye(3, 2, dtype=torch.float64)
    >>> bool(torch.isclose(manifold.inner(x, manifold.egrad2rgrad(x, g), xi), (g * xi).sum()))
    True
    """

    name = "DLNMatrices"
    ndim = 2
    reversible = False

    def __init__(self, m: int, n: int, depth: int | float):
        super().__init__()
        self.m = check_positive_int(m, "m")
        self.n = check_positive_int(n, "n")
        self.depth = check_depth(depth, allow_inf=True)
        check_infinite_depth_square((self.m, self.n), self.depth, "DLNMatrices")
        #: an open subset of R^{m x n}
        self.dim = self.m * self.n
        self._cache: tuple | None = None

    def _frame(self, x: torch.Tensor) -> SVDFrame:
        """svd_frame(x), reused while x is the same tensor, unmodified in place."""
        cache = self._cache
        if cache is not None and cache[0]() is x and cache[1] == x._version:
            return cache[2]
        frame = svd_frame(x.detach())
        self._cache = (weakref.ref(x), x._version, frame)
        return frame

    def extra_repr(self) -> str:
        return f"m={self.m}, n={self.n}, depth={self.depth}"

    def _check_shape(self, shape, name):
        if tuple(shape) != (self.m, self.n):
            return False, f"{name} must have shape {(self.m, self.n)}, got {tuple(shape)}"
        return True, None

    def _check_point_on_manifold(self, x, *, atol=1e-5, rtol=1e-5):
        s = torch.linalg.svdvals(x)
        if not bool(s[-1] > RANK_RTOL * s[0]):
            ratio = float(s[-1] / s[0]) if float(s[0]) > 0 else 0.0
            return False, f"x must have full rank: sigma_min / sigma_max = {ratio:.3g}"
        return True, None

    def _check_vector_on_tangent(self, x, u, *, atol=1e-5, rtol=1e-5):
        return True, None

    def projx(self, x: torch.Tensor) -> torch.Tensor:
        _check(("x",), x)
        return x

    def proju(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        _check(("x", "u"), x, u)
        return u

    def egrad2rgrad(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """A_{N,X}(G): the g^N gradient of a loss with Euclidean gradient G = u."""
        _check(("x", "u"), x, u)
        return _operator_in_frame(self._frame(x), u, self.depth, 1.0)

    def inner(self, x: torch.Tensor, u: torch.Tensor, v=None, *, keepdim=False) -> torch.Tensor:
        """g^N_X(u, v) = sum_ij (U^T u V)_ij (U^T v V)_ij / K_ij (math.md §4.1)."""
        v = u if v is None else v
        _check(("x", "u", "v"), x, u, v)
        return _keep(_inner_in_frame(self._frame(x), u, v, self.depth), keepdim)

    def retr(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """phi(W + u^h) (second order); X expm(X^{-1} u) at depth inf (first order)."""
        _check(("x", "u"), x, u)
        if self.depth == math.inf:
            return infinite_depth_retraction(x, u)
        frame, r = self._frame(x), min(self.m, self.n)
        return lifted_retraction_svd(frame.u[:, :r], frame.s, frame.v[:, :r], u, self.depth)

    def expmap(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The retraction ``retr`` (documented: g^N has no closed-form Exp, math.md §4.5)."""
        return self.retr(x, u)

    def transp(self, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        _check(("x", "y", "v"), x, y, v)
        return v

    def random(self, *size, dtype=None, device=None, generator=None, **kwargs) -> torch.Tensor:
        """U diag(s) V^T with Haar frames and s ~ U[0.5, 2] (float64 by default)."""
        if size and tuple(size) not in ((self.m, self.n), ((self.m, self.n),)):
            raise ValueError(f"size must be {(self.m, self.n)} (or omitted), got {size}")
        dtype = torch.float64 if dtype is None else dtype
        r = min(self.m, self.n)
        u = _haar(self.m, r, generator, dtype, device)
        v = _haar(self.n, r, generator, dtype, device)
        return (u * _random_spectrum(r, generator, dtype, device)) @ v.T

    random_normal = random


class DLNFixedRank(geoopt.Manifold):
    """Rank-r m x n matrices with the DLN metric g^N, as a ``geoopt.Manifold``.

    **Representation.** A point X = U diag(s) V^T (U in St(m, r), V in St(n, r),
    s > 0) is ONE tensor of shape (m + r + n, r), the packing

        x = [U; diag(s); V]     (rows 0..m-1: U; next r rows: diag(s); last n rows: V),

    and a tangent vector xi = U M V^T + U_p V^T + U V_p^T (U^T U_p = 0, V^T V_p = 0;
    Pymanopt's ``FixedRankEmbedded`` form) is the tensor [U_p; M; V_p] of the same
    shape, so geoopt's optimizers keep their momentum buffers as tensors shaped
    like the parameter. The packed tangent is a coordinate vector, not the velocity
    of the packed point. Build the matrix from a parameter with ``to_matrix(x)``
    (differentiable) and write the loss on it.

    **Gradient.** autograd gives the packed Euclidean gradient [G V diag(s);
    U^T G V; G^T U diag(s)] of a loss E(X) with ambient gradient G = E'(X).
    ``egrad2rgrad`` reads G V and G^T U from the U and V blocks (dividing by s,
    exact in floating point up to one rounding) and returns the g^N gradient
    M = K ∘ (U^T G V), U_p = (I - UU^T) G V diag(c), V_p = (I - VV^T) G^T U diag(c),
    c_j = s_j^{2(N-1)/N} (Bah et al. 2019; Menon 2024 Thm 3; math.md §4.1), so that
    ``inner(x, egrad2rgrad(x, egrad), xi) = <G, embed(xi)>_F``. Any loss that uses
    the point only through ``to_matrix`` works.

    **Maps.** ``inner``: g^N in factored form; ``retr``: phi(W + xi^h) from the
    rank lift (second order, ``core.fixed_rank.fixed_rank_retraction``); ``expmap``
    is that retraction (documented: no closed-form Exp); ``transp``: Frobenius
    projection onto the new tangent space (Vandereycken 2013 §2.4); ``proju``: the
    tangent part (U_p - UU^TU_p, M, V_p - VV^TV_p); ``projx``: re-orthonormalizes U and
    V and re-diagonalizes (QR and an r x r SVD, signs fixed so it is idempotent).

    float32 and float64, CPU or CUDA; single points (no batch axes).

    Example
    -------
    >>> import torch
    >>> manifold = DLNFixedRank(5, 4, rank=2, depth=3)
    >>> x = manifold.random(generator=torch.Generator().manual_seed(0))
    >>> tuple(x.shape), tuple(manifold.to_matrix(x).shape)
    ((11, 2), (5, 4))
    """

    name = "DLNFixedRank"
    ndim = 2
    reversible = False

    def __init__(self, m: int, n: int, rank: int, depth: int):
        super().__init__()
        self.m = check_positive_int(m, "m")
        self.n = check_positive_int(n, "n")
        self.rank = check_positive_int(rank, "rank")
        if self.rank > min(self.m, self.n):
            raise ValueError(f"rank must be at most min(m, n) = {min(m, n)}, got {rank}")
        self.depth = check_depth(depth)
        #: dim M_r = (m + n - r) r
        self.dim = (self.m + self.n - self.rank) * self.rank

    def extra_repr(self) -> str:
        return f"m={self.m}, n={self.n}, rank={self.rank}, depth={self.depth}"

    @property
    def packed_shape(self) -> tuple[int, int]:
        return (self.m + self.rank + self.n, self.rank)

    # -- packing -----------------------------------------------------------------
    def unpack(self, x: torch.Tensor):
        """(U [m, r], middle block [r, r], V [n, r]) of a packed point or tangent."""
        m, r = self.m, self.rank
        return x[:m], x[m : m + r], x[m + r :]

    def pack(self, top: torch.Tensor, middle: torch.Tensor, bottom: torch.Tensor) -> torch.Tensor:
        """[top; middle; bottom]: a point from (U, diag(s) or s, V), a tangent from
        (U_p, M, V_p)."""
        if middle.ndim == 1:
            middle = torch.diag(middle)
        return torch.cat([top, middle, bottom], dim=0)

    def factors(self, x: torch.Tensor):
        """(U, s, V) of a packed point."""
        u, mid, v = self.unpack(x)
        return u, torch.diagonal(mid), v

    def to_matrix(self, x: torch.Tensor) -> torch.Tensor:
        """X = U diag(s) V^T (differentiable: write the loss on this)."""
        u, s, v = self.factors(x)
        return (u * s) @ v.T

    def embed(self, x: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        """The m x n matrix U M V^T + U_p V^T + U V_p^T of a packed tangent vector."""
        u, _, v = self.unpack(x)
        up, mm, vp = self.unpack(xi)
        return (u @ mm + up) @ v.T + u @ vp.T

    def _tangent(self, xi: torch.Tensor):
        return self.unpack(xi)

    # -- geoopt API --------------------------------------------------------------
    def _check_shape(self, shape, name):
        if tuple(shape) != self.packed_shape:
            return False, (
                f"{name} must have the packed shape (m + r + n, r) = {self.packed_shape}, "
                f"got {tuple(shape)}"
            )
        return True, None

    def _check_point_on_manifold(self, x, *, atol=1e-5, rtol=1e-5):
        u, mid, v = self.unpack(x)
        eye = torch.eye(self.rank, dtype=x.dtype, device=x.device)
        s = torch.diagonal(mid)
        checks = (
            (u.T @ u - eye, "U^T U = I"),
            (v.T @ v - eye, "V^T V = I"),
            (mid - torch.diag(s), "the middle block is diagonal"),
        )
        for residual, what in checks:
            if float(residual.abs().max()) > atol:
                return False, f"{what} fails by {float(residual.abs().max()):.3g} > atol {atol}"
        if not bool((s > 0).all()):
            return False, "the singular values diag(middle block) must be positive"
        return True, None

    def _check_vector_on_tangent(self, x, u, *, atol=1e-5, rtol=1e-5):
        ux, _, vx = self.unpack(x)
        up, _, vp = self.unpack(u)
        for residual, what in ((ux.T @ up, "U^T U_p = 0"), (vx.T @ vp, "V^T V_p = 0")):
            if float(residual.abs().max()) > atol:
                return False, f"{what} fails by {float(residual.abs().max()):.3g} > atol {atol}"
        return True, None

    def projx(self, x: torch.Tensor) -> torch.Tensor:
        """[U'; diag(s'); V'] with U diag-block V^T = U' diag(s') V'^T, s' decreasing."""
        _check(("x",), x)
        u, mid, v = self.unpack(x)
        qu, ru = torch.linalg.qr(u)
        qv, rv = torch.linalg.qr(v)
        # Positive R diagonals (and below, the largest entry of each singular vector
        # positive) make the factorization unique, so projx is idempotent.
        du, dv = _sign(torch.diagonal(ru)), _sign(torch.diagonal(rv))
        qu, ru, qv, rv = qu * du, du[:, None] * ru, qv * dv, dv[:, None] * rv
        a, s, bt = torch.linalg.svd(ru @ mid @ rv.T)
        idx = torch.argmax(a.abs(), dim=0)
        flip = _sign(a[idx, torch.arange(self.rank, device=x.device)])
        return self.pack(qu @ (a * flip), s, qv @ (bt.T * flip))

    def proju(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        _check(("x", "u"), x, u)
        ux, _, vx = self.unpack(x)
        return self.pack(*tangent_part(ux, vx, self.unpack(u)))

    def egrad2rgrad(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The g^N gradient from autograd's packed gradient u (see the class docstring)."""
        _check(("x", "u"), x, u)
        ux, s, vx = self.factors(x)
        gu, _, gv = self.unpack(u)
        weights = _weights(s, self.depth)
        return self.pack(*_riemannian_gradient(ux, vx, weights, gu / s, gv / s))

    def egrad2rgrad_ambient(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """The g^N gradient from the ambient m x n Euclidean gradient G = E'(X)."""
        _check(("x", "g"), x, g)
        ux, s, vx = self.factors(x)
        weights = _weights(s, self.depth)
        return self.pack(*_riemannian_gradient(ux, vx, weights, g @ vx, g.T @ ux))

    def inner(self, x: torch.Tensor, u: torch.Tensor, v=None, *, keepdim=False) -> torch.Tensor:
        """g^N_X(u, v) = sum M M'/K + sum_j (<U_p, U_p'>_j + <V_p, V_p'>_j) / c_j."""
        v = u if v is None else v
        _check(("x", "u", "v"), x, u, v)
        _, s, _ = self.factors(x)
        return _keep(_inner(_weights(s, self.depth), self.unpack(u), self.unpack(v)), keepdim)

    def retr(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """phi(W + xi^h) from the rank-r lift (second order; math.md §4.2)."""
        _check(("x", "u"), x, u)
        ux, s, vx = self.factors(x)
        weights = _weights(s, self.depth)
        u2, s2, v2 = _lifted_retraction(ux, s, vx, weights, self.depth, self.unpack(u))
        return self.pack(u2, s2, v2)

    def expmap(self, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """The retraction ``retr`` (documented: no closed-form Exp for g^N on M_r)."""
        return self.retr(x, u)

    def transp(self, x: torch.Tensor, y: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Frobenius projection of the tangent v at x onto T_y M_r (factored)."""
        _check(("x", "y", "v"), x, y, v)
        ux, _, vx = self.unpack(x)
        uy, _, vy = self.unpack(y)
        return self.pack(*transport_tangent(ux, vx, self.unpack(v), uy, vy))

    def random(self, *size, dtype=None, device=None, generator=None, **kwargs) -> torch.Tensor:
        """Packed [U; diag(s); V] with Haar U, V and s ~ U[0.5, 2] decreasing."""
        if size and tuple(size) not in (self.packed_shape, (self.packed_shape,)):
            raise ValueError(f"size must be {self.packed_shape} (or omitted), got {size}")
        dtype = torch.float64 if dtype is None else dtype
        r = self.rank
        return self.pack(
            _haar(self.m, r, generator, dtype, device),
            _random_spectrum(r, generator, dtype, device),
            _haar(self.n, r, generator, dtype, device),
        )

    random_normal = random

    def from_matrix(self, matrix: torch.Tensor) -> torch.Tensor:
        """The packed point of the rank-r truncated SVD of an m x n tensor."""
        _check(("matrix",), matrix)
        u, s, vt = torch.linalg.svd(matrix, full_matrices=False)
        r = self.rank
        return self.projx(self.pack(u[:, :r], s[:r], vt[:r].T))


def _sign(values: torch.Tensor) -> torch.Tensor:
    # sign with sign(0) = +1, so a flip never zeroes a column.
    return torch.where(values < 0, -1.0, 1.0).to(values.dtype)
