"""Local worker processes for ``compare(jobs=k)``: one forked process per run.

Why not ``concurrent.futures.ProcessPoolExecutor``: on Ctrl-C it drains its
queue before returning, one killed worker breaks the whole pool
(``BrokenProcessPool``), and its workers outlive a killed parent. Here

- each run gets a fresh process (``fork``: no pickling of the problem, nothing
  shared between runs, a crash costs one run only);
- a run whose process dies without a result is started once more, then
  reported as an ``error`` record, and the grid goes on;
- ``shutdown()`` cancels the queue and stops the running workers (SIGTERM, then
  SIGKILL after ``grace`` seconds): it returns within a few seconds;
- a worker dies with its parent (``PR_SET_PDEATHSIG`` on Linux, else a thread
  that polls the parent pid), and ignores SIGINT: the parent decides.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from multiprocessing.connection import wait

from dlnmanifolds.compare.run import error_record, run_one
from dlnmanifolds.compare.specs import RunSpec


class TotalTimeExceeded(Exception):
    """The grid's ``max_total_time`` budget is spent."""


def _die_with_parent(parent: int) -> None:
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            if os.getppid() != parent:  # the parent died before prctl
                os._exit(1)
            return
        except (OSError, AttributeError):  # pragma: no cover - exotic libc
            pass

    def watch() -> None:  # pragma: no cover - non-Linux fallback
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


#: Signals held back while a worker is forked (see ``WorkerPool._start``).
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _worker(spec: RunSpec, conn, parent: int, close: Callable[[], None] | None) -> None:
    # Ctrl-C reaches the whole process group; the parent alone handles it (it
    # stops the workers with SIGTERM). Until here both signals were blocked, so a
    # Ctrl-C during start-up is discarded instead of raising inside fork hooks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    _die_with_parent(parent)
    if close is not None:
        close()
    record = run_one(spec)
    conn.send(record)
    conn.close()


def _context():
    methods = multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if "fork" in methods else "spawn")


class WorkerPool:
    """Run specs on at most ``jobs`` processes; ``results()`` yields records as they finish."""

    def __init__(
        self,
        specs: list[RunSpec],
        jobs: int,
        retries: int = 1,
        deadline: float | None = None,
        in_child: Callable[[], None] | None = None,
        grace: float = 2.0,
        guard: Callable[[], contextlib.AbstractContextManager] | None = None,
    ):
        self.queue = deque((spec, 0) for spec in specs)
        self.jobs, self.retries, self.deadline = jobs, retries, deadline
        self.in_child, self.grace = in_child, grace
        # Holds the caller's signal handlers back while a worker is forked and registered
        # (their exceptions would otherwise surface inside the fork hooks and be lost).
        self.guard = guard if guard is not None else contextlib.nullcontext
        self.active: dict = {}  # connection -> (process, spec, attempt)
        self.ctx = _context()
        self.notes: list[str] = []

    def _start(self, spec: RunSpec, attempt: int) -> None:
        receive, send = self.ctx.Pipe(duplex=False)
        proc = self.ctx.Process(
            target=_worker, args=(spec, send, os.getpid(), self.in_child), daemon=True
        )
        # Blocked across the fork and until the child is registered: the child inherits
        # the mask and installs its own handlers before unblocking; the parent's pending
        # Ctrl-C then interrupts it with the child in ``active``, so ``shutdown`` stops it.
        with self.guard():
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
            try:
                proc.start()
                send.close()  # the child holds the writing end: EOF when it dies
                self.active[receive] = (proc, spec, attempt)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def _finish(self, conn) -> dict | None:
        # Kept in ``active`` until joined: a Ctrl-C in between leaves it to ``shutdown``.
        proc, spec, attempt = self.active[conn]
        try:
            record = conn.recv()
        except (EOFError, OSError, Exception):  # died before (or while) sending
            record = None
        proc.join(self.grace)
        if proc.is_alive():
            proc.kill()
            proc.join()
        del self.active[conn]
        conn.close()
        if record is not None:
            return record
        code = proc.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
        if attempt < self.retries:
            self.notes.append(f"worker of {spec.key} died ({how}); run started again")
            self.queue.appendleft((spec, attempt + 1))
            return None
        message = f"worker process died ({how}) on {attempt + 1} attempts"
        self.notes.append(f"{spec.key}: {message}; recorded as error")
        return error_record(spec, message)

    def results(self) -> Iterator[dict]:
        while self.queue or self.active:
            while self.queue and len(self.active) < self.jobs:
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    raise TotalTimeExceeded
                self._start(*self.queue.popleft())
            timeout = 1.0
            if self.deadline is not None:
                left = self.deadline - time.monotonic()
                if left <= 0:
                    raise TotalTimeExceeded
                timeout = min(timeout, left)
            for conn in wait(list(self.active), timeout=timeout):
                record = self._finish(conn)
                if record is not None:
                    yield record

    def shutdown(self) -> None:
        """Cancel queued runs and stop running workers (SIGTERM, SIGKILL after ``grace``)."""
        self.queue.clear()
        procs = [proc for proc, _, _ in self.active.values()]
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
        end = time.monotonic() + self.grace
        for proc in procs:
            proc.join(max(0.0, end - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        for conn in self.active:
            conn.close()
        self.active.clear()
