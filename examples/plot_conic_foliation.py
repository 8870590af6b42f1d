"""
The conic foliation of the weights by the invariants
====================================================

The gradient flow of any loss E(W_N ⋯ W_1) conserves the invariants
G_p = W_{p+1}ᵀ W_{p+1} − W_p W_pᵀ (Arora, Cohen & Hazan 2018; math.md §2.1).
So the weight space is foliated by their level sets, and training never leaves the
leaf it starts on. For a scalar network the leaves are conics:

* depth 2, weights (w_1, w_2): the leaves w_2² − w_1² = c are hyperbolas, and the
  balanced leaf c = 0 is the cone w_2 = ±w_1; the fibers w_2 w_1 = X are the
  hyperbolas of the other family;
* depth 3: each leaf {G_1 = c_1, G_2 = c_2} is a curve, the intersection of two
  hyperbolic cylinders, and the balanced leaf is the four lines w_3 = ±w_2 = ±w_1;
* a 2×2 network of depth 2: the four entries of G_1 stay constant to the
  integrator's accuracy while the loss drops by orders of magnitude.

All trajectories are computed with :func:`dlnmanifolds.flows.gradient_flow`.
"""

from __future__ import annotations

import numpy as np
from _figures import example_parser, parse_example_args, pyplot, save

from dlnmanifolds import invariants
from dlnmanifolds.flows import gradient_flow, quadratic_energy


def scalar_trajectories(starts, target: float, t_final: float, n_records: int):
    """Gradient-flow trajectories of E = 1/2 (w_N ⋯ w_1 - target)^2, one array per start."""
    energy = quadratic_energy(np.array([[target]]))
    paths = []
    for start in starts:
        layers = [np.array([[w]]) for w in start]
        result = gradient_flow(energy, layers, t_final, t_eval=np.linspace(0.0, t_final, n_records))
        paths.append(np.array([[w[0, 0] for w in state] for state in result.states]))
    return paths


def depth_two_panel(ax, fast: bool) -> None:
    """Leaves w_2^2 - w_1^2 = c, fibers w_1 w_2 = X and gradient-flow paths (depth 2)."""
    grid = np.linspace(-2.2, 2.2, 161 if fast else 401)
    w1, w2 = np.meshgrid(grid, grid)
    levels = [-3.0, -1.5, -0.5, 0.5, 1.5, 3.0]
    ax.contour(
        w1, w2, w2**2 - w1**2, levels=levels, colors="tab:blue", linewidths=0.8, linestyles="solid"
    )
    ax.contour(w1, w2, w2**2 - w1**2, levels=[0.0], colors="black", linewidths=1.6)
    ax.contour(w1, w2, w1 * w2, levels=[-2, -1, 1, 2], colors="0.6", linestyles="--")
    starts = [(0.2, 2.0), (2.0, 0.2), (-0.6, 1.6), (1.6, -0.6), (-1.6, -0.4), (0.3, 0.45)]
    if fast:
        starts = starts[:3]
    for path in scalar_trajectories(starts, target=1.0, t_final=6.0, n_records=120):
        ax.plot(path[:, 0], path[:, 1], color="tab:red", lw=2)
        ax.plot(*path[0], "o", color="tab:red", ms=4)
        ax.plot(*path[-1], "*", color="tab:red", ms=9)
    ax.set(xlabel="$w_1$", ylabel="$w_2$", aspect="equal", xlim=(-2.2, 2.2), ylim=(-2.2, 2.2))
    ax.set_title(
        "depth 2: leaves $w_2^2-w_1^2=c$ (blue), balanced cone (black),\n"
        "fibers $w_2w_1=X$ (dashed), gradient flow to $X=1$ (red)",
        fontsize=9,
    )


