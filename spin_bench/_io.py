"""Atomic file writes (write to a temporary name in the same folder, then rename over the target): the one home of
"nothing half-written", and reading back JSON files with errors that name the file."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spin_bench.errors import DamagedFileError


@contextlib.contextmanager
def atomic_target(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` for a writer that needs a file name (``np.savez``, a video writer,
    ``shutil.copyfile``); on success it is renamed over ``path``, and it is removed in every case.

    The temporary name keeps ``path``'s suffix, which writers that choose their format by extension need.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp{path.suffix}")
    try:
        yield tmp
        tmp.replace(path)
    except OSError as err:  # name the file the caller asked for, not its temporary name
        if err.filename != str(tmp):
            raise
        raise type(err)(err.errno, err.strerror, str(path)) from err
    finally:
        with contextlib.suppress(OSError):  # nothing to remove, or no folder to remove it from
            tmp.unlink()


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_target(path) as tmp, open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_copy(source: str | Path, path: str | Path) -> None:
    """Copy ``source`` to ``path`` so that ``path`` is either the old file or the whole copy."""
    with atomic_target(path) as tmp:
        shutil.copyfile(source, tmp)


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    import torch

    with atomic_target(path) as tmp:
        torch.save(obj, tmp)


def read_json(path: str | Path) -> Any:
    """The JSON document in ``path``. A file that is not valid JSON raises DamagedFileError naming it; a missing or
    unreadable one raises OSError (which carries the path)."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DamagedFileError(
            f"{path} is damaged: not valid JSON ({err.msg} at line {err.lineno} column {err.colno})"
        ) from None
    except UnicodeDecodeError:
        raise DamagedFileError(f"{path} is damaged: not valid JSON (not UTF-8 text)") from None
