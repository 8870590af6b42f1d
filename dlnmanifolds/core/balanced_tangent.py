"""Tangent geometry of the balanced manifold M_r (math.md §2.4–2.6).

Everything is computed in the frames of a balanced point, where the tangent
projection decouples (math.md §2.4, "frame form"; checked in math.md §10):

* diagonal entries of the r x r blocks are averaged over the layers;
* each pair i < j couples 2N numbers through an (N-1) x (N-1) Jacobi matrix
  T_ij (diagonal lam_i^2 + lam_j^2, off-diagonal -lam_i lam_j), solved by a
  tridiagonal (Thomas) sweep vectorized over all pairs: O(N r^2);
* for general widths the (perp, r) block of layer q and the (r, perp) block
  of layer q+1 are projected onto {(K, K^T)}, the (perp, perp) blocks vanish.

The frame rotation costs O(N d^3), so a projection is O(N d^3), against the
O((N d^2)^3) of a dense KKT solve.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlnmanifolds.core import _backend
from dlnmanifolds.core.balanced import BalancedFrames
from dlnmanifolds.core.network import (
    _dphi,
    _dphi_adjoint,
    _prefix_products,
    _suffix_products,
    _t,
)
from dlnmanifolds.core.operator import _operator_in_frame, svd_frame

Layers = Sequence[np.ndarray]


def _pair_indices(r: int, like=None) -> tuple[np.ndarray, np.ndarray]:
    """(i, j) of the pairs i < j of r indices, row-major, on the device of ``like``."""
    return _backend.triu_indices_like(np.empty(0) if like is None else like, r, 1)


class _JacobiFactor:
    """The elimination of 2 T_ij c = rhs for many pairs, factored once (math.md §2.4 step 3).

    T_ij is tridiagonal of size n = N - 1 with diagonal lam_i^2 + lam_j^2 and
    off-diagonals -lam_i lam_j. It is SPD with det T_ij = kappa_ij > 0, so elimination
    without pivoting (Thomas) is stable. The multipliers depend on lam only, so a point
    factors them once and every solve is two vectorised sweeps over the pairs.
    numpy arrays or torch tensors (the sweeps write rows in place, which both allow).
    """

    def __init__(self, lam_i: np.ndarray, lam_j: np.ndarray, n: int):
        diag = 2.0 * (lam_i**2 + lam_j**2)
        self.off = -2.0 * lam_i * lam_j
        shape = (n,) + tuple(np.broadcast_shapes(tuple(np.shape(lam_i)), tuple(np.shape(lam_j))))
        self.inv_denom = _backend.empty(diag, shape)
        self.upper = _backend.empty(diag, shape)
        if n == 0:
            return
        self.inv_denom[0] = 1.0 / diag
        self.upper[0] = self.off * self.inv_denom[0]
        for k in range(1, n):
            self.inv_denom[k] = 1.0 / (diag - self.off * self.upper[k - 1])
            self.upper[k] = self.off * self.inv_denom[k]

    def solve(self, rhs: np.ndarray) -> np.ndarray:
        """c with 2 T_ij c = rhs; rhs has shape (N-1, ..., P)."""
        n = rhs.shape[0]
        out = _backend.empty(
            rhs, tuple(np.broadcast_shapes(tuple(rhs.shape), tuple(self.inv_denom.shape)))
        )
        if n == 0:
            return out
        out[0] = rhs[0] * self.inv_denom[0]
        for k in range(1, n):
            out[k] = (rhs[k] - self.off * out[k - 1]) * self.inv_denom[k]
        for k in range(n - 2, -1, -1):
            out[k] -= self.upper[k] * out[k + 1]
        return out


def _thomas_jacobi(lam_i: np.ndarray, lam_j: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve 2 T_ij c = rhs for all pairs at once; rhs has shape (N-1, ..., P)."""
    return _JacobiFactor(lam_i, lam_j, rhs.shape[0]).solve(rhs)


