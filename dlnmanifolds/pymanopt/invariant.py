"""Pymanopt manifold of a balanced variety M_G (level set of the invariants, math.md §2.1)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlnmanifolds.core._validate import as_matrix, as_rng, as_weights, check_widths
from dlnmanifolds.core.invariant import (
    NormalSolver,
    NotRegularError,
    invariant_dimension,
    invariant_hessian,
    invariant_retraction,
    invariant_tangent_projection,
)
from dlnmanifolds.core.network import _invariants
from dlnmanifolds.pymanopt._layers import LayerSubmanifold

#: Relative tolerance for the symmetry of each G_p.
SYMMETRY_RTOL = 1e-12


def check_invariants(invariants, widths: tuple[int, ...]) -> list[np.ndarray]:
    """Validate (G_1, ..., G_{N-1}): G_p symmetric d_p x d_p, finite. Raises naming them."""
    if isinstance(invariants, np.ndarray) or not isinstance(invariants, (list, tuple)):
        raise TypeError(
            f"invariants must be a sequence (G_1, ..., G_N-1) of matrices, got "
            f"{type(invariants).__name__}"
        )
    depth = len(widths) - 1
    if len(invariants) != depth - 1:
        raise ValueError(
            f"invariants must hold N - 1 = {depth - 1} matrices for widths {widths}, "
            f"got {len(invariants)}"
        )
    out = []
    for p, g in enumerate(invariants):
        name = f"invariants[{p}]"
        g = as_matrix(g, name)
        d = widths[p + 1]
        if g.shape != (d, d):
            raise ValueError(
                f"{name} (G_{p + 1}) must have shape {(d, d)} = (d_{p + 1},)*2, got {g.shape}"
            )
        gap = float(np.max(np.abs(g - g.T)))
        if gap > SYMMETRY_RTOL * max(1.0, float(np.max(np.abs(g)))):
            raise ValueError(f"{name} (G_{p + 1}) must be symmetric, max |G - G^T| = {gap:.3g}")
        out.append(0.5 * (g + g.T))
    return out


class InvariantManifold(LayerSubmanifold):
    """The balanced variety M_G = {W : W_{p+1}^T W_{p+1} - W_p W_p^T = G_p, p < N}.

    Gradient training of any E∘phi from any start moves on the M_G of its start
    (the invariants are conserved, math.md §2.1; checked in math.md §10): the leaves of the
    conic foliation of Menon 2024, Fig. 9.1, with G = 0 the balanced manifold.
    A Riemannian submanifold of the layer space (Frobenius metric) where DG(W) is
    onto Sym^{N-1}; ``BalancedManifold`` is its G = 0 case.

    * projection: xi - C_W(S), block-tridiagonal normal equations
      (``core.invariant``);
    * retraction: W + xi + C_W(S) on M_G by Newton (orthographic, second order),
      every G_p kept to 1e-14 (1 + max |W_p|^2);
    * Hessian: Weingarten form P_T(E''[xi] - C_xi(S)) (math.md §2.6);
    * random points: retractions of random tangent steps from a base point
      (``point``, or one built layer by layer when the widths are monotone).

    Parameters
    ----------
    widths : (d_0, ..., d_N).
    invariants : (G_1, ..., G_{N-1}), G_p symmetric of shape (d_p, d_p).
    point : optional point of M_G used as base point of ``random_point``.
    rng : Generator or seed.

    Examples
    --------
    >>> import numpy as np
    >>> from dlnmanifolds import invariants
    >>> w0 = [np.random.default_rng(0).standard_normal((3, 3)) for _ in range(3)]
    >>> m = InvariantManifold.through(w0)
    >>> bool(m.belongs(m.random_point()))
    True
    """

    def __init__(
        self,
        widths: Sequence[int],
        invariants: Sequence[np.ndarray],
        point=None,
        rng: np.random.Generator | int | None = None,
    ):
        widths = check_widths(widths)
        targets = check_invariants(invariants, widths)
        dim = invariant_dimension(widths)
        if dim <= 0:
            raise ValueError(
                f"widths {widths}: N - 1 invariants ({sum(d * (d + 1) // 2 for d in widths[1:-1])} "
                f"equations) leave no room in the layer space; M_G is not a manifold"
            )
        self._setup(widths, targets, rng, f"Balanced variety M_G with widths {widths}", dim)
        self.retraction_order = 2
        if point is None:
            point = self._layerwise_point(1.0)
        self._base = None if point is None else list(self._layers(self.check_point(point)))

    @classmethod
    def through(cls, weights: Sequence[np.ndarray], rng=None) -> InvariantManifold:
        """The M_G through ``weights`` (G = invariants(weights)), with it as base point."""
        layers = as_weights(weights, "weights")
        widths = (layers[0].shape[1],) + tuple(w.shape[0] for w in layers)
        return cls(widths, _invariants(layers), point=layers, rng=rng)

    def _setup(self, widths, targets, rng, name, dim) -> None:
        self._widths = widths
        self._depth = len(widths) - 1
        self._targets = targets
        self._rng = as_rng(rng)
        super().__init__(name, dim, point_layout=self._depth)

    # -- structure -----------------------------------------------------------
    @property
    def widths(self) -> tuple[int, ...]:
        return self._widths

    @property
    def invariants(self) -> list[np.ndarray]:
        """(G_1, ..., G_{N-1}) of the level set (copies)."""
        return [g.copy() for g in self._targets]

    # -- membership ----------------------------------------------------------
    def check_point(self, point, atol: float = 1e-10):
        """Validate ``point``: widths, finiteness and max |G_p(W) - G_p| <= atol
        (1 + max |W_p|^2). Raises ValueError/TypeError naming ``point``."""
        layers = as_weights(self._layers(point), "point", self._widths)
        scale = 1.0 + max(float(np.max(np.abs(w))) for w in layers) ** 2
        gaps = [float(np.max(np.abs(g - t))) for g, t in zip(_invariants(layers), self._targets)]
        if gaps and max(gaps) > atol * scale:
            p = int(np.argmax(gaps))
            raise ValueError(
                f"point is not on M_G: max |G_{p + 1}(W) - invariants[{p}]| = {gaps[p]:.3g} "
                f"> {atol * scale:.3g}"
            )
        return self._out(layers)

    # -- metric --------------------------------------------------------------
    def normal_solver(self, point) -> NormalSolver:
        """The factored normal equations at ``point`` (cached for the latest point)."""
        return self._cached(point, NormalSolver)

    def projection(self, point, vector):
        return self._out(
            invariant_tangent_projection(
                self._layers(point), self._layers(vector), self.normal_solver(point)
            )
        )

    def euclidean_to_riemannian_hessian(
        self, point, euclidean_gradient, euclidean_hessian, tangent_vector
    ):
        return self._out(
            invariant_hessian(
                self._layers(point),
                self._layers(euclidean_gradient),
                self._layers(euclidean_hessian),
                self._layers(tangent_vector),
                self.normal_solver(point),
            )
        )

    # -- maps ----------------------------------------------------------------
    def retraction(self, point, tangent_vector):
        """Orthographic retraction onto M_G (second order; Newton, see ``core.invariant``)."""
        return self._out(
            invariant_retraction(self._layers(point), self._layers(tangent_vector), self._targets)
        )

    def exp(self, point, tangent_vector):
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form exponential map; use retraction"
        )

    # -- sampling ------------------------------------------------------------
    def _layerwise_point(self, scale: float):
        """W_{p+1} = Q_{p+1} (G_p + W_p W_p^T)^{1/2} from a random W_1 (non-decreasing
        widths), or the mirror construction from W_N (non-increasing widths); None if
        neither applies or a square root's argument is not positive semidefinite."""
        widths = self._widths
        if all(a <= b for a, b in zip(widths[:-1], widths[1:])):
            forward = True
        elif all(a >= b for a, b in zip(widths[:-1], widths[1:])):
            forward = False
        else:
            return None
        depth = self._depth
        targets = self._targets if forward else [-g for g in reversed(self._targets)]
        dims = widths if forward else widths[::-1]
        for growth in (1.0, 4.0, 16.0, 64.0):
            layer = scale * growth * self._rng.standard_normal((dims[1], dims[0]))
            layers, ok = [layer], True
            for p in range(depth - 1):
                gram = targets[p] + layers[-1] @ layers[-1].T
                vals, vecs = np.linalg.eigh(0.5 * (gram + gram.T))
                if vals[0] < 0:
                    ok = False
                    break
                root = (vecs * np.sqrt(vals)) @ vecs.T
                q, _ = np.linalg.qr(self._rng.standard_normal((dims[p + 2], dims[p + 1])))
                layers.append(q @ root)
            if ok:
                if not forward:  # built for the reversed network: W_p = (built)^T
                    layers = [w.T for w in reversed(layers)]
                return self._out(layers)
        return None

    def random_point(self):
        """A retraction of a random tangent step (length ~0.3 max |W_p|) from the base
        point: exactly on M_G, and different at each call."""
        if self._base is None:
            raise ValueError(
                f"no point of M_G is known for widths {self._widths}: the layer-by-layer "
                f"construction needs monotone widths and G_p + W_p W_p^T >= 0 (widening) or "
                f"W_(p+1)^T W_(p+1) - G_p >= 0 (narrowing); pass point= (a point of M_G) "
                f"or use InvariantManifold.through"
            )
        base = self._out(self._base)
        step = self.random_tangent_vector(base)
        size = 0.3 * max(float(np.max(np.abs(w))) for w in self._base)
        for _ in range(8):
            try:
                return self.retraction(base, step * size)
            except NotRegularError:
                size *= 0.5
        return base
