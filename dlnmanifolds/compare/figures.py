"""Figures that compare solvers: convergence small multiples, time to target, profiles.

* :func:`plot_convergence` — one panel per geometry, one colour per (solver, depth): the
  median over seeds of train MSE (and test MSE when there is ground truth) against
  wall-clock time on a log axis, with the min–max band over seeds.
* :func:`plot_time_to_target` — for each method, the fraction of its runs (all seeds,
  all problems) that have reached the target by time t (an empirical distribution).
* :func:`plot_performance_profile` — Dolan & Moré (2002, Math. Program. 91, Eq. (1)):
  with t_{p,s} the time to target of method s on problem p (a seed, or a problem and a
  seed; inf for a failure) and r_{p,s} = t_{p,s} / min_s t_{p,s}, the profile is
  rho_s(tau) = |{p : r_{p,s} <= tau}| / |P|. rho_s(1) is the fraction of problems s wins,
  rho_s(inf) its success rate.

Every figure works without ground truth (the test-MSE panels are left out) and without
any success (the figure says so). Values are floored at 1e-16 so that exact zeros do
not stretch a log axis.

Example
-------
>>> import tempfile, pathlib
>>> rec = {"geometry": "factors", "depth": 1, "solver": "gd", "seed": 0,
...        "status": "converged", "seconds": 0.2, "test_mse": None,
...        "history": {"iteration": [0, 1], "time": [0.01, 0.2],
...                    "loss": [1.0, 1e-7], "test_mse": [None, None]}}
>>> with tempfile.TemporaryDirectory() as tmp:
...     path = pathlib.Path(tmp) / "curves.png"
...     plot_convergence([rec], path, title="toy")
...     path.read_bytes()[:4] == b"\\x89PNG"
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dlnmanifolds.compare.aggregate import method_name, succeeded

FLOOR = 1e-16


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _methods(records: Sequence[dict]) -> list[tuple]:
    return list(dict.fromkeys((r["geometry"], r["depth"], r["solver"]) for r in records))


def _label(key: tuple) -> str:
    return method_name({"geometry": key[0], "depth": key[1], "solver": key[2]})


def _style(keys: Sequence[tuple]) -> dict:
    """A colour per (solver, depth) and a line style per geometry, stable across figures."""
    plt = _pyplot()
    pairs = list(dict.fromkeys((k[2], k[1]) for k in keys))
    cmap = plt.get_cmap("tab10" if len(pairs) <= 10 else "tab20")
    colour = {p: cmap(i % cmap.N) for i, p in enumerate(pairs)}
    geometries = list(dict.fromkeys(k[0] for k in keys))
    dashes = ["-", "--", "-.", ":"]
    style = {g: dashes[i % len(dashes)] for i, g in enumerate(geometries)}
    return {k: {"color": colour[(k[2], k[1])], "ls": style[k[0]]} for k in keys}


def _method_style(keys: Sequence[tuple]) -> dict:
    """A colour per method (solid lines; dashes only past ten methods)."""
    plt = _pyplot()
    cmap = plt.get_cmap("tab10")
    dashes = ["-", "--", ":", "-."]
    return {k: {"color": cmap(i % 10), "ls": dashes[(i // 10) % 4]} for i, k in enumerate(keys)}


def _finite(values) -> np.ndarray:
    out = np.array([np.nan if v is None else float(v) for v in values], dtype=float)
    out[~np.isfinite(out)] = np.nan
    return out


def _on_grid(times, values, grid) -> np.ndarray:
    """The value a run shows at each grid time: its last record at or before t (held
    after the run stopped; NaN before its first record)."""
    times = np.asarray(times, dtype=float)
    idx = np.searchsorted(times, grid, side="right") - 1
    out = np.where(idx >= 0, values[np.clip(idx, 0, None)], np.nan)
    return out


class _quiet:
    """Silence numpy's 'All-NaN slice' warnings inside a block."""

    def __enter__(self):
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._ctx.__exit__(*exc)


def _has_truth(records: Sequence[dict]) -> bool:
    for r in records:
        h = r.get("history") or {}
        if np.any(np.isfinite(_finite(h.get("test_mse", [])))):
            return True
    return False


