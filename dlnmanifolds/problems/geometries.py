"""Lift a problem E(X) onto each DLN geometry as a Pymanopt ``Problem``.

Every geometry optimizes the same cost, the training mean squared error
2 E(X) / count (Arora et al. 2019 train on the mean over Omega), written in
its own coordinates:

============== ===================================== ================================
name           points                                metric
============== ===================================== ================================
factors        unconstrained weights (W_1..W_N)      Euclidean (plain DLN training)
balanced       balanced weights (``BalancedManifold``) induced Frobenius (math.md §2)
dln-matrices   full-rank X (``DLNMatrices``)         g^N (math.md §4)
dln-fixed-rank rank-r X (``DLNFixedRank``)           g^N on M_r (math.md §4.1)
fixed-rank     rank-r X (Pymanopt FixedRankEmbedded) Euclidean on M_r
euclidean      X in R^{m x n} (Pymanopt Euclidean)   Euclidean
============== ===================================== ================================

Gradients are pulled back by hand (no autodiff): on weights dL = Dphi^*(E'(X))
(math.md §1); on factored rank-r points (du, ds, dvt) = (G V S, diag(U^T G V),
S U^T G). Hessians: Dphi^*(E''[Dphi xi]) + D_xi(Dphi^*)(E') on weights (math.md §4.3);
on the rank-r geometries the manifold's Riemannian Hessian from the sparse E'(X)
and E''(X)[xi] = P_Omega(xi) (``core.fixed_rank.fixed_rank_hessian``, O(|Omega| r)),
so TrustRegions runs on every geometry (not at depth = inf).

Memory: the rank-r geometries (``fixed-rank``, ``dln-fixed-rank``) are factored
end to end: their points, costs, gradients, callbacks and ``to_matrix`` use
``LowRank(u, s, vt)`` and the problem's O(|Omega| r) evaluations, never an m x n
array. The full-rank geometries (``factors``, ``balanced``, ``dln-matrices``,
``euclidean``) are dense (m x n arrays and layers) and refuse problems larger
than 5000 x 5000.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymanopt
from pymanopt.manifolds import Euclidean, FixedRankEmbedded, Product
from pymanopt.manifolds.fixed_rank import _FixedRankPoint, _FixedRankTangentVector

from dlnmanifolds.core._validate import as_matrix, as_rng, check_depth, check_positive_int
from dlnmanifolds.core.balanced import balanced_factors, haar_stiefel
from dlnmanifolds.core.fixed_rank import (
    _riemannian_hessian,
)
from dlnmanifolds.core.network import (
    _dphi,
    _dphi_adjoint,
    _dphi_adjoint_derivative,
    _end_to_end,
    _lifted_gradient,
)
from dlnmanifolds.problems._objective import MatrixObjective
from dlnmanifolds.problems.lowrank import LowRank, as_low_rank, dense, truncate
from dlnmanifolds.pymanopt.balanced import BalancedManifold
from dlnmanifolds.pymanopt.dln_matrices import DLNMatrices
from dlnmanifolds.pymanopt.fixed_rank import DLNFixedRank, FactoredTangentMaps

#: Every geometry name the factory accepts.
GEOMETRIES: tuple[str, ...] = (
    "factors",
    "balanced",
    "dln-matrices",
    "dln-fixed-rank",
    "fixed-rank",
    "euclidean",
)
#: Geometries whose manifold does not depend on the depth (run at depth 1 only).
DEPTH_FREE = frozenset({"fixed-rank", "euclidean"})
#: Geometries that need the rank r.
NEEDS_RANK = frozenset({"fixed-rank", "dln-fixed-rank"})
#: Geometries with a Riemannian Hessian (usable with TrustRegions).
HAS_HESSIAN = frozenset(
    {"factors", "balanced", "dln-matrices", "dln-fixed-rank", "fixed-rank", "euclidean"}
)
#: Geometries that accept depth = math.inf (g^inf on square matrices, math.md §4.6;
#: the depth-free ones ignore the depth).
INFINITE_DEPTH = frozenset({"dln-matrices"}) | DEPTH_FREE
#: Largest m * n a dense (full-rank) geometry accepts: 5000 x 5000 (200 MB per array).
DENSE_LIMIT = 5000 * 5000
#: Initializations: small random (Arora et al. 2019) or spectral (rank-r SVD of the data).
INITS: tuple[str, ...] = ("small", "spectral")


@dataclass
class GeometryProblem:
    """A problem on one geometry: the Pymanopt problem, a start and the map to X.

    Example
    -------
    >>> from dlnmanifolds.problems import MatrixCompletion, make_problem
    >>> data = MatrixCompletion.generate(6, 1, 20, rng=0)
    >>> gp = make_problem(data, "factors", depth=3, rng=0)
    >>> [w.shape for w in gp.initial_point], gp.to_matrix(gp.initial_point).shape
    ([(6, 6), (6, 6), (6, 6)], (6, 6))
    """

    geometry: str
    depth: int
    manifold: Any
    problem: pymanopt.Problem
    initial_point: Any
    #: The end-to-end matrix of a point: an array, or a ``LowRank`` on rank-r geometries.
    to_matrix: Callable[[Any], Any]
    has_hessian: bool
    objective: MatrixObjective | None = None
    rank: int | None = None
    callback: Callable[[np.ndarray], None] | None = None


def check_geometry(geometry: Any, depth: Any = 1, rank: Any = None) -> tuple[str, int]:
    """Validate a geometry name, depth and (when needed) rank; return (geometry, depth)."""
    if not isinstance(geometry, str) or geometry not in GEOMETRIES:
        raise ValueError(f"unknown geometry {geometry!r}; expected one of {', '.join(GEOMETRIES)}")
    depth = check_depth(depth, allow_inf=geometry in INFINITE_DEPTH)
    if geometry in NEEDS_RANK and rank is None:
        raise ValueError(f"geometry {geometry!r} needs the rank (rank=...)")
    return geometry, depth


def arora_init(
    widths: tuple[int, ...], init_scale: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Gaussian layers with std init_scale^{1/N} / sqrt(d_{p-1}) (Arora et al. 2019, math.md §9)."""
    depth = len(widths) - 1
    std = init_scale ** (1.0 / depth)
    return [
        rng.standard_normal((widths[p + 1], widths[p])) * (std / np.sqrt(widths[p]))
        for p in range(depth)
    ]


