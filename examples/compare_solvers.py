"""Compare solvers on DLN geometries for matrix completion, from Python.

Plain gradient descent on depth-N factors (the Arora et al. 2019 baseline), conjugate
gradient on the balanced manifold and on (X, g^N), and the rank-adaptive solver on
(M_r, g^N), which is not told the rank. Prints the table and writes runs.jsonl,
results.csv, results.json and curves.png.

Run: ``python examples/compare_solvers.py [--fast] [--output DIR]``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from dlnmanifolds.compare import ProblemSpec, RunSettings, compare
from dlnmanifolds.compare.report import format_table, plot_curves, summarize


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fast", action="store_true", help="a 20 x 20 problem, one seed")
    parser.add_argument("--output", default="compare-solvers-output", metavar="DIR")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)

    if args.fast:
        problem = ProblemSpec(size=20, rank=2, observations=160)
        settings = RunSettings(
            rank=2, learning_rate=2.0, max_iterations=1500, max_time=20, target=1e-5
        )
        seeds, depths = 1, [1, 3]
    else:
        problem = ProblemSpec(size=60, rank=3, observations=900)
        settings = RunSettings(rank=3, learning_rate=10.0, max_iterations=5000, max_time=60)
        seeds, depths = 2, [1, 2, 3]

    runs = [
        (["factors"], ["gradient-descent"]),
        (["balanced", "dln-matrices"], ["conjugate-gradient"]),
        (["dln-fixed-rank"], ["rank-adaptive-cg"]),
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
    print(format_table(summarize(records)))
    for note in skipped:
        print(f"skipped: {note}")
    plot_curves(records, Path(args.output) / "curves.png")
    print(f"results in {args.output}/part*/ and {args.output}/curves.png")


if __name__ == "__main__":
    main()
