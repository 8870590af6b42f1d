"""Fibers phi^{-1}(X) of the end-to-end map and the GL action on weights (math.md §5).

The group GL(d_1) x ... x GL(d_{N-1}) acts by (g.W)_p = g_p W_p g_{p-1}^{-1}
(g_0 = I, g_N = I) and preserves phi. Its Lie-algebra map

    C_W(A)_p = A_p W_p - W_p A_{p-1},   A_0 = A_N = 0,

spans T_W F = ker Dphi(W) at generic W (Dphi surjective, e.g. phi(W) of full
rank), of dimension sum_p d_p d_{p-1} - d_N d_0 (math.md §5; checked in math.md §10).

Projection onto the fiber (math.md §5; checked in math.md §10):
P_F = I - Dphi^* A_W^{-1} Dphi with the generic A_W(Z) = sum_p L_p Z R_p,
L_p = W_{>p} W_{>p}^T, R_p = W_{<p}^T W_{<p}. A_W has no common eigenframe off
the balanced manifold, so ``fiber_solver`` factors the D x mn matrix J of
Dphi^* (D = sum_p d_p d_{p-1}) as J = QR once per point, O(D (mn)^2); then
P_F xi = xi - Q Q^T xi costs O(D mn) and A_W^{-1} = R^{-1} R^{-T}. This keeps
the accuracy eps * cond(A_W)^{1/2} at tiny singular values (a Cholesky factor
of A_W itself loses eps * cond(A_W)). Fine up to mn ~ 10^3.

Every function takes numpy arrays or torch tensors (CPU or CUDA, float32/float64;
``core._backend``) and returns the same kind; the QR, the triangular and
least-squares solves and expm are the one per-backend kernel each of
``core._backend``. float32 loses what its eps does: the projection to ~1e-6
relative, the generators of the retraction to ~1e-7 cond(W_p) (tested bounds in
tests/torch_backend/test_torch_fiber_orbit.py).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from dlnmanifolds.core import _backend
from dlnmanifolds.core._validate import as_matrix, as_weights, widths_of
from dlnmanifolds.core.balanced_tangent import normal_generator
from dlnmanifolds.core.network import (
    _dphi_adjoint_derivative,
    _end_to_end,
    _prefix_products,
    _suffix_products,
    _t,
)
from dlnmanifolds.core.operator import RANK_RTOL, require_full_rank

Layers = Sequence[np.ndarray]


# -- group action ---------------------------------------------------------------------------


def _check_group(weights: Layers, group: Sequence, name: str) -> list[np.ndarray]:
    widths = widths_of(weights)
    inner = widths[1:-1]
    if (isinstance(group, np.ndarray) or _backend._is_torch(group)) and group.ndim == 3:
        group = list(group)
    if isinstance(group, (str, bytes)) or not isinstance(group, Sequence):
        raise TypeError(f"{name} must be a sequence of N-1 = {len(inner)} square matrices")
    if len(group) != len(inner):
        raise ValueError(
            f"{name} must have N-1 = {len(inner)} matrices (one per inner layer), got {len(group)}"
        )
    out = []
    for p, (g, d) in enumerate(zip(group, inner)):
        g = as_matrix(g, f"{name}[{p}]")
        if g.shape != (d, d):
            raise ValueError(
                f"{name}[{p}] must have shape ({d}, {d}) (width d_{p + 1}), got {g.shape}"
            )
        out.append(g)
    # one backend and device with the weights (TypeError naming the argument)
    _backend.namespace(
        weights[0], *out, names=("weights[0]",) + tuple(f"{name}[{p}]" for p in range(len(out)))
    )
    return out


def _as_tangent(layers: Layers, value, name: str) -> tuple:
    """``value`` validated as layers of the widths of ``layers``, of the same backend and
    device (TypeError naming ``name`` otherwise)."""
    out = as_weights(value, name, widths_of(layers))
    _backend.namespace(layers[0], out[0], names=("weights[0]", f"{name}[0]"))
    return out


def _gl_action(weights: Layers, group: Sequence[np.ndarray], inverse=None) -> list[np.ndarray]:
    """(g.W)_p = g_p W_p g_{p-1}^{-1}; ``inverse`` may supply the g_p^{-1}."""
    n = len(weights)
    if inverse is None:
        xp = _backend.namespace(*group)
        inverse = [xp.linalg.inv(g) for g in group]
    out = []
    for p, w in enumerate(weights):
        v = w
        if p < n - 1:
            v = group[p] @ v
        if p > 0:
            v = v @ inverse[p - 1]
        out.append(v)
    return out


def gl_action(weights: Layers, group: Sequence[np.ndarray]) -> list[np.ndarray]:
    """(g.W)_p = g_p W_p g_{p-1}^{-1}, g_0 = g_N = I; preserves phi (math.md §5).

    Parameters
    ----------
    weights : (W_1, ..., W_N), W_p of shape [d_p, d_{p-1}].
    group : (g_1, ..., g_{N-1}), g_p invertible of shape [d_p, d_p].

    Example
    -------
    The action keeps phi but moves off the balanced manifold (unlike O(d)):

    >>> import numpy as np
    >>> from dlnmanifolds import balanced_factors, end_to_end, gl_action, imbalance
    >>> W = balanced_factors(np.diag([3.0, 1.0]), 3, rng=0)
    >>> g = [np.array([[2.0, 1.0], [0.0, 1.0]]), np.array([[1.0, 0.0], [3.0, 1.0]])]
    >>> moved = gl_action(W, g)
    >>> bool(np.allclose(end_to_end(moved), end_to_end(W))), bool(imbalance(moved) > 0.1)
    (True, True)
    """
    layers = as_weights(weights)
    group = _check_group(layers, group, "group")
    inverse = []
    xp = _backend.namespace(layers[0])
    for p, g in enumerate(group):
        s = _backend.svdvals(g)
        smax, smin = float(s[0]), float(s[-1])
        if smin <= RANK_RTOL * smax:
            raise ValueError(
                f"group[{p}] must be invertible; its condition number is "
                f"{smax / max(smin, 1e-300):.3g}"
            )
        inverse.append(xp.linalg.inv(g))
    return _gl_action(layers, group, inverse)


def gl_generator(weights: Layers, generators: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Lie-algebra tangent map C_W(A)_p = A_p W_p - W_p A_{p-1}, A_0 = A_N = 0 (math.md §5).

    d/dt (exp(tA).W)|_{t=0}; its range is T_W F at generic W.
    """
    layers = as_weights(weights)
    return normal_generator(layers, _check_group(layers, generators, "generators"))


