"""
Adding your own DLN geometry, checked by check_manifold
=======================================================

Adding your own DLN geometry: the infinite-depth metric g^inf, checked by check_manifold.

As the depth N grows, N g^N converges to the metric g^inf on full-rank square
matrices whose operator is A_inf(Z) = U (L o U^T Z V) V^T, with L the logarithmic
mean of the squared singular values, L_ij = (s_i^2 - s_j^2)/(log s_i^2 - log s_j^2)
(math.md §4.6, verified C9). The whole manifold is ~40 lines on top of
``dlnmanifolds.core``; ``check_manifold`` then says whether it is sound. A
deliberately wrong variant (gradient with A_inf^{-1} instead of A_inf) shows what
a failure looks like.

Run: ``python examples/custom_geometry.py [--fast] [--output DIR]`` (DIR gets
``custom_geometry.json`` with both reports and ``custom_geometry.png``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from pymanopt.manifolds.manifold import Manifold

from dlnmanifolds import dln_inner
from dlnmanifolds.core._validate import as_matrix, as_rng, check_positive_int
from dlnmanifolds.core.kernel import log_mean_kernel
from dlnmanifolds.core.operator import RANK_RTOL, svd_frame
from dlnmanifolds.testing import check_manifold


class InfiniteDepthMatrices(Manifold):
    """Full-rank n x n matrices with g^inf_X(Y, Z) = sum_ij (U^T Y V)_ij (U^T Z V)_ij / L_ij.

    * Riemannian gradient A_inf(grad E) (the infinite-depth ACH flow, math.md §4.6);
    * retraction X + xi (first order; stays full rank for small steps);
    * no Hessian (the Levi-Civita connection of g^inf is not implemented here).
    """

    #: ``check_manifold`` tests this claim: X + xi agrees with exp to first order.
    retraction_order = 1

    def __init__(self, n: int, rng: np.random.Generator | int | None = None):
        self._n = check_positive_int(n, "n")
        self._rng = as_rng(rng)
        super().__init__(f"infinite-depth DLN metric on GL({n})", n * n, point_layout=1)

    def _kernel(self, point):
        frame = svd_frame(point)
        return frame, log_mean_kernel(frame.s[:, None], frame.s[None, :])

    # membership: what the checker uses to see that points stay on the manifold
    def check_point(self, point) -> np.ndarray:
        point = as_matrix(point, "point")
        if point.shape != (self._n, self._n):
            raise ValueError(f"point must have shape {(self._n, self._n)}, got {point.shape}")
        s = np.linalg.svd(point, compute_uv=False)
        if s[-1] <= RANK_RTOL * s[0]:
            raise ValueError(f"point must have full rank; singular values {s}")
        return point

    def belongs(self, point, atol: float | None = None) -> bool:
        try:
            self.check_point(point)
        except (ValueError, TypeError):
            return False
        return True

    def inner_product(self, point, tangent_vector_a, tangent_vector_b) -> float:
        frame, kernel = self._kernel(point)
        a, b = frame.to_frame(tangent_vector_a), frame.to_frame(tangent_vector_b)
        return float(np.sum(a * b / kernel))

    def norm(self, point, tangent_vector) -> float:
        return float(np.sqrt(self.inner_product(point, tangent_vector, tangent_vector)))

    def projection(self, point, vector) -> np.ndarray:
        return np.array(vector, dtype=float)  # every tangent space is R^{n x n}

    to_tangent_space = projection

    def euclidean_to_riemannian_gradient(self, point, euclidean_gradient) -> np.ndarray:
        frame, kernel = self._kernel(point)
        return frame.from_frame(kernel * frame.to_frame(euclidean_gradient))  # A_inf(grad E)

    def retraction(self, point, tangent_vector) -> np.ndarray:
        return point + tangent_vector

    def transport(self, point_a, point_b, tangent_vector_a) -> np.ndarray:
        return np.array(tangent_vector_a, dtype=float)

    def euclidean_to_riemannian_hessian(self, *args):
        raise NotImplementedError("no Hessian for g^inf in this example")

    def random_point(self) -> np.ndarray:
        q1, _ = np.linalg.qr(self._rng.standard_normal((self._n, self._n)))
        q2, _ = np.linalg.qr(self._rng.standard_normal((self._n, self._n)))
        return (q1 * np.sort(self._rng.uniform(0.5, 2.0, self._n))[::-1]) @ q2.T

    def random_tangent_vector(self, point) -> np.ndarray:
        vector = self._rng.standard_normal((self._n, self._n))
        return vector / self.norm(point, vector)

    def zero_vector(self, point) -> np.ndarray:
        return np.zeros((self._n, self._n))


class WrongGradient(InfiniteDepthMatrices):
    """A typical slip: A_inf^{-1} where A_inf belongs. check_manifold catches it."""

    def euclidean_to_riemannian_gradient(self, point, euclidean_gradient) -> np.ndarray:
        frame, kernel = self._kernel(point)
        return frame.from_frame(frame.to_frame(euclidean_gradient) / kernel)


def depth_limit_gap(n: int, rng: np.random.Generator, depths=(10, 100, 1000)) -> list[float]:
    """|N g^N(Z, Z) - g^inf(Z, Z)| / g^inf(Z, Z) for growing N: O(1/N) (math.md §4.6)."""
    manifold = InfiniteDepthMatrices(n, rng=rng)
    x = manifold.random_point()
    z = rng.standard_normal((n, n))
    reference = manifold.inner_product(x, z, z)
    # g^inf = lim N g^N needs the normalised kernel kappa/N -> L: N * g^N uses 1/(kappa/N).
    return [abs(depth * dln_inner(x, z, z, depth) - reference) / reference for depth in depths]


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(
        description="Add the infinite-depth metric g^inf as a geometry and check it."
    )
    parser.add_argument("--size", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast", action="store_true", help="one point instead of three")
    parser.add_argument(
        "--output", metavar="DIR", help="write custom_geometry.json and .png to this directory"
    )
    args = parser.parse_args(argv)
    if args.output is not None:
        out = Path(args.output)
        if out.exists() and not out.is_dir():
            parser.error(f"--output {out}: exists and is not a directory")
        out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    n_points = 1 if args.fast else 3

    gaps = depth_limit_gap(args.size, rng)
    print("N g^N -> g^inf:", ", ".join(f"N={d}: {g:.2e}" for d, g in zip((10, 100, 1000), gaps)))

    good = check_manifold(InfiniteDepthMatrices(args.size, rng=rng), n_points=n_points, rng=rng)
    print(good.table(), end="\n\n")
    bad = check_manifold(WrongGradient(args.size, rng=rng), n_points=n_points, rng=rng)
    print(bad.table())
    print("\nfailures of the wrong variant:", ", ".join(r.name for r in bad.failures))

    result = {"depth_limit_gap": gaps, "good": good.to_dict(), "wrong_gradient": bad.to_dict()}
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.loglog((10, 100, 1000), gaps, "o-")
    ax.set(
        xlabel="depth N",
        ylabel="|N g^N(Z, Z) - g^inf(Z, Z)| / g^inf(Z, Z)",
        title="N g^N converges to the new metric g^inf",
    )
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    if args.output:
        with open(Path(args.output) / "custom_geometry.json", "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2, default=str)
        fig.savefig(Path(args.output) / "custom_geometry.png", dpi=100)
    return result


if __name__ == "__main__":
    main()
