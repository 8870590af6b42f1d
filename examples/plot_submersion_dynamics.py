"""
The submersion dynamics: training upstairs, its image downstairs
================================================================

Arora, Cohen & Hazan (2018, Thm 1) showed that when a deep linear network starts
balanced, its end-to-end matrix X = W_N ⋯ W_1 follows a closed equation,

    dX/dt = −A_{N,X}(∇E(X)),   A_{N,X}(Z) = Σ_p (XXᵀ)^{(N−p)/N} Z (XᵀX)^{(p−1)/N},

the gradient flow of E for the DLN metric g^N: φ is a Riemannian submersion from
the balanced manifold onto the full-rank matrices (math.md §3–4, verified C4).

This example trains a 2×2 network of depth 3 from a small balanced start with
:func:`dlnmanifolds.flows.gradient_flow` (upstairs, 12 weights), integrates the
downstairs flow with :func:`dlnmanifolds.flows.end_to_end_flow` (4 numbers) and
checks that φ of the first is the second. The Euclidean gradient flow of E (depth 1)
is shown for contrast: depth makes the singular values grow one after the other.
"""

from __future__ import annotations

import numpy as np
from _figures import example_parser, parse_example_args, pyplot, save

from dlnmanifolds import balanced_factors, end_to_end, imbalance
from dlnmanifolds.flows import end_to_end_flow, gradient_flow, quadratic_energy


def random_rotation(rng: np.random.Generator) -> np.ndarray:
    theta = rng.uniform(0.0, 2.0 * np.pi)
    return np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])


def main(argv: list[str] | None = None) -> list:
    parser = example_parser(__doc__)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parse_example_args(parser, argv)
    if args.depth < 2:
        parser.error(f"--depth must be at least 2 for a submersion, got {args.depth}")
    plt = pyplot()
    rng = np.random.default_rng(args.seed)
    depth = args.depth
    target = random_rotation(rng) @ np.diag([3.0, 1.0]) @ random_rotation(rng)
    x0 = 0.05 * random_rotation(rng)
    energy = quadratic_energy(target)
    t_final = 6.0
    times = np.linspace(0.0, t_final, 80 if args.fast else 300)
    tol = {"rtol": 1e-7, "atol": 1e-9} if args.fast else {"rtol": 1e-10, "atol": 1e-12}

    upstairs = gradient_flow(
        energy, balanced_factors(x0, depth, rng=rng), t_final, t_eval=times, **tol
    )
    downstairs = end_to_end_flow(energy, x0, depth, t_final, t_eval=times, **tol)
    euclidean = end_to_end_flow(energy, x0, 1, t_final, t_eval=times, **tol)

    image = np.array([end_to_end(w) for w in upstairs.states])
    gap = np.max(np.abs(image - np.array(downstairs.states)), axis=(1, 2))
    balance = np.array([imbalance(w) for w in upstairs.states])
    print(
        f"max |phi(W(t)) - X(t)| = {gap.max():.2e}; max imbalance along W(t) = "
        f"{balance.max():.2e}; final energy {upstairs.energy[-1]:.2e}"
    )

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    weights = np.array([np.concatenate([w.ravel() for w in s]) for s in upstairs.states])
    axes[0].plot(upstairs.t, weights, lw=1)
    axes[0].set(xlabel="t", ylabel="entries of $W_1, \\dots, W_N$")
    axes[0].set_title(f"upstairs: gradient flow of the {weights.shape[1]} weights", fontsize=9)

    sv_up = np.linalg.svd(image, compute_uv=False)
    sv_down = np.array(downstairs.extras["singular_values"])
    sv_euc = np.array(euclidean.extras["singular_values"])
    for k, color in enumerate(("tab:blue", "tab:orange")):
        axes[1].plot(
            upstairs.t,
            sv_up[:, k],
            color=color,
            lw=2.5,
            alpha=0.5,
            label=f"$\\sigma_{k + 1}(\\varphi(W(t)))$",
        )
        axes[1].plot(
            downstairs.t[::6],
            sv_down[::6, k],
            "o",
            color=color,
            ms=3,
            label=f"$\\sigma_{k + 1}(X(t))$, $g^N$ flow",
        )
        axes[1].plot(
            euclidean.t,
            sv_euc[:, k],
            "--",
            color=color,
            lw=1,
            label=f"$\\sigma_{k + 1}$, Euclidean flow",
        )
    axes[1].set(xlabel="t", ylabel="singular values")
    axes[1].set_title(
        f"downstairs: $\\varphi$ of the training path = the $g^N$ flow (N = {depth})", fontsize=9
    )
    axes[1].legend(fontsize=7, ncol=2)

    axes[2].semilogy(upstairs.t, np.maximum(gap, 1e-17), label=r"$\|\varphi(W(t)) - X(t)\|_\max$")
    axes[2].semilogy(upstairs.t, np.maximum(balance, 1e-17), label=r"imbalance $\max|G_p|$")
    axes[2].semilogy(upstairs.t, upstairs.energy, label="energy $E$")
    axes[2].set(xlabel="t", ylim=(1e-17, 1e2))
    axes[2].set_title("the two flows agree to the integrator's accuracy", fontsize=9)
    axes[2].legend(fontsize=8)
    return [save(fig, args.output, "submersion_dynamics.png")]


if __name__ == "__main__":
    main()
