"""
Group orbits inside the balanced manifold and their volume
==========================================================

The orthogonal group acts on balanced weights by W_p ↦ Q_p W_p Q_{p−1}ᵀ
(Q_0 = Q_N = I). The action keeps the network balanced and keeps the end-to-end
matrix X, and its orbit O_X is the whole set of balanced factorizations of X
(math.md §6). The volume of O_X is the exponential of the Boltzmann entropy
S(X) = log vol(O_X) (Menon & Yu 2025, Thm 4):

* for a 2×2 network of depth 2, O_X is two circles (one per component of O(2)) of
  total length 4√2 π √(σ_1 + σ_2);
* we trace them with :func:`dlnmanifolds.core.orbit.orthogonal_action`, measure
  their length as polygons in the 8-dimensional weight space and compare it with
  exp(S(X)) from :func:`dlnmanifolds.core.entropy.boltzmann_entropy`;
* the first panel draws a balanced manifold whole, for widths (1, 2, 1): W_1 = a is a
  column, W_2 = ±aᵀ, X = W_2 W_1 = ±|a|². In the coordinates (a_1, a_2, X) it is two
  paraboloids, and each level X = const (a plane) slices them in one orbit O_X, a
  circle of radius √|X| traced by the O(2) action on the hidden layer: the orbits are
  the fibers of φ on M (Menon 2024, Fig. 9.2);
* the last panel shows how S depends on the spread of the singular values and on
  the depth N.
"""

from __future__ import annotations

import numpy as np
from _figures import example_parser, parse_example_args, pyplot, save

from dlnmanifolds import balanced_factors, end_to_end, imbalance
from dlnmanifolds.core.entropy import boltzmann_entropy
from dlnmanifolds.core.orbit import orthogonal_action

REFLECTION = np.diag([1.0, -1.0])


def rotation(theta: float) -> np.ndarray:
    c, s = np.cos(theta), np.sin(theta)
    return np.array([[c, -s], [s, c]])


def orbit_components(weights, n_points: int) -> list[list]:
    """The two components of the O(2) orbit of a depth-2, 2x2 balanced network."""
    thetas = np.linspace(0.0, 2.0 * np.pi, n_points)
    return [
        [orthogonal_action(weights, [g @ rotation(t)]) for t in thetas]
        for g in (np.eye(2), REFLECTION)
    ]


def polygon_length(points) -> float:
    """Length of the closed polygon through the points (Frobenius norm on the layers)."""
    flat = np.array([np.concatenate([w.ravel() for w in p]) for p in points])
    return float(np.sum(np.linalg.norm(np.diff(flat, axis=0), axis=1)))


def slicing_panel(ax, n_points: int) -> float:
    """The balanced manifold of widths (1, 2, 1) and its orbits; returns max |phi - X|."""
    r, theta = np.meshgrid(np.linspace(0.0, 1.5, 30), np.linspace(0.0, 2.0 * np.pi, 60))
    for sign, colour in ((1.0, "tab:blue"), (-1.0, "tab:purple")):
        # W_1 = a = r (cos, sin), W_2 = sign a^T: X = sign r^2 (both are balanced).
        ax.plot_surface(
            r * np.cos(theta), r * np.sin(theta), sign * r**2, color=colour, alpha=0.35, linewidth=0
        )
    worst = 0.0
    plane = np.linspace(-1.6, 1.6, 2)
    px, py = np.meshgrid(plane, plane)
    for x, colour in ((0.5, "tab:orange"), (1.2, "tab:red"), (-0.8, "tab:green")):
        start = balanced_factors(np.array([[x]]), 2, widths=(1, 2, 1))
        orbit = [
            orthogonal_action(start, [rotation(t)]) for t in np.linspace(0.0, 2.0 * np.pi, n_points)
        ]
        worst = max(worst, max(abs(float(end_to_end(w)[0, 0]) - x) for w in orbit))
        coords = np.array([[w[0][0, 0], w[0][1, 0], end_to_end(w)[0, 0]] for w in orbit])
        ax.plot(*coords.T, color=colour, lw=2.5, label=f"orbit $O_X$, X = {x:g}")
        ax.plot_surface(px, py, np.full_like(px, x), color=colour, alpha=0.12, linewidth=0)
    ax.set(xlabel="$a_1 = W_1[0]$", ylabel="$a_2 = W_1[1]$", zlabel="$X = W_2 W_1$")
    ax.set_title(
        "the balanced manifold of widths (1, 2, 1), sliced by\n"
        "the levels of X: each slice is one group orbit",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="upper left")
    return worst


