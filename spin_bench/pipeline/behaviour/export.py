"""Pick a finished behaviour run's expert and medium snapshots and copy them into ``datasets/``.

expert = the final snapshot, or the one at a chosen step (e.g. from before a divergence); medium = the earlier
snapshot whose evaluated return is closest to half of the expert's (ties: the earlier one). The learning curve and
the exact training command travel with them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from spin_bench._io import atomic_copy, atomic_write_json
from spin_bench.pipeline.behaviour.config import DecQNConfig
from spin_bench.pipeline.behaviour.curve import has_snapshot, read_curve
from spin_bench.pipeline.behaviour.policy import sha256_file


@dataclass(frozen=True)
class Selection:
    """The chosen snapshots of one behaviour run."""

    expert: dict
    """Curve row of the expert snapshot (the final one unless a step was chosen)."""
    medium: dict
    """Curve row of the earlier snapshot closest to half the expert's evaluated return."""


def select_snapshots(curve: list[dict], expert_step: int | None = None) -> Selection:
    """The expert (final, or the snapshot at ``expert_step`` env steps) and the medium before it.

    Rows whose snapshot was not kept (``snapshot`` empty: a warm start's earlier history) are not candidates.
    """
    curve = [row for row in curve if has_snapshot(row)]
    if len(curve) < 2:
        raise ValueError(f"a behaviour run needs at least 2 evaluated snapshots to pick from, found {len(curve)}")
    position = len(curve) - 1
    if expert_step is not None:
        steps = [int(row["env_steps"]) for row in curve]
        if expert_step not in steps:
            raise ValueError(
                f"expert step {expert_step:,} has no snapshot; snapshots are at {steps[0]:,} to {steps[-1]:,} "
                f"env steps, every {steps[-1] - steps[-2]:,}"
            )
        position = steps.index(expert_step)
        if position == 0:
            raise ValueError(f"expert step {expert_step:,} is the first snapshot: no earlier one can be the medium")
    expert = curve[position]
    half = float(expert["eval_return_mean"]) / 2.0
    medium = min(curve[:position], key=lambda row: abs(float(row["eval_return_mean"]) - half))
    return Selection(expert=expert, medium=medium)


def nondefault_overrides(decqn: dict) -> list[str]:
    """``key=value`` for each DecQN hyperparameter of a run's config that differs from today's default."""
    defaults = DecQNConfig().to_dict()
    return [
        f"{key}={','.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in decqn.items()
        if key in defaults and value != defaults[key]
    ]


def training_command(config: dict, env_steps: int) -> str:
    """The ``behaviour train`` command of a run up to ``env_steps``, with its warm start and non-default
    hyperparameters."""
    init_from = config.get("init_from")
    return " ".join(
        [
            f"spin-bench-maintain behaviour train --task {config['task']} --bins {config['bins']}",
            f"--seed {config['seed']}",
            f"--env-steps {env_steps}",
            *([f"--init-from {init_from['path']}"] if init_from else []),
            *(f"--set {item}" for item in nondefault_overrides(config["decqn"])),
        ]
    )


def export_snapshots(run: str | Path, dest: str | Path, expert_step: int | None = None) -> dict:
    """Copy expert.pt, medium.pt and curve.csv from ``run`` to ``dest``; write and return ``behaviour.json``.

    ``expert_step``: export the snapshot at this many env steps as the expert instead of the final one.
    """
    run, dest = Path(run), Path(dest)
    curve_path = run / "curve.csv"
    if not curve_path.exists():
        raise ValueError(f"{str(run)!r} is not a behaviour run folder (no curve.csv)")
    curve = read_curve(curve_path)
    chosen = select_snapshots(curve, expert_step)
    config = json.loads((run / "config.json").read_text())
    dest.mkdir(parents=True, exist_ok=True)
    record = {
        "task": config["task"],
        "bins": config["bins"],
        "seed": config["seed"],
        "command": training_command(config, int(chosen.expert["env_steps"])),
        "decqn": config["decqn"],
        "init_from": config.get("init_from"),
        "expert_return_over_2": round(float(chosen.expert["eval_return_mean"]) / 2.0, 2),
        "snapshots": {},
    }
    for quality, row in (("expert", chosen.expert), ("medium", chosen.medium)):
        target = dest / f"{quality}.pt"
        atomic_copy(run / row["snapshot"], target)
        record["snapshots"][quality] = {
            "file": target.name,
            "sha256": sha256_file(target),
            "env_steps": int(row["env_steps"]),
            "eval_return_mean": float(row["eval_return_mean"]),
            "eval_return_std": float(row["eval_return_std"]),
            "eval_episodes": int(row["eval_episodes"]),
        }
    atomic_copy(curve_path, dest / "curve.csv")
    atomic_write_json(dest / "behaviour.json", record)
    return record
