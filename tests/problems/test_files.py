"""MatrixCompletion.from_file (triplets, Matrix Market) and split: data and bad input."""

import numpy as np
import pytest
import scipy.io
import scipy.sparse

from dlnmanifolds.problems import MatrixCompletion


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "name, text",
    [
        ("a.csv", "row,col,value\n0,0,1.5\n2,1,-2\n1,3,4e-1\n"),
        ("a.tsv", "0\t0\t1.5\n2\t1\t-2\n\n1\t3\t0.4\n"),
        ("a.txt", "# comment\n0 0 1.5 99\n2 1 -2 99\n1  3 0.4 99\n"),
        ("u.data", "1\t1\t1.5\t881250949\n3\t2\t-2\t881250949\n2\t4\t0.4\t881250949\n"),
    ],
)
def test_triplet_files(tmp_path, name, text):
    mc = MatrixCompletion.from_file(write(tmp_path, name, text))
    assert mc.shape == (3, 4)
    entries = {(int(r), int(c)): v for r, c, v in zip(mc.rows, mc.cols, mc.values)}
    assert entries == {(0, 0): 1.5, (2, 1): -2.0, (1, 3): 0.4}


def test_one_based_flag_and_shape(tmp_path):
    path = write(tmp_path, "b.txt", "1 1 1.0\n2 2 2.0\n")
    assert MatrixCompletion.from_file(path).shape == (2, 2)  # detected 1-based
    zero = MatrixCompletion.from_file(path, one_based=False, shape=(3, 3))
    assert zero.shape == (3, 3) and set(zip(zero.rows, zero.cols)) == {(1, 1), (2, 2)}
    with pytest.raises(ValueError, match=r"b.txt, line 2: row index 2 is out of range"):
        MatrixCompletion.from_file(path, one_based=False, shape=(2, 3))
    with pytest.raises(ValueError, match=r"line 1: negative index.*read as 1-based"):
        MatrixCompletion.from_file(write(tmp_path, "c.txt", "0 1 1.0\n"), one_based=True)


def test_matrix_market(tmp_path):
    matrix = scipy.sparse.coo_matrix(([1.0, -3.0, 2.5], ([0, 4, 2], [1, 0, 5])), shape=(6, 7))
    path = tmp_path / "m.mtx"
    scipy.io.mmwrite(path, matrix)
    mc = MatrixCompletion.from_file(path)
    assert mc.shape == (6, 7)
    np.testing.assert_array_equal(mc.mask, (matrix.toarray() != 0).astype(float))
    np.testing.assert_array_equal(mc.residual(np.zeros((6, 7))), -mc.values)


@pytest.mark.parametrize(
    "text, match",
    [
        ("", r"e.txt: no \(row, col, value\) entries found"),
        ("# only a comment\n\n", r"e.txt: no \(row, col, value\) entries"),
        ("0 0 1\n1 2\n", r"e.txt, line 2: expected at least 3 columns"),
        ("0 0 1\n1 1 nan\n", r"e.txt, line 2: value 'nan' is not finite"),
        ("0 0 1\n1 1 inf\n", r"e.txt, line 2: value 'inf' is not finite"),
        ("0 0 1\n1 1 x\n", r"e.txt, line 2: value 'x' is not a number"),
        ("0 0 1\n1.5 1 2\n", r"e.txt, line 2: row index '1.5' is not an integer"),
        ("0 0 1\n2 3 2\n0 0 5\n", r"e.txt: entry \(0, 0\) appears twice on lines 1 and 3"),
        ("0 0 1\n-1 3 2\n", r"e.txt, line 2: negative index"),
    ],
)
def test_bad_files_name_file_and_line(tmp_path, text, match):
    with pytest.raises(ValueError, match=match):
        MatrixCompletion.from_file(write(tmp_path, "e.txt", text))


def test_bad_paths(tmp_path):
    with pytest.raises(ValueError, match="no such file"):
        MatrixCompletion.from_file(tmp_path / "missing.csv")
    with pytest.raises(TypeError, match="path"):
        MatrixCompletion.from_file(3)
    with pytest.raises(ValueError, match="bad.mtx: not a readable Matrix Market"):
        MatrixCompletion.from_file(write(tmp_path, "bad.mtx", "hello\n"))


def test_split_holds_out_a_disjoint_test_set():
    mc = MatrixCompletion.generate(20, 2, 200, rng=0)
    train, test = mc.split(0.25, rng=1)
    assert train.count == 150 and test.count == 50
    pairs = lambda p: set(zip(p.rows.tolist(), p.cols.tolist()))  # noqa: E731
    assert pairs(train) | pairs(test) == pairs(mc) and not pairs(train) & pairs(test)
    x = np.random.default_rng(0).standard_normal((20, 20))
    expected = np.mean((x[test.rows, test.cols] - test.values) ** 2)
    assert train.test_mse(x) == pytest.approx(expected, rel=1e-12)
    again, _ = mc.split(0.25, rng=1)
    np.testing.assert_array_equal(again.rows, train.rows)
    assert test.test_mse(mc.truth) == pytest.approx(0.0, abs=1e-25)  # truth is kept


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5, float("nan"), float("inf")])
def test_split_rejects_fractions_outside_the_unit_interval(fraction):
    mc = MatrixCompletion.generate(5, 1, 10, rng=0)
    with pytest.raises(ValueError, match="fraction"):
        mc.split(fraction, rng=0)
    with pytest.raises(ValueError, match="empty train or test"):
        mc.split(0.01, rng=0)
    with pytest.raises(TypeError, match="fraction"):
        mc.split("0.5", rng=0)


def test_heldout_must_be_disjoint():
    with pytest.raises(ValueError, match=r"disjoint.*\(0, 1\) is in both"):
        MatrixCompletion([0, 1], [1, 1], [1.0, 2.0], (3, 3), heldout=([0], [1], [3.0]))
