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
S U^T G). Hessians: Dphi^*(E''[Dphi xi]) + D_xi(Dphi^*)(E') on weights (math.md §4.3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pymanopt
from pymanopt.manifolds import Euclidean, FixedRankEmbedded, Product
from pymanopt.manifolds.fixed_rank import _FixedRankPoint

from dlnmanifolds.core._validate import as_matrix, as_rng, check_depth, check_positive_int
from dlnmanifolds.core.balanced import balanced_factors
from dlnmanifolds.core.network import (
    _dphi,
    _dphi_adjoint,
    _dphi_adjoint_derivative,
    _end_to_end,
    _lifted_gradient,
)
from dlnmanifolds.problems._objective import MatrixObjective
from dlnmanifolds.pymanopt.balanced import BalancedManifold
from dlnmanifolds.pymanopt.dln_matrices import DLNMatrices
from dlnmanifolds.pymanopt.fixed_rank import DLNFixedRank

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
HAS_HESSIAN = frozenset({"factors", "balanced", "dln-matrices", "euclidean"})
#: Initializations: small random (Arora et al. 2019) or spectral (rank-r SVD of the data).
INITS: tuple[str, ...] = ("small", "spectral")


@dataclass
class GeometryProblem:
    """A problem on one geometry: the Pymanopt problem, a start and the map to X."""

    geometry: str
    depth: int
    manifold: Any
    problem: pymanopt.Problem
    initial_point: Any
    to_matrix: Callable[[Any], np.ndarray]
    has_hessian: bool
    objective: MatrixObjective | None = None
    rank: int | None = None
    callback: Callable[[np.ndarray], None] | None = None


def check_geometry(geometry: Any, depth: Any = 1, rank: Any = None) -> tuple[str, int]:
    """Validate a geometry name, depth and (when needed) rank; return (geometry, depth)."""
    if not isinstance(geometry, str) or geometry not in GEOMETRIES:
        raise ValueError(f"unknown geometry {geometry!r}; expected one of {', '.join(GEOMETRIES)}")
    depth = check_depth(depth)
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
        gradient evaluation (once per iteration of the Pymanopt solvers).
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

    # Small full-rank start, ||X_0||_F ~ init_scale sqrt(m) (the depth-1 Arora init).
    x0 = arora_init((n, m), init_scale, gen)[0]
    if init == "spectral":
        x0 = objective.spectral_start(rank) + x0
    if initial_matrix is not None:
        x0 = as_matrix(initial_matrix, "initial_matrix")
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
            manifold = FixedRankEmbedded(m, n, rank)
        else:
            manifold = DLNFixedRank(m, n, rank, depth, rng=gen)
        start = objective.spectral_start(rank) if init == "spectral" else x0
        if initial_matrix is not None:
            start = x0
        u, s, vt = np.linalg.svd(start, full_matrices=False)
        if s[rank - 1] <= 1e-13 * s[0]:
            raise ValueError(f"the initial matrix must have rank >= {rank}")
        initial = _FixedRankPoint(u[:, :rank], s[:rank], vt[:rank])

        def to_matrix(point):
            return (point[0] * point[1]) @ point[2]

        @pymanopt.function.numpy(manifold)
        def cost(u, s, vt):
            return scale * objective.loss((u * s) @ vt)

        @pymanopt.function.numpy(manifold)
        def euclidean_gradient(u, s, vt):
            x = (u * s) @ vt
            notify(x)
            g = scale * objective.residual_gradient(x)
            gv = g @ vt.T
            return gv * s, np.sum(u * gv, axis=0), s[:, None] * (u.T @ g)

        euclidean_hessian = None

    problem = pymanopt.Problem(
        manifold,
        cost,
        euclidean_gradient=euclidean_gradient,
        euclidean_hessian=euclidean_hessian,
    )
    return GeometryProblem(
        geometry,
        depth,
        manifold,
        problem,
        initial,
        to_matrix,
        geometry in HAS_HESSIAN,
        objective,
        rank,
        callback,
    )
