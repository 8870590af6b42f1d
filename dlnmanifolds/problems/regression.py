"""Linear least squares for a deep linear network: E(W) = 1/2 ||W A - B||^2.

W is the end-to-end matrix (m x n), A the n x k input matrix (one sample a
column) and B the m x k targets. E'(W) = (W A - B) A^T and E''(W)[Wdot] = Wdot A A^T.
The generator draws a rank-r teacher W* (scaled like MatrixCompletion's ground
truth, RMS entry 1), Gaussian inputs and optional Gaussian label noise.
"""

from __future__ import annotations

import numpy as np

from dlnmanifolds.core._validate import as_matrix, as_rng, check_positive_int
from dlnmanifolds.problems._objective import MatrixObjective
from dlnmanifolds.problems.lowrank import dense


class Regression(MatrixObjective):
    """Fit W in ||W A - B||^2 (the DLN regression problem of Arora et al. 2018).

    Parameters
    ----------
    inputs : array, shape=[n, k] (A), finite.
    targets : array, shape=[m, k] (B), finite.
    test_inputs, test_targets : optional held-out arrays, shapes [n, k'] and [m, k'].
    truth : optional teacher W*, shape=[m, n].

    Example
    -------
    >>> import numpy as np
    >>> a = np.eye(3)
    >>> w = np.array([[1.0, 2.0, 3.0]])
    >>> problem = Regression(a, w @ a)
    >>> problem.shape, problem.loss(w), problem.loss(np.zeros((1, 3)))
    ((1, 3), 0.0, 7.0)
    """

    def __init__(self, inputs, targets, test_inputs=None, test_targets=None, truth=None):
        a = as_matrix(inputs, "inputs")
        b = as_matrix(targets, "targets")
        if a.shape[1] != b.shape[1]:
            raise ValueError(
                f"inputs and targets must have the same number of columns (samples), "
                f"got {a.shape[1]} and {b.shape[1]}"
            )
        self.inputs, self.targets = a, b
        self.shape = (b.shape[0], a.shape[0])
        if (test_inputs is None) != (test_targets is None):
            raise ValueError("test_inputs and test_targets must be given together")
        self.test_inputs = self.test_targets = None
        if test_inputs is not None:
            ta = as_matrix(test_inputs, "test_inputs")
            tb = as_matrix(test_targets, "test_targets")
            if ta.shape[0] != a.shape[0] or tb.shape[0] != b.shape[0] or ta.shape[1] != tb.shape[1]:
                raise ValueError(
                    f"test_inputs/test_targets must have shapes ({a.shape[0]}, k) and "
                    f"({b.shape[0]}, k), got {ta.shape} and {tb.shape}"
                )
            self.test_inputs, self.test_targets = ta, tb
        self.truth = None if truth is None else as_matrix(truth, "truth")
        if self.truth is not None and self.truth.shape != self.shape:
            raise ValueError(f"truth must have shape {self.shape}, got {self.truth.shape}")
        # Precomputed normal equations: E'(W) = W (A A^T) - B A^T, O(m n^2) a call.
        self._gram = a @ a.T
        self._cross = b @ a.T
        self._const = 0.5 * float(np.vdot(b, b))

    @classmethod
    def generate(
        cls,
        n: int,
        rank: int,
        samples: int,
        rng: np.random.Generator | int | None = None,
        m: int | None = None,
        noise: float = 0.0,
        test_samples: int | None = None,
    ) -> Regression:
        """Teacher W* = U V^T (rank r, ||W*||_F = sqrt(m n)), A ~ N(0, 1/n), B = W* A + noise."""
        n = check_positive_int(n, "n")
        m = n if m is None else check_positive_int(m, "m")
        rank = check_positive_int(rank, "rank")
        if rank > min(m, n):
            raise ValueError(f"rank must be at most min(m, n) = {min(m, n)}, got {rank}")
        samples = check_positive_int(samples, "samples")
        test_samples = (
            samples if test_samples is None else check_positive_int(test_samples, "test_samples")
        )
        if not np.isfinite(noise) or noise < 0:
            raise ValueError(f"noise must be a finite number >= 0, got {noise}")
        gen = as_rng(rng)
        truth = gen.standard_normal((m, rank)) @ gen.standard_normal((rank, n))
        truth *= np.sqrt(m * n) / np.linalg.norm(truth)

        def draw(k):
            a = gen.standard_normal((n, k)) / np.sqrt(n)
            return a, truth @ a + noise * gen.standard_normal((m, k))

        a, b = draw(samples)
        ta, tb = draw(test_samples)
        return cls(a, b, ta, tb, truth)

    @property
    def count(self) -> int:
        return int(self.targets.size)

    def residual_gradient(self, x: np.ndarray) -> np.ndarray:
        """(W A - B) A^T."""
        x = dense(x)
        return x @ self._gram - self._cross

    def hessian(self, x: np.ndarray, xdot: np.ndarray) -> np.ndarray:
        """Wdot A A^T."""
        return xdot @ self._gram

    def loss(self, x: np.ndarray) -> float:
        """1/2 ||W A - B||^2 = 1/2 tr(W G W^T) - <W, B A^T> + 1/2 ||B||^2."""
        x = dense(x)
        return max(
            0.5 * float(np.vdot(x @ self._gram, x)) - float(np.vdot(x, self._cross)) + self._const,
            0.0,
        )

    def test_mse(self, x: np.ndarray) -> float:
        if self.test_inputs is None:
            return float("nan")
        d = dense(x) @ self.test_inputs - self.test_targets
        return float(np.vdot(d, d)) / d.size

    def _spectral_matrix(self) -> np.ndarray:
        """The least-squares solution B A^+, truncated to rank r by ``spectral_start``."""
        return self.targets @ np.linalg.pinv(self.inputs)