def orbit_panel(ax, n_points: int) -> tuple[float, float]:
    """Orbits for three X; returns (max imbalance, max drift of phi) along them."""
    worst_g, worst_x = 0.0, 0.0
    for sigma, color in [
        ((1.0, 0.2), "tab:blue"),
        ((1.5, 0.8), "tab:orange"),
        ((2.5, 2.0), "tab:green"),
    ]:
        x = np.diag(sigma)
        for k, component in enumerate(orbit_components(balanced_factors(x, 2), n_points)):
            coords = np.array([[p[0][0, 0], p[0][1, 0], p[0][1, 1]] for p in component])
            label = f"$\\sigma = {sigma}$" if k == 0 else None
            ax.plot(*coords.T, color=color, ls="-" if k == 0 else "--", label=label)
            worst_g = max(worst_g, max(imbalance(p) for p in component))
            worst_x = max(worst_x, max(np.max(np.abs(end_to_end(p) - x)) for p in component))
    ax.set(xlabel="$W_1[0,0]$", ylabel="$W_1[1,0]$", zlabel="$W_1[1,1]$")
    ax.set_title(
        "orbits $O_X$ of $O(2)$ (solid: rotations, dashed: reflections),\n"
        "projected to three coordinates of $W_1$",
        fontsize=9,
    )
    ax.legend(fontsize=8, loc="upper left")
    return worst_g, worst_x


def volume_panel(ax, n_points: int, n_sigma: int) -> float:
    """Measured orbit length vs exp(S(X)); returns the worst relative error."""
    grid = np.linspace(0.05, 3.0, 200)
    predicted = [np.exp(boltzmann_entropy(np.diag([1.0, s]), 2)) for s in grid]
    ax.plot(grid, predicted, color="black", label=r"$\exp S(X)$ (boltzmann_entropy)")
    ax.plot(
        grid,
        4 * np.sqrt(2) * np.pi * np.sqrt(1 + grid),
        ":",
        color="tab:red",
        label=r"$4\sqrt{2}\pi\sqrt{\sigma_1+\sigma_2}$",
    )
    worst = 0.0
    for s in np.linspace(0.1, 2.9, n_sigma):
        x = np.diag([1.0, s])
        length = sum(polygon_length(c) for c in orbit_components(balanced_factors(x, 2), n_points))
        worst = max(worst, abs(length / np.exp(boltzmann_entropy(x, 2)) - 1.0))
        ax.plot(s, length, "o", color="tab:blue", ms=5)
    ax.plot([], [], "o", color="tab:blue", label="measured polygon length")
    ax.set(xlabel=r"$\sigma_2$ (with $\sigma_1 = 1$)", ylabel="vol$(O_X)$")
    ax.set_title("volume of the orbit = exp(Boltzmann entropy), depth 2", fontsize=9)
    ax.legend(fontsize=8)
    return worst


def entropy_panel(ax) -> None:
    """S(diag(1, s)) - S(I) for several depths N (Menon & Yu 2025, Thm 4)."""
    grid = np.linspace(0.02, 1.0, 200)
    for depth in (2, 3, 5, 10):
        s_ref = boltzmann_entropy(np.eye(2), depth)
        values = [boltzmann_entropy(np.diag([1.0, s]), depth) - s_ref for s in grid]
        ax.plot(grid, values, label=f"N = {depth}")
    ax.set(xlabel=r"$\sigma_2$ (with $\sigma_1 = 1$)", ylabel=r"$S(X) - S(I)$")
    ax.set_title("Boltzmann entropy of a 2x2 end-to-end matrix", fontsize=9)
    ax.legend(fontsize=8)


def main(argv: list[str] | None = None) -> list:
    parser = example_parser(__doc__)
    args = parse_example_args(parser, argv)
    plt = pyplot()
    n_points = 400 if args.fast else 4000
    fig = plt.figure(figsize=(13, 10))
    fig.subplots_adjust(wspace=0.3, hspace=0.3)
    worst_s = slicing_panel(fig.add_subplot(2, 2, 1, projection="3d"), 200)
    worst_g, worst_x = orbit_panel(fig.add_subplot(2, 2, 2, projection="3d"), 200)
    worst = volume_panel(fig.add_subplot(2, 2, 3), n_points, 4 if args.fast else 12)
    entropy_panel(fig.add_subplot(2, 2, 4))
    print(f"widths (1, 2, 1): max |phi(W) - X| along the slicing orbits {worst_s:.1e}")
    print(f"along the orbits: max imbalance {worst_g:.1e}, max |phi(W) - X| {worst_x:.1e}")
    print(f"orbit length vs exp(S): worst relative error {worst:.1e} ({n_points} points)")
    return [save(fig, args.output, "group_orbits.png")]


if __name__ == "__main__":
    main()
