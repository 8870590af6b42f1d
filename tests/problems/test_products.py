"""The depth-N gradient on ``factors`` (the Arora GD baseline) costs 3 (N - 1) matrix products."""

import numpy as np
import pytest

from dlnmanifolds import end_to_end
from dlnmanifolds.core.network import dphi_adjoint
from dlnmanifolds.problems import MatrixCompletion, make_problem


class Counting(np.ndarray):
    """An array that counts every matrix product it takes part in."""

    products = 0

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        if ufunc is np.matmul:
            Counting.products += 1
        inputs = [np.asarray(a) if isinstance(a, Counting) else a for a in inputs]
        out = getattr(ufunc, method)(*inputs, **kwargs)
        return out.view(Counting) if isinstance(out, np.ndarray) else out


@pytest.mark.parametrize("depth", [1, 2, 3, 5])
def test_factors_gradient_products_and_value(depth):
    mc = MatrixCompletion.generate(7, 2, 30, rng=0, m=6)
    gp = make_problem(mc, "factors", depth, init_scale=1.0, rng=1)
    layers = [np.asarray(w) for w in gp.initial_point]
    Counting.products = 0
    grads = gp.problem.euclidean_gradient([w.view(Counting) for w in layers])
    grads = [grads] if isinstance(grads, np.ndarray) else grads
    # the forward pass alone takes N - 1; the old path took 5 N - 1 (14 at N = 3)
    assert depth - 1 <= Counting.products <= 3 * (depth - 1) + 2
    # Same values as the reference adjoint Dphi^*(E'(X)) (math.md §1).
    x = end_to_end(layers)
    expected = dphi_adjoint(layers, (2.0 / mc.count) * mc.residual_gradient(x))
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(np.asarray(g), e, rtol=1e-12, atol=1e-15)
