"""validated(manifold): identical answers on valid input, a named ValueError on bad
input, and Pymanopt's solvers run on it."""

import numpy as np
import pymanopt
import pytest
from pymanopt.manifolds import Sphere
from pymanopt.optimizers import ConjugateGradient, TrustRegions

from dlnmanifolds.core.balanced import balanced_factors
from dlnmanifolds.pymanopt import (
    BalancedManifold,
    DLNFixedRank,
    DLNMatrices,
    Fiber,
    GroupOrbit,
    validated,
)


def _manifolds():
    rng = np.random.default_rng(0)
    w = [rng.standard_normal((3, 3)) for _ in range(3)]
    balanced = list(balanced_factors(rng.standard_normal((3, 3)), 3, (3, 3, 3, 3), rng=1))
    return {
        "balanced": BalancedManifold((3, 3, 3, 3), rng=1),
        "balanced-depth-1": BalancedManifold((3, 4), rng=1),
        "dln-matrices": DLNMatrices(3, 4, 3, rng=1),
        "dln-fixed-rank": DLNFixedRank(4, 5, 2, 3, rng=1),
        "fiber": Fiber(w, rng=1),
        "orbit": GroupOrbit(balanced, rng=1),
    }


MANIFOLDS = _manifolds()


def _flat(x):
    if isinstance(x, np.ndarray) or np.isscalar(x):
        return np.ravel(x)
    return np.concatenate([_flat(a) for a in x])


@pytest.mark.parametrize("name", sorted(MANIFOLDS))
def test_same_answers_on_valid_input(name):
    plain = MANIFOLDS[name]
    checked = validated(plain)
    x = plain.random_point()
    u, v = plain.random_tangent_vector(x), plain.random_tangent_vector(x)
    assert checked.inner_product(x, u, v) == plain.inner_product(x, u, v)
    assert checked.norm(x, u) == plain.norm(x, u)
    for method in ("retraction", "to_tangent_space"):
        a = getattr(checked, method)(x, u)
        b = getattr(plain, method)(x, u)
        np.testing.assert_array_equal(_flat(a), _flat(b))
    y = plain.retraction(x, 0.1 * u)
    np.testing.assert_array_equal(_flat(checked.transport(x, y, u)),
                                  _flat(plain.transport(x, y, u)))
    assert checked.belongs(x) and checked.dim == plain.dim
    assert checked.point_layout == plain.point_layout


@pytest.mark.parametrize("name", ["balanced", "fiber", "orbit", "dln-matrices"])
def test_bad_points_and_vectors_are_named(name):
    plain = MANIFOLDS[name]
    m = validated(plain)
    x = plain.random_point()
    u = plain.random_tangent_vector(x)
    layers = [x] if isinstance(x, np.ndarray) else list(x)
    nan = [a.copy() for a in layers]
    nan[0][0, 0] = np.nan
    pack = (lambda ls: ls[0]) if isinstance(x, np.ndarray) else (lambda ls: ls)
    with pytest.raises(ValueError, match=r"retraction: argument point(\[0\])? contains 1 NaN"):
        m.retraction(pack(nan), u)
    with pytest.raises(ValueError, match="inner_product: argument tangent_vector_b"):
        m.inner_product(x, u, pack([a[:, :-1] for a in layers]))
    if name != "dln-matrices":  # every matrix is tangent to the open set of full-rank matrices
        off = pack([a + 0.3 for a in layers])
        with pytest.raises(ValueError, match="norm: argument point is not a point of the"):
            m.norm(off, u)
        rng = np.random.default_rng(5)
        g = pack([rng.standard_normal(a.shape) for a in layers])
        projected = plain.projection(x, g)
        pairs = zip(*([g, projected] if len(layers) > 1 else [[g], [projected]]))
        normal = pack([a - b for a, b in pairs])
        with pytest.raises(ValueError, match="transport: argument tangent_vector_a is not tangent"):
            m.transport(x, x, normal)


