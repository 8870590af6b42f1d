"""Readers of observed entries: (row, col, value) triplet text files and Matrix Market.

Every error names the file and, for text files, the line (1-based), so that a user
can fix the data; nothing is read past the first bad line.
"""

from __future__ import annotations

import os
import re

import numpy as np

_SPLIT = re.compile(r"[,\t ;]+")


def _fail(path, message: str, line: int | None = None):
    where = f"{os.fspath(path)}" + (f", line {line}" if line is not None else "")
    raise ValueError(f"{where}: {message}")


def _index(text: str, path, line: int, what: str) -> int:
    try:
        value = float(text)
    except ValueError:
        _fail(path, f"{what} index {text!r} is not an integer", line)
    if not np.isfinite(value) or value != round(value):
        _fail(path, f"{what} index {text!r} is not an integer", line)
    return int(value)


def _read_text(path):
    rows, cols, values, lines = [], [], [], []
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = True
        for number, raw in enumerate(handle, start=1):
            text = raw.strip()
            if not text or text[0] in "#%":
                continue
            fields = [f for f in _SPLIT.split(text) if f]
            if first:
                first = False
                try:
                    [float(f) for f in fields[:3]]
                except ValueError:
                    continue  # a header line such as "user,item,rating"
            if len(fields) < 3:
                _fail(
                    path,
                    f"expected at least 3 columns (row, col, value), got {len(fields)}: "
                    f"{text[:60]!r}",
                    number,
                )
            r = _index(fields[0], path, number, "row")
            c = _index(fields[1], path, number, "column")
            try:
                v = float(fields[2])
            except ValueError:
                _fail(path, f"value {fields[2]!r} is not a number", number)
            if not np.isfinite(v):
                _fail(path, f"value {fields[2]!r} is not finite", number)
            rows.append(r)
            cols.append(c)
            values.append(v)
            lines.append(number)
    if not rows:
        _fail(path, "no (row, col, value) entries found (the file is empty)")
    return (
        np.array(rows, dtype=np.int64),
        np.array(cols, dtype=np.int64),
        np.array(values, dtype=np.float64),
        np.array(lines, dtype=np.int64),
    )


def _read_matrix_market(path):
    import scipy.io

    try:
        matrix = scipy.io.mmread(path, spmatrix=False)
    except Exception as exc:  # scipy raises ValueError/OSError/IndexError here
        _fail(path, f"not a readable Matrix Market file ({type(exc).__name__}: {exc})")
    if not hasattr(matrix, "tocoo"):
        _fail(
            path,
            "a dense (array) Matrix Market file has no unobserved entries; "
            "use the coordinate format",
        )
    coo = matrix.tocoo()
    if np.iscomplexobj(coo.data):
        _fail(path, "complex values are not supported")
    if coo.nnz == 0:
        _fail(path, "no entries found (the file is empty)")
    rows = np.asarray(coo.row, dtype=np.int64)
    cols = np.asarray(coo.col, dtype=np.int64)
    values = np.asarray(coo.data, dtype=np.float64)
    # Matrix Market has a header (comments + size line) before the entries.
    return rows, cols, values, None, tuple(int(d) for d in coo.shape)


def read_entries(path, one_based=None, shape=None):
    """(rows, cols, values, shape) of a triplet or ``.mtx`` file, validated, 0-based."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    if not os.path.isfile(path):
        raise ValueError(f"{os.fspath(path)}: no such file")
    if one_based is not None and not isinstance(one_based, bool):
        raise TypeError(f"one_based must be True, False or None, got {one_based!r}")
    if os.fspath(path).lower().endswith(".mtx"):
        rows, cols, values, lines, file_shape = _read_matrix_market(path)
    else:
        rows, cols, values, lines = _read_text(path)
        file_shape = None
        low = int(min(rows.min(), cols.min()))
        if one_based is None:
            one_based = low >= 1
        if one_based:
            rows, cols = rows - 1, cols - 1
    bad = np.flatnonzero((rows < 0) | (cols < 0))
    if bad.size:
        k = int(bad[0])
        hint = " (the file was read as 1-based: is it 0-based?)" if one_based else ""
        _fail(
            path,
            f"negative index ({rows[k]}, {cols[k]}) after conversion{hint}",
            None if lines is None else int(lines[k]),
        )
    if not np.all(np.isfinite(values)):
        k = int(np.flatnonzero(~np.isfinite(values))[0])
        _fail(
            path,
            f"value {values[k]} at ({rows[k]}, {cols[k]}) is not finite",
            None if lines is None else int(lines[k]),
        )
    if shape is None:
        shape = file_shape or (int(rows.max()) + 1, int(cols.max()) + 1)
    else:
        if not isinstance(shape, (tuple, list)) or len(shape) != 2:
            raise TypeError(f"shape must be a pair (m, n), got {shape!r}")
        shape = (int(shape[0]), int(shape[1]))
        for name, idx, size in (("row", rows, shape[0]), ("column", cols, shape[1])):
            out = np.flatnonzero(idx >= size)
            if out.size:
                k = int(out[0])
                _fail(
                    path,
                    f"{name} index {idx[k]} is out of range for shape {shape}",
                    None if lines is None else int(lines[k]),
                )
    flat = rows * shape[1] + cols
    order = np.argsort(flat, kind="stable")
    same = np.flatnonzero(flat[order][1:] == flat[order][:-1])
    if same.size:
        a, b = int(order[same[0]]), int(order[same[0] + 1])
        where = "" if lines is None else f" on lines {int(lines[a])} and {int(lines[b])}"
        _fail(path, f"entry ({rows[a]}, {cols[a]}) appears twice{where}", None)
    return rows, cols, values, shape