def leaf_curve(c1: float, c2: float, signs, n: int = 200) -> np.ndarray:
    """The leaf {w_2^2 - w_1^2 = c1, w_3^2 - w_2^2 = c2} as a curve (w_1, w_2, w_3)(t)."""
    t = np.linspace(-2.0, 2.0, n)
    keep = (t**2 + c1 >= 0) & (t**2 + c1 + c2 >= 0)
    t = t[keep]
    return np.stack([t, signs[0] * np.sqrt(t**2 + c1), signs[1] * np.sqrt(t**2 + c1 + c2)], 1)


def depth_three_panel(ax, fast: bool) -> None:
    """Balanced lines, two non-balanced leaves and gradient-flow paths on them (depth 3)."""
    s = np.linspace(-1.8, 1.8, 2)
    for sign2, sign3 in [(1, 1), (1, -1), (-1, 1), (-1, -1)]:
        ax.plot(s, sign2 * s, sign3 * s, color="black", lw=1.6)
    starts = [(0.2, 1.2, 1.5), (1.4, 0.4, 0.8), (-0.3, 0.9, 1.6)]
    if fast:
        starts = starts[:2]
    paths = scalar_trajectories(starts, target=1.0, t_final=6.0, n_records=120)
    for start, path in zip(starts, paths):
        w = np.array(start)
        c1, c2 = w[1] ** 2 - w[0] ** 2, w[2] ** 2 - w[1] ** 2
        curve = leaf_curve(c1, c2, np.sign(w[1:]))
        ax.plot(*curve.T, color="tab:blue", lw=0.8)
        ax.plot(*path.T, color="tab:red", lw=2)
        ax.scatter(*path[-1], color="tab:red", marker="*", s=60)
    ax.set(xlabel="$w_1$", ylabel="$w_2$", zlabel="$w_3$")
    ax.set_title(
        "depth 3: balanced lines (black), leaves $G=c$ (blue),\n"
        "gradient flow to $w_3w_2w_1=1$ (red)",
        fontsize=9,
    )


def matrix_panel(ax, fast: bool, rng: np.random.Generator) -> float:
    """A 2x2 depth-2 network: E drops, every entry of G_1 stays put. Returns the drift."""
    layers = [rng.standard_normal((2, 2)) for _ in range(2)]
    target = np.array([[1.0, 0.5], [-0.3, 2.0]])
    t_final = 4.0 if fast else 10.0
    result = gradient_flow(
        quadratic_energy(target),
        layers,
        t_final,
        t_eval=np.linspace(0.0, t_final, 200),
        rtol=1e-11,
        atol=1e-13,
    )
    g0 = invariants(result.states[0])[0]
    drift = np.array([np.max(np.abs(invariants(s)[0] - g0)) for s in result.states])
    ax.semilogy(result.t, result.energy, color="tab:red", label="energy $E(X(t))$")
    ax.semilogy(
        result.t, np.maximum(drift, 1e-17), color="tab:blue", label=r"$\max|G_1(t)-G_1(0)|$"
    )
    ax.set(xlabel="t", ylim=(1e-17, 1e2))
    ax.set_title("2x2 network, depth 2: the invariants are conserved", fontsize=9)
    ax.legend(fontsize=8)
    return float(np.max(drift))


def main(argv: list[str] | None = None) -> list:
    parser = example_parser(__doc__)
    parser.add_argument("--seed", type=int, default=0)
    args = parse_example_args(parser, argv)
    plt = pyplot()
    fig = plt.figure(figsize=(15, 4.8))
    depth_two_panel(fig.add_subplot(1, 3, 1), args.fast)
    depth_three_panel(fig.add_subplot(1, 3, 2, projection="3d"), args.fast)
    drift = matrix_panel(fig.add_subplot(1, 3, 3), args.fast, np.random.default_rng(args.seed))
    print(f"2x2 depth-2 gradient flow: max drift of the invariant G_1 = {drift:.2e}")
    return [save(fig, args.output, "conic_foliation.png")]


if __name__ == "__main__":
    main()
