"""Pick a finished behaviour run's expert and medium snapshots and copy them into ``datasets/``.

expert = the final snapshot; medium = the snapshot whose evaluated return is closest to half of the
expert's (ties: the earlier one). The learning curve and the training command travel with them.
"""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from spin_bench._io import atomic_write_json
from spin_bench.behaviour.policy import sha256_file


@dataclass(frozen=True)
class Selection:
    """The chosen snapshots of one behaviour run."""

    expert: dict
    """Curve row of the final snapshot."""
    medium: dict
    """Curve row of the snapshot closest to half the expert's evaluated return."""


def select_snapshots(curve: list[dict]) -> Selection:
    if len(curve) < 2:
        raise ValueError(f"a behaviour run needs at least 2 evaluated snapshots to pick from, found {len(curve)}")
    expert = curve[-1]
    half = float(expert["eval_return_mean"]) / 2.0
    medium = min(curve[:-1], key=lambda row: abs(float(row["eval_return_mean"]) - half))
    return Selection(expert=expert, medium=medium)


def export_snapshots(run: str | Path, dest: str | Path) -> dict:
    """Copy expert.pt, medium.pt and curve.csv from ``run`` to ``dest``; write and return ``behaviour.json``."""
    run, dest = Path(run), Path(dest)
    curve_path = run / "curve.csv"
    if not curve_path.exists():
        raise ValueError(f"{str(run)!r} is not a behaviour run folder (no curve.csv)")
    with open(curve_path, newline="") as f:
        curve = list(csv.DictReader(f))
    chosen = select_snapshots(curve)
    config = json.loads((run / "config.json").read_text())
    dest.mkdir(parents=True, exist_ok=True)
    record = {
        "task": config["task"],
        "bins": config["bins"],
        "seed": config["seed"],
        "command": (
            f"spin-bench behaviour train --task {config['task']} --bins {config['bins']} --seed {config['seed']} "
            f"--env-steps {int(chosen.expert['env_steps'])}"
        ),
        "decqn": config["decqn"],
        "expert_return_over_2": round(float(chosen.expert["eval_return_mean"]) / 2.0, 2),
        "snapshots": {},
    }
    for quality, row in (("expert", chosen.expert), ("medium", chosen.medium)):
        target = dest / f"{quality}.pt"
        tmp = dest / f".{quality}.pt.tmp"
        shutil.copyfile(run / row["snapshot"], tmp)
        tmp.replace(target)
        record["snapshots"][quality] = {
            "file": target.name,
            "sha256": sha256_file(target),
            "env_steps": int(row["env_steps"]),
            "eval_return_mean": float(row["eval_return_mean"]),
            "eval_return_std": float(row["eval_return_std"]),
            "eval_episodes": int(row["eval_episodes"]),
        }
    shutil.copyfile(curve_path, dest / ".curve.csv.tmp")
    (dest / ".curve.csv.tmp").replace(dest / "curve.csv")
    atomic_write_json(dest / "behaviour.json", record)
    return record