def _gl_generator_adjoint(weights: Layers, eta: Layers) -> list[np.ndarray]:
    """C_W^*(eta)_p = eta_p W_p^T - W_{p+1}^T eta_{p+1}, p = 1..N-1 (Frobenius adjoint)."""
    return [
        eta[p] @ _t(weights[p]) - _t(weights[p + 1]) @ eta[p + 1] for p in range(len(weights) - 1)
    ]


def gl_generator_adjoint(weights: Layers, tangent: Layers) -> list[np.ndarray]:
    """Adjoint of ``gl_generator``: C_W^*(eta)_p = eta_p W_p^T - W_{p+1}^T eta_{p+1}.

    Its symmetric part is -DG(W)/2 (math.md §2.4); its skew part generates the orbit.
    """
    layers = as_weights(weights)
    return _gl_generator_adjoint(layers, _as_tangent(layers, tangent, "tangent"))


def _gl_generator_solve(weights: Layers, xi: Layers) -> list[np.ndarray]:
    """Minimum-norm least-squares A with C_W(A) = xi (math.md §5; checked in math.md §10).

    Square invertible layers: the forward recursion A_1 = xi_1 W_1^{-1},
    A_p = (xi_p + W_p A_{p-1}) W_p^{-1} (unique solution, O(N d^3)). Otherwise a
    dense least-squares solve (``_backend.lstsq``, rcond 1e-13 in float64) with the matrix of
    C_W (``_generator_matrix``) on sum_{inner} d_p^2 unknowns.
    """
    widths = widths_of(weights)
    depth = len(weights)
    if depth == 1:
        return []
    xp = _backend.namespace(weights[0])
    if len(set(widths)) == 1:
        out = []
        prev = None
        for p in range(depth - 1):
            rhs = xi[p] if prev is None else xi[p] + weights[p] @ prev
            prev = _t(xp.linalg.solve(_t(weights[p]), _t(rhs)))
            out.append(prev)
        return out
    inner = widths[1:-1]
    matrix = _generator_matrix(weights)
    # C_W has a kernel (the stabiliser) for non-square widths: drop singular values at
    # 1e-13 relative in float64, at the rounding level eps * size in float32.
    eps = _backend.dtype_eps(matrix)
    rcond = 1e-13 if eps < 1e-10 else eps * max(matrix.shape)
    solution = _backend.lstsq(matrix, _flatten(xi), rcond=rcond)
    out, start = [], 0
    for d in inner:
        out.append(solution[start : start + d * d].reshape(d, d))
        start += d * d
    return out