def plot_convergence(records: Sequence[dict], path: Path, title: str = "") -> None:
    """Small multiples: a column per geometry, rows train MSE (and test MSE) vs time.

    Median over seeds (line) and min–max over seeds (band) on a common log time grid;
    each run holds its last value after it stopped.
    """
    plt = _pyplot()
    keys = _methods(records)
    geometries = list(dict.fromkeys(k[0] for k in keys))
    quantities = [("loss", "train MSE")]
    if _has_truth(records):
        quantities.append(("test_mse", "test MSE"))
    times = [
        t
        for r in records
        for t in (r.get("history") or {}).get("time", [])
        if t is not None and t > 0
    ]
    lo = min(times) if times else 1e-3
    hi = max(times) if times else 1.0
    grid = np.geomspace(lo, max(hi, lo * 10), 200)
    ncol = len(geometries)
    fig, axes = plt.subplots(
        len(quantities),
        ncol,
        figsize=(3.6 * ncol + 1.0, 3.0 * len(quantities) + 1.2),
        squeeze=False,
        sharex=True,
        sharey="row",
    )
    style = _style(keys)
    for col, geometry in enumerate(geometries):
        for row, (quantity, name) in enumerate(quantities):
            ax = axes[row, col]
            for key in (k for k in keys if k[0] == geometry):
                runs = [r for r in records if (r["geometry"], r["depth"], r["solver"]) == key]
                curves = []
                for r in runs:
                    h = r.get("history") or {}
                    t = _finite(h.get("time", []))
                    y = _finite(h.get(quantity, []))
                    ok = np.isfinite(t)
                    if not np.any(ok):
                        continue
                    curves.append(_on_grid(t[ok], np.maximum(y[ok], FLOOR), grid))
                if not curves:
                    continue
                stack = np.array(curves)
                seen = np.any(np.isfinite(stack), axis=0)
                if not np.any(seen):
                    continue
                with np.errstate(all="ignore"), _quiet():
                    med = np.nanmedian(stack[:, seen], axis=0)
                    low = np.nanmin(stack[:, seen], axis=0)
                    high = np.nanmax(stack[:, seen], axis=0)
                s = style[key]
                label = f"{key[2]} N={key[1]}" + (f" ({len(curves)} seeds)" if row == 0 else "")
                ax.plot(grid[seen], med, color=s["color"], lw=1.8, label=label)
                if len(curves) > 1:
                    ax.fill_between(grid[seen], low, high, color=s["color"], alpha=0.18, lw=0)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.grid(True, which="major", alpha=0.3)
            if row == 0:
                ax.set_title(geometry, fontsize=11)
            if row == len(quantities) - 1:
                ax.set_xlabel("wall-clock seconds (log)")
            if col == 0:
                ax.set_ylabel(f"{name} (median, min-max band)")
            if row == 0 and ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7, loc="lower left", frameon=False)
    note = "" if len(quantities) == 2 else "  (no ground truth: test MSE not available)"
    fig.suptitle((title or "convergence") + note, fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _problem_key(rec: dict) -> tuple:
    return (rec.get("problem", ""), rec["seed"])


def times_to_target(
    records: Sequence[dict], test_target: float | None = None
) -> tuple[list[tuple], list[tuple], np.ndarray]:
    """(methods, problems, T) with T[p, s] the time to target of method s on problem p
    (inf: not reached, or the run is missing)."""
    keys = _methods(records)
    problems = list(dict.fromkeys(_problem_key(r) for r in records))
    table = np.full((len(problems), len(keys)), math.inf)
    pindex = {p: i for i, p in enumerate(problems)}
    kindex = {k: j for j, k in enumerate(keys)}
    for r in records:
        if succeeded(r, test_target) and r.get("seconds") is not None:
            i = pindex[_problem_key(r)]
            j = kindex[(r["geometry"], r["depth"], r["solver"])]
            table[i, j] = float(r["seconds"])
    return keys, problems, table


def performance_profile(table: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """rho[s, k] = fraction of problems p with t[p, s] / min_s' t[p, s'] <= taus[k].

    Problems that no method solved count as failures for every method (their ratio is
    inf), as in Dolan & Moré (2002).

    >>> t = np.array([[1.0, 2.0], [3.0, np.inf]])
    >>> performance_profile(t, np.array([1.0, 2.0, 10.0])).tolist()
    [[1.0, 1.0, 1.0], [0.0, 0.5, 0.5]]
    """
    best = np.min(table, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(np.isfinite(best), table / best, math.inf)
    return np.array([[np.mean(ratio[:, s] <= tau) for tau in taus] for s in range(table.shape[1])])


def _legend_outside(fig, ax, n):
    if n:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)


def _never(keys, solved) -> str:
    import textwrap

    missing = [_label(k) for k, ok in zip(keys, solved) if not ok]
    if not missing:
        return ""
    return textwrap.fill("never reached the target: " + "; ".join(missing), 150)


def _finish(fig, ax, title: str, never: str, n_legend: int) -> None:
    _legend_outside(fig, ax, n_legend)
    lines = never.count("\n") + 1 if never else 0
    if never:
        fig.text(0.01, 0.01, never, fontsize=7, ha="left", va="bottom")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.03 * lines + (0.01 if lines else 0), 1, 1))


