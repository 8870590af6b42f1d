"""Tangent geometry of the balanced manifold M_r (math.md §2.4–2.6).

Everything is computed in the frames of a balanced point, where the tangent
projection decouples (math.md §2.4, "frame form", verified C10):

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

from dlnmanifolds.core.balanced import BalancedFrames
from dlnmanifolds.core.network import (
    _dphi,
    _dphi_adjoint,
    _prefix_products,
    _suffix_products,
)
from dlnmanifolds.core.operator import _operator_in_frame, svd_frame

Layers = Sequence[np.ndarray]


def _pair_indices(r: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(r, k=1)


def _thomas_jacobi(lam_i: np.ndarray, lam_j: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve 2 T_ij c = rhs for all pairs at once.

    rhs has shape (N-1, P); T_ij is tridiagonal with diagonal lam_i^2 + lam_j^2
    and off-diagonals -lam_i lam_j (math.md §2.4 step 3). T_ij is SPD with
    det T_ij = kappa_ij > 0, so elimination without pivoting is stable.
    """
    n = rhs.shape[0]
    diag = lam_i**2 + lam_j**2
    off = -lam_i * lam_j
    c_prime = np.empty_like(rhs)
    d_prime = np.empty_like(rhs)
    denom = 2.0 * diag
    c_prime[0] = 2.0 * off / denom
    d_prime[0] = rhs[0] / denom
    for k in range(1, n):
        denom = 2.0 * diag - 2.0 * off * c_prime[k - 1]
        c_prime[k] = 2.0 * off / denom
        d_prime[k] = (rhs[k] - 2.0 * off * d_prime[k - 1]) / denom
    out = np.empty_like(rhs)
    out[-1] = d_prime[-1]
    for k in range(n - 2, -1, -1):
        out[k] = d_prime[k] - c_prime[k] * out[k + 1]
    return out


def _split_square_blocks(xt: Layers, r: int):
    return np.stack([x[:r, :r] for x in xt])


def _normal_coefficients(xt: Layers, lam: np.ndarray):
    """Frame coordinates of the normal part C_W(S) of a vector.

    Returns (diag_s, pair_c, perp_l): the multipliers of math.md §2.4 such that
    S~_q[i, i] = diag_s[q, i], S~_q[i, j] = S~_q[j, i] = pair_c[q, pair] and
    S~_q[perp, r] = perp_l[q] Lambda^{-1}, with S~_q[perp, perp] = 0.
    """
    depth = len(xt)
    r = lam.shape[0]
    blocks = _split_square_blocks(xt, r)  # (N, r, r)
    diag = np.diagonal(blocks, axis1=1, axis2=2)  # (N, r)
    centred = diag - diag.mean(axis=0)
    # lam_i (s_p - s_{p-1}) = centred_p  =>  s_q = cumsum_{p<=q} centred_p / lam_i
    diag_s = np.cumsum(centred, axis=0)[:-1] / lam
    iu, ju = _pair_indices(r)
    lam_i, lam_j = lam[iu], lam[ju]
    x = blocks[:, iu, ju]
    y = blocks[:, ju, iu]
    if depth > 1 and iu.size:
        rhs = lam_j * x[:-1] + lam_i * y[:-1] - lam_i * x[1:] - lam_j * y[1:]
        pair_c = _thomas_jacobi(lam_i, lam_j, rhs)
    else:
        pair_c = np.zeros((max(depth - 1, 0), iu.size))
    perp_l = [0.5 * (xt[q][r:, :r] - xt[q + 1][:r, r:].T) for q in range(depth - 1)]
    return diag_s, pair_c, perp_l