def _generator_matrix(weights: Layers) -> np.ndarray:
    """The matrix of A -> C_W(A) on row-major vecs (rows: layers, columns: generators).

    Layer p gets vec(A_p W_p) = (I kron W_p^T) vec A_p and vec(W_p A_{p-1}) =
    (W_p kron I) vec A_{p-1}: a block bidiagonal matrix, D x sum_{inner} d_p^2.
    """
    depth = len(weights)
    widths = widths_of(weights)
    rows = [w.shape[0] * w.shape[1] for w in weights]
    cols = [d * d for d in widths[1:-1]]
    row0 = [sum(rows[:p]) for p in range(depth)]
    col0 = [sum(cols[:p]) for p in range(depth - 1)]
    matrix = _backend.zeros(weights[0], (sum(rows), sum(cols)))
    for p, w in enumerate(weights):
        rs = slice(row0[p], row0[p] + rows[p])
        if p < depth - 1:  # + A_{p+1} W_{p+1} (0-based: generator p acts on layer p)
            eye = _backend.eye_batch(w, w.shape[0])
            matrix[rs, col0[p] : col0[p] + cols[p]] = _backend.kron(eye, _t(w))
        if p > 0:  # - W_{p+1} A_p
            eye = _backend.eye_batch(w, w.shape[1])
            matrix[rs, col0[p - 1] : col0[p - 1] + cols[p - 1]] = -_backend.kron(w, eye)
    return matrix


def _generator_rank(weights: Layers, rtol: float = 1e-10) -> int:
    """Numerical rank of C_W: the dimension of the GL orbit of W.

    The orbit is open in the fiber (T_W F = range C_W, what the group retraction
    needs) exactly when this equals ``fiber_dimension``. At a generic W it does; not
    at, e.g., balanced factorizations with non-square widths, whose layers all have
    rank r < min(d_p, d_{p-1}) (the GL action keeps the rank of every layer, so such
    an orbit is a lower-dimensional stratum of the fiber, math.md §5).
    """
    if len(weights) == 1:
        return 0
    s = _backend.svdvals(_generator_matrix(weights))
    return int((s > rtol * s[0]).sum()) if float(s[0]) > 0 else 0


def orbit_is_open(weights: Layers) -> bool:
    """True when the GL orbit of ``weights`` (validated layers) is open in its fiber:
    ``_generator_rank`` equals ``fiber_dimension`` (one SVD of the matrix of C_W).

    The group retraction follows every tangent vector only there; elsewhere (e.g.
    balanced factorizations with non-square widths) it follows only the part in
    range C_W and is not a retraction, so the fiber manifolds use
    ``_projective_fiber_retraction`` at such points.
    """
    return _generator_rank(weights) == fiber_dimension(widths_of(weights))


def gl_generator_solve(weights: Layers, tangent: Layers) -> list[np.ndarray]:
    """Generators A (min-norm least squares) with A_p W_p - W_p A_{p-1} = xi_p (math.md §5)."""
    layers = as_weights(weights)
    return _gl_generator_solve(layers, _as_tangent(layers, tangent, "tangent"))


# -- fiber tangent space ----------------------------------------------------------------------