def test_debugging_a_cost_with_a_wrong_gradient():
    m = validated(BalancedManifold((3, 3, 3), rng=0))

    @pymanopt.function.numpy(m)
    def cost(w1, w2):
        return float(np.sum((w2 @ w1 - np.eye(3)) ** 2))

    @pymanopt.function.numpy(m)
    def gradient(w1, w2):
        r = 2 * (w2 @ w1 - np.eye(3))
        return w2.T @ r, np.full((3, 3), np.nan)

    problem = pymanopt.Problem(m, cost, euclidean_gradient=gradient)
    with pytest.raises(ValueError, match=r"euclidean_gradient\[1\] contains 9 NaN"):
        ConjugateGradient(verbosity=0, max_iterations=5).run(problem)


@pytest.mark.parametrize("name", ["balanced", "dln-matrices", "dln-fixed-rank"])
def test_solvers_run_through_validated(name):
    plain = MANIFOLDS[name]
    m = validated(plain)
    rng = np.random.default_rng(3)
    x0 = plain.random_point()
    if name == "dln-fixed-rank":
        target = rng.standard_normal((4, 2)) @ rng.standard_normal((2, 5))

        @pymanopt.function.numpy(m)
        def cost(u, s, vt):
            return 0.5 * float(np.sum((u @ np.diag(s) @ vt - target) ** 2))

        @pymanopt.function.numpy(m)
        def egrad(u, s, vt):
            r = u @ np.diag(s) @ vt - target
            return r @ vt.T @ np.diag(s), np.diag(u.T @ r @ vt.T), np.diag(s) @ u.T @ r

        problem = pymanopt.Problem(m, cost, euclidean_gradient=egrad)
        optimizer = ConjugateGradient(verbosity=0, max_iterations=300)
        result = optimizer.run(problem, initial_point=x0)
        assert result.cost < 1e-8 * cost(*x0)
        return
    layers = [x0] if isinstance(x0, np.ndarray) else list(x0)
    target = 1.5 * plain.end_to_end(x0) if name == "balanced" else 1.5 * x0

    def end(ws):
        out = ws[0]
        for w in ws[1:]:
            out = w @ out
        return out

    @pymanopt.function.numpy(m)
    def cost(*ws):
        return 0.5 * float(np.sum((end(ws) - target) ** 2))

    @pymanopt.function.numpy(m)
    def egrad(*ws):
        r = end(ws) - target
        if len(ws) == 1:
            return r
        grads = []
        for p in range(len(ws)):
            left = end(ws[p + 1:]) if p + 1 < len(ws) else np.eye(ws[-1].shape[0])
            right = end(ws[:p]) if p > 0 else np.eye(ws[0].shape[1])
            grads.append(left.T @ r @ right.T)
        return grads

    @pymanopt.function.numpy(m)
    def ehess(*args):
        if len(args) == 2:
            return args[1]
        raise NotImplementedError

    kwargs = {"euclidean_hessian": ehess} if name == "dln-matrices" else {}
    problem = pymanopt.Problem(m, cost, euclidean_gradient=egrad, **kwargs)
    optimizer = (TrustRegions if kwargs else ConjugateGradient)(verbosity=0, max_iterations=200)
    result = optimizer.run(problem, initial_point=x0)
    assert result.cost < 1e-8 * cost(*layers)


def test_a_users_manifold_with_check_point_and_refusals():
    class UnitSphere(Sphere):
        def check_point(self, point, atol=1e-10):
            err = abs(float(np.linalg.norm(point)) - 1.0)
            if err > atol:
                raise ValueError(f"point must have norm 1 (off by {err:.3g})")

    m = validated(UnitSphere(3))
    x = np.array([1.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"dist: argument point_b is not a point.*off by 1"):
        m.dist(x, 2 * x)
    with pytest.raises(ValueError, match=r"tangent_vector is not tangent at point.*of \|v\|"):
        m.retraction(x, np.array([1.0, 1.0, 0.0]))
    np.testing.assert_allclose(m.retraction(x, np.array([0.0, 0.1, 0.0])),
                               Sphere(3).retraction(x, np.array([0.0, 0.1, 0.0])))
    with pytest.raises(TypeError, match="check_point"):
        validated(Sphere(3))
    with pytest.raises(TypeError, match="manifold must be a pymanopt Manifold"):
        validated("sphere")
    with pytest.raises(ValueError, match="tangent_rtol"):
        validated(UnitSphere(3), tangent_rtol=-1)
    assert validated(m).manifold is m.manifold  # no double wrapping
