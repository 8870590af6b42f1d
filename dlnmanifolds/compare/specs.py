"""What a comparison runs: the problem, the settings and one grid cell (``RunSpec``).

Everything here is a small frozen dataclass, so a run can be pickled to a
process pool or a Dask worker and rebuilt there bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import asdict, dataclass, field

import numpy as np

from dlnmanifolds.core._validate import check_positive_int
from dlnmanifolds.problems._objective import MatrixObjective
from dlnmanifolds.problems.matrix_completion import MatrixCompletion
from dlnmanifolds.problems.regression import Regression

PROBLEMS: tuple[str, ...] = ("matrix-completion", "regression")


@dataclass(frozen=True)
class ProblemSpec:
    """A synthetic problem, rebuilt from the seed of each run.

    ``matrix-completion``: ``rows`` x ``size`` (rows defaults to size), rank
    ``rank``, ``observations`` observed entries. ``regression``: W* of shape
    ``rows`` x ``size`` and rank ``rank``, ``samples`` training samples, label
    noise ``noise``.

    Example
    -------
    >>> spec = ProblemSpec(size=10, rank=2, observations=40)
    >>> problem = spec.build(seed=0)  # the same matrix for the same seed
    >>> problem.shape, problem.count
    ((10, 10), 40)
    """

    kind: str = "matrix-completion"
    size: int = 100
    rank: int = 5
    observations: int = 2000
    rows: int | None = None
    samples: int = 200
    noise: float = 0.0

    def validate(self) -> ProblemSpec:
        if self.kind not in PROBLEMS:
            raise ValueError(
                f"unknown problem {self.kind!r}; expected one of {', '.join(PROBLEMS)}"
            )
        self.build(0)  # the constructors validate every field
        return self

    def build(self, seed: int) -> MatrixObjective:
        rng = np.random.default_rng(seed)
        if self.kind == "matrix-completion":
            return MatrixCompletion.generate(
                self.size, self.rank, self.observations, rng=rng, m=self.rows
            )
        return Regression.generate(
            self.size, self.rank, self.samples, rng=rng, m=self.rows, noise=self.noise
        )

    def describe(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FixedProblem:
    """A user's own problem: the same objective for every seed (only starts vary).

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.problems import MatrixCompletion
    >>> data = MatrixCompletion.from_dense([[1.0, np.nan], [np.nan, 4.0]])
    >>> FixedProblem(data, rank=1).build(seed=7) is data
    True
    """

    objective: MatrixObjective
    rank: int | None = None
    name: str = "custom"

    def validate(self) -> FixedProblem:
        if not isinstance(self.objective, MatrixObjective):
            raise TypeError(
                f"objective must be a MatrixObjective, got {type(self.objective).__name__}"
            )
        if self.rank is not None:
            check_positive_int(self.rank, "rank")
        return self

    def build(self, seed: int) -> MatrixObjective:
        return self.objective

    def describe(self) -> dict:
        digest = hashlib.sha1()
        for value in vars(self.objective).values():
            if isinstance(value, np.ndarray):
                digest.update(value.tobytes())
        return {"kind": self.name, "rank": self.rank, "data": digest.hexdigest()[:12]}


@dataclass(frozen=True)
class RunSettings:
    """Settings shared by every run of a comparison.

    target : stop when the training MSE is <= target (Arora et al. 2019 use 1e-6).
    learning_rate : fixed step of ``gradient-descent`` (on the mean-over-Omega loss);
        None (default): Armijo backtracking, which cannot diverge.
    divergence : a run whose loss exceeds ``divergence`` x its initial loss, or is
        not finite, is recorded as diverged.
    blas_threads : BLAS threads inside each run (1: honest timings, no oversubscription).

    Example
    -------
    >>> settings = RunSettings(rank=2, max_time=5.0, target=1e-6)
    >>> settings.learning_rate is None  # gradient-descent takes Armijo steps
    True
    """

    rank: int | None = None
    init: str = "small"
    init_scale: float = 1e-3
    learning_rate: float | None = None
    max_iterations: int = 5000
    max_time: float = 60.0
    target: float = 1e-6
    divergence: float = 1e8
    history_points: int = 200
    blas_threads: int | None = 1

    def describe(self) -> dict:
        out = asdict(self)
        out.pop("blas_threads")
        return out


@dataclass(frozen=True)
class RunSpec:
    """One cell of the grid: geometry x depth x solver x seed.

    Example
    -------
    >>> spec = RunSpec(ProblemSpec(size=10, rank=2, observations=40), "factors", 3,
    ...                "gradient-descent", seed=0)
    >>> spec.key
    'factors|3|gradient-descent|0'
    """

    problem: ProblemSpec | FixedProblem
    geometry: str
    depth: int
    solver: str
    seed: int
    settings: RunSettings = field(default_factory=RunSettings)

    @property
    def key(self) -> str:
        return f"{self.geometry}|{self.depth}|{self.solver}|{self.seed}"

    @property
    def init_seed(self) -> int:
        """Seed of the initial point, from (seed, geometry, depth) only.

        Independent of the execution order; shared by all solvers on a geometry
        so that they start from the same point.
        """
        depth = 0 if self.depth == float("inf") else self.depth  # no finite depth is 0
        words = [self.seed, zlib.crc32(self.geometry.encode()), depth]
        return int(np.random.SeedSequence(words).generate_state(1)[0])


def config_hash(problem, settings: RunSettings) -> str:
    """A short hash of everything that changes the numbers of a run."""
    text = json.dumps(
        {"problem": problem.describe(), "settings": settings.describe()}, sort_keys=True
    )
    return hashlib.sha1(text.encode()).hexdigest()[:12]
