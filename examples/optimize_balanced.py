"""Fit a low-rank target with a depth-3 balanced network, three Pymanopt solvers.

The cost is E(phi(W)) = 1/2 ||W_3 W_2 W_1 - Y||^2 on the balanced manifold.
Run: ``python examples/optimize_balanced.py [--fast]``.
"""

from __future__ import annotations

import argparse

import autograd.numpy as anp
import numpy as np
import pymanopt
from pymanopt.optimizers import ConjugateGradient, SteepestDescent, TrustRegions

from dlnmanifolds import balanced_factors, end_to_end, imbalance
from dlnmanifolds.pymanopt import BalancedManifold, DLNMatrices


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true", help="fewer iterations")
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    n, depth = args.size, args.depth
    target = rng.standard_normal((n, n))
    if np.linalg.det(target) < 0:
        # Full-rank matrices form two components (det > 0, det < 0); the
        # start below has det > 0, so keep the target on the same side.
        target[:, 0] *= -1
    manifold = BalancedManifold((n,) * (depth + 1), rng=args.seed)

    @pymanopt.function.autograd(manifold)
    def cost(*weights):
        return 0.5 * anp.sum((end_to_end(weights) - target) ** 2)

    problem = pymanopt.Problem(manifold, cost)
    start = balanced_factors(0.5 * np.eye(n), depth, rng=rng)
    iters = 50 if args.fast else 500
    print(f"Balanced manifold {manifold.widths}, dim {manifold.dim}")
    print(f"{'solver':<20}{'final cost':>14}{'iterations':>12}{'imbalance':>12}")
    for solver in (
        SteepestDescent(max_iterations=iters, verbosity=0),
        ConjugateGradient(max_iterations=iters, verbosity=0),
        TrustRegions(max_iterations=iters // 5, verbosity=0),
    ):
        result = solver.run(problem, initial_point=start)
        print(
            f"{type(solver).__name__:<20}{result.cost:>14.3e}{result.iterations:>12d}"
            f"{imbalance(result.point):>12.1e}"
        )

    downstairs = DLNMatrices(n, n, depth, rng=args.seed)

    @pymanopt.function.autograd(downstairs)
    def cost_x(x):
        return 0.5 * anp.sum((x - target) ** 2)

    result = TrustRegions(max_iterations=iters // 5, verbosity=0).run(
        # The same problem on end-to-end matrices with the DLN metric g^N.
        pymanopt.Problem(downstairs, cost_x),
        initial_point=end_to_end(start),
    )
    print(f"{'TrustRegions on g^N':<20}{result.cost:>14.3e}{result.iterations:>12d}{'-':>12}")


if __name__ == "__main__":
    main()
