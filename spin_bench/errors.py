"""spin-bench's error model: which failures are which, and the exit code the ``spin-bench`` command gives each.

======  ==========================================================================================
code    meaning
======  ==========================================================================================
0       success
1       a failure of data, a remote, the environment or training (:class:`SpinBenchError`), or a file
        operation that fails while working (``OSError``; the message names the path)
2       bad input: a value the user gave is not allowed, an output path checked before any work
        included (``ValueError``; click's usage errors)
130     interrupted (Ctrl-C or SIGTERM); interrupted runs resume when the command is run again
======  ==========================================================================================

Every failure is one line on stderr, ``spin-bench: error: ...``; ``SPIN_BENCH_DEBUG=1`` shows the traceback
instead. ``spin_bench.cli._common.cli_errors`` is the one place that applies this mapping.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class SpinBenchError(Exception):
    """A failure of data, remote, environment or training (exit code 1), as opposed to bad input (``ValueError``,
    exit code 2). The message is one line for a user: what failed, naming the file or id, and what to do."""


class DamagedFileError(SpinBenchError):
    """A file spin-bench wrote and reads back (a checkpoint, a run's JSON record) is empty, truncated or corrupt."""


class RenderingUnavailableError(SpinBenchError):
    """MuJoCo has no OpenGL backend to render frames with, so no video can be recorded."""
