"""
Compare solvers on DLN geometries, from Python
==============================================

Compare solvers on DLN geometries for matrix completion, from Python: plain gradient
descent on depth-N factors (the Arora et al. 2019 baseline), conjugate gradient on the
balanced manifold and on (X, g^N), the rank-adaptive solver on (M_r, g^N), which is not
told the rank, and the nuclear norm (soft-impute). Prints the ranked table with its
winner line and writes runs.jsonl, results.csv, results.json and the figures.

Run: ``python examples/compare_solvers.py [--fast] [--output DIR]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dlnmanifolds.compare import ProblemSpec, RunSettings, compare
from dlnmanifolds.compare.report import format_table, plot_curves, problem_title, summarize


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Compare solvers on DLN geometries for matrix completion, from Python."
    )
    parser.add_argument("--fast", action="store_true", help="a 20 x 20 problem, one seed")
    parser.add_argument("--output", default="compare-solvers-output", metavar="DIR")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)

    if args.fast:
        problem = ProblemSpec(size=20, rank=2, observations=160)
        settings = RunSettings(rank=2, max_iterations=1500, max_time=20, target=1e-5)
        seeds, depths = 1, [1, 3]
    else:
        problem = ProblemSpec(size=60, rank=3, observations=900)
        settings = RunSettings(rank=3, max_iterations=5000, max_time=60)
        seeds, depths = 2, [1, 2, 3]
    # gradient-descent takes Armijo steps (no learning rate to tune, it cannot diverge).

    runs = [
        (["factors"], ["gradient-descent"]),
        (["balanced", "dln-matrices"], ["conjugate-gradient"]),
        (["dln-fixed-rank"], ["rank-adaptive-cg"]),
        (["euclidean"], ["nuclear-norm"]),
    ]
    records, skipped = [], []
    for k, (geometries, solvers) in enumerate(runs):
        # One compare() per block: each block is its own geometry x solver grid.
        result = compare(
            problem,
            geometries,
            depths,
            solvers,
            seeds,
            settings,
            output=Path(args.output) / f"part{k}",
            jobs=args.jobs,
            overwrite=True,
        )
        records += result.records
        skipped += result.skipped
    # A success must also recover the matrix: a small test MSE on the unobserved entries.
    recovery = 1e-2 if args.fast else 1e-3
    print(format_table(summarize(records, test_target=recovery), settings.target, recovery))
    for note in skipped:
        print(f"skipped: {note}")
    curves = Path(args.output) / "curves.png"
    plot_curves(records, curves, title=problem_title(problem))
    print(f"results in {args.output}/part*/ and {curves}")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = plt.figure(figsize=(10, 6))  # the figure compare wrote, shown by the gallery
    fig.figimage(plt.imread(curves), resize=True)


if __name__ == "__main__":
    main()
