"""Timing helpers for the benchmarks: interleaved repeats, medians, ratios."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

# Single-threaded BLAS unless a benchmark measures threading (set before numpy loads).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def median_time(fn: Callable[[], object], repeats: int = 15, inner: int = 1) -> float:
    """Median wall time of ``fn`` in seconds over ``repeats`` runs (after one warm-up)."""
    fn()
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


def paired_ratio(
    fn_a: Callable[[], object], fn_b: Callable[[], object], repeats: int = 15
) -> tuple[float, float, float]:
    """Median times of A and B measured alternately (A B A B ...) and the median of
    the pairwise ratios A/B, robust to drift on a shared machine."""
    fn_a()
    fn_b()
    times_a, times_b, ratios = [], [], []
    for _ in range(repeats):
        start = time.perf_counter()
        fn_a()
        mid = time.perf_counter()
        fn_b()
        end = time.perf_counter()
        times_a.append(mid - start)
        times_b.append(end - mid)
        ratios.append((mid - start) / (end - mid))
    return statistics.median(times_a), statistics.median(times_b), statistics.median(ratios)
