"""Energies E(X) on end-to-end matrices, as the flows consume them.

A flow needs E(X) and its Euclidean gradient E'(X). ``Energy`` bundles both; it
can be built from a pair of callables, or from the value alone (the gradient is
then taken with autograd, so write the value with ``autograd.numpy``).
``batched=True`` promises that both callables accept a leading batch axis
(shape [..., m, n]) and return [...] / [..., m, n]; the Langevin samplers use it
to advance many paths with one call.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dlnmanifolds.core._validate import as_real_array, check_finite


@dataclass(frozen=True)
class Energy:
    """E(X) and its Euclidean gradient E'(X) = nabla E(X).

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.flows import Energy
    >>> E = Energy(value=lambda X: 0.5 * np.sum(X**2), gradient=lambda X: X)
    >>> float(E.value(np.eye(2))), float(E.gradient(np.eye(2))[0, 0])
    (1.0, 1.0)
    """

    value: Callable[[np.ndarray], float | np.ndarray]
    gradient: Callable[[np.ndarray], np.ndarray]
    batched: bool = False

    def __post_init__(self):
        for name in ("value", "gradient"):
            if not callable(getattr(self, name)):
                raise TypeError(f"Energy.{name} must be callable, got {getattr(self, name)!r}")

    def values(self, x: np.ndarray) -> np.ndarray:
        """E over the leading batch axes of x (shape [..., m, n] -> [...])."""
        if self.batched or x.ndim == 2:
            return np.asarray(self.value(x), dtype=np.float64)
        flat = x.reshape((-1,) + x.shape[-2:])
        return np.array([float(self.value(a)) for a in flat]).reshape(x.shape[:-2])

    def gradients(self, x: np.ndarray) -> np.ndarray:
        """E' over the leading batch axes of x (shape [..., m, n])."""
        if self.batched or x.ndim == 2:
            return np.asarray(self.gradient(x), dtype=np.float64)
        flat = x.reshape((-1,) + x.shape[-2:])
        return np.stack([np.asarray(self.gradient(a), dtype=np.float64) for a in flat]).reshape(
            x.shape
        )


def as_energy(energy, name: str = "energy") -> Energy:
    """Accept an ``Energy``, a pair ``(value, gradient)`` or a callable value."""
    if isinstance(energy, Energy):
        return energy
    if isinstance(energy, tuple) and len(energy) == 2:
        return Energy(*energy)
    if callable(energy):
        import autograd

        return Energy(energy, autograd.grad(energy))
    raise TypeError(
        f"{name} must be an Energy, a pair (value, gradient) of callables or a callable "
        f"E(X), got {type(energy).__name__}"
    )


def quadratic_energy(target: np.ndarray) -> Energy:
    """E(X) = 1/2 ||X - Y||_F^2, E'(X) = X - Y (batched).

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.flows import quadratic_energy
    >>> E = quadratic_energy(np.diag([2.0, 1.0]))
    >>> float(E.value(np.zeros((2, 2))))  # 1/2 (4 + 1)
    2.5
    >>> E.gradient(np.eye(2))
    array([[-1.,  0.],
           [ 0.,  0.]])
    """
    target = check_finite(as_real_array(target, "target"), "target")
    return Energy(
        lambda x: 0.5 * np.sum((x - target) ** 2, axis=(-2, -1)),
        lambda x: x - target,
        batched=True,
    )


def spectral_quartic_energy(level: float = 2.0) -> Energy:
    """E(X) = 1/4 sum_k (sigma_k^2 - c)^2 = 1/4 ||X^T X - c I||_F^2, E' = X (X^T X - c I).

    The test energy of the Langevin checks of math.md §10 (c = 2). Batched.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds.flows import spectral_quartic_energy
    >>> E = spectral_quartic_energy(2.0)
    >>> float(E.value(np.diag([1.0, 3.0])))  # 1/4 ((1 - 2)^2 + (9 - 2)^2)
    12.5
    >>> bool(np.isclose(E.value(np.sqrt(2.0) * np.eye(2)), 0.0))  # minimal on sqrt(c) O(d)
    True
    """

    def gram_shift(x):
        return np.swapaxes(x, -1, -2) @ x - level * np.eye(x.shape[-1])

    return Energy(
        lambda x: 0.25 * np.sum(gram_shift(x) ** 2, axis=(-2, -1)),
        lambda x: x @ gram_shift(x),
        batched=True,
    )
