"""Regression ||W A - B||^2: generator, derivatives, least-squares optimum, bad input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds.problems import Regression


@given(seed=st.integers(0, 2**31 - 1))
def test_derivatives_by_finite_differences(seed):
    rng = np.random.default_rng(seed)
    reg = Regression.generate(4, 2, 9, rng=rng, m=3, noise=0.1)
    x = rng.standard_normal((3, 4))
    d = rng.standard_normal((3, 4))
    h = 1e-6
    fd = (reg.loss(x + h * d) - reg.loss(x - h * d)) / (2 * h)
    assert np.sum(reg.gradient(x) * d) == pytest.approx(fd, rel=1e-6, abs=1e-8)
    np.testing.assert_allclose(reg.hessian(x, d), d @ reg.inputs @ reg.inputs.T, rtol=1e-12)
    residual = x @ reg.inputs - reg.targets
    assert reg.loss(x) == pytest.approx(0.5 * np.sum(residual**2), rel=1e-10)
    assert reg.train_mse(x) == pytest.approx(np.mean(residual**2), rel=1e-10)


def test_noiseless_teacher_is_the_minimizer():
    reg = Regression.generate(5, 2, 20, rng=0)
    assert np.linalg.matrix_rank(reg.truth) == 2
    assert np.linalg.norm(reg.truth) == pytest.approx(5.0)
    assert reg.loss(reg.truth) == pytest.approx(0.0, abs=1e-10)
    assert reg.test_mse(reg.truth) == pytest.approx(0.0, abs=1e-25)
    np.testing.assert_allclose(reg.gradient(reg.truth), 0.0, atol=1e-10)
    np.testing.assert_allclose(reg.spectral_start(2), reg.truth, atol=1e-8)


def test_bad_input():
    a, b = np.ones((3, 4)), np.ones((2, 5))
    with pytest.raises(ValueError, match="same number of columns"):
        Regression(a, b)
    with pytest.raises(ValueError, match="finite"):
        Regression(np.array([[np.nan, 1.0]]), np.ones((1, 2)))
    with pytest.raises(ValueError, match="together"):
        Regression(np.ones((3, 4)), np.ones((2, 4)), test_inputs=np.ones((3, 2)))
    with pytest.raises(ValueError, match="test_inputs/test_targets"):
        Regression(np.ones((3, 4)), np.ones((2, 4)), np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="rank must be at most"):
        Regression.generate(3, 4, 10)
    with pytest.raises(ValueError, match="noise"):
        Regression.generate(3, 2, 10, noise=-1.0)
    with pytest.raises(ValueError, match=">= 1"):
        Regression.generate(3, 2, 0)
