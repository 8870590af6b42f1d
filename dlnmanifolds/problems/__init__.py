"""Ready problems for DLN geometries: matrix completion and regression.

Each problem is a loss E(X) on end-to-end matrices with its derivatives and test
metrics; ``make_problem`` lifts it onto any geometry as a Pymanopt ``Problem``.
"""

from dlnmanifolds.problems._objective import MatrixObjective
from dlnmanifolds.problems.geometries import GEOMETRIES, GeometryProblem, make_problem
from dlnmanifolds.problems.lowrank import LowRank
from dlnmanifolds.problems.matrix_completion import MatrixCompletion
from dlnmanifolds.problems.regression import Regression

__all__ = [
    "GEOMETRIES",
    "GeometryProblem",
    "LowRank",
    "MatrixCompletion",
    "MatrixObjective",
    "Regression",
    "make_problem",
]
