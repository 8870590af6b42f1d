"""``dlnmanifolds compare --data PATH [--one-based] [--holdout FRACTION]``: a user's matrix.

The file is read by ``MatrixCompletion.from_file`` (every bad line is reported
with the file and line before any run starts); ``--holdout`` splits off a seeded
test set whose MSE is each run's ``test_mse`` (its square root is printed as the
holdout test RMSE).
"""

from __future__ import annotations

import argparse
import os

from dlnmanifolds.compare.specs import FixedProblem
from dlnmanifolds.problems.matrix_completion import MatrixCompletion


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text!r}") from exc
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"expected a fraction in (0, 1), got {text!r}")
    return value


def data_problem(args: argparse.Namespace):
    """The --data problem (a FixedProblem), its held-out set split off; None without --data."""
    if args.data is None:
        if args.holdout is not None or args.one_based:
            raise ValueError("--holdout and --one-based need --data PATH")
        return None
    data = MatrixCompletion.from_file(args.data, one_based=True if args.one_based else None)
    if args.holdout is not None:
        data, _ = data.split(args.holdout, rng=0)
    print(
        f"data {args.data}: {data.shape[0]} x {data.shape[1]}, {data.count} training entries"
        + ("" if data.heldout is None else f", {data.heldout[0].size} held out"),
        flush=True,
    )
    return FixedProblem(data, rank=args.rank, name=f"data:{os.path.basename(args.data)}")


def print_holdout(records) -> None:
    """Test RMSE on the held-out entries: median over seeds per method."""
    cells: dict[tuple, list[float]] = {}
    for r in records:
        if r.get("test_mse") is not None:
            key = (r["geometry"], r["depth"], r["solver"])
            cells.setdefault(key, []).append(float(r["test_mse"]) ** 0.5)
    for (geometry, depth, solver), values in sorted(cells.items()):
        values.sort()
        print(f"holdout test RMSE {geometry} N={depth} {solver}: {values[len(values) // 2]:.4g}")
