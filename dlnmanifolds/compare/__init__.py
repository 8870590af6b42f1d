"""Compare solvers on DLN geometries: grids of runs, tables, files, plots, the CLI."""

from dlnmanifolds.compare.comparison import ComparisonResult, build_grid, compare
from dlnmanifolds.compare.report import format_table, summarize
from dlnmanifolds.compare.run import run_one
from dlnmanifolds.compare.solvers import SOLVERS
from dlnmanifolds.compare.specs import FixedProblem, ProblemSpec, RunSettings, RunSpec

__all__ = [
    "SOLVERS",
    "ComparisonResult",
    "FixedProblem",
    "ProblemSpec",
    "RunSettings",
    "RunSpec",
    "build_grid",
    "compare",
    "format_table",
    "run_one",
    "summarize",
]
