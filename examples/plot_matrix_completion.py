"""
Matrix completion: deep networks find the rank-one variety
==========================================================

Observe the diagonal of a 2×2 matrix, X_11 = 1 and X_22 = 2, and fit the loss
E(X) = ½ ‖P_Ω(X − X*)‖² (math.md §9). Every [[1, x], [y, 2]] has zero loss; the
rank-one completions form the hyperbola xy = 2, "a rank-one variety within the zero
energy set" (Menon 2024, Fig. 9.5).

We train networks of depth N = 1, …, 4 from small Gaussian initialisations with
:func:`dlnmanifolds.flows.gradient_flow` (the deep-matrix-factorization set-up of
Arora, Cohen, Hu & Luo 2019) on the problem
:class:`dlnmanifolds.problems.MatrixCompletion`:

* depth 1 leaves the unobserved entries where they started (near 0: a full-rank
  completion);
* depth 2, whose implicit bias is the nuclear norm (math.md §9), may stop anywhere
  in the family of completions of least nuclear norm, which contains every
  [[1, t], [t, 2]] with t² ≤ 2: where it stops depends on the start;
* depth 3 and 4 carry them to the hyperbola: the smaller singular value of the
  limit, the distance to the rank-one variety, shrinks with the initialisation
  scale, the faster the deeper the network.
"""

from __future__ import annotations

import numpy as np
from _figures import example_parser, parse_example_args, pyplot, save

from dlnmanifolds.flows import Energy, gradient_flow
from dlnmanifolds.problems import MatrixCompletion

COLORS = {1: "tab:gray", 2: "tab:blue", 3: "tab:orange", 4: "tab:green"}


def train(
    problem: MatrixCompletion, depth: int, scale: float, seed: int, t_final: float, fast: bool
):
    """Gradient flow of E(phi(W)) from a Gaussian start of scale ``scale``."""
    tol = {"rtol": 1e-7, "atol": 1e-10} if fast else {"rtol": 1e-10, "atol": 1e-14}
    energy = Energy(problem.loss, problem.gradient)
    return gradient_flow(energy, (2,) * (depth + 1), t_final, init_scale=scale, rng=seed, **tol)


def trajectories_panel(ax, problem, seeds, t_final, fast) -> None:
    x = np.linspace(0.25, 3.0, 200)
    for sign in (1, -1):
        ax.plot(sign * x, sign * 2.0 / x, color="black", lw=1.5)
    ax.plot([], [], color="black", label="rank-one completions $xy = 2$")
    for depth, color in COLORS.items():
        for k, seed in enumerate(seeds):
            path = train(problem, depth, 1e-2, seed, t_final, fast).end_to_end
            ax.plot(
                path[:, 0, 1],
                path[:, 1, 0],
                color=color,
                lw=1.5,
                label=f"N = {depth}" if k == 0 else None,
            )
            ax.plot(
                path[-1, 0, 1],
                path[-1, 1, 0],
                "*",
                color=color,
                ms=9,
                zorder=5 if depth == 1 else 3,
            )
    ax.set(
        xlabel="$x = X_{12}$ (unobserved)",
        ylabel="$y = X_{21}$ (unobserved)",
        xlim=(-3, 3),
        ylim=(-3, 3),
        aspect="equal",
    )
    ax.set_title(
        "gradient-flow paths of the unobserved entries\n(initial scale $10^{-2}$, stars: limits)",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="lower right")


def rank_panel(ax, problem, t_final, fast) -> None:
    for depth, color in COLORS.items():
        result = train(problem, depth, 1e-3, 0, t_final, fast)
        s = np.linalg.svd(result.end_to_end, compute_uv=False)
        ax.semilogy(result.t, s[:, 1] / s[:, 0], color=color, label=f"N = {depth}")
    ax.set(xlabel="t", ylabel=r"$\sigma_2(X(t)) / \sigma_1(X(t))$")
    ax.set_title("effective rank along training (initial scale $10^{-3}$)", fontsize=9)
    ax.legend(fontsize=8)


def scale_panel(ax, problem, scales, t_final, fast) -> dict:
    finals = {}
    for depth in (2, 3, 4):
        sigma2 = []
        for scale in scales:
            x = train(problem, depth, scale, 0, t_final, fast).end_to_end[-1]
            sigma2.append(np.linalg.svd(x, compute_uv=False)[1])
        finals[depth] = sigma2
        ax.loglog(scales, sigma2, "o-", color=COLORS[depth], label=f"N = {depth}")
    ax.set(xlabel="initialisation scale", ylabel=r"$\sigma_2$ of the limit")
    ax.set_title("distance of the learned completion to the rank-one variety", fontsize=9)
    ax.legend(fontsize=8)
    return finals


def main(argv: list[str] | None = None) -> list:
    parser = example_parser(__doc__)
    args = parse_example_args(parser, argv)
    plt = pyplot()
    problem = MatrixCompletion.from_dense(np.array([[1.0, np.nan], [np.nan, 2.0]]))
    seeds = range(1) if args.fast else range(6)
    scales = [1e-1, 1e-2] if args.fast else [1e-1, 1e-2, 1e-3, 1e-4]
    t_final = 30.0 if args.fast else 60.0
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.8))
    trajectories_panel(axes[0], problem, seeds, t_final, args.fast)
    rank_panel(axes[1], problem, t_final, args.fast)
    finals = scale_panel(axes[2], problem, scales, t_final, args.fast)
    for depth, values in finals.items():
        print(
            f"N = {depth}: sigma_2 of the limit for scales {scales}: "
            + ", ".join(f"{v:.1e}" for v in values)
        )
    return [save(fig, args.output, "matrix_completion.png")]


if __name__ == "__main__":
    main()
