"""Read pickles from untrusted sources: numbers, strings, containers and numeric numpy arrays, never code.

A pickle names the functions that rebuild its objects, and ``pickle.load`` imports and calls any of them
(``os.system`` included), so opening a downloaded pickle runs whatever its author chose. :func:`load_restricted`
resolves names only from :data:`ALLOWED_GLOBALS`, the few that plain data needs: numpy's array, dtype and scalar
reconstructors under the module names numpy 1.x and 2.x write. Lists, tuples, dicts, strings, ints, floats and bools
need no name at all. Any other name is refused before anything is called, with :class:`RefusedPickleError`.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path
from typing import Any

import numpy as np

from spin_bench.errors import SpinBenchError

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

NUMERIC_KINDS = "biuf"
"""dtype kinds an array or scalar may have: bool, signed and unsigned int, float (no objects, no records)."""


class RefusedPickleError(SpinBenchError):
    """A pickle names a function or class outside :data:`ALLOWED_GLOBALS`, or holds non-numeric numpy data."""


class UnreadablePickleError(SpinBenchError):
    """A file is not a complete, well-formed pickle (truncated, empty, or another format)."""


def _numeric_dtype(*args: Any) -> np.dtype:
    """``numpy.dtype`` for numeric types only: an object dtype would let array contents be arbitrary objects."""
    dtype = np.dtype(*args)
    if dtype.kind not in NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise RefusedPickleError(f"numpy dtype {dtype} is not a plain numeric type")
    return dtype


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    """``_codecs.encode``, which protocol-2 pickles use to store bytes, for that one purpose."""
    if not isinstance(text, str) or codecs.lookup(encoding).name != "iso8859-1":
        raise RefusedPickleError(f"_codecs.encode({type(text).__name__}, {encoding!r}) is not a bytes literal")
    return text.encode("latin1")


ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _numeric_dtype,
    ("_codecs", "encode"): _latin1_encode,
    **{
        (module, name): getattr(_multiarray, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    },
    **{(module, "_frombuffer"): _numeric._frombuffer for module in ("numpy.core.numeric", "numpy._core.numeric")},
}
"""``(module, name)`` -> what a pickle gets for it. The reconstructors build arrays and scalars only from a dtype,
and every dtype comes through :func:`_numeric_dtype`."""


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        found = ALLOWED_GLOBALS.get((module, name))
        if found is None:
            raise RefusedPickleError(f"it references {module}.{name}")
        return found

    def persistent_load(self, pid: Any) -> Any:
        raise RefusedPickleError("it references an external object (persistent id)")


def load_restricted(path: str | Path) -> Any:
    """The object pickled in ``path``, unpickled with only :data:`ALLOWED_GLOBALS`.

    Raises RefusedPickleError (one line naming the file and the refused name) before calling anything else, and
    UnreadablePickleError for a file that is not a complete pickle.
    """
    path = Path(path)
    allowed = "plain numbers, strings, containers and numeric numpy arrays"
    with open(path, "rb") as f:
        try:
            return _RestrictedUnpickler(f).load()
        except RefusedPickleError as err:
            raise RefusedPickleError(f"{path}: refused to unpickle: {err}; only {allowed} are allowed") from None
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as err:
            reason = " ".join(str(err).split())[:200] or type(err).__name__
            raise UnreadablePickleError(f"{path}: not a readable pickle ({reason})") from None
