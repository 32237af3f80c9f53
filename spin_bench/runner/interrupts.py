"""Stop signals for training processes: SIGINT and SIGTERM become a request that the training loop honours
between updates, and a training child stops when its parent dies.

A signal handler that raises runs at whatever bytecode the main thread is executing, e.g. between two parameter
groups of an optimizer step; a checkpoint taken then mixes two steps. So while updates run, a stop signal only
records the request; code that may be cut anywhere (evaluation, data loading) opts in to raising at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
PARENT_POLL_S = 1.0
"""How often the portable parent watchdog looks for its parent (where the kernel cannot signal the death)."""
_PR_SET_PDEATHSIG = 1
"""``prctl`` option (linux/prctl.h): the signal this process gets when its parent thread exits."""


class StopSignals:
    """Within ``with StopSignals() as stop:``, SIGINT and SIGTERM set ``stop.requested`` (the signal's name).

    Installed in the main thread only (elsewhere signals cannot be handled); a signal ignored on entry (a job
    started with ``&`` ignores SIGINT) stays ignored. The previous handlers come back on exit. Inside
    ``stop.raising()`` the first request raises KeyboardInterrupt at once; a later signal never raises, so it
    cannot cut the checkpoint save that follows the first.
    """

    def __init__(self) -> None:
        self.requested: str | None = None
        """Name of the first stop signal received, or None."""
        self._raise_now = False
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopSignals:
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                if signal.getsignal(signum) is not signal.SIG_IGN:
                    self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        first = self.requested is None
        if first:
            self.requested = signal.Signals(signum).name
        if first and self._raise_now:
            self._raise_now = False
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def raising(self) -> Iterator[None]:
        """A block that a stop request may cut at any point (it changes nothing a checkpoint holds)."""
        if self.requested is not None:
            raise KeyboardInterrupt
        self._raise_now = True
        try:
            yield
        finally:
            self._raise_now = False


def die_with_parent(parent_pid: int) -> None:
    """Send this process SIGTERM when ``parent_pid`` (its parent) exits, however it exits (``kill -9`` included).

    Linux arms the kernel's parent-death signal; elsewhere a daemon thread watches the parent. The check after
    arming covers a parent that died before: the signal is only sent for deaths after arming.
    """
    if not _arm_parent_death_signal(signal.SIGTERM):
        threading.Thread(target=watch_parent, args=(parent_pid,), name="parent-watchdog", daemon=True).start()
    if os.getppid() != parent_pid:
        os.kill(os.getpid(), signal.SIGTERM)


def _arm_parent_death_signal(signum: int) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def watch_parent(parent_pid: int, poll_s: float = PARENT_POLL_S) -> None:
    """Block until this process's parent is no longer ``parent_pid``, then send this process SIGTERM."""
    while os.getppid() == parent_pid:
        time.sleep(poll_s)
    os.kill(os.getpid(), signal.SIGTERM)
