"""Atomic file writes (write to a temporary name in the same folder, then rename over the target), and
reading back JSON files with errors that name the file."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from spin_bench.errors import DamagedFileError


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(path)
    except OSError as err:  # name the file the caller asked for, not its temporary name
        raise type(err)(err.errno, err.strerror, str(path)) from err
    finally:
        with contextlib.suppress(OSError):  # nothing to remove, or no folder to remove it from
            tmp.unlink()


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write_bytes(path, buffer.getvalue())


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
