"""One trainer per run folder: an exclusive ``flock`` on the folder's ``lock`` file while the run is trained.

The kernel drops the lock when its process dies (``kill -9`` included), so a lock is never left stale; the file
itself stays, holding the last trainer's pid for the refusal message.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path

from spin_bench.errors import SpinBenchError

LOCK_FILE = "lock"


class RunLockedError(SpinBenchError):
    """Another process is training this run folder."""

    def __init__(self, folder: Path, pid: int | None):
        who = f"process {pid}" if pid is not None else "another process"
        super().__init__(f"{folder} is being trained by {who}; wait for it or use another --out")
        self.folder, self.pid = folder, pid


@contextlib.contextmanager
def run_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock for the block (the folder must exist); RunLockedError if another process holds it."""
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(folder, _read_pid(fd)) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def refuse_if_locked(folder: Path) -> None:
    """Raise RunLockedError if a process trains ``folder`` now; creates nothing."""
    try:
        fd = os.open(folder / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(folder, _read_pid(fd)) from None
    finally:
        os.close(fd)


def _read_pid(fd: int) -> int | None:
    text = os.pread(fd, 32, 0).decode(errors="replace").strip()
    return int(text) if text.isdigit() else None
