"""Progress for episode rollouts (episodes done, transitions per second).

On a terminal this is a rich bar. Redirected to a file (``nohup ... > log``) a bar only
shows up when it finishes, so there we print one plain line per tenth of the episodes.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator

PLAIN_LINES = 10
"""How many plain progress lines a rollout prints when stderr is not a terminal."""


@contextlib.contextmanager
def episode_progress(description: str, total_episodes: int, enabled: bool = True) -> Iterator[Callable]:
    """Yield ``advance(episode)``; reports on stderr when ``enabled``."""
    if not enabled:
        yield lambda episode: None
        return
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        with _plain_progress(description, total_episodes) as advance:
            yield advance
        return
    from rich.progress import Progress

    from spin_bench._progress import progress_columns

    steps = {"n": 0}
    columns = progress_columns("rate")  # about 80 columns for the longest dataset ids
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(description, total=total_episodes, rate="episodes")

        def advance(episode) -> None:
            steps["n"] += len(episode)
            elapsed = progress.tasks[0].elapsed or 1e-9
            progress.update(task, advance=1, rate=f"episodes {steps['n'] / elapsed:,.0f} steps/s")

        yield advance


@contextlib.contextmanager
def _plain_progress(description: str, total_episodes: int) -> Iterator[Callable]:
    """One flushed line per tenth of the episodes: count, steps/s and time left."""
    every = max(1, -(-total_episodes // PLAIN_LINES))
    state = {"episodes": 0, "steps": 0}
    start = time.perf_counter()

    def advance(episode) -> None:
        state["episodes"] += 1
        state["steps"] += len(episode)
        done = state["episodes"]
        if done % every and done != total_episodes:
            return
        elapsed = max(time.perf_counter() - start, 1e-9)
        left = elapsed / done * (total_episodes - done)
        print(
            f"{description}: {done}/{total_episodes} episodes, {state['steps']:,} steps, "
            f"{state['steps'] / elapsed:,.0f} steps/s, {elapsed:.0f} s elapsed, about {left:.0f} s left",
            file=sys.stderr,
            flush=True,
        )

    yield advance
