"""The one look of a rich progress bar in spin-bench: description, a 16-cell bar, done/total, the caller's
fields, time left."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, ProgressColumn, TextColumn, TimeRemainingColumn


def progress_columns(*fields: str) -> tuple[ProgressColumn, ...]:
    """Columns for ``rich.progress.Progress``; each name in ``fields`` shows ``task.fields[name]``."""
    return (
        TextColumn("{task.description}"),
        BarColumn(bar_width=16),
        MofNCompleteColumn(),
        *(TextColumn(f"{{task.fields[{name}]}}") for name in fields),
        TimeRemainingColumn(),
    )