def plot_performance_profile(
    records: Sequence[dict], path: Path, title: str = "", test_target: float | None = None
) -> None:
    """Dolan–Moré performance profile of time to target (only methods that ever succeed
    are drawn; the others are named under the axes)."""
    plt = _pyplot()
    keys, problems, table = times_to_target(records, test_target)
    solved = np.isfinite(table).any(axis=0)
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    finite = table[np.isfinite(table)]
    if finite.size:
        best = np.min(table, axis=1)
        ratios = (table / best[:, None])[np.isfinite(table / best[:, None])]
        top = max(2.0, float(np.max(ratios)) * 1.5)
        taus = np.geomspace(1.0, top, 400)
        rho = performance_profile(table, taus)
        style = _method_style([k for k, ok in zip(keys, solved) if ok])
        for j, key in enumerate(keys):
            if solved[j]:
                ax.step(taus, rho[j], where="post", lw=1.8, label=_label(key), **style[key])
        ax.set_xscale("log", base=2)
        ax.set_xlim(1.0, top)
    _finish_fraction_plot(
        plt,
        fig,
        ax,
        path,
        keys,
        solved,
        xlabel="tau: time to target / best time on the same problem (log2)",
        ylabel=f"fraction of the {len(problems)} problems (seeds)",
        heading="performance profile of time to target (Dolan & Moré 2002)",
        title=title,
    )


def _finish_fraction_plot(plt, fig, ax, path, keys, solved, xlabel, ylabel, heading, title):
    """Axes, title and file of the two fraction-of-runs figures (profile, time to target)."""
    if not solved.any():
        ax.text(
            0.5, 0.5, "no run reached the target", ha="center", va="center", transform=ax.transAxes
        )
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    _finish(
        fig, ax, heading + (f"\n{title}" if title else ""), _never(keys, solved), int(solved.sum())
    )
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_time_to_target(
    records: Sequence[dict], path: Path, title: str = "", test_target: float | None = None
) -> None:
    """Fraction of runs (all seeds and problems) that reached the target by time t."""
    plt = _pyplot()
    keys, problems, table = times_to_target(records, test_target)
    solved = np.isfinite(table).any(axis=0)
    fig, ax = plt.subplots(figsize=(8.5, 4.2))
    finite = table[np.isfinite(table)]
    if finite.size:
        lo, hi = float(np.min(finite)), float(np.max(finite))
        grid = np.geomspace(lo / 1.5, hi * 1.5, 400)
        style = _method_style([k for k, ok in zip(keys, solved) if ok])
        for j, key in enumerate(keys):
            if solved[j]:
                frac = [np.mean(table[:, j] <= t) for t in grid]
                ax.step(grid, frac, where="post", lw=1.8, label=_label(key), **style[key])
        ax.set_xscale("log")
    _finish_fraction_plot(
        plt,
        fig,
        ax,
        path,
        keys,
        solved,
        xlabel="wall-clock seconds (log)",
        ylabel=f"fraction of runs at target ({len(problems)} per method)",
        heading="time to target: fraction of seeds done by time t",
        title=title,
    )


#: The figures a comparison writes: file name -> (function, what it shows).
FIGURES = {
    "curves.png": (plot_convergence, "convergence: median and min-max over seeds"),
    "time_to_target.png": (plot_time_to_target, "time to target over seeds"),
    "profile.png": (plot_performance_profile, "performance profile (Dolan & Moré 2002)"),
}


def write_figures(
    records: Sequence[dict],
    directory: Path,
    title: str = "",
    test_target: float | None = None,
) -> list[str]:
    """Write every figure of :data:`FIGURES` into ``directory``; return the file names."""
    directory = Path(directory)
    names = []
    for name, (function, _) in FIGURES.items():
        if function is plot_convergence:
            function(records, directory / name, title=title)
        else:
            function(records, directory / name, title=title, test_target=test_target)
        names.append(name)
    return names
