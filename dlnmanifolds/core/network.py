"""The end-to-end map phi(W) = W_N ... W_1, its invariants and derivatives.

All formulas are math.md §1–§2.1 (general widths, any W). ``W_p`` has shape
``(d_p, d_{p-1})``. Functions without a leading underscore validate input;
the ``_``-prefixed versions assume validated, float64 layers and also accept
leading batch axes. Every function takes numpy arrays or torch tensors (CPU or
CUDA, float32/float64; ``core._backend``) and returns the same kind.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from dlnmanifolds.core import _backend
from dlnmanifolds.core._validate import as_matrix, as_weights, check_same_shape

Layers = Sequence[np.ndarray]


def _t(a: np.ndarray) -> np.ndarray:
    # The method, not np.swapaxes: numpy arrays, torch tensors and autograd boxes have it.
    return a.swapaxes(-1, -2)


def _eye_like_rows(w: np.ndarray) -> np.ndarray:
    return _backend.eye_batch(w, w.shape[-1])


def _end_to_end(weights: Layers) -> np.ndarray:
    # Only ``@`` so that autograd can trace a cost written with it.
    product = weights[0]
    for w in weights[1:]:
        product = w @ product
    return product


def end_to_end(weights: Layers) -> np.ndarray:
    """End-to-end matrix phi(W) = W_N W_{N-1} ... W_1 (math.md §1).

    Safe inside autograd costs: with traced (non-ndarray) layers no
    validation is done and only ``@`` is used.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds import end_to_end
    >>> w1, w2 = np.array([[1.0, 2.0], [0.0, 1.0]]), np.array([[0.0, 1.0], [1.0, 0.0]])
    >>> end_to_end([w1, w2])  # W_2 W_1: the last layer acts last
    array([[0., 1.],
           [1., 2.]])
    """
    if (
        isinstance(weights, Sequence)
        and weights
        and not all(isinstance(w, np.ndarray) for w in weights)
        and not any(_backend._is_torch(w) for w in weights)
        and all(hasattr(w, "shape") and hasattr(w, "__matmul__") for w in weights)
    ):
        return _end_to_end(weights)
    return _end_to_end(as_weights(weights))


def _prefix_products(weights: Layers) -> list[np.ndarray]:
    """[W_{<1}, ..., W_{<N+1}]: W_{<p} = W_{p-1}...W_1 (identity for p = 1).

    N - 1 matrix products: the identity and W_1 are not multiplied."""
    prefixes = [_eye_like_rows(weights[0]), weights[0]]
    for w in weights[1:]:
        prefixes.append(w @ prefixes[-1])
    return prefixes


def _suffix_products(weights: Layers) -> list[np.ndarray]:
    """[W_{>0}, ..., W_{>N}]: W_{>p} = W_N...W_{p+1} (identity for p = N); N - 1 products."""
    last = weights[-1]
    suffixes = [_backend.eye_batch(last, last.shape[-2]), last]
    for w in reversed(weights[:-1]):
        suffixes.append(suffixes[-1] @ w)
    return suffixes[::-1]


def _backpropagate(
    weights: Layers, z: np.ndarray, before: list, release: bool = False
) -> list[np.ndarray]:
    """Dphi^*(Z)_p = W_{>p}^T Z W_{<p}^T by reverse accumulation, 2(N-1) products.

    Y_N = Z, Y_{p-1} = W_p^T Y_p (so Y_p = W_{>p}^T Z) and the gradient of layer p is
    Y_p W_{<p}^T; ``before[p]`` = W_{<p+1} = W_p...W_1 (``before[0]`` unused, = I).
    ``release=True`` drops each prefix from ``before`` once used (a list the caller
    built for this call): fewer live d x d temporaries, which at d ~ 100 measurably
    spares the allocator trimming and re-faulting pages.
    """
    depth = len(weights)
    out: list = [None] * depth
    y = z
    for p in range(depth - 1, -1, -1):
        # (at depth 1 y is the caller's Z: copy it so that no result aliases an input)
        out[p] = y @ _t(before[p]) if p > 0 else (_backend.copy(y) if depth == 1 else y)
        if release:
            before[p] = None
        if p > 0:
            y = _t(weights[p]) @ y
    return out


def _lifted_gradient(weights: Layers, gradient) -> list[np.ndarray]:
    """Dphi(W)^*(gradient(phi(W))), the gradient of E∘phi, with 3(N - 1) matrix products.

    The gradient of the lifted loss (math.md §1, §4.1): the N - 1 prefix products give
    phi(W) = W_N W_{<N} and are reused by the reverse sweep of ``_backpropagate``
    (2(N - 1) products), as in backpropagation. ``gradient`` maps X to E'(X) (it may
    record X). Batch-safe (leading axes).

    Example
    -------
    >>> import numpy as np
    >>> w = [np.eye(2), 2 * np.eye(2)]
    >>> [g.tolist() for g in _lifted_gradient(w, lambda x: x)]
    [[[4.0, 0.0], [0.0, 4.0]], [[2.0, 0.0], [0.0, 2.0]]]
    """
    before = [None, weights[0]]
    for w in weights[1:-1]:
        before.append(w @ before[-1])
    z = gradient(weights[-1] @ before[-1] if len(weights) > 1 else weights[0])
    return _backpropagate(weights, z, before, release=True)


def partial_products(weights: Layers) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Prefix and suffix products (W_{<p})_{p=1..N+1}, (W_{>p})_{p=0..N}.

    ``before[p-1] = W_{p-1}...W_1`` and ``after[p] = W_N...W_{p+1}``, so that
    phi = after[p] @ W_p @ before[p-1] for every p (math.md §1).

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds import balanced_factors, end_to_end, partial_products
    >>> W = balanced_factors(np.diag([3.0, 2.0, 1.0]), 3, rng=0)
    >>> below, above = partial_products(W)
    >>> len(below), len(above)  # N + 1 of each
    (4, 4)
    >>> bool(np.allclose(below[3], end_to_end(W)) and np.allclose(above[1], W[2] @ W[1]))
    True
    """
    layers = as_weights(weights)
    return _prefix_products(layers), _suffix_products(layers)