class _PairPlan:
    """Linear index maps into the N flattened r x r frame blocks (one (N, r^2) array)
    and the factored pair systems. ``take``/fancy assignment with these C-ordered maps
    keep every intermediate contiguous (column fancy indexing does not). The maps live
    on the device of ``lam`` (built there: no host-to-device copy)."""

    def __init__(self, lam: np.ndarray, depth: int):
        r = lam.shape[-1]
        iu, ju = _pair_indices(r, lam)
        self.r, self.depth = r, depth
        offsets = (_backend.arange_like(lam, depth) * (r * r))[:, None]
        self.upper = offsets + (iu * r + ju)  # (N, P)
        self.lower = offsets + (ju * r + iu)
        self.diag = offsets + _backend.arange_like(lam, r) * (r + 1)  # (N, r)
        self.n_pairs = int(iu.shape[0])
        self.lam_i, self.lam_j = lam[..., iu], lam[..., ju]
        self.jacobi = _JacobiFactor(self.lam_i, self.lam_j, max(depth - 1, 0))


def _plan(lam: np.ndarray, depth: int, cache: dict | None) -> _PairPlan:
    key = ("pair_plan", depth)
    if cache is not None and key in cache:
        return cache[key]
    plan = _PairPlan(lam, depth)
    if cache is not None:
        cache[key] = plan
    return plan


def _pair_rhs(x, y, li, lj):
    """rhs = lj x[:-1] + li y[:-1] - li x[1:] - lj y[1:] (the pair systems' right-hand
    side). numpy kernel with ``out=`` (two temporaries: at d = 64 each is ~100 KB, and
    every fresh allocation of that size is page-faulted in); torch with in-place
    ``addcmul_`` (no temporaries either)."""
    if isinstance(x, np.ndarray):
        rhs = np.multiply(x[:-1], lj)
        tmp = np.multiply(y[:-1], li)
        rhs += tmp
        np.multiply(x[1:], li, out=tmp)
        rhs -= tmp
        np.multiply(y[1:], lj, out=tmp)
        rhs -= tmp
        return rhs
    rhs = x[:-1] * lj
    rhs.addcmul_(y[:-1], li)
    rhs.addcmul_(x[1:], li, value=-1.0)
    rhs.addcmul_(y[1:], lj, value=-1.0)
    return rhs


def _gather(flat, index):
    """flat[..., index]: ``take`` on one network's flat blocks (the fast path), fancy
    indexing of the last axis for a batch."""
    return flat.take(index) if flat.ndim == 1 else flat[..., index]


def _layer_axis_first(a):
    """(..., N, P) -> the (N, ..., P) view the pair sweeps run over (identity for one
    network)."""
    if a.ndim == 2:
        return a
    return _backend.namespace(a).moveaxis(a, -2, 0)


def _pair_coefficients(flat: np.ndarray, plan: _PairPlan):
    """Pair multipliers c (N-1, ..., P) from the flattened r x r blocks (..., N r^2).

    Also returns the gathered upper and lower entries x, y (..., N, P) (fresh copies
    the caller may overwrite).
    """
    x = _gather(flat, plan.upper)
    y = _gather(flat, plan.lower)
    if plan.depth > 1 and plan.n_pairs:
        rhs = _pair_rhs(_layer_axis_first(x), _layer_axis_first(y), plan.lam_i, plan.lam_j)
        return plan.jacobi.solve(rhs), x, y
    shape = (max(plan.depth - 1, 0),) + tuple(flat.shape[:-1]) + (plan.n_pairs,)
    return _backend.zeros(flat, shape), x, y


def _square_blocks(xt: Layers, r: int) -> np.ndarray:
    """The r x r blocks of the frame coordinates, flattened: (..., N r^2), a copy."""
    blocks = _backend.namespace(xt[0]).stack([x[..., :r, :r] for x in xt], axis=-3)
    return blocks.reshape(tuple(blocks.shape[:-3]) + (-1,))