def _layers(point, depth):
    return [point] if depth == 1 and isinstance(point, np.ndarray) else list(point)


class _FactoredFixedRankEmbedded(FactoredTangentMaps, FixedRankEmbedded):
    """Pymanopt's ``FixedRankEmbedded`` with factored maps and a Riemannian Hessian.

    The maps are ``pymanopt.fixed_rank.FactoredTangentMaps`` (Pymanopt's own form
    m x n or m x m arrays). The Hessian is
    the depth-1 case of ``core.fixed_rank.fixed_rank_hessian`` (Pymanopt has none).
    """

    def euclidean_to_riemannian_hessian(
        self, point, euclidean_gradient, euclidean_hessian, tangent_vector
    ):
        """The Euclidean fixed-rank Hessian (the depth-1 case of
        ``core.fixed_rank.fixed_rank_hessian``): P_T(E''[xi]) plus the Weingarten term
        (P_N(E') V_p S^{-1}, 0, P_N(E')^T U_p S^{-1}) (Vandereycken 2013, Prop. 2.3).
        Pymanopt's ``FixedRankEmbedded`` has none. E'(X) and E''(X)[xi] are ambient
        m x n arrays or scipy.sparse matrices, used only through thin products."""
        u, s, vt = point
        return _FixedRankTangentVector(
            *_riemannian_hessian(
                u,
                np.asarray(s),
                vt.T,
                None,
                1,
                euclidean_gradient,
                euclidean_hessian,
                tangent_vector,
            )
        )


def _fixed_rank_start(objective, rank, init, init_scale, gen, initial_matrix):
    """A factored rank-r start (never an m x n array).

    small: Haar frames U, V and s_j = init_scale (1 + sqrt(m/n)) (1 - j / (2r)),
    about the top singular values of the Arora init (entries N(0, init_scale^2 / n));
    spectral: ``objective.spectral_factors(rank)``; warm: the rank-r truncation of
    ``initial_matrix`` (an array or a factored ``LowRank`` of rank >= r).
    """
    m, n = objective.shape
    if initial_matrix is not None:
        low = as_low_rank(initial_matrix)
        if low is None:
            x0 = as_matrix(initial_matrix, "initial_matrix")
            if x0.shape != (m, n):
                raise ValueError(f"initial_matrix must have shape {(m, n)}, got {x0.shape}")
            u, s, vt = np.linalg.svd(x0, full_matrices=False)
        else:
            if low.shape != (m, n):
                raise ValueError(f"initial_matrix must have shape {(m, n)}, got {low.shape}")
            if not low.is_finite():
                raise ValueError("initial_matrix must be finite")
            u, s, vt = truncate(low, min(low.rank, rank))
        if s.size < rank or s[rank - 1] <= 1e-13 * max(s[0], np.finfo(float).tiny):
            raise ValueError(f"the initial matrix must have rank >= {rank}")
        return _FixedRankPoint(u[:, :rank], s[:rank], vt[:rank])
    if init == "spectral":
        start = objective.spectral_factors(rank)
        if start.s[rank - 1] <= 1e-13 * max(start.s[0], np.finfo(float).tiny):
            raise ValueError(
                f"the spectral start has rank < {rank}; the data has too few "
                "observations for this rank"
            )
        return _FixedRankPoint(start.u, start.s, start.vt)
    u = haar_stiefel(m, rank, gen)
    v = haar_stiefel(n, rank, gen)
    s = init_scale * (1.0 + np.sqrt(m / n)) * (1.0 - np.arange(rank) / (2.0 * rank))
    return _FixedRankPoint(u, s, v.T)


