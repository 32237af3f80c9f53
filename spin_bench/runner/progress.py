"""Live display of a grid of runs, fed by each run folder's ``progress.json`` and ``metrics.csv``.

Runs write their progress to files, so the display works the same for in-process runs, local
worker processes and Ray tasks on this machine. On a terminal it is a set of rich bars; redirected to a
file (``nohup ... > log``, a batch job) bars would only show when they finish, so there each run gets a plain
line at each evaluation and every ``PLAIN_LINE_INTERVAL_S`` seconds while it trains.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from rich.console import Console
from rich.progress import Progress, TaskID

from spin_bench._progress import progress_columns
from spin_bench.runner.spec import RunSpec

PLAIN_LINE_INTERVAL_S = 45.0
"""Seconds between two plain progress lines of a training run (evaluations print at once)."""
ENDED = ("finished", "failed", "interrupted")


def _read_progress(folder: Path, since: float | None = None) -> dict | None:
    """The run's progress.json; None if absent, or older than ``since`` (a file that an earlier process left)."""
    path = folder / "progress.json"
    try:
        if since is not None and path.stat().st_mtime < since:
            return None
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


class GridProgress:
    """One bar per active run (updates, updates/s, last eval, ETA) and an overall bar of finished runs; plain
    lines instead when the console is not a terminal."""

    def __init__(self, specs: list[RunSpec], root: Path, console: Console | None = None):
        self.specs, self.root = specs, root
        self.started = time.time()
        console = console if console is not None else Console()
        self.plain = None if console.is_terminal else PlainLines(specs, root, console, self.started)
        self.progress = Progress(
            *progress_columns("rate", "eval"),
            console=console,
            refresh_per_second=2,
            disable=self.plain is not None,
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
        if self.plain is not None:
            self.plain.refresh(self.done)
            return
        for spec in self.specs:
            state = _read_progress(spec.folder(self.root), since=None if spec in self.done else self.started)
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


class PlainLines:
    """Plain progress lines, one flushed line per event: each evaluation (read from ``metrics.csv``, so none is
    missed however fast runs go), every ``interval_s`` seconds of training, and the end of each run."""

    def __init__(
        self,
        specs: list[RunSpec],
        root: Path,
        console: Console,
        started: float,
        interval_s: float = PLAIN_LINE_INTERVAL_S,
    ):
        self.specs, self.root, self.console, self.interval_s = specs, root, console, interval_s
        self.started = started
        """Wall time the grid started: older progress files are an earlier process's."""
        self.evaluated: dict[RunSpec, int] = {}
        """Step of the last evaluation printed, per run."""
        self.metrics_stamp: dict[RunSpec, tuple[int, int] | None] = {}
        self.last_line: dict[RunSpec, float] = {}
        self.ended: set[RunSpec] = set()

    def refresh(self, done: set[RunSpec]) -> None:
        for spec in self.specs:
            if spec in self.ended:
                continue
            folder = spec.folder(self.root)
            state = _read_progress(folder)
            if state is None:
                continue
            fresh = _modified_since(folder / "progress.json", self.started)
            if not fresh and spec not in done:  # an earlier process's file: this run has not started yet
                continue
            if spec not in self.evaluated:  # evaluations before this process's start are not news
                self.evaluated[spec] = max(state.get("resumed_from") or [0]) if fresh else state["step"]
            rows, stamp = self._new_evaluations(spec, folder)
            for row in rows:
                score = row.get("normalized_score")
                self._print(
                    spec,
                    f"evaluated at step {row['step']:,}/{state['total']:,}: return {row['eval_return_mean']:.1f}"
                    + (f" (normalized {score:.1f})" if score is not None else "")
                    + _rate(state),
                )
                # Marked printed only once printed: a Ctrl-C relayed to this process can land anywhere in here.
                self.evaluated[spec] = row["step"]
            self.metrics_stamp[spec] = stamp
            if spec in done or state["status"] in ENDED:
                status = state["status"] if state["status"] in ENDED else "stopped"
                self._print(spec, f"{status} at step {state['step']:,}/{state['total']:,}{_eval(state)}")
                self.ended.add(spec)
            elif (
                state["status"] == "running"
                and time.monotonic() - self.last_line.get(spec, -math.inf) >= self.interval_s
            ):
                self._print(spec, f"step {state['step']:,}/{state['total']:,}{_rate(state)}{_eval(state)}")

    def _new_evaluations(self, spec: RunSpec, folder: Path) -> tuple[list[dict], tuple[int, int] | None]:
        """Evaluations not yet printed, and the stamp of the metrics file they were read from (the caller records
        both once the lines are out)."""
        from spin_bench.runner.run import read_metrics

        try:
            stat = (folder / "metrics.csv").stat()
        except FileNotFoundError:
            return [], None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if self.metrics_stamp.get(spec) == stamp:
            return [], stamp
        return [row for row in read_metrics(folder) if row["step"] > self.evaluated[spec]], stamp

    def _print(self, spec: RunSpec, text: str) -> None:
        self.last_line[spec] = time.monotonic()
        self.console.print(f"{spec.key}: {text}", markup=False, highlight=False, soft_wrap=True)
        self.console.file.flush()


def _modified_since(path: Path, since: float) -> bool:
    try:
        return path.stat().st_mtime >= since
    except FileNotFoundError:
        return False


def _rate(state: dict) -> str:
    return f", {state['updates_per_s']:,.0f} updates/s" if state.get("updates_per_s") else ""


def _eval(state: dict) -> str:
    return f", last eval {state['last_eval']:.1f}" if state.get("last_eval") is not None else ""