def _normal_coefficients(xt: Layers, lam: np.ndarray, cache: dict | None = None):
    """Frame coordinates of the normal part C_W(S) of a vector.

    Returns (diag_s, pair_c, perp_l): the multipliers of math.md §2.4 such that
    S~_q[i, i] = diag_s[q, i], S~_q[i, j] = S~_q[j, i] = pair_c[q, pair] and
    S~_q[perp, r] = perp_l[q] Lambda^{-1}, with S~_q[perp, perp] = 0.
    """
    xp = _backend.namespace(lam)
    depth = len(xt)
    r = lam.shape[0]
    plan = _plan(lam, depth, cache)
    flat = _square_blocks(xt, r)
    diag = flat.take(plan.diag)  # (N, r)
    centred = diag - xp.mean(diag, axis=0)
    # lam_i (s_p - s_{p-1}) = centred_p  =>  s_q = cumsum_{p<=q} centred_p / lam_i
    diag_s = xp.cumulative_sum(centred, axis=0)[:-1] / lam
    pair_c = _pair_coefficients(flat, plan)[0]
    perp_l = [0.5 * (xt[q][r:, :r] - _t(xt[q + 1][:r, r:])) for q in range(depth - 1)]
    return diag_s, pair_c, perp_l


def _project_blocks(flat: np.ndarray, plan: _PairPlan) -> None:
    """The r x r part of the frame-form projection, in place on the flattened blocks:
    diagonals averaged over the layers, each pair minus its normal part."""
    pair_c, x, y = _pair_coefficients(flat, plan)
    if plan.n_pairs and plan.depth > 1:
        # Subtract the pair normals n_q: slot q of the pair system sits in layer q
        # (entries -lam_j c, -lam_i c) and in layer q + 1 (+lam_i c, +lam_j c).
        xs, ys = _layer_axis_first(x), _layer_axis_first(y)  # views: x, y change too
        tmp = pair_c * plan.lam_j
        xs[:-1] -= tmp
        ys[1:] += tmp
        tmp = pair_c * plan.lam_i
        ys[:-1] -= tmp
        xs[1:] += tmp
        if flat.ndim == 1:
            flat[plan.upper] = x
            flat[plan.lower] = y
        else:
            flat[..., plan.upper] = x
            flat[..., plan.lower] = y
    xp = _backend.namespace(flat)
    if flat.ndim == 1:
        flat[plan.diag] = xp.mean(flat.take(plan.diag), axis=0)
    else:
        flat[..., plan.diag] = xp.mean(flat[..., plan.diag], axis=-2, keepdims=True)


def _tangent_in_frames(xt: Layers, lam: np.ndarray, cache: dict | None = None) -> list[np.ndarray]:
    """Orthogonal projection onto T_W M_r in frame coordinates (math.md §2.4).

    All pairs and layers at once on the flattened r x r blocks (index maps and the
    factored Jacobi systems are precomputed per point), so the cost beyond the frame
    rotations is O(N r^2) vectorised work.
    """
    xp = _backend.namespace(lam)
    depth = len(xt)
    r = lam.shape[-1]
    plan = _plan(lam, depth, cache)
    flat = _square_blocks(xt, r)
    _project_blocks(flat, plan)
    blocks = flat.reshape(tuple(flat.shape[:-1]) + (depth, r, r))
    if all(tuple(x.shape[-2:]) == (r, r) for x in xt):
        return [blocks[..., p, :, :] for p in range(depth)]
    out = [xp.zeros_like(x) for x in xt]
    for p in range(depth):
        out[p][..., :r, :r] = blocks[..., p, :, :]
        out[p][..., r:, :r] = xt[p][..., r:, :r]
        out[p][..., :r, r:] = xt[p][..., :r, r:]
    for q in range(depth - 1):  # the (perp, r) block of layer q and (r, perp) of q + 1
        perp = 0.5 * (xt[q][..., r:, :r] - _t(xt[q + 1][..., :r, r:]))
        out[q][..., r:, :r] -= perp
        out[q + 1][..., :r, r:] += _t(perp)
    return out