def _tangent_in_frames(xt: Layers, lam: np.ndarray) -> list[np.ndarray]:
    """Orthogonal projection onto T_W M_r in frame coordinates (math.md §2.4)."""
    depth = len(xt)
    r = lam.shape[0]
    diag_s, pair_c, perp_l = _normal_coefficients(xt, lam)
    out = [np.array(x, dtype=float, copy=True) for x in xt]
    iu, ju = _pair_indices(r)
    lam_i, lam_j = lam[iu], lam[ju]
    diag_mean = np.mean([np.diagonal(x[:r, :r]) for x in xt], axis=0)
    for p in range(depth):
        block = out[p][:r, :r]
        # Subtract the pair normals n_q (q = p: slot q; q = p - 1: slot q+1).
        if p < depth - 1:
            block[iu, ju] -= lam_j * pair_c[p]
            block[ju, iu] -= lam_i * pair_c[p]
        if p > 0:
            block[iu, ju] += lam_i * pair_c[p - 1]
            block[ju, iu] += lam_j * pair_c[p - 1]
        block[np.arange(r), np.arange(r)] = diag_mean
        out[p][r:, r:] = 0.0
        if p < depth - 1:
            out[p][r:, :r] -= perp_l[p]
        if p > 0:
            out[p][:r, r:] += perp_l[p - 1].T
    del diag_s
    return out


def tangent_projection(frames: BalancedFrames, xi: Layers) -> list[np.ndarray]:
    """P_T xi: orthogonal projection of an ambient vector onto T_W M_r."""
    return frames.from_frames(_tangent_in_frames(frames.to_frames(xi), frames.lam))


def normal_multipliers(frames: BalancedFrames, xi: Layers) -> list[np.ndarray]:
    """S = (S_1, ..., S_{N-1}), symmetric, with C_W(S) = normal part of xi in range C_W.

    C_W(S)_p = S_p W_p - W_p S_{p-1} (math.md §2.4). For general widths the
    (perp, perp) blocks of S are set to 0 (they lie in the kernel of C_W).
    """
    xt = frames.to_frames(xi)
    lam = frames.lam
    r = lam.shape[0]
    diag_s, pair_c, perp_l = _normal_coefficients(xt, lam)
    iu, ju = _pair_indices(r)
    out = []
    for q in range(len(xt) - 1):
        d = frames.q[q + 1].shape[0]
        s = np.zeros((d, d))
        s[np.arange(r), np.arange(r)] = diag_s[q]
        s[iu, ju] = pair_c[q]
        s[ju, iu] = pair_c[q]
        s[r:, :r] = perp_l[q] / lam
        s[:r, r:] = s[r:, :r].T
        full = frames.full(q + 1)
        out.append(full @ s @ full.T)
    return out


def normal_generator(weights: Layers, s: Sequence[np.ndarray], tangent: Layers | None = None):
    """C_V(S)_p = S_p V_p - V_p S_{p-1}, S_0 = S_N = 0 (math.md §2.4).

    With ``tangent`` given, V = tangent (the C_xi(S) of the Weingarten term).
    """
    v = weights if tangent is None else tangent
    depth = len(v)
    out = []
    for p in range(depth):
        term = np.zeros_like(v[p])
        if p < depth - 1:
            term = term + s[p] @ v[p]
        if p > 0:
            term = term - v[p] @ s[p - 1]
        out.append(term)
    return out


def normal_generator_adjoint(weights: Layers, eta: Layers) -> list[np.ndarray]:
    """C_W^*(eta)_p = sym(eta_p W_p^T - W_{p+1}^T eta_{p+1}), p = 1..N-1 (math.md §2.4)."""
    out = []
    for p in range(len(weights) - 1):
        b = eta[p] @ weights[p].T - weights[p + 1].T @ eta[p + 1]
        out.append(0.5 * (b + b.T))
    return out


def riemannian_hessian(
    weights: Layers,
    frames: BalancedFrames,
    egrad: Layers,
    ehess: Layers,
    xi: Layers,
) -> list[np.ndarray]:
    """Riemannian Hessian on M_r: P_T(ehess - C_xi(S) + II_rank(xi, egrad_perp)).

    The first two terms are the Weingarten form of math.md §2.6 (verified C3),
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
            n_perp = left @ (left.T @ egrad[p] @ right) @ right.T
            pinv_t = (frames.q[p + 1] / frames.lam) @ frames.q[p].T
            total[p] = total[p] + n_perp @ xi[p].T @ pinv_t + pinv_t @ xi[p].T @ n_perp
    del r
    return tangent_projection(frames, total)


def horizontal_lift(
    weights: Layers, zeta: np.ndarray, depth: int | None = None
) -> list[np.ndarray]:
    """zeta^h = Dphi^*(A^{-1} zeta), the horizontal lift (math.md §2.4, §4.2).

    ||zeta^h||^2 = g^N(zeta, zeta). Requires phi(W) of full rank min(m, n).
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