def _invariants(weights: Layers) -> list[np.ndarray]:
    return [
        _t(weights[p + 1]) @ weights[p + 1] - weights[p] @ _t(weights[p])
        for p in range(len(weights) - 1)
    ]


def invariants(weights: Layers) -> list[np.ndarray]:
    """Conserved quantities G_p = W_{p+1}^T W_{p+1} - W_p W_p^T, p = 1..N-1.

    Constant along every gradient flow of E(phi(W)) (math.md §2.1; Arora,
    Cohen & Hazan 2018). The balanced manifold is {G_p = 0 for all p}.

    Example
    -------
    Conserved by training, zero exactly on balanced networks:

    >>> import numpy as np
    >>> from dlnmanifolds import balanced_factors, invariants
    >>> w1, w2 = np.diag([2.0, 1.0]), np.eye(2)
    >>> invariants([w1, w2])[0]  # W_2^T W_2 - W_1 W_1^T
    array([[-3.,  0.],
           [ 0.,  0.]])
    >>> G = invariants(balanced_factors(np.diag([4.0, 1.0]), 2, rng=0))
    >>> bool(np.allclose(G[0], 0))
    True
    """
    return _invariants(as_weights(weights))


def _imbalance(weights: Layers) -> float:
    gs = _invariants(weights)
    if not gs:
        return 0.0
    return float(max(float(abs(g).max()) for g in gs))


def imbalance(weights: Layers) -> float:
    """max_p max |G_p| entry: the distance-to-balanced used in math.md §10.

    Example
    -------
    >>> import numpy as np
    >>> from dlnmanifolds import balanced_factors, imbalance
    >>> imbalance([np.diag([2.0, 1.0]), np.eye(2)])  # max |G_1| entry = |1 - 4|
    3.0
    >>> bool(imbalance(balanced_factors(np.diag([4.0, 1.0]), 3, rng=0)) < 1e-12)
    True
    """
    return _imbalance(as_weights(weights))


def _dphi(weights: Layers, xi: Layers, before=None, after=None) -> np.ndarray:
    before = _prefix_products(weights) if before is None else before
    after = _suffix_products(weights) if after is None else after
    return sum(after[p + 1] @ xi[p] @ before[p] for p in range(len(weights)))


def dphi(weights: Layers, tangent: Layers) -> np.ndarray:
    """Differential Dphi(W)[xi] = sum_p W_{>p} xi_p W_{<p} (math.md §1).

    Example
    -------
    The differential against a central finite difference of phi:

    >>> import numpy as np
    >>> from dlnmanifolds import dphi, end_to_end
    >>> rng = np.random.default_rng(0)
    >>> W = [rng.standard_normal((3, 3)) for _ in range(3)]
    >>> xi = [rng.standard_normal((3, 3)) for _ in range(3)]
    >>> h = 1e-6
    >>> fd = (end_to_end([w + h * x for w, x in zip(W, xi)])
    ...       - end_to_end([w - h * x for w, x in zip(W, xi)])) / (2 * h)
    >>> bool(np.allclose(dphi(W, xi), fd, atol=1e-8))
    True
    """
    layers = as_weights(weights)
    xi = as_weights(tangent, "tangent")
    _backend.namespace(layers[0], xi[0], names=("weights[0]", "tangent[0]"))
    for p, (w, x) in enumerate(zip(layers, xi)):
        check_same_shape(w, x, f"weights[{p}]", f"tangent[{p}]")
    if len(xi) != len(layers):
        raise ValueError(f"tangent must have {len(layers)} layers like weights, got {len(xi)}")
    return _dphi(layers, xi)


