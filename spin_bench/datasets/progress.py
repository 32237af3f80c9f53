"""Rich progress bars for episode rollouts (episodes done, transitions per second)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def episode_progress(description: str, total_episodes: int, enabled: bool = True) -> Iterator[Callable]:
    """Yield ``advance(episode)``; shows a bar on stderr when ``enabled``."""
    if not enabled:
        yield lambda episode: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    steps = {"n": 0}
    columns = (  # about 80 columns for the longest dataset ids
        TextColumn("{task.description}"),
        BarColumn(bar_width=16),
        MofNCompleteColumn(),
        TextColumn("episodes {task.fields[rate]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        task = progress.add_task(description, total=total_episodes, rate="")

        def advance(episode) -> None:
            steps["n"] += len(episode)
            elapsed = progress.tasks[0].elapsed or 1e-9
            progress.update(task, advance=1, rate=f"{steps['n'] / elapsed:,.0f} steps/s")

        yield advance
