"""A behaviour run's learning curve, ``curve.csv``: one row per evaluation, read and written in one place."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from spin_bench._io import atomic_write_text

CURVE_FIELDS = (
    "env_steps",
    "updates",
    "wall_seconds",
    "epsilon",
    "loss",
    "q_mean",
    "q_max",
    "train_return",
    "eval_return_mean",
    "eval_return_std",
    "eval_episodes",
    "snapshot",
)
"""Columns in order; runs from before ``q_max`` (or ``q_mean``) existed lack that column, and their rows read it as
missing."""


def read_curve(path: str | Path) -> list[dict[str, str]]:
    """The rows of a ``curve.csv`` as strings (empty where a value was not logged); [] if there is no file."""
    path = Path(path)
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def logged_value(row: dict, key: str) -> float | None:
    """A row's optional number (``loss``, ``q_mean``, ``q_max``) as a float; None where not logged ("" or no column)."""
    value = row.get(key)
    return None if value in ("", None) else float(value)


def has_snapshot(row: dict) -> bool:
    """Whether the row's snapshot file was kept (a warm start carries its source's earlier rows without theirs)."""
    return row.get("snapshot") != ""


def write_curve(path: str | Path, rows: list[dict]) -> None:
    """Write all rows atomically (the file is small; a resume re-reads it)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=CURVE_FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(Path(path), text.getvalue())