def _dphi_adjoint(weights: Layers, z: np.ndarray, before=None, after=None) -> list[np.ndarray]:
    if after is None:  # reverse accumulation: 3N - 4 products (2N with both lists given)
        if before is None:
            before = [None, weights[0]]
            for w in weights[1:-1]:
                before.append(w @ before[-1])
            return _backpropagate(weights, z, before, release=True)
        return _backpropagate(weights, z, before)
    before = _prefix_products(weights) if before is None else before
    return [_t(after[p + 1]) @ z @ _t(before[p]) for p in range(len(weights))]


def dphi_adjoint(weights: Layers, z: np.ndarray) -> list[np.ndarray]:
    """Adjoint Dphi(W)^*(Z)_p = W_{>p}^T Z W_{<p}^T (math.md §1).

    With Z = E'(X) this is the Euclidean gradient of the lifted loss E∘phi.

    Example
    -------
    Adjointness, <Dphi(W)[xi], Z> = sum_p <xi_p, Dphi(W)^*(Z)_p>:

    >>> import numpy as np
    >>> from dlnmanifolds import dphi, dphi_adjoint
    >>> rng = np.random.default_rng(0)
    >>> W = [rng.standard_normal((4, 3)), rng.standard_normal((2, 4))]
    >>> xi = [rng.standard_normal(w.shape) for w in W]
    >>> Z = rng.standard_normal((2, 3))
    >>> lhs = np.sum(dphi(W, xi) * Z)
    >>> rhs = sum(np.sum(x * a) for x, a in zip(xi, dphi_adjoint(W, Z)))
    >>> bool(np.isclose(lhs, rhs))
    True
    """
    layers = as_weights(weights)
    z = as_matrix(z, "z")
    _backend.namespace(layers[0], z, names=("weights[0]", "z"))
    expected = (layers[-1].shape[0], layers[0].shape[1])
    if z.shape != expected:
        raise ValueError(f"z must have shape {expected} (d_N, d_0), got {z.shape}")
    return _dphi_adjoint(layers, z)


def _generic_operator(weights: Layers, z: np.ndarray) -> np.ndarray:
    """A_W(Z) = Dphi Dphi^*(Z) for any W (math.md §1)."""
    before = _prefix_products(weights)
    after = _suffix_products(weights)
    return sum(
        after[p + 1] @ _t(after[p + 1]) @ z @ _t(before[p]) @ before[p] for p in range(len(weights))
    )


def _directional_suffix(weights: Layers, eta: Layers) -> list[np.ndarray]:
    """D_eta W_{>p} for p = 0..N (sum over q > p of the product with eta in slot q)."""
    n = len(weights)
    after = _suffix_products(weights)
    last = weights[-1]
    out = [
        _backend.zeros(last, last.shape[:-2] + (last.shape[-2], weights[p].shape[-1]))
        for p in range(n)
    ]
    out.append(_backend.zeros(last, tuple(after[n].shape)))
    # Recurrence: D W_{>p} = D W_{>p+1} W_{p+1} + W_{>p+1} eta_{p+1}.
    for p in range(n - 1, -1, -1):
        out[p] = out[p + 1] @ weights[p] + after[p + 1] @ eta[p]
    return out


def _directional_prefix(weights: Layers, eta: Layers) -> list[np.ndarray]:
    """D_eta W_{<p} for p = 1..N+1 (index p-1), the mirror of the suffix case."""
    before = _prefix_products(weights)
    out = [_backend.zeros(weights[0], tuple(before[0].shape))]
    # D W_{<p+1} = W_p D W_{<p} + eta_p W_{<p}.
    for p in range(len(weights)):
        out.append(weights[p] @ out[p] + eta[p] @ before[p])
    return out


def _dphi_adjoint_derivative(weights: Layers, eta: Layers, y: np.ndarray) -> list[np.ndarray]:
    """D_eta(Dphi^*)(Y)_p = (D_eta W_{>p})^T Y W_{<p}^T + W_{>p}^T Y (D_eta W_{<p})^T.

    The curvature term of the lifted Hessian (math.md §4.3) and of the fiber
    Hessian (math.md §5).
    """
    before = _prefix_products(weights)
    after = _suffix_products(weights)
    d_after = _directional_suffix(weights, eta)
    d_before = _directional_prefix(weights, eta)
    return [
        _t(d_after[p + 1]) @ y @ _t(before[p]) + _t(after[p + 1]) @ y @ _t(d_before[p])
        for p in range(len(weights))
    ]


def _second_derivative(weights: Layers, xi: Layers, eta: Layers) -> np.ndarray:
    """D^2phi(W)[xi, eta] = sum_{p != q} product with xi in slot p, eta in slot q."""
    # D^2 phi[xi, eta] = D_eta(Dphi[xi])
    #                  = sum_p D_eta(W_{>p}) xi_p W_{<p} + W_{>p} xi_p D_eta(W_{<p}).
    before = _prefix_products(weights)
    after = _suffix_products(weights)
    d_after = _directional_suffix(weights, eta)
    d_before = _directional_prefix(weights, eta)
    return sum(
        d_after[p + 1] @ xi[p] @ before[p] + after[p + 1] @ xi[p] @ d_before[p]
        for p in range(len(weights))
    )
