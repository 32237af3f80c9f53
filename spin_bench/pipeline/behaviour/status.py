"""Where each behaviour run stands: progress, returns and critic scale, against the catalog's expert target.

Runs last longer than a session; this is what tells the next session (or the next person) which run to resume
and how far each is from its target. Everything is read from the run folders' ``config.json`` and ``curve.csv``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from spin_bench.pipeline.behaviour.curve import logged_value, read_curve
from spin_bench.pipeline.behaviour.diagnose import OVERESTIMATED_FACTOR, diverged_q, implied_q, overestimation
from spin_bench.pipeline.behaviour.export import nondefault_overrides


@dataclass(frozen=True)
class RunStatus:
    """One run folder's latest state."""

    run: Path
    """The run folder."""
    task: str
    """Its task, e.g. dog-trot."""
    bins: int
    """Bins per action dimension."""
    env_steps: int
    """Env steps at its last evaluation (what a resume continues from, give or take one chunk)."""
    last_eval: float
    """Evaluation return at the last evaluation."""
    best_eval: float
    """Best evaluation return so far."""
    best_step: int
    """Env steps of that best evaluation."""
    q_max: float | None
    """Greedy Q max on replay states at the last evaluation (None for runs from before it was logged)."""
    diverged: bool
    """Whether that Q max is past the divergence threshold (1.25 / (1 - gamma))."""
    overestimation: float | None
    """Mean greedy Q over the value the last eval return implies (None for runs from before q_mean was logged)."""
    hours: float
    """Training wall time so far, in hours."""
    recent_steps_per_second: float | None
    """Env steps per second over the last evaluation interval (None with a single evaluation)."""
    settings: list[str]
    """Its non-default DecQN hyperparameters, as ``key=value``."""
    warm_start_steps: int | None
    """Env steps of the export it was warm-started from (``--init-from``), or None for a run from scratch."""
    target: float | None
    """The catalog's expert target for (task, bins), or None where the catalog has no target."""

    @property
    def overestimated(self) -> bool:
        return self.overestimation is not None and self.overestimation > OVERESTIMATED_FACTOR


def run_status(run: Path, targets: dict[tuple[str, int], float | None]) -> RunStatus | None:
    """The status of one folder, or None when it is not a behaviour run with at least one evaluation."""
    config_path = run / "config.json"
    rows = read_curve(run / "curve.csv")
    if not config_path.exists() or not rows:
        return None
    config = json.loads(config_path.read_text())
    evals = [float(row["eval_return_mean"]) for row in rows]
    best = max(range(len(rows)), key=evals.__getitem__)
    last = rows[-1]
    q_max, q_mean = logged_value(last, "q_max"), logged_value(last, "q_mean")
    gamma = float(config["decqn"].get("gamma", 0.99))
    repeat = int(config["decqn"].get("action_repeat", 1))
    recent = None
    if len(rows) > 1:
        steps = int(last["env_steps"]) - int(rows[-2]["env_steps"])
        seconds = float(last["wall_seconds"]) - float(rows[-2]["wall_seconds"])
        recent = steps / seconds if seconds > 0 else None
    task, bins = config["task"], int(config["bins"])
    return RunStatus(
        run=run,
        task=task,
        bins=bins,
        env_steps=int(last["env_steps"]),
        last_eval=evals[-1],
        best_eval=evals[best],
        best_step=int(rows[best]["env_steps"]),
        q_max=q_max,
        diverged=q_max is not None and q_max > diverged_q(gamma, repeat),
        overestimation=None if q_mean is None else overestimation(q_mean, implied_q(evals[-1], gamma, repeat)),
        hours=float(last["wall_seconds"]) / 3600.0,
        recent_steps_per_second=recent,
        settings=nondefault_overrides(config["decqn"]),
        warm_start_steps=int(config["init_from"]["env_steps"]) if config.get("init_from") else None,
        target=targets.get((task, bins)),
    )


def run_statuses(root: str | Path, targets: dict[tuple[str, int], float | None]) -> list[RunStatus]:
    """The status of every behaviour run directly under ``root`` (folders without a run are skipped)."""
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"{str(root)!r} is not a folder of behaviour runs")
    found = (run_status(path, targets) for path in sorted(root.iterdir()) if path.is_dir())
    return [status for status in found if status is not None]


def catalog_targets() -> dict[tuple[str, int], float | None]:
    """(task, bins) -> expert target, from the catalog in use."""
    from spin_bench.datasets.catalog import expert_target, load_catalog

    return {(entry.task, entry.bins): expert_target(entry) for entry in load_catalog()}
