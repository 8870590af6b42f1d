"""
Langevin dynamics upstairs and downstairs: the entropy drift
============================================================

Run the Riemannian Langevin equation (RLE) on the balanced manifold M, with the
metric induced by the Frobenius norm on the weights (math.md §8.2; Menon & Yu
2023). Its image X = φ(W) is again a Langevin process, on the end-to-end matrices with
the DLN metric g^N, but not for the energy E: the Brownian motion along the group
orbits O_X produces an extra deterministic drift β⁻¹ grad_g S, with
S(X) = log vol(O_X) the Boltzmann entropy. Downstairs, X therefore samples the
free energy F = E − β⁻¹ S (math.md §8.3; Menon 2024, Figs. 9.3–9.4: "motion by
curvature arising from tangential Brownian fluctuations").

All three samplers are :func:`dlnmanifolds.flows.langevin`:

* ``space="balanced"``: upstairs on M (12 weights for a 2×2 network of depth 3);
* ``space="end_to_end", potential="free_energy"``: downstairs with the entropy drift;
* ``space="end_to_end", potential="energy"``: downstairs without it.

The first two agree in law; dropping the entropy drift visibly shifts the singular
values. They are shown as λ_k = σ_k^{1/N}, the singular values of each balanced
layer, in which the stationary law has a smooth density (math.md §8.3). The energy
is E(X) = ¼ Σ_k (σ_k² − 2)² and the inverse temperature β = 3.
"""

from __future__ import annotations

import numpy as np
from _figures import example_parser, parse_example_args, pyplot, save

from dlnmanifolds import balanced_factors
from dlnmanifolds.flows import langevin, spectral_quartic_energy

SAMPLERS = {
    "upstairs on M": ("balanced", "energy", "tab:blue"),
    "downstairs, free energy E - S/β": ("end_to_end", "free_energy", "tab:orange"),
    "downstairs, energy E only": ("end_to_end", "energy", "tab:gray"),
}


def main(argv: list[str] | None = None) -> list:
    parser = example_parser(__doc__)
    parser.add_argument("--depth", type=int, default=3)
    parser.add_argument("--beta", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=2)
    args = parse_example_args(parser, argv)
    plt = pyplot()
    depth, beta = args.depth, args.beta
    n_paths, t_final = (100, 0.3) if args.fast else (800, 1.6)
    energy = spectral_quartic_energy(2.0)
    x0 = np.diag([1.6, 1.2])

    runs = {}
    for label, (space, potential, _) in SAMPLERS.items():
        start = balanced_factors(x0, depth) if space == "balanced" else x0
        runs[label] = langevin(
            energy,
            start,
            beta,
            space,
            depth=depth,
            potential=potential,
            step=2e-3,
            t_final=t_final,
            n_paths=n_paths,
            rng=args.seed,
        )

    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    bins = np.linspace(0.0, 1.5, 25 if args.fast else 40)
    for label, (_, _, color) in SAMPLERS.items():
        result = runs[label]
        # lambda_k = sigma_k^{1/N}, the singular values of each balanced layer: the
        # natural coordinates of the stationary law (math.md §8.3).
        sv = result.extras["singular_values"] ** (1.0 / depth)  # [records, paths, 2]
        for k, ax in enumerate(axes[:2]):
            ax.hist(
                sv[-1, :, k],
                bins=bins,
                density=True,
                histtype="step",
                lw=2,
                color=color,
                label=label,
            )
        mean = sv.mean(axis=1)
        err = 2 * sv.std(axis=1) / np.sqrt(n_paths)
        for k in range(2):
            axes[2].plot(result.t, mean[:, k], color=color, label=label if k == 0 else None)
            axes[2].fill_between(
                result.t, mean[:, k] - err[:, k], mean[:, k] + err[:, k], color=color, alpha=0.25
            )
        print(
            f"{label:>34}: E[lambda] at t = {t_final}: "
            + ", ".join(f"{m:.3f} ± {e / 2:.3f}" for m, e in zip(mean[-1], err[-1]))
        )
    upstairs = runs["upstairs on M"]
    print(f"upstairs: max |G_p| entry along the paths {np.max(upstairs.distance_to_balanced):.1e}")
    for k, ax in enumerate(axes[:2]):
        ax.set(
            xlabel=f"$\\lambda_{k + 1} = \\sigma_{k + 1}^{{1/N}}$ at $t = {t_final}$",
            ylabel="density",
        )
        ax.set_title(
            f"law of $\\lambda_{k + 1}$, {n_paths} paths, N = {depth}, β = {beta}", fontsize=9
        )
    axes[0].legend(fontsize=7)
    axes[2].set(xlabel="t", ylabel=r"$\mathbb{E}[\lambda_k(t)]$ (± 2 s.e.)")
    axes[2].set_title(r"means of $\lambda_k = \sigma_k(X)^{1/N}$ along the runs", fontsize=9)
    axes[2].legend(fontsize=7)
    return [save(fig, args.output, "langevin_entropy.png")]


if __name__ == "__main__":
    main()
