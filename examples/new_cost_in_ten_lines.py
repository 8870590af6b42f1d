"""
A new cost on the balanced manifold in ten lines
================================================

Any function of the weights written with ``autograd.numpy`` is a cost on
:class:`dlnmanifolds.pymanopt.BalancedManifold`: Pymanopt differentiates it, the
manifold turns the Euclidean gradient and Hessian into Riemannian ones
(math.md §2.4–2.6), and every Pymanopt solver runs on it.

Here the cost is a robust (log-cosh) fit of a 3×3 target through a depth-3 network,
minimised with trust regions; the ten lines between the markers are all a user writes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import autograd.numpy as anp
import numpy as np
import pymanopt

from dlnmanifolds import balanced_factors, end_to_end, imbalance
from dlnmanifolds.pymanopt import BalancedManifold


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description="A new cost on BalancedManifold.")
    parser.add_argument("--fast", action="store_true", help="fewer solver iterations")
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write the result to DIR/new_cost_result.txt",
    )
    args = parser.parse_args(argv)
    if args.output is not None and args.output.exists() and not args.output.is_dir():
        parser.error(f"--output {args.output}: exists and is not a directory")
    target = np.array([[2.0, 0.5, 0.0], [0.0, 1.0, -0.3], [0.1, 0.0, 0.5]])

    # --- the ten lines ---------------------------------------------------------
    manifold = BalancedManifold(widths=(3, 3, 3, 3))

    @pymanopt.function.autograd(manifold)
    def cost(W1, W2, W3):
        residual = end_to_end((W1, W2, W3)) - target
        return anp.sum(anp.log(anp.cosh(residual)))  # robust to outlying entries

    problem = pymanopt.Problem(manifold, cost)
    solver = pymanopt.optimizers.TrustRegions(max_iterations=10 if args.fast else 50, verbosity=0)
    result = solver.run(problem, initial_point=balanced_factors(np.eye(3), depth=3))
    # ---------------------------------------------------------------------------

    error = float(np.max(np.abs(end_to_end(result.point) - target)))
    summary = (
        f"cost {result.cost:.3e} after {result.iterations} iterations; "
        f"max |X - target| = {error:.2e}; imbalance {imbalance(result.point):.1e}"
    )
    print(summary)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fitted = end_to_end(result.point)
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    panels = [
        (target, "target Y"),
        (fitted, "fitted X = W3 W2 W1"),
        (np.log10(np.abs(fitted - target) + 1e-17), "log10 |X - Y|"),
    ]
    for ax, (values, title) in zip(axes, panels):
        image = ax.imshow(values, cmap="viridis")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, shrink=0.8)
    fig.tight_layout()
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "new_cost_result.txt").write_text(summary + "\n", encoding="utf-8")
        fig.savefig(args.output / "new_cost.png", dpi=100)
    return error


if __name__ == "__main__":
    main()
