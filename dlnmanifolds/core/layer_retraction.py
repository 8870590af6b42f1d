"""The second-order retraction of the layer manifolds, one formula for every adapter.

Given a first-order retraction R_W of a manifold M embedded in the layer space
(W_1, ..., W_N) with the Frobenius metric, and the orthogonal projection P_T onto
T_W M,

    R2_W(xi) = R_W(xi - P_T(R_W(xi) - W - xi))

is a second-order retraction: R_W(xi) - W - xi = O(|xi|^2), so removing its
tangential part leaves a second-order error that is normal up to O(|xi|^3), which
is the defining property of a second-order retraction (Absil, Mahony & Sepulchre
2008, Prop. 5.5.5: the acceleration of t -> R(t xi) at 0 is normal). It stays
exactly on M because R maps onto M. Used by the Pymanopt and Geoopt adapters
(``retraction_order = 2``); numpy arrays or torch tensors alike (only +, -).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

Layers = Sequence[Any]


def second_order_retraction(
    point: Layers,
    tangent: Layers,
    retract: Callable[[Layers], Sequence[Any]],
    project: Callable[[Layers], Sequence[Any]],
) -> list:
    """R_W(xi - P_T(R_W(xi) - W - xi)) (module docstring), on lists of layers.

    Parameters
    ----------
    point : the layers (W_1, ..., W_N) of W.
    tangent : the layers of a tangent vector xi at W.
    retract : xi -> R_W(xi), the first-order retraction at W (layers in, layers out).
    project : v -> P_T v, the orthogonal projection onto T_W M (layers in and out).

    Returns the layers of R2_W(xi); two calls of ``retract``, one of ``project``.

    Example
    -------
    On the unit circle in R^2 (one 2x1 "layer"), R(xi) = y/|y| with
    y = W + xi + |xi|^2 v is a first-order retraction (its tangential t^2 term is
    off the geodesic cos t W + sin t v); the corrected map is off by O(t^3) only:

    >>> import numpy as np
    >>> w, v = np.array([[1.0], [0.0]]), np.array([[0.0], [1.0]])
    >>> def retract(xi):
    ...     y = w + xi[0] + np.sum(xi[0] ** 2) * v
    ...     return [y / np.linalg.norm(y)]
    >>> project = lambda u: [u[0] - w * (w.T @ u[0])]
    >>> t = 1e-2
    >>> geodesic = np.cos(t) * w + np.sin(t) * v
    >>> first = retract([t * v])[0]
    >>> second = second_order_retraction([w], [t * v], retract, project)[0]
    >>> bool(np.linalg.norm(first - geodesic) > 0.5 * t**2)  # O(t^2)
    True
    >>> bool(np.linalg.norm(second - geodesic) < 2 * t**3)  # O(t^3)
    True
    """
    first = retract(tangent)
    error = project([f - w - v for f, w, v in zip(first, point, tangent)])
    return list(retract([v - e for v, e in zip(tangent, error)]))
