"""MatrixCompletion: the Arora et al. (2019) generator, loss, derivatives, loaders, bad input."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlnmanifolds.problems import MatrixCompletion


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(4, 15), rank=st.integers(1, 3),
       frac=st.floats(0.1, 1.0))
def test_generator_follows_arora(seed, n, rank, frac):
    k = max(1, int(frac * n * n))
    mc = MatrixCompletion.generate(n, rank, k, rng=seed)
    assert mc.truth.shape == (n, n)
    assert np.linalg.norm(mc.truth) == pytest.approx(n, rel=1e-12)  # ||X*||_F = n
    assert np.linalg.matrix_rank(mc.truth) == rank
    assert mc.count == k
    assert len(set(zip(mc.rows.tolist(), mc.cols.tolist()))) == k  # no duplicates
    np.testing.assert_allclose(mc.values, mc.truth[mc.rows, mc.cols], rtol=0, atol=1e-13)
    again = MatrixCompletion.generate(n, rank, k, rng=seed)
    np.testing.assert_array_equal(again.truth, mc.truth)
    np.testing.assert_array_equal(again.rows, mc.rows)


def test_observed_set_is_uniform():
    """Each entry of a 4 x 4 matrix is observed with probability k / 16."""
    hits = np.zeros((4, 4))
    for seed in range(800):
        hits += MatrixCompletion.generate(4, 1, 4, rng=seed).mask
    freq = hits / 800
    # Binomial(800, 1/4): standard deviation 0.015; allow 5 of them.
    assert np.max(np.abs(freq - 0.25)) < 5 * np.sqrt(0.25 * 0.75 / 800)


def test_rectangular_generator():
    mc = MatrixCompletion.generate(6, 2, 20, rng=1, m=4)
    assert mc.shape == (4, 6)
    assert np.linalg.norm(mc.truth) == pytest.approx(np.sqrt(24))


@given(seed=st.integers(0, 2**31 - 1))
def test_loss_gradient_hessian(seed):
    rng = np.random.default_rng(seed)
    mc = MatrixCompletion.generate(5, 2, 12, rng=rng, m=4)
    x = rng.standard_normal((4, 5))
    d = rng.standard_normal((4, 5))
    h = 1e-6
    fd = (mc.loss(x + h * d) - mc.loss(x - h * d)) / (2 * h)
    assert np.sum(mc.gradient(x) * d) == pytest.approx(fd, rel=1e-6, abs=1e-8)
    fd2 = (mc.gradient(x + h * d) - mc.gradient(x - h * d)) / (2 * h)
    np.testing.assert_allclose(mc.hessian(x, d), fd2, atol=1e-7)
    # Loss = 1/2 sum over Omega, train MSE = mean over Omega.
    r = x[mc.rows, mc.cols] - mc.values
    assert mc.loss(x) == pytest.approx(0.5 * np.sum(r**2))
    assert mc.train_mse(x) == pytest.approx(np.mean(r**2))
    assert mc.loss(mc.truth) == pytest.approx(0.0, abs=1e-28)
    assert mc.loss(mc.truth_factors) == 0.0  # values are gathered from the factored X*
    assert mc.test_mse(mc.truth) == pytest.approx(0.0, abs=1e-28)
    assert mc.relative_error(mc.truth) == pytest.approx(0.0, abs=1e-14)


def test_test_error_uses_unobserved_entries_only(rng):
    mc = MatrixCompletion.generate(6, 2, 15, rng=3)
    x = mc.truth.copy()
    x[mc.rows, mc.cols] += 5.0  # change observed entries only
    assert mc.test_mse(x) == pytest.approx(0.0, abs=1e-28)
    y = mc.truth + 1.0
    assert mc.test_mse(y) == pytest.approx(1.0)
    assert mc.relative_error(y) == pytest.approx(np.sqrt(36) / np.linalg.norm(mc.truth))
    metrics = mc.metrics(y)
    assert set(metrics) == {"train_mse", "test_mse", "relative_error"}


def test_triplets_and_dense_loaders_agree():
    dense = np.array([[1.0, np.nan, 2.0], [np.nan, 3.0, np.nan]])
    a = MatrixCompletion.from_dense(dense)
    b = MatrixCompletion.from_triplets([0, 0, 1], [0, 2, 1], [1.0, 2.0, 3.0])
    assert a.shape == b.shape == (2, 3)
    x = np.arange(6.0).reshape(2, 3)
    # residuals at (0,0), (0,2), (1,1): 0 - 1, 2 - 2, 4 - 3
    assert a.loss(x) == b.loss(x) == pytest.approx(1.0)
    np.testing.assert_array_equal(a.gradient(x), b.gradient(x))
    assert np.isnan(a.test_mse(x)) and np.isnan(a.relative_error(x))  # no truth known
    c = MatrixCompletion.from_triplets([0], [0], [1.0], shape=(3, 4))
    assert c.shape == (3, 4)


def test_spectral_start_is_rank_r_and_close_with_many_observations():
    mc = MatrixCompletion.generate(30, 2, 600, rng=0)
    start = mc.spectral_start(2)
    assert np.linalg.matrix_rank(start) == 2
    assert mc.relative_error(start) < 0.7
    with pytest.raises(ValueError, match="rank"):
        mc.spectral_start(31)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: MatrixCompletion.generate(5, 6, 10), ValueError, "rank must be at most"),
        (lambda: MatrixCompletion.generate(5, 2, 0), ValueError, ">= 1"),
        (lambda: MatrixCompletion.generate(5, 2, 26), ValueError, "at most m \\* n"),
        (lambda: MatrixCompletion.generate(5, 0, 3), ValueError, "rank"),
        (lambda: MatrixCompletion.generate(5.5, 2, 3), TypeError, "n must be an integer"),
        (lambda: MatrixCompletion([0, 5], [0, 1], [1.0, 2.0], (5, 5)), ValueError,
         "rows must lie in"),
        (lambda: MatrixCompletion([0, 1], [0, -1], [1.0, 2.0], (5, 5)), ValueError,
         "cols must lie in"),
        (lambda: MatrixCompletion([1, 1], [2, 2], [1.0, 2.0], (5, 5)), ValueError,
         "entry \\(1, 2\\) is observed 2 times"),
        (lambda: MatrixCompletion([0, 1], [0, 1], [1.0, np.nan], (5, 5)), ValueError,
         "finite"),
        (lambda: MatrixCompletion([], [], [], (5, 5)), ValueError, "zero observations"),
        (lambda: MatrixCompletion([0, 1], [0], [1.0, 2.0], (5, 5)), ValueError, "same length"),
        (lambda: MatrixCompletion([0.5], [0], [1.0], (5, 5)), TypeError, "integer indices"),
        (lambda: MatrixCompletion([0], [0], [1.0], (5, 5), truth=np.ones((4, 4))), ValueError,
         "truth must have shape"),
        (lambda: MatrixCompletion.from_dense(np.full((3, 3), np.nan)), ValueError,
         "zero observations"),
        (lambda: MatrixCompletion.from_dense(np.array([[1.0, np.inf]])), ValueError, "inf"),
        (lambda: MatrixCompletion.from_triplets([], [], []), ValueError, "zero observations"),
    ],
)
def test_bad_input(call, error, match):
    with pytest.raises(error, match=match):
        call()
