"""Orthographic projection onto the balanced manifold, batched over paths (math.md §2.5).

Given a base point W in M and an ambient point Y near it, find S in Sym(d)^{N-1} with

    G(Y + C_W(S)) = 0,   C_W(S)_p = S_p W_p - W_p S_{p-1}  (S_0 = S_N = 0),

by Newton's method; the Jacobian is dS -> DG(V)[C_W(dS)] at the current iterate V.
Y + C_W(S) - W - P_T(Y - W) is normal, so this is the orthographic retraction when
Y - W is tangent and the constrained-step projection of the upstairs Langevin
scheme (math.md §8.2, verified C10, C12). Main case: square widths, W of full rank.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlnmanifolds.core.balanced_tangent import normal_generator
from dlnmanifolds.core.network import _invariants, _t


def _sym2(a: np.ndarray) -> np.ndarray:
    return a + _t(a)


def _sym_basis(d: int):
    iu, ju = np.triu_indices(d)
    basis = np.zeros((iu.size, d, d))
    basis[np.arange(iu.size), iu, ju] = 1.0
    basis[np.arange(iu.size), ju, iu] = 1.0
    return basis, iu, ju


def _generator(base: Sequence[np.ndarray], s: np.ndarray) -> list[np.ndarray]:
    """C_W(S) for S stacked as [..., N-1, d, d] (``normal_generator`` is batch-safe)."""
    return normal_generator(base, list(np.moveaxis(s, -3, 0)))


def orthographic_projection(
    base: Sequence[np.ndarray],
    ambient: Sequence[np.ndarray],
    tol: float = 1e-12,
    max_iter: int = 20,
) -> tuple[list[np.ndarray], int, float]:
    """Project ``ambient`` onto M along range C_base (Newton on S); batched layers.

    Returns (V, iterations, max |G(V)| entry). ``tol`` is relative to
    max(1, max |W|^2). Layers have shape [..., d, d].
    """
    depth = len(base)
    if depth == 1:
        return [np.array(a) for a in ambient], 0, 0.0
    d = base[0].shape[-1]
    batch = base[0].shape[:-2]
    basis, iu, ju = _sym_basis(d)
    nsym = iu.size
    scale = max(1.0, max(float(np.max(np.abs(w))) for w in base) ** 2)
    # C_W(E_l in slot q) is E_l W_q in layer q and -W_{q+1} E_l in layer q+1.
    left = [basis @ w[..., None, :, :] for w in base[:-1]]  # [..., nsym, d, d]
    right = [-(w[..., None, :, :] @ basis) for w in base[1:]]
    s = np.zeros(batch + (depth - 1, d, d))
    v = [np.array(a) for a in ambient]
    residual = float("inf")
    for iteration in range(max_iter + 1):
        g = np.stack(_invariants(v), axis=-3)  # [..., N-1, d, d]
        residual = float(np.max(np.abs(g))) if g.size else 0.0
        if residual <= tol * scale:
            return v, iteration, residual
        if iteration == max_iter:
            break
        jac = np.zeros(batch + (depth - 1, nsym, depth - 1, nsym))
        vv = [w[..., None, :, :] for w in v]
        for q in range(depth - 1):
            xq, xq1 = left[q], right[q]
            # rows p = q - 1, q, q + 1 (DG(V)[xi]_p = sym2(xi_{p+1}^T V_{p+1}) - sym2(xi_p V_p^T))
            if q >= 1:
                jac[..., q - 1, :, q, :] += _sym2(_t(xq) @ vv[q])[..., iu, ju].swapaxes(-1, -2)
            block = _sym2(_t(xq1) @ vv[q + 1]) - _sym2(xq @ _t(vv[q]))
            jac[..., q, :, q, :] += block[..., iu, ju].swapaxes(-1, -2)
            if q + 1 <= depth - 2:
                jac[..., q + 1, :, q, :] -= _sym2(xq1 @ _t(vv[q + 1]))[..., iu, ju].swapaxes(-1, -2)
        size = (depth - 1) * nsym
        rhs = -g[..., iu, ju].reshape(batch + (size,))
        delta = np.linalg.solve(jac.reshape(batch + (size, size)), rhs[..., None])[..., 0]
        delta = delta.reshape(batch + (depth - 1, nsym))
        s = s + np.einsum("...ql,lij->...qij", delta, basis)
        c = _generator(base, s)
        v = [a + ci for a, ci in zip(ambient, c)]
    return v, max_iter, residual
