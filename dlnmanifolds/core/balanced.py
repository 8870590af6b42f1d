"""Balanced factorizations: construction, frames and the polar re-balancing map.

A network is balanced when W_{p+1}^T W_{p+1} = W_p W_p^T for all p. Then
W_p = Q_p Lambda Q_{p-1}^T with Q_p in St(d_p, r) and Lambda = Sigma^{1/N}
(Arora, Cohen & Hazan 2018; Menon 2024; math.md §2.2).

Every function takes numpy arrays or torch tensors (CPU or CUDA, float32/float64;
``core._backend``) and returns the same kind: one implementation per formula,
written against the common subset of numpy and ``array_api_compat.torch``. In
float32 the frames are orthonormal to ~1e-6 and rebuild W_p to ~1e-6 |W_p|; the
balance test of ``balanced_frames`` scales with the dtype's eps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from dlnmanifolds.core import _backend
from dlnmanifolds.core._validate import (
    as_rng,
    as_weights,
    check_end_to_end,
    check_positive_int,
    check_widths,
    widths_of,
)
from dlnmanifolds.core.network import _imbalance, _t
from dlnmanifolds.core.operator import numerical_rank

Layers = Sequence[np.ndarray]


def haar_stiefel(n: int, r: int, rng: np.random.Generator) -> np.ndarray:
    """A Haar-distributed n x r matrix with orthonormal columns (QR with sign fix)."""
    q, rr = np.linalg.qr(rng.standard_normal((n, r)))
    return q * np.sign(np.where(np.diag(rr) == 0, 1.0, np.diag(rr)))


def _layers_from_frames(frames: Sequence[np.ndarray], lam: np.ndarray) -> list[np.ndarray]:
    """W_p = Q_p diag(lam) Q_{p-1}^T for p = 1..N."""
    return [(frames[p] * lam) @ _t(frames[p - 1]) for p in range(1, len(frames))]


def full_rank_widths(widths: Sequence[int]) -> tuple[tuple[int, ...], int]:
    """(widths, r = min(d_0, d_N)) for the balanced manifold of full-rank end-to-end
    matrices: ValueError unless every inner width is >= r (else M_r is empty)."""
    widths = check_widths(widths)
    rank = min(widths[0], widths[-1])
    if min(widths) < rank:
        raise ValueError(
            f"widths {widths}: every inner width must be >= min(d_0, d_N) = {rank} (full-rank "
            f"end-to-end matrices are supported), got the narrowest {min(widths)}"
        )
    return widths, rank


def balanced_dimension(widths: Sequence[int], rank: int) -> int:
    """dim M_r = r + sum_{p=0}^N (d_p r - r(r+1)/2) (math.md §2.3; checked in math.md §10)."""
    return rank + sum(d * rank - rank * (rank + 1) // 2 for d in widths)


def balanced_factors(
    W: np.ndarray,
    depth: int,
    widths: Sequence[int] | None = None,
    rng: np.random.Generator | int | None = None,
) -> tuple[np.ndarray, ...]:
    """A balanced factorization (W_1, ..., W_N) of the end-to-end matrix W.

    With the compact SVD W = U_r Sigma_r V_r^T (r = numerical rank):
    W_1 = Q_1 Sigma^{1/N} V^T, W_p = Q_p Sigma^{1/N} Q_{p-1}^T,
    W_N = U Sigma^{1/N} Q_{N-1}^T (math.md §2.2, "balanced point from an
    end-to-end matrix"). The inner frames Q_p in St(d_p, r) are the first r
    coordinate vectors (canonical gauge) or Haar samples when ``rng`` is given.

    Parameters
    ----------
    W : array, shape=[m, n] (numpy, or a torch tensor: the factors are tensors of its
        dtype and device; Haar gauges are drawn by the numpy ``rng`` and copied over)
    depth : int, N >= 1
    widths : (d_0, ..., d_N) with d_0 = n, d_N = m and every d_p >= rank W.
        Default: inner widths min(m, n).
    rng : numpy Generator or int seed for a random orthogonal gauge.

    Example
    -------
    The factors multiply back to W and are balanced (all invariants G_p vanish):

    >>> import numpy as np
    >>> from dlnmanifolds import balanced_factors, end_to_end, imbalance
    >>> W = np.random.default_rng(0).standard_normal((3, 3))
    >>> factors = balanced_factors(W, 3, rng=0)
    >>> [f.shape for f in factors]
    [(3, 3), (3, 3), (3, 3)]
    >>> bool(np.allclose(end_to_end(factors), W)), bool(imbalance(factors) < 1e-12)
    (True, True)

    Every layer has the singular values sigma^{1/N} of W:

    >>> sigma = np.linalg.svd(W, compute_uv=False)
    >>> all(np.allclose(np.linalg.svd(f, compute_uv=False), sigma ** (1 / 3)) for f in factors)
    True
    """
    W, depth, widths = check_end_to_end(W, depth, widths)
    xp = _backend.namespace(W)
    u, s, vt = xp.linalg.svd(W, full_matrices=False)
    r = numerical_rank(s)
    if r > min(widths):
        raise ValueError(
            f"W has rank {r} but the narrowest layer in widths {widths} has "
            f"{min(widths)}: no factorization exists"
        )
    gen = None if rng is None else as_rng(rng)
    frames = [_t(vt[:r])]
    for d in widths[1:-1]:
        if gen is None:
            frames.append(_backend.eye_batch(W, d)[:, :r])
        else:
            frames.append(_backend.asarray_like(haar_stiefel(d, r, gen), W))
    frames.append(u[:, :r])
    return tuple(_layers_from_frames(frames, s[:r] ** (1.0 / depth)))


class BalancedFrames(NamedTuple):
    """Frames of a balanced point: W_p = q[p] diag(lam) q[p-1]^T.

    ``q[p]`` is d_p x r with orthonormal columns, ``q_perp[p]`` its orthogonal
    complement (d_p x (d_p - r)), ``lam`` = sigma^{1/N} (decreasing). ``cache``
    (a dict, or None for no caching) holds data derived from the frames once:
    the completed frames and the factored Jacobi systems of the projection.
    Batched frames (of a batch of networks [..., d_p, d_{p-1}]) carry the batch axes
    first: q[p] [..., d_p, r], lam [..., r].
    """

    q: list[np.ndarray]
    q_perp: list[np.ndarray]
    lam: np.ndarray
    cache: dict | None = None

    @property
    def rank(self) -> int:
        return int(self.lam.shape[-1])

    def _fulls(self) -> list[np.ndarray]:
        if self.cache is not None and "full" in self.cache:
            return self.cache["full"]
        fulls = [
            q if qp.shape[-1] == 0 else _backend.namespace(q).concat([q, qp], axis=-1)
            for q, qp in zip(self.q, self.q_perp)
        ]
        if self.cache is not None:
            self.cache["full"] = fulls
        return fulls

    def full(self, p: int) -> np.ndarray:
        """The completed orthogonal frame [Q_p, Q_p^perp] (d_p x d_p)."""
        return self._fulls()[p]

    def to_frames(self, xi: Layers) -> list[np.ndarray]:
        """xi~_p = Qhat_p^T xi_p Qhat_{p-1} (math.md §1, frame coordinates)."""
        f = self._fulls()
        return [_t(f[p + 1]) @ x @ f[p] for p, x in enumerate(xi)]

    def from_frames(self, xt: Layers) -> list[np.ndarray]:
        f = self._fulls()
        return [f[p + 1] @ x @ _t(f[p]) for p, x in enumerate(xt)]


def _complement(q: np.ndarray) -> np.ndarray:
    """An orthonormal basis (d x (d - r)) of the orthogonal complement of range q
    (batched: q [..., d, r])."""
    d, r = q.shape[-2:]
    if r == d:
        return _backend.zeros(q, tuple(q.shape[:-1]) + (0,))
    # Householder QR of an orthonormal q: the trailing columns span its complement.
    return _backend.namespace(q).linalg.qr(q, mode="complete")[0][..., :, r:]


def balanced_frames(weights: Layers, rank: int | None = None) -> BalancedFrames:
    """Recover frames of a balanced network (math.md §2.2; checked in math.md §10).

    Q_0, Q_1 and Lambda = Sigma_r^{1/N} from the SVD W_1 = Q_1 Lambda Q_0^T
    (the right singular vectors of W_1 are V_r of phi(W)) and
    Q_p = polar(W_p Q_{p-1}) for p >= 2. At a balanced point this equals the
    W_p Q_{p-1} Lambda^{-1} of math.md §2.2 (checked in math.md §10), also for repeated singular
    values, but it is backward stable: the frames are orthonormal to round-off
    and rebuild every W_p to eps |W_p| whatever sigma_max/sigma_min (issue 14,
    F3; the division by Lambda amplified errors by lam_1/lam_r per layer).
    Cost: N thin SVDs, O(N d^3).
    Validates shapes, finiteness, ``rank`` (a non-finite layer made the SVD
    hang) and balance: max |G_p| must be <= tol max(1, max |W_p|^2), tol = 1e-8
    in float64 (1e-3 for float32 tensors: eps32 ~ 1.2e-7 times the round-off growth
    of a product of layers), since frames of an unbalanced network mean nothing.
    numpy arrays or torch tensors (the frames are of the same kind).

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds import balanced_factors, balanced_frames
    >>> W = balanced_factors(np.diag([8.0, 1.0]), 3, rng=0)
    >>> frames = balanced_frames(W)
    >>> frames.rank, np.round(frames.lam, 6)  # lam = sigma^{1/N}
    (2, array([2., 1.]))
    >>> q0, q1 = frames.q[0], frames.q[1]  # W_1 = Q_1 diag(lam) Q_0^T
    >>> bool(np.allclose(W[0], q1 @ np.diag(frames.lam) @ q0.T))
    True
    """
    weights = as_weights(weights)
    scale = max(1.0, max(float(abs(w).max()) for w in weights) ** 2)
    tol = 1e-8 if _backend.dtype_eps(weights[0]) < 1e-10 else 1e-3
    off_balance = _imbalance(weights)
    if off_balance > tol * scale:
        raise ValueError(
            f"weights must be balanced for balanced_frames: max |W_(p+1)^T W_(p+1) - "
            f"W_p W_p^T| = {off_balance:.3g} > {tol * scale:.3g}"
        )
    if rank is not None:
        rank = check_positive_int(rank, "rank")
        if rank > min(widths_of(weights)):
            raise ValueError(
                f"rank must be at most the narrowest width {min(widths_of(weights))}, got {rank}"
            )
    return _balanced_frames(weights, rank)


def _balanced_frames(weights: Layers, rank: int | None = None) -> BalancedFrames:
    # Internal, unvalidated form of ``balanced_frames``.
    #
    # Stable recovery (issue 14, F3): Q_0, Q_1 and Lambda come from the SVD of
    # W_1 itself (its singular values are lam, resolved to eps * lam_1, where
    # those of phi(W) = lam^N are resolved only to eps * lam_1^N), and
    # Q_p = polar(W_p Q_{p-1}) for p >= 2. At a balanced point
    # W_p Q_{p-1} R = Q_p Lambda R for any rotation R of the previous frame, and
    # Lambda R = R (R^T Lambda R) is a polar decomposition, so the polar factor
    # carries the gauge R over exactly and its round-off is not amplified from
    # layer to layer; the old Q_p = W_p Q_{p-1} Lambda^{-1} multiplied the error
    # by lam_1/lam_r per layer, eps * sigma_max/sigma_min in all.
    #
    # Batched layers [..., d_p, d_{p-1}] (a batch of networks) need ``rank``.
    depth = len(weights)
    svd = _backend.namespace(weights[0]).linalg.svd(weights[0], full_matrices=False)
    if rank is None and weights[0].ndim > 2:
        raise ValueError("rank is required for a batch of networks")
    if rank is None:
        s = svd[1]
        rank = numerical_rank(s**depth)
        if rank == 0 or not bool(s[0] > 0):
            raise ValueError("weights: the end-to-end matrix is zero, so it has no frames")
    frames, lam = _frame_stack(weights, rank, svd)
    return BalancedFrames(frames, [_complement(q) for q in frames], lam, {})


def _frame_stack(weights: Layers, r: int, svd=None) -> tuple[list[np.ndarray], np.ndarray]:
    """The frames (Q_0, ..., Q_N) and lam of ``_balanced_frames``; batch-capable
    (layers [..., d_p, d_{p-1}] give Q_p [..., d_p, r] and lam [..., r]). ``svd``: the
    thin SVD of W_1 if already computed."""
    xp = _backend.namespace(weights[0])
    u, s, vt = xp.linalg.svd(weights[0], full_matrices=False) if svd is None else svd
    lam = s[..., :r]
    # Sign gauge: the largest entry of each column of Q_0 is positive. The right
    # singular vectors of W_1 are those of phi(W), so for distinct singular values
    # Q_0 depends on phi(W) only (two factorizations of X get the same Q_0).
    q0, q1 = _t(vt[..., :r, :]), u[..., :, :r]
    peak = xp.take_along_axis(q0, xp.argmax(xp.abs(q0), axis=-2)[..., None, :], axis=-2)
    # sign(peak) is exactly +-1: the peak of a unit column is >= 1/sqrt(d) in modulus.
    signs = xp.sign(peak)
    frames = [q0 * signs, q1 * signs]
    for w in weights[1:]:
        frames.append(_polar(w @ frames[-1]))
    return frames, lam


def _polar(a: np.ndarray) -> np.ndarray:
    """Orthonormal polar factor A (A^T A)^{-1/2} of a full-column-rank matrix."""
    u, _, vt = _backend.namespace(a).linalg.svd(a, full_matrices=False)
    return u @ vt


def _rebalance(ambient: Layers, with_frames: bool = False):
    """Smooth map from a neighbourhood of the balanced manifold onto it.

    For d_0 <= d_N: X = phi(Y), P = (X^T X)^{1/(2N)}, R_0 = I,
    R_p = polar(Y_p ... Y_1) and R_N = polar(X); return W_p = R_p P R_{p-1}^T.
    It is the identity on balanced points (there R_p = Q_p Q_0^T), so
    Y -> rebalance(W + xi) is a retraction. It keeps phi exactly, is balanced
    to round-off, and needs no SVD gauge choice, so repeated singular values
    are harmless. The SVD-free balanced form is math.md §2.2; using it as a
    retraction is ours. For d_0 > d_N the mirrored network is used.
    numpy arrays or torch tensors (returned as the same kind); batch-capable (layers
    [..., d_p, d_{p-1}]).

    With ``with_frames``, also the balanced frames of the result from the same SVD
    X = U diag(s) V^T (no further SVD): with P = V diag(lam) V^T, lam = s^{1/N},
    W_p = (R_p V) diag(lam) (R_{p-1} V)^T, so Q_p = R_p V and lam (math.md §2.2);
    returns (layers, [Q_0, ..., Q_N], lam). N + 1 SVDs in all (the polar factor of
    X comes from its SVD).
    """
    if ambient[0].shape[-1] > ambient[-1].shape[-2]:
        mirrored = [_t(y) for y in reversed(ambient)]
        out = _rebalance(mirrored, with_frames)
        layers = [_t(w) for w in reversed(out[0] if with_frames else out)]
        # W'_p = W_{N+1-p}^T: the frames of the mirror, in reverse order
        return (layers, out[1][::-1], out[2]) if with_frames else layers
    depth = len(ambient)
    xp = _backend.namespace(ambient[0])
    prefix = ambient[0]
    rotations = [_backend.eye_batch(prefix, prefix.shape[-1])]
    for y in ambient[1:]:
        rotations.append(_polar(prefix))
        prefix = y @ prefix
    u, s, vt = xp.linalg.svd(prefix, full_matrices=False)
    rotations.append(u @ vt)  # polar(X), from the SVD already at hand
    lam = s ** (1.0 / depth)
    p_root = (_t(vt) * lam[..., None, :]) @ vt
    layers = [rotations[p + 1] @ p_root @ _t(rotations[p]) for p in range(depth)]
    if not with_frames:
        return layers
    v = _t(vt)
    return layers, [v] + [r @ v for r in rotations[1:]], lam


def widths_and_rank(weights: Layers) -> tuple[tuple[int, ...], int]:
    """(widths, min(d_0, d_N)): the widths of a network and its largest end-to-end rank."""
    widths = widths_of(weights)
    return widths, min(widths[0], widths[-1])
