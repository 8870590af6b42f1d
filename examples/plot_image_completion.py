"""
Image completion: the camera man from 30% of his pixels
=======================================================

A real-data matrix completion: the 512×512 ``camera`` image of scikit-image,
scaled to [0, 1], is observed on 30% of its pixels (uniformly at random) and
completed on factored rank-r matrices (no 512×512 iterate is ever formed):

* at fixed ranks r with the DLN metric g^N (``dln-fixed-rank``, depth 3) and the
  Euclidean metric of Pymanopt's ``FixedRankEmbedded`` (``fixed-rank``, depth 1),
  each from the spectral start and conjugate gradient;
* with :class:`dlnmanifolds.optimizers.RankAdaptive`, which finds the rank itself
  (Gao & Absil 2022 rank increases and reductions around conjugate gradient),
  stopped at a train RMSE of 0.06.

The figure shows the original, the observed pixels and the reconstructions, each
with its rank and its RMSE on the unobserved pixels. A natural image is only
approximately low rank: a larger rank fits the observed pixels better but
overfits the others, so the test RMSE has a best rank.

Needs scikit-image (``pip install dlnmanifolds[docs]``).
"""

from __future__ import annotations

import numpy as np
from _figures import example_parser, parse_example_args, pyplot, save
from pymanopt.optimizers import ConjugateGradient

from dlnmanifolds.optimizers import RankAdaptive
from dlnmanifolds.problems import MatrixCompletion, make_problem


def camera(fast: bool) -> np.ndarray:
    try:
        from skimage import data
    except ImportError:  # pragma: no cover - the docs extra
        raise SystemExit("this example needs scikit-image: pip install scikit-image") from None
    image = data.camera().astype(float) / 255.0
    return image[::4, ::4] if fast else image


def observe(image: np.ndarray, fraction: float, seed: int) -> MatrixCompletion:
    m, n = image.shape
    rng = np.random.default_rng(seed)
    flat = rng.choice(m * n, size=int(fraction * m * n), replace=False)
    rows, cols = np.divmod(flat, n)
    return MatrixCompletion(rows, cols, image[rows, cols], image.shape, truth=image)


def fixed_rank(problem, geometry, depth, rank, iterations):
    gp = make_problem(problem, geometry, depth, rank=rank, init="spectral")
    optimizer = ConjugateGradient(max_iterations=iterations, min_gradient_norm=1e-12, verbosity=0)
    result = optimizer.run(gp.problem, initial_point=gp.initial_point)
    return gp.to_matrix(result.point)


def main(argv=None) -> None:
    args = parse_example_args(example_parser(__doc__), argv)
    image = camera(args.fast)
    problem = observe(image, 0.3, seed=0)
    ranks = (5, 10) if args.fast else (10, 25, 50)
    iterations = 40 if args.fast else 200
    runs = []
    for geometry, depth in (("fixed-rank", 1), ("dln-fixed-rank", 3)):
        for rank in ranks:
            x = fixed_rank(problem, geometry, depth, rank, iterations)
            runs.append((f"N={depth}, r={rank}", x))
    # An image is not exactly low rank: stop at a train RMSE of 0.06 (about the
    # error of the best fixed ranks above) instead of fitting the pixels exactly.
    adaptive = RankAdaptive(
        depth=3,
        target=0.06**2,
        max_rank=ranks[-1],
        max_time=3.0 if args.fast else 60.0,
        max_iterations=2000,
    ).run(problem)
    runs.append((f"RankAdaptive N=3, r={adaptive.rank}", adaptive.point))

    plt = pyplot()
    columns = 2 + len(runs)
    fig, axes = plt.subplots(1, columns, figsize=(2.2 * columns, 2.6))
    mask = np.zeros_like(image)
    mask[problem.rows, problem.cols] = image[problem.rows, problem.cols]
    panels = [("original", image), ("30% observed", mask)]
    for label, x in runs:
        rmse = np.sqrt(problem.test_mse(x))
        panels.append((f"{label}\ntest RMSE {rmse:.3f}", np.clip(x.to_dense(), 0, 1)))
        print(f"{label:<28} train RMSE {np.sqrt(problem.train_mse(x)):.4f}  test RMSE {rmse:.4f}")
    for ax, (title, picture) in zip(axes, panels):
        ax.imshow(picture, cmap="gray", vmin=0, vmax=1)
        ax.set_title(title, fontsize=7)
        ax.set_axis_off()
    fig.suptitle(
        f"camera {image.shape[0]}x{image.shape[1]}: completion on factored rank-r matrices"
    )
    fig.tight_layout()
    save(fig, args.output, "image_completion.png")


if __name__ == "__main__":
    main()