def make_problem(
    objective: MatrixObjective,
    geometry: str,
    depth: int = 1,
    rank: int | None = None,
    init: str = "small",
    init_scale: float = 1e-3,
    rng: np.random.Generator | int | None = None,
    callback: Callable[[np.ndarray], None] | None = None,
    initial_matrix: np.ndarray | None = None,
) -> GeometryProblem:
    """Build the Pymanopt problem of ``objective`` on ``geometry`` at ``depth``.

    Parameters
    ----------
    objective : a ``MatrixObjective`` (``MatrixCompletion``, ``Regression``).
    geometry : one of ``GEOMETRIES``.
    depth : N >= 1 (ignored by the depth-free geometries).
    rank : r, needed by ``fixed-rank`` and ``dln-fixed-rank`` and by ``init="spectral"``.
    init : "small" (random, ||X_0||_F ~ init_scale sqrt(m)) or "spectral"
        (rank-r SVD of the data, plus the small random start on full-rank geometries).
    init_scale : scale of the small initialization.
    rng : Generator or seed for the initialization.
    callback : called as ``callback(X)`` with the end-to-end matrix at every
        gradient evaluation (once per iteration of the Pymanopt solvers); on the
        rank-r geometries X is a factored ``LowRank(u, s, vt)``.
    initial_matrix : start from this end-to-end matrix instead (warm start; it
        must be a point of the geometry: full rank, or rank >= r for rank-r ones,
        which take its truncated SVD).
    """
    if not isinstance(objective, MatrixObjective):
        raise TypeError(
            f"objective must be a MatrixObjective (e.g. MatrixCompletion), got "
            f"{type(objective).__name__}"
        )
    geometry, depth = check_geometry(geometry, depth, rank)
    if geometry in DEPTH_FREE:
        depth = 1
    m, n = objective.shape
    if rank is not None:
        rank = check_positive_int(rank, "rank")
        if rank > min(m, n):
            raise ValueError(f"rank must be at most min(m, n) = {min(m, n)}, got {rank}")
    if init not in INITS:
        raise ValueError(f"init must be one of {INITS}, got {init!r}")
    if init == "spectral" and rank is None:
        raise ValueError("init='spectral' needs the rank (rank=...)")
    if not (isinstance(init_scale, (int, float)) and np.isfinite(init_scale) and init_scale > 0):
        raise ValueError(f"init_scale must be a finite number > 0, got {init_scale!r}")
    gen = as_rng(rng)
    scale = 2.0 / objective.count
    notify = callback if callback is not None else (lambda x: None)

    riemannian_hessian = None  # given directly on the rank-r geometries only
    if geometry not in NEEDS_RANK:
        if m * n > DENSE_LIMIT:
            raise ValueError(
                f"geometry {geometry!r} stores dense {m} x {n} matrices "
                f"({8 * m * n / 2**30:.1f} GiB each); problems larger than 5000 x 5000 "
                f"run on the factored geometries only: use 'dln-fixed-rank' or 'fixed-rank'"
            )
        # Small full-rank start, ||X_0||_F ~ init_scale sqrt(m) (the depth-1 Arora init).
        x0 = arora_init((n, m), init_scale, gen)[0]
        if init == "spectral":
            x0 = objective.spectral_start(rank) + x0
        if initial_matrix is not None:
            x0 = as_matrix(dense(initial_matrix), "initial_matrix")
            if x0.shape != (m, n):
                raise ValueError(f"initial_matrix must have shape {(m, n)}, got {x0.shape}")

    if geometry in ("factors", "balanced"):
        k = min(m, n)
        widths = (n,) + (k,) * (depth - 1) + (m,)
        if geometry == "factors":
            manifold = Product([Euclidean(widths[p + 1], widths[p]) for p in range(depth)])
            start = arora_init(widths, init_scale, gen)
            if init == "spectral" or initial_matrix is not None:
                start = list(balanced_factors(x0, depth, widths))
        else:
            manifold = BalancedManifold(widths, rng=gen)
            start = balanced_factors(x0, depth, widths, rng=gen)
            start = manifold.check_point(start)

        def to_matrix(point):
            return _end_to_end(_layers(point, depth))

        def pack(layers):
            if geometry == "balanced" and depth == 1:
                return layers[0]
            return layers

        @pymanopt.function.numpy(manifold)
        def cost(*layers):
            return scale * objective.loss(_end_to_end(layers))

        @pymanopt.function.numpy(manifold)
        def euclidean_gradient(*layers):
            def lifted(x):
                notify(x)
                return scale * objective.residual_gradient(x)

            # phi and the 3(N-1)-product reverse sweep share the prefix products
            return pack(_lifted_gradient(layers, lifted))

        @pymanopt.function.numpy(manifold)
        def euclidean_hessian(*args):
            layers, xi = args[:depth], args[depth:]
            x = _end_to_end(layers)
            ehess = scale * objective.hessian(x, _dphi(layers, xi))
            egrad = scale * objective.residual_gradient(x)
            return pack(
                [
                    a + b
                    for a, b in zip(
                        _dphi_adjoint(layers, ehess), _dphi_adjoint_derivative(layers, xi, egrad)
                    )
                ]
            )

        initial = start if geometry == "balanced" else list(start)
    elif geometry in ("dln-matrices", "euclidean"):
        manifold = (
            DLNMatrices(m, n, depth, rng=gen) if geometry == "dln-matrices" else Euclidean(m, n)
        )

        def to_matrix(point):
            return point

        @pymanopt.function.numpy(manifold)
        def cost(x):
            return scale * objective.loss(x)

        @pymanopt.function.numpy(manifold)
        def euclidean_gradient(x):
            notify(x)
            return scale * objective.residual_gradient(x)

        @pymanopt.function.numpy(manifold)
        def euclidean_hessian(x, xdot):
            return scale * objective.hessian(x, xdot)

        initial = x0
        if geometry == "dln-matrices":
            initial = manifold.check_point(x0)
    else:
        if geometry == "fixed-rank":
            manifold = _FactoredFixedRankEmbedded(m, n, rank)
        else:
            manifold = DLNFixedRank(m, n, rank, depth, rng=gen)
        initial = _fixed_rank_start(objective, rank, init, init_scale, gen, initial_matrix)

        def to_matrix(point):
            return LowRank(point[0], point[1], point[2])

        # Everything below is factored: the loss and E'(X) (sparse for matrix
        # completion) are evaluated from (u, s, vt); G V and G^T U are the only
        # products, O(|Omega| r) (Vandereycken 2013, Sec. 4.1).
        @pymanopt.function.numpy(manifold)
        def cost(u, s, vt):
            return scale * objective.loss(LowRank(u, s, vt))

        @pymanopt.function.numpy(manifold)
        def euclidean_gradient(u, s, vt):
            x = LowRank(u, s, vt)
            notify(x)
            gv, gtu = objective.gradient_products(x)
            gv, gtu = gv * scale, gtu * scale
            return gv * s, np.sum(u * gv, axis=0), s[:, None] * gtu.T

        last_gradient: list = []  # [(u, s, vt), scale * E'(X)] of the last Hessian point

        def scaled_gradient_matrix(u, s, vt):
            # tCG applies the Hessian many times at one point: build E' once there.
            if last_gradient and all(a is b for a, b in zip(last_gradient[0], (u, s, vt))):
                return last_gradient[1]
            g = objective.gradient_matrix(LowRank(u, s, vt)) * scale
            last_gradient[:] = [(u, s, vt), g]
            return g

        # The Riemannian Hessian is given directly (not through Pymanopt's
        # euclidean_gradient, which here returns factor gradients and would also
        # fire the per-iteration callback at every Hessian-vector product):
        # E'(X) and E''(X)[xi] = P_Omega(xi) are sparse for matrix completion and
        # xi = [U M + U_p, U] [V, V_p]^T is gathered on Omega, O(|Omega| r).
        @pymanopt.function.numpy(manifold)
        def riemannian_hessian(u, s, vt, up, mm, vp):
            # scale E''[xi] = E''[scale xi] (linear): scale the thin factor, not the CSR.
            xi = LowRank(
                np.hstack([u @ mm + up, u]), np.full(2 * rank, scale), np.hstack([vt.T, vp]).T
            )
            return manifold.euclidean_to_riemannian_hessian(
                (u, s, vt),
                scaled_gradient_matrix(u, s, vt),
                objective.hessian_matrix(LowRank(u, s, vt), xi),
                _FixedRankTangentVector(up, mm, vp),
            )

        euclidean_hessian = None

    problem = pymanopt.Problem(
        manifold,
        cost,
        euclidean_gradient=euclidean_gradient,
        euclidean_hessian=euclidean_hessian,
        riemannian_hessian=riemannian_hessian,
    )
    return GeometryProblem(
        geometry,
        depth,
        manifold,
        problem,
        initial,
        to_matrix,
        geometry in HAS_HESSIAN and depth != math.inf,  # DLNMatrices at inf has none
        objective,
        rank,
        callback,
    )
