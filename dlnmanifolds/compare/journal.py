"""The output folder of a comparison as a journal: a lock and an append-only log.

``runs.jsonl`` holds one JSON record per finished run, one per line. Each record
is written with a single ``write`` of the whole line, flushed and ``fsync``-ed
before the next run is reported, so a crash (``kill -9``, power loss) loses at
most the line being written: a *torn* last line without its newline.
``repair`` finds such a line (and any other unreadable line or duplicated key),
keeps the original file as ``runs.jsonl.corrupt`` and rewrites the log with the
complete records only, first record of each key kept, so that one
``--resume`` always completes the grid with exactly one record per run.

``FolderLock`` makes the folder single-writer: ``fcntl.flock`` on
``DIR/.lock`` (released by the kernel when its holder dies, so a stale lock of
a dead process is simply taken over) and the holder's pid written inside it,
so that a second process can say who holds the folder.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

LOCK_FILE = ".lock"


class FolderLockedError(RuntimeError):
    """Another live process holds the output folder."""


class FolderLock:
    """An exclusive, non-blocking lock on a folder (``with FolderLock(path): ...``)."""

    def __init__(self, folder: Path):
        self.path = Path(folder) / LOCK_FILE
        self.fd: int | None = None

    def acquire(self) -> FolderLock:
        import fcntl

        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise FolderLockedError(
                f"output folder {self.path.parent} is in use by another dlnmanifolds "
                f"compare (pid {holder}; lock file {self.path}); wait for it to finish "
                f"or choose another --output"
            ) from None
        # The lock is ours (a stale file of a dead pid is taken over): record our pid.
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        os.fsync(fd)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            os.close(fd)  # closing the last descriptor releases the flock

    def close_in_child(self) -> None:
        """In a forked worker: drop the inherited descriptor (the parent keeps the lock)."""
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def read_journal(path: Path) -> tuple[list[dict], list[int], bool]:
    """(records, numbers of unreadable lines, whether the file ends without a newline)."""
    data = Path(path).read_bytes() if Path(path).exists() else b""
    records, bad = [], []
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if not raw.strip():
            continue
        try:
            rec = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            bad.append(number)
            continue
        if not isinstance(rec, dict) or "key" not in rec:
            bad.append(number)
            continue
        records.append(rec)
    return records, bad, bool(data) and not data.endswith(b"\n")


def _unique(records: list[dict]) -> list[dict]:
    seen, out = set(), []
    for rec in records:
        if rec["key"] not in seen:
            seen.add(rec["key"])
            out.append(rec)
    return out


def repair(path: Path) -> tuple[list[dict], str | None]:
    """Make ``path`` a clean journal; return (its records, a note of what was repaired).

    A torn or unreadable line is dropped and duplicated keys keep their first
    record; the original file is kept as ``<path>.corrupt`` (``.corrupt.1``, ...).
    """
    path = Path(path)
    records, bad, torn = read_journal(path)
    unique = _unique(records)
    if not bad and len(unique) == len(records):
        if torn:  # a complete last record without its newline: finish the line
            with open(path, "ab") as handle:
                handle.write(b"\n")
                handle.flush()
                os.fsync(handle.fileno())
        return records, None
    backup = path.with_name(path.name + ".corrupt")
    k = 0
    while backup.exists():
        k += 1
        backup = path.with_name(f"{path.name}.corrupt.{k}")
    shutil.copy2(path, backup)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as handle:
        for rec in unique:
            handle.write(json.dumps(rec) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    parts = []
    if bad:
        parts.append(f"dropped {len(bad)} unreadable line(s) (line {', '.join(map(str, bad))})")
    if len(unique) != len(records):
        parts.append(f"dropped {len(records) - len(unique)} duplicated record(s)")
    return unique, f"repaired {path}: {'; '.join(parts)}; the original is kept as {backup}"


class Journal:
    """Append-only writer: one record per line, flushed and fsync-ed per record."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.handle = open(self.path, "ab")

    def append(self, record: dict) -> None:
        line = (json.dumps(record) + "\n").encode()
        self.handle.write(line)
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        if not self.handle.closed:
            self.handle.close()