def fiber_dimension(widths: Sequence[int]) -> int:
    """dim phi^{-1}(X) = sum_p d_p d_{p-1} - d_N d_0 at generic points (math.md §5)."""
    widths = tuple(int(d) for d in widths)
    return sum(widths[p] * widths[p + 1] for p in range(len(widths) - 1)) - widths[0] * widths[-1]


class FiberSolver(NamedTuple):
    """Dphi(W)^* at one point W as a thin QR factorization J = Q R.

    J is the matrix of Dphi^*, so A_W = Dphi Dphi^* = J^T J = R^T R. The normal
    projection Dphi^* A_W^{-1} Dphi = Q Q^T is then applied with O(eps) error
    whatever the conditioning, and A_W^{-1} costs two triangular solves with
    error eps * cond(R) = eps * cond(A_W)^{1/2}, where forming and Cholesky-
    factoring A_W would lose eps * cond(A_W) (tiny singular values, N >= 3).
    """

    weights: tuple[np.ndarray, ...]
    before: list[np.ndarray]
    after: list[np.ndarray]
    q: np.ndarray
    r: np.ndarray

    def solve(self, z: np.ndarray) -> np.ndarray:
        """A_W^{-1}(Z) = R^{-1} R^{-T} vec Z (row-major vec)."""
        inner = _backend.solve_triangular(self.r, z.reshape(-1), transpose=True)
        return _backend.solve_triangular(self.r, inner).reshape(z.shape)

    def normal_multiplier(self, xi: Layers) -> np.ndarray:
        """Y = A_W^{-1}(Dphi xi) = R^{-1} Q^T vec xi, so the normal part of xi is Dphi^*(Y)."""
        coefficients = _t(self.q) @ _flatten(xi)
        shape = (self.weights[-1].shape[0], self.weights[0].shape[1])
        return _backend.solve_triangular(self.r, coefficients).reshape(shape)

    def project(self, xi: Layers) -> list[np.ndarray]:
        """P_F xi = xi - Dphi^*(A_W^{-1} Dphi xi) = xi - Q Q^T xi (math.md §5; checked in §10)."""
        return _unflatten(self.project_flat(_flatten(xi)), xi)

    def project_flat(self, flat: np.ndarray) -> np.ndarray:
        """``project`` on the concatenated row-major layers (W_1 first) of length D."""
        return flat - self.q @ (_t(self.q) @ flat)


def _flatten(layers: Layers) -> np.ndarray:
    xp = _backend.namespace(layers[0])
    return xp.concatenate([a.reshape(-1) for a in layers])


def _unflatten(vector: np.ndarray, like: Layers) -> list[np.ndarray]:
    out, start = [], 0
    for a in like:
        size = math.prod(a.shape)
        out.append(vector[start : start + size].reshape(a.shape))
        start += size
    return out


def _adjoint_matrix(before: list[np.ndarray], after: list[np.ndarray]) -> np.ndarray:
    """Matrix of Dphi^* on row-major vec: Dphi^*(Z)_p = W_{>p}^T Z W_{<p}^T."""
    xp = _backend.namespace(before[0])
    depth = len(before) - 1
    blocks = [_backend.kron(_t(after[p + 1]), before[p]) for p in range(depth)]
    return xp.concatenate(blocks, axis=0)


def _fiber_solver(weights: Layers) -> FiberSolver:
    weights = tuple(weights)
    xp = _backend.namespace(weights[0])
    before = _prefix_products(weights)
    after = _suffix_products(weights)
    q, r = xp.linalg.qr(_adjoint_matrix(before, after))
    diag = xp.abs(r.diagonal())
    top = xp.max(diag)
    # one host sync: R is singular (or zero) when its smallest pivot is negligible
    if bool(xp.min(diag) <= 1e-14 * top) or bool(top == 0):
        raise ValueError(
            "A_W = Dphi Dphi^* is singular at this point: Dphi(W) is not surjective "
            "(phi(W) rank deficient?)"
        )
    return FiberSolver(weights, before, after, q, r)


