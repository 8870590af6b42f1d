"""The rank-r Riemannian Hessian on the sparse paths: cost per product, and TrustRegions.

At 1000^2, r 10, |Omega| = 5 r (2n - r) (Manopt's example size), one process,
single-threaded BLAS, interleaved, medians:

1. time of one Riemannian Hessian-vector product of ``make_problem``'s
   ``dln-fixed-rank`` (and ``fixed-rank``) problem, as a ratio to one cost +
   Riemannian gradient evaluation at a fresh point (the unit a first-order method
   pays per iteration); also the Hessian at a fresh point (E' rebuilt) and, as an
   independent baseline written here, the same Hessian from dense m x n E' and
   E''[xi] by the generic layer formulas (what the code did before);
2. TrustRegions against ConjugateGradient (both Pymanopt, same problem, same
   spectral start, rank known), time to relative RMSE on Omega
   ||P_Omega(X - M)|| / ||P_Omega(M)|| <= 1e-6, seeds 0-2, ratio TR / CG.

Run: ``python benchmarks/bench_fixed_rank_hessian.py [--fast] [--profile]``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import statistics
import sys
import time

import _timing  # noqa: F401  (single-threaded BLAS before numpy loads)
import numpy as np
from pymanopt.optimizers import ConjugateGradient, TrustRegions

from dlnmanifolds.core.fixed_rank import (
    _lift_tangent,
    _project_factored,
    _riemannian_gradient,
    _weights,
    embed_tangent,
    rank_lift,
)
from dlnmanifolds.core.network import _dphi_adjoint_derivative, dphi
from dlnmanifolds.problems import MatrixCompletion, make_problem


def dense_hessian(u, s, v, depth, egrad, ehess, xi):
    """Baseline: the layer formulas on m x n arrays (the pre-sparse implementation)."""
    if depth == 1:
        up, mm, vp = _project_factored(u, v, ehess)
        normal = egrad - u @ (u.T @ egrad)
        normal = normal - (normal @ v) @ v.T
        return up + (normal @ xi[2]) / s, mm, vp + (normal.T @ xi[0]) / s
    weights = _weights(s, depth)
    layers = rank_lift(u, s, v, depth)
    lift = _lift_tangent(u, s, v, weights, xi, depth)
    curvature = dphi(layers, _dphi_adjoint_derivative(layers, lift, egrad))
    a = _riemannian_gradient(u, v, weights, ehess @ v, ehess.T @ u)
    c = _project_factored(u, v, curvature)
    return tuple(x + y for x, y in zip(a, c))


def fresh(point):
    """A copy of the point: new array identities, so no per-point cache applies."""
    return type(point)(*(np.array(a, copy=True) for a in point))


def per_product(mc, geometry, depth, rank, repeats):
    gp = make_problem(mc, geometry, depth, rank=rank, init="spectral")
    x = gp.initial_point
    np.random.seed(0)
    xi = gp.manifold.random_tangent_vector(x)
    problem = gp.problem
    problem.riemannian_hessian(x, xi)  # E' cached at x, as inside tCG

    def cost_and_gradient():
        y = fresh(x)
        problem.cost(y)
        problem.riemannian_gradient(y)

    def hessian():
        problem.riemannian_hessian(x, xi)

    def hessian_fresh():
        problem.riemannian_hessian(fresh(x), xi)

    t_h, t_cg, ratio = _timing.paired_ratio(hessian, cost_and_gradient, repeats)
    t_hf, _, ratio_f = _timing.paired_ratio(hessian_fresh, cost_and_gradient, repeats)
    u, s, v = x[0], x[1], x[2].T
    scale = 2.0 / mc.count
    xd = (u * s) @ v.T

    def dense_baseline():
        egrad = scale * mc.residual_gradient(xd)
        ehess = scale * mc.hessian(xd, embed_tangent(u, v, xi))
        dense_hessian(u, s, v, gp.depth, egrad, ehess, xi)

    # Same result (the test suite checks 1e-12; here a sanity check of the baseline).
    ref = dense_hessian(
        u,
        s,
        v,
        gp.depth,
        scale * mc.residual_gradient(xd),
        scale * mc.hessian(xd, embed_tangent(u, v, xi)),
        xi,
    )
    got = problem.riemannian_hessian(x, xi)
    err = max(np.max(np.abs(a - b)) for a, b in zip(got, ref)) / max(np.max(np.abs(a)) for a in ref)
    t_d, _, ratio_d = _timing.paired_ratio(dense_baseline, hessian, max(3, repeats // 3))
    return dict(
        hess=t_h,
        cg=t_cg,
        ratio=ratio,
        hess_fresh=t_hf,
        ratio_fresh=ratio_f,
        dense=t_d,
        dense_ratio=ratio_d,
        err=err,
    )


class _Reached(Exception):
    pass


def time_to_target(mc, geometry, depth, rank, solver, rel=1e-6, max_time=300.0):
    """Seconds until ||P_Omega(X - M)|| / ||P_Omega(M)|| <= rel (checked at every
    gradient evaluation, from the residual the gradient computed anyway)."""
    target = 0.5 * (rel * np.linalg.norm(mc.values)) ** 2  # on mc.loss = 1/2 ||r||^2
    evaluations = [0]

    def monitor(x):
        evaluations[0] += 1
        if mc.loss(x) <= target:
            raise _Reached

    gp = make_problem(mc, geometry, depth, rank=rank, init="spectral", callback=monitor)
    if solver == "trust-regions":
        optimizer = TrustRegions(
            max_iterations=10000, max_time=max_time, min_gradient_norm=0, verbosity=0
        )
    else:
        optimizer = ConjugateGradient(
            max_iterations=100000,
            max_time=max_time,
            min_gradient_norm=0,
            min_step_size=0,
            verbosity=0,
        )
    start = time.perf_counter()
    reached = False
    try:
        optimizer.run(gp.problem, initial_point=gp.initial_point)
    except _Reached:
        reached = True
    return time.perf_counter() - start, evaluations[0], reached


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="300^2, one seed (smoke run)")
    parser.add_argument("--profile", action="store_true", help="cProfile one TR run")
    args = parser.parse_args(argv)
    n, rank = (300, 5) if args.fast else (1000, 10)
    seeds = [0] if args.fast else [0, 1, 2]
    repeats = 5 if args.fast else 15
    cases = [("dln-fixed-rank", 1), ("dln-fixed-rank", 2), ("dln-fixed-rank", 3), ("fixed-rank", 1)]
    mc = MatrixCompletion.generate(n, rank, 5 * rank * (2 * n - rank), rng=0)
    print(f"{n}^2, r {rank}, |Omega| = {mc.count}; single-threaded BLAS; medians", flush=True)
    print("\n1. one Hessian-vector product vs one cost + Riemannian gradient (fresh point)")
    print(
        f"{'geometry':16s} {'N':>2s} {'Hv ms':>8s} {'f+grad ms':>10s} {'Hv/(f+g)':>9s} "
        f"{'Hv fresh/(f+g)':>15s} {'dense Hv ms':>12s} {'dense/ours':>11s} {'rel diff':>9s}"
    )
    for geometry, depth in cases:
        out = per_product(mc, geometry, depth, rank, repeats)
        print(
            f"{geometry:16s} {depth:2d} {out['hess'] * 1e3:8.2f} {out['cg'] * 1e3:10.2f} "
            f"{out['ratio']:9.2f} {out['ratio_fresh']:15.2f} {out['dense'] * 1e3:12.1f} "
            f"{out['dense_ratio']:11.1f} {out['err']:9.1e}",
            flush=True,
        )

    print(
        "\n2. TrustRegions vs ConjugateGradient to relative RMSE on Omega <= 1e-6 "
        "(spectral start, rank known)"
    )
    print(
        f"{'geometry':16s} {'N':>2s} {'seed':>4s} {'TR s':>7s} {'(grads)':>7s} "
        f"{'CG s':>7s} {'(grads)':>7s} {'TR/CG':>6s}"
    )
    ratios = {}
    for geometry, depth in cases:
        for seed in seeds:
            problem = MatrixCompletion.generate(n, rank, 5 * rank * (2 * n - rank), rng=seed)
            t_tr, e_tr, ok_tr = time_to_target(problem, geometry, depth, rank, "trust-regions")
            t_cg, e_cg, ok_cg = time_to_target(problem, geometry, depth, rank, "cg")
            ratio = t_tr / t_cg
            ratios.setdefault((geometry, depth), []).append(ratio)
            flag = "" if ok_tr and ok_cg else f"  (reached: TR {ok_tr}, CG {ok_cg})"
            print(
                f"{geometry:16s} {depth:2d} {seed:4d} {t_tr:7.3f} {e_tr:7d} {t_cg:7.3f} "
                f"{e_cg:7d} {ratio:6.2f}{flag}",
                flush=True,
            )
    for (geometry, depth), values in ratios.items():
        print(f"median TR/CG {geometry} N={depth}: {statistics.median(values):.2f}")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        time_to_target(mc, "dln-fixed-rank", 3, rank, "trust-regions")
        profiler.disable()
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("tottime").print_stats(12)
        print(stream.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
