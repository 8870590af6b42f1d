"""Factored rank-r matrices X = U diag(s) V^T and the O(|Omega| r) operations on them.

The fixed-rank geometries never form an m x n array: the loss, the residual on
Omega and the gradient products G V, G^T U of matrix completion only need the
entries X_ij = sum_k U_ik s_k V_jk at the observed (i, j), which cost O(r) each
(Vandereycken 2013, "Low-rank matrix completion by Riemannian optimization",
Sec. 4.1). ``LowRank`` is the point type passed to problems and callbacks there.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

#: Observations gathered per block: bounds the temporaries to ~ block * r floats.
_BLOCK = 1 << 15


class LowRank(NamedTuple):
    """X = u diag(s) vt with u (m, r), s (r,), vt (r, n); columns of u, rows of vt
    orthonormal when it comes from a fixed-rank manifold point.

    Example
    -------
    >>> import numpy as np
    >>> x = LowRank(np.eye(3, 1), np.array([2.0]), np.eye(1, 4))
    >>> x.shape, float(x.to_dense()[0, 0])
    ((3, 4), 2.0)
    """

    u: np.ndarray
    s: np.ndarray
    vt: np.ndarray

    @property
    def shape(self) -> tuple[int, int]:
        return (self.u.shape[0], self.vt.shape[1])

    @property
    def rank(self) -> int:
        return int(self.s.shape[0])

    def to_dense(self) -> np.ndarray:
        """The m x n array (only for small problems and tests)."""
        return (self.u * self.s) @ self.vt

    def is_finite(self) -> bool:
        return all(bool(np.all(np.isfinite(a))) for a in (self.u, self.s, self.vt))

    def copy(self) -> LowRank:
        return LowRank(self.u.copy(), self.s.copy(), self.vt.copy())


def as_low_rank(value: Any) -> LowRank | None:
    """``value`` as a LowRank when it is a factored triple (u, s, vt), else None."""
    if isinstance(value, LowRank):
        return value
    if isinstance(value, (tuple, list)) and len(value) == 3:
        u, s, vt = (np.asarray(v, dtype=np.float64) for v in value)
        if u.ndim == 2 and s.ndim == 1 and vt.ndim == 2 and u.shape[1] == s.size == vt.shape[0]:
            return LowRank(u, s, vt)
    return None


def dense(x: Any) -> np.ndarray:
    """x as an m x n array (densifies a LowRank; for the dense problems and geometries)."""
    low = as_low_rank(x)
    return low.to_dense() if low is not None else np.asarray(x, dtype=np.float64)


def is_finite(x: Any) -> bool:
    """All entries finite, without densifying a LowRank."""
    low = as_low_rank(x)
    return low.is_finite() if low is not None else bool(np.all(np.isfinite(x)))


def snapshot(x: Any) -> Any:
    """A copy of x (a LowRank stays factored)."""
    low = as_low_rank(x)
    return low.copy() if low is not None else np.array(x, copy=True)


def gather(x: LowRank, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The entries X[rows[k], cols[k]] = sum_j (U S)_{rows[k], j} V_{cols[k], j}, O(|Omega| r).

    Works in blocks so the temporaries stay ~ 2 * 2^15 * r floats.
    """
    us = x.u * x.s
    v = x.vt.T
    out = np.empty(rows.shape[0])
    for start in range(0, rows.shape[0], _BLOCK):
        stop = start + _BLOCK
        out[start:stop] = np.einsum("ij,ij->i", us[rows[start:stop]], v[cols[start:stop]])
    return out


def difference_norm(a: LowRank, b: LowRank) -> float:
    """||A - B||_F for two factored matrices, O((m + n) r^2), without cancellation.

    With Q R = [V_a, V_b] (thin QR), A - B = [U_a S_a, -U_b S_b] R^T Q^T and Q has
    orthonormal columns, so ||A - B||_F = ||U_a S_a R_a^T - U_b S_b R_b^T||_F where
    R = [R_a, R_b]; the subtraction is entrywise as in the dense formula.
    """
    q, r = np.linalg.qr(np.hstack([a.vt.T, b.vt.T]))
    ka = a.s.shape[0]
    d = (a.u * a.s) @ r[:, :ka].T - (b.u * b.s) @ r[:, ka:].T
    return float(np.linalg.norm(d))


def frobenius_norm(x: LowRank) -> float:
    """||U S V^T||_F (exact for orthonormal U, V; via the r x r Gram matrices otherwise)."""
    gu = (x.u * x.s).T @ (x.u * x.s)
    gv = x.vt @ x.vt.T
    return float(np.sqrt(max(np.sum(gu * gv), 0.0)))


def truncate(x: LowRank, rank: int) -> LowRank:
    """The best rank-``rank`` approximation of U diag(s) V^T as a thin SVD, O((m + n) k^2).

    U and V need not be orthonormal: QR both, SVD the k x k core (Eckart-Young).
    """
    qu, ru = np.linalg.qr(x.u)
    qv, rv = np.linalg.qr(x.vt.T)
    a, s, bt = np.linalg.svd((ru * x.s) @ rv.T)
    return LowRank(qu @ a[:, :rank], s[:rank], bt[:rank] @ qv.T)