def _rotate_into(work, f: list, xi: Layers) -> None:
    """work[p] = Qhat_{p+1}^T xi_p Qhat_p, written into the workspace (numpy: the
    product lands there directly through ``out=``; torch: a row copy)."""
    if isinstance(work, np.ndarray):
        for p, x in enumerate(xi):
            np.matmul(f[p + 1].T @ x, f[p], out=work[p])
        return
    for p, x in enumerate(xi):
        work[p] = _t(f[p + 1]) @ x @ f[p]


def tangent_projection(frames: BalancedFrames, xi: Layers) -> list[np.ndarray]:
    """P_T xi: orthogonal projection of an ambient vector onto T_W M_r (math.md §2.4).

    Cost: the 4N frame rotations xi~_p = Qhat_p^T xi_p Qhat_{p-1} and back, plus
    O(N r^2) vectorised pair work. For square widths the frame coordinates live in a
    workspace kept with the frames (no fresh (N, d, d) allocation per call).
    numpy arrays or torch tensors, of the backend of the frames; batched frames of
    a batch of networks (``_balanced_frames`` of layers [..., d_p, d_{p-1}] with
    ``rank``) project a batch of vectors at once. float32: the pair
    systems have condition ~ (lam_1/lam_r)^2, so the projection is accurate to about
    eps32 (lam_1/lam_r)^2 relative (1e-5 at lam_1/lam_r = 10).

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds import balanced_factors, balanced_frames
    >>> W = balanced_factors(np.diag([3.0, 1.0]), 3, rng=0)
    >>> frames = balanced_frames(W)
    >>> xi = [np.ones((2, 2))] * 3
    >>> p1 = tangent_projection(frames, xi)
    >>> p2 = tangent_projection(frames, p1)
    >>> bool(max(np.abs(a - b).max() for a, b in zip(p1, p2)) < 1e-12)  # idempotent
    True
    """
    r, depth = frames.rank, len(xi)
    cache = frames.cache
    if cache is None or any(tuple(x.shape) != (r, r) for x in xi):
        return frames.from_frames(_tangent_in_frames(frames.to_frames(xi), frames.lam, cache))
    plan = _plan(frames.lam, depth, cache)
    work = cache.get(("work", depth))
    if work is None:
        work = cache[("work", depth)] = _backend.empty(frames.lam, (depth, r, r))
    f = frames._fulls()
    _rotate_into(work, f, xi)
    _project_blocks(work.reshape(-1), plan)
    return [f[p + 1] @ work[p] @ _t(f[p]) for p in range(depth)]


def normal_multipliers(frames: BalancedFrames, xi: Layers) -> list[np.ndarray]:
    """S = (S_1, ..., S_{N-1}), symmetric, with C_W(S) = normal part of xi in range C_W.

    C_W(S)_p = S_p W_p - W_p S_{p-1} (math.md §2.4). For general widths the
    (perp, perp) blocks of S are set to 0 (they lie in the kernel of C_W).
    numpy arrays or torch tensors.
    """
    xt = frames.to_frames(xi)
    lam = frames.lam
    r = lam.shape[0]
    diag_s, pair_c, perp_l = _normal_coefficients(xt, lam, frames.cache)
    iu, ju = _pair_indices(r, lam)
    idx = _backend.arange_like(lam, r)
    out = []
    for q in range(len(xt) - 1):
        d = frames.q[q + 1].shape[0]
        s = _backend.zeros(lam, (d, d))
        s[idx, idx] = diag_s[q]
        s[iu, ju] = pair_c[q]
        s[ju, iu] = pair_c[q]
        s[r:, :r] = perp_l[q] / lam
        s[:r, r:] = _t(s[r:, :r])
        full = frames.full(q + 1)
        out.append(full @ s @ _t(full))
    return out