def fiber_solver(weights: Layers) -> FiberSolver:
    """Factor A_W once at a point with full-rank phi(W) (then Dphi(W) is surjective).

    Raises ValueError if phi(W) is rank deficient (A_W singular, math.md §3.3).
    """
    layers = as_weights(weights)
    require_full_rank(
        _end_to_end(layers), "weights", "a full-rank end-to-end matrix: generic fiber point"
    )
    return _fiber_solver(layers)


def fiber_projection(weights: Layers, tangent: Layers) -> list[np.ndarray]:
    """P_F xi = xi - Dphi^* A_W^{-1} Dphi xi, orthogonal projection onto ker Dphi(W).

    math.md §5 (checked in math.md §10); see ``fiber_solver`` for the cost.

    Example
    -------
    The projection is idempotent and lands in ker Dphi (phi does not move):

    >>> import numpy as np
    >>> from dlnmanifolds import dphi, fiber_projection
    >>> rng = np.random.default_rng(0)
    >>> W = [rng.standard_normal((3, 3)) for _ in range(3)]
    >>> xi = [rng.standard_normal((3, 3)) for _ in range(3)]
    >>> P = fiber_projection(W, xi)
    >>> bool(np.allclose(dphi(W, P), 0, atol=1e-10))
    True
    >>> all(np.allclose(a, b) for a, b in zip(fiber_projection(W, P), P))
    True
    """
    solver = fiber_solver(weights)
    return solver.project(_as_tangent(solver.weights, tangent, "tangent"))


def _fiber_weingarten(solver: FiberSolver, xi: Layers, normal: Layers) -> list[np.ndarray]:
    """Weingarten map of the fiber: -P_F(D_xi(Dphi^*)(Y)) for the normal vector Dphi^*(Y).

    From math.md §5: Hess_F f[xi] = P_F(grad^2 f[xi] - D_xi(Dphi^*)(Y)),
    Y = A_W^{-1}(Dphi egrad) (checked in math.md §10).
    """
    y = solver.normal_multiplier(normal)
    return solver.project([-c for c in _dphi_adjoint_derivative(solver.weights, xi, y)])


def _fiber_hessian(
    solver: FiberSolver, egrad: Layers, ehess: Layers, xi: Layers
) -> list[np.ndarray]:
    y = solver.normal_multiplier(egrad)
    curvature = _dphi_adjoint_derivative(solver.weights, xi, y)
    return solver.project([h - c for h, c in zip(ehess, curvature)])


def fiber_hessian(
    weights: Layers, egrad: Layers, ehess: Layers, tangent: Layers
) -> list[np.ndarray]:
    """Riemannian Hessian on the fiber (induced Frobenius metric), math.md §5 (checked in §10).

    Hess_F f(W)[xi] = P_F(grad^2 f(W)[xi] - D_xi(Dphi^*)(Y)), Y = A_W^{-1}(Dphi(W)[egrad]),
    D_xi(Dphi^*)(Y)_p = (D_xi W_{>p})^T Y W_{<p}^T + W_{>p}^T Y (D_xi W_{<p})^T.
    """
    solver = fiber_solver(weights)
    layers = solver.weights
    egrad = _as_tangent(layers, egrad, "egrad")
    ehess = _as_tangent(layers, ehess, "ehess")
    xi = _as_tangent(layers, tangent, "tangent")
    return _fiber_hessian(solver, egrad, ehess, xi)


# -- exact retraction -----------------------------------------------------------------------


#: Soft cap on the Frobenius norm of the generators of one retraction step.
GENERATOR_CAP = 10.0


def _exp_pairs(generators: Sequence[np.ndarray]) -> tuple[list, list]:
    expm = _backend.expm
    return [expm(a) for a in generators], [expm(-a) for a in generators]


