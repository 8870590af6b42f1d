"""
Three Pymanopt solvers on the balanced manifold
===============================================

Fit a target with a depth-3 balanced network: steepest descent, conjugate gradient and
trust regions on the balanced manifold, and trust regions on the same problem downstairs
on (X, g^N). The cost is E(phi(W)) = 1/2 ||W_3 W_2 W_1 - Y||^2.

Run: ``python examples/optimize_balanced.py [--fast] [--output DIR]``.
"""

from __future__ import annotations

import autograd.numpy as anp
import numpy as np
import pymanopt
from _figures import example_parser, parse_example_args, pyplot, save
from pymanopt.optimizers import ConjugateGradient, SteepestDescent, TrustRegions

from dlnmanifolds import balanced_factors, end_to_end, imbalance
from dlnmanifolds.pymanopt import BalancedManifold, DLNMatrices


def main(argv: list[str] | None = None) -> None:
    parser = example_parser(__doc__)
    parser.add_argument("--size", type=int, default=8)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parse_example_args(parser, argv)
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))

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
        SteepestDescent(max_iterations=iters, verbosity=0, log_verbosity=1),
        ConjugateGradient(max_iterations=iters, verbosity=0, log_verbosity=1),
        TrustRegions(max_iterations=iters // 5, verbosity=0, log_verbosity=1),
    ):
        result = solver.run(problem, initial_point=start)
        costs = np.maximum(result.log["iterations"]["cost"], 1e-16)
        ax.semilogy(costs, label=f"{type(solver).__name__} (balanced)")
        print(
            f"{type(solver).__name__:<20}{result.cost:>14.3e}{result.iterations:>12d}"
            f"{imbalance(result.point):>12.1e}"
        )

    downstairs = DLNMatrices(n, n, depth, rng=args.seed)

    @pymanopt.function.autograd(downstairs)
    def cost_x(x):
        return 0.5 * anp.sum((x - target) ** 2)

    result = TrustRegions(max_iterations=iters // 5, verbosity=0, log_verbosity=1).run(
        # The same problem on end-to-end matrices with the DLN metric g^N.
        pymanopt.Problem(downstairs, cost_x),
        initial_point=end_to_end(start),
    )
    print(f"{'TrustRegions on g^N':<20}{result.cost:>14.3e}{result.iterations:>12d}{'-':>12}")
    costs = np.maximum(result.log["iterations"]["cost"], 1e-16)
    ax.semilogy(costs, "k--", label="TrustRegions on (X, g^N)")
    ax.set(
        xlabel="iteration", ylabel="cost 1/2 ||X - Y||^2", title=f"depth {depth}, {n}x{n} target"
    )
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, args.output, "optimize_balanced.png")


if __name__ == "__main__":
    main()