def normal_generator(weights: Layers, s: Sequence[np.ndarray], tangent: Layers | None = None):
    """C_V(S)_p = S_p V_p - V_p S_{p-1}, S_0 = S_N = 0 (math.md §2.4).

    With ``tangent`` given, V = tangent (the C_xi(S) of the Weingarten term).
    numpy arrays, torch tensors, or autograd-traced arrays (only ``@`` and ``-``).
    """
    v = weights if tangent is None else tangent
    depth = len(v)
    if depth == 1:
        return [_backend.namespace(v[0]).zeros_like(v[0])]
    out = [s[0] @ v[0]]
    out += [s[p] @ v[p] - v[p] @ s[p - 1] for p in range(1, depth - 1)]
    out.append(-(v[-1] @ s[-1]))
    return out


def normal_generator_adjoint(weights: Layers, eta: Layers) -> list[np.ndarray]:
    """C_W^*(eta)_p = sym(eta_p W_p^T - W_{p+1}^T eta_{p+1}), p = 1..N-1 (math.md §2.4).

    Equals -DG(W)[eta]/2. Batch-safe (leading axes).
    """
    out = []
    for p in range(len(weights) - 1):
        b = eta[p] @ _t(weights[p]) - _t(weights[p + 1]) @ eta[p + 1]
        out.append(0.5 * (b + _t(b)))
    return out


def riemannian_hessian(
    weights: Layers,
    frames: BalancedFrames,
    egrad: Layers,
    ehess: Layers,
    xi: Layers,
) -> list[np.ndarray]:
    """Riemannian Hessian on M_r: P_T(ehess - C_xi(S) + II_rank(xi, egrad_perp)).

    The first two terms are the Weingarten form of math.md §2.6 (checked in math.md §10),
    with C_W(S) the part of egrad in range C_W. For general widths the normal
    space also contains the (perp, perp) blocks; those are the normal space of
    the product of fixed-rank-r layer manifolds, whose Weingarten map is
    N xi_p^T W_p^{+T} + W_p^{+T} xi_p^T N (Vandereycken 2013, §2.3), added here.
    """
    s = normal_multipliers(frames, egrad)
    curvature = normal_generator(weights, s, xi)
    total = [h - c for h, c in zip(ehess, curvature)]
    r = frames.rank
    if any(fp.shape[1] for fp in frames.q_perp):
        for p in range(len(weights)):
            right, left = frames.q_perp[p], frames.q_perp[p + 1]
            if right.shape[1] == 0 or left.shape[1] == 0:
                continue
            n_perp = left @ (_t(left) @ egrad[p] @ right) @ _t(right)
            pinv_t = (frames.q[p + 1] / frames.lam) @ _t(frames.q[p])
            xi_t = _t(xi[p])
            total[p] = total[p] + n_perp @ xi_t @ pinv_t + pinv_t @ xi_t @ n_perp
    del r
    return tangent_projection(frames, total)


def horizontal_lift(
    weights: Layers, zeta: np.ndarray, depth: int | None = None
) -> list[np.ndarray]:
    """zeta^h = Dphi^*(A^{-1} zeta), the horizontal lift (math.md §2.4, §4.2).

    ||zeta^h||^2 = g^N(zeta, zeta). Requires phi(W) of full rank min(m, n).
    numpy arrays or torch tensors.
    """
    depth = len(weights) if depth is None else depth
    before = _prefix_products(weights)
    after = _suffix_products(weights)
    x = after[0]
    frame = svd_frame(x)
    return _dphi_adjoint(weights, _operator_in_frame(frame, zeta, depth, -1.0), before, after)


def horizontal_projection(weights: Layers, xi: Layers) -> list[np.ndarray]:
    """P_H xi = Dphi^*(A^{-1} Dphi xi) (math.md §2.4)."""
    return horizontal_lift(weights, _dphi(weights, xi))
