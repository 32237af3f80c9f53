"""Live display of a grid of runs, fed by each run folder's ``progress.json``.

Runs write their progress to files, so the display works the same for in-process runs, local
worker processes and Ray tasks on this machine.
"""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from spin_bench.runner.spec import RunSpec


def _read_progress(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "progress.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class GridProgress:
    """One bar per active run (updates, updates/s, last eval, ETA) and an overall bar of finished runs."""

    def __init__(self, specs: list[RunSpec], root: Path, console: Console | None = None):
        self.specs, self.root = specs, root
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(bar_width=16),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("{task.fields[eval]}"),
            TimeRemainingColumn(),
            console=console,
            refresh_per_second=2,
        )
        self.overall = self.progress.add_task("all runs", total=len(specs), rate="", eval="")
        self.bars: dict[RunSpec, TaskID] = {}
        self.done: set[RunSpec] = set()

    def __enter__(self) -> GridProgress:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.refresh()
        self.progress.__exit__(*exc)

    def mark_done(self, spec: RunSpec) -> None:
        self.done.add(spec)
        self.refresh()

    def refresh(self) -> None:
        for spec in self.specs:
            state = _read_progress(spec.folder(self.root))
            if state is None:
                continue
            if spec not in self.bars:
                self.bars[spec] = self.progress.add_task(spec.key, total=state["total"], rate="", eval="")
            bar = self.bars[spec]
            last_eval = state.get("last_eval")
            self.progress.update(
                bar,
                completed=state["step"],
                total=state["total"],
                rate=f"{state['updates_per_s']:.0f} upd/s" if state.get("updates_per_s") else "",
                eval=f"eval {last_eval:.1f}" if last_eval is not None else "",
            )
            if spec in self.done or state["status"] in ("finished", "failed"):
                self.progress.update(bar, visible=False)
        self.progress.update(self.overall, completed=len(self.done))
