"""
Geodesics and Fréchet means under the DLN metric with Geomstats
===============================================================

Geodesic and Fréchet mean of end-to-end matrices under the DLN metric g^N, with Geomstats.

GL(2) is equipped with ``DLNMetric`` (depth N = 3) and, for comparison, with Geomstats'
Euclidean (Frobenius) ``MatricesMetric``. We draw the geodesic between two end-to-end
matrices and the Fréchet mean of a few of them with Geomstats' own tools
(``metric.geodesic``, ``FrechetMean``), and plot the singular values along both geodesics:
under g^N the small singular value moves on the scale sigma^{1/N} (math.md §4.5), so the
geodesic bends away from the singular matrices that the straight line passes close to.

Run:  python examples/geomstats_geodesic.py [--fast] [--output DIR]
"""

from __future__ import annotations

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from geomstats.geometry.general_linear import GeneralLinear  # noqa: E402
from geomstats.geometry.matrices import MatricesMetric  # noqa: E402
from geomstats.learning.frechet_mean import FrechetMean  # noqa: E402

from dlnmanifolds.geomstats import DLNMetric  # noqa: E402


def rotation(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


def main(fast: bool = False, output: str = ".") -> dict:
    depth = 3
    dln = GeneralLinear(2, equip=False).equip_with_metric(DLNMetric, depth=depth)
    flat = GeneralLinear(2, equip=False).equip_with_metric(MatricesMetric)

    x0 = rotation(0.2) @ np.diag([2.0, 0.3]) @ rotation(-0.3)
    x1 = rotation(0.9) @ np.diag([1.2, 0.4]) @ rotation(0.3)
    times = np.linspace(0.0, 1.0, 7 if fast else 41)

    paths = {
        f"g^N (N={depth})": dln.metric.geodesic(initial_point=x0, end_point=x1)(times),
        "Euclidean": flat.metric.geodesic(initial_point=x0, end_point=x1)(times),
    }
    lengths = {
        f"g^N (N={depth})": float(dln.metric.dist(x0, x1)),
        "Euclidean": float(flat.metric.dist(x0, x1)),
    }

    rng = np.random.default_rng(0)
    samples = np.stack(
        [
            rotation(a) @ np.diag(s) @ rotation(b)
            for a, s, b in zip(
                rng.uniform(-0.6, 0.6, 2 if fast else 5),
                rng.uniform([1.0, 0.1], [2.0, 0.4], size=(2 if fast else 5, 2)),
                rng.uniform(-0.6, 0.6, 2 if fast else 5),
            )
        ]
    )
    means, residuals = {}, {}
    for name, space in ((f"g^N (N={depth})", dln), ("Euclidean", flat)):
        estimator = FrechetMean(space)
        if name != "Euclidean":  # the Euclidean mean is Geomstats' closed-form LinearMean
            # Gradient descent on F(M) = 1/2 mean_i d(M, X_i)^2, grad F = -mean_i Log_M(X_i)
            # (unit steps: Karcher's iteration). Geomstats stops at |grad F|_g^2 <= epsilon dim,
            # so epsilon = 1e-18 asks for |grad F| <= 2e-9.
            estimator.set(max_iter=100, epsilon=1e-18, init_step_size=1.0)
        mean = estimator.fit(samples).estimate_
        # Converged means grad F = 0: report |mean_i Log_M(X_i)|_g and insist on it.
        grad = np.mean(space.metric.log(samples, mean), axis=0)
        residuals[name] = float(space.metric.norm(grad, mean))
        if residuals[name] > 1e-8:
            raise RuntimeError(
                f"the {name} Fréchet mean did not converge: |grad F| = {residuals[name]:.3g}"
            )
        means[name] = mean

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for (name, path), style in zip(paths.items(), ("-", "--")):
        sv = np.linalg.svd(path, compute_uv=False)
        for k in range(2):
            axes[0].plot(times, sv[:, k], style, label=f"{name}: sigma_{k + 1}")
    axes[0].set_xlabel("t")
    axes[0].set_ylabel("singular value")
    axes[0].set_yscale("log")
    axes[0].set_title("singular values along the geodesic X0 -> X1")
    axes[0].legend(fontsize=8)
    for name, mean in means.items():
        axes[1].scatter(*np.linalg.svd(mean, compute_uv=False), marker="*", s=150, label=name)
    axes[1].scatter(*np.linalg.svd(samples, compute_uv=False).T, c="gray", label="samples")
    axes[1].set_xlabel("sigma_1")
    axes[1].set_ylabel("sigma_2")
    axes[1].set_title("Fréchet means (singular values)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(output, exist_ok=True)
    path = os.path.join(output, "geomstats_geodesic.png")
    fig.savefig(path, dpi=120)  # left open: the gallery shows it

    for name in paths:
        print(
            f"{name:>12}: length {lengths[name]:.4f}, min sigma_2 on the path "
            f"{np.min(np.linalg.svd(paths[name], compute_uv=False)[:, 1]):.4f}, "
            f"mean singular values {np.linalg.svd(means[name], compute_uv=False)} "
            f"(|grad F| = {residuals[name]:.1e})"
        )
    print(f"saved {path}")
    return {
        "paths": paths,
        "lengths": lengths,
        "means": means,
        "mean_gradient_norms": residuals,
        "samples": samples,
        "figure": path,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description="Geodesic and Frechet mean under the DLN metric, with Geomstats."
    )
    parser.add_argument("--fast", action="store_true", help="fewer points, for smoke tests")
    parser.add_argument("--output", default=".", help="directory for the PNG")
    args = parser.parse_args()
    main(fast=args.fast, output=args.output)