def _capped(generators: list[np.ndarray], cap: float = GENERATOR_CAP) -> list[np.ndarray]:
    """A -> tau A with tau = cap tanh(|A|/cap)/|A| (|.| = Frobenius over all layers).

    Near a tiny singular value of some W_p a moderate xi has huge generators
    (A ~ xi W^{-1}) and e^{A} overflows, which a line search would then accept as NaN.
    tau(s) = 1 - s^2/(3 cap^2) + O(s^4) is an even analytic function of s, so
    R(t xi) changes only at O(t^3): the retraction keeps its order, stays exactly on
    the fiber, and |tau A| < cap bounds the growth of one step by e^{cap}.
    """
    xp = _backend.namespace(generators[0])
    s = xp.sqrt(sum(xp.sum(a * a) for a in generators))
    if xp is np:  # Python floats: a few microseconds less per step on small networks
        s = float(s)
        return generators if s == 0.0 else [(cap * math.tanh(s / cap) / s) * a for a in generators]
    # No branch on s (no host sync for CUDA tensors): at s = 0 the generators are zero
    # and tau = 0 * (...) leaves them so.
    tau = cap * xp.tanh(s / cap) / (s + (s == 0))
    return [tau * a for a in generators]


def _reproject(layers: list[np.ndarray], target: np.ndarray) -> list[np.ndarray]:
    """Put phi(W) back on ``target`` by the least-norm change of one end layer.

    phi is linear in W_N: with E = X - phi(W) and B = W_{N-1} ... W_1 (rank n
    when X has full rank n <= m), W_N + E B^+ maps exactly onto X; for m < n,
    W_1 + C^+ E with C = W_N ... W_2 does. E is rounding (one group step), so the
    change is O(eps) and the retraction keeps its order; without it the rounding
    of every group step accumulates along a walk (math.md §5).
    """
    error = target - _end_to_end(layers)
    if isinstance(error, np.ndarray) and not np.any(error):  # (no host sync for tensors)
        return layers
    m, n = target.shape
    out = list(layers)
    if n <= m:
        before = _end_to_end(layers[:-1]) if len(layers) > 1 else _backend.eye_batch(target, n)
        delta = _t(_backend.lstsq(_t(before), _t(error)))
        out[-1] = layers[-1] + delta
    else:
        after = _end_to_end(layers[1:]) if len(layers) > 1 else _backend.eye_batch(target, m)
        out[0] = layers[0] + _backend.lstsq(after, error)
    return out


def _fiber_retraction(
    weights: Layers, xi: Layers, target: np.ndarray | None = None
) -> list[np.ndarray]:
    """The group step, then ``_reproject`` onto phi = ``target`` (default phi(W))."""
    gens = _gl_generator_solve(weights, xi)
    if not gens:
        return [_backend.copy(w) for w in weights]
    group, inverse = _exp_pairs(_capped(gens))
    moved = _gl_action(weights, group, inverse)
    return _reproject(moved, _end_to_end(weights) if target is None else target)


def _projective_fiber_retraction(weights: Layers, xi: Layers, target) -> list[np.ndarray]:
    """R_W(xi) = W + xi, put back on phi = ``target`` by ``_reproject``.

    A retraction at every point of the fiber (phi(W + t xi) - X = O(t^2) because
    Dphi(W)[xi] = 0, so the least-norm correction of one end layer is O(t^2)), exactly
    on the fiber to rounding while the other layers' product keeps full rank. Used where
    the GL orbit is not open in the fiber (``orbit_is_open``).
    """
    return _reproject([w + x for w, x in zip(weights, xi)], target)


def fiber_retraction(weights: Layers, tangent: Layers) -> list[np.ndarray]:
    """Exponential fiber retraction R_W(xi)_p = e^{A_p} W_p e^{-A_{p-1}} (math.md §5).

    A solves A_p W_p - W_p A_{p-1} = xi_p (min-norm least squares). Because the step
    is a group element acting on W, phi(R_W(xi)) = phi(W) holds to rounding for any
    step size, not only to first order; the rounding of the step is then removed by
    the least-norm change of one end layer (``_reproject``), so that it does not
    accumulate along a walk. First order (R_W(xi) = W + xi + O(|xi|^2)) where the GL
    orbit of W is open in the fiber (T_W F = range C_W, ``_generator_rank``); at a
    point of a lower-dimensional orbit (e.g. a balanced factorization with non-square
    widths) it follows only the part of xi in range C_W.
    """
    layers = as_weights(weights)
    return _fiber_retraction(layers, _as_tangent(layers, tangent, "tangent"))
