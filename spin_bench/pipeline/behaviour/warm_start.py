"""Continue a behaviour run from its export when the run folder is gone.

A run folder holds gigabytes of replay and lives outside the repository, so it does not outlast the machine it ran
on. What the repository keeps of a run is its export, ``datasets/checkpoints/<task>/bins<M>/``: the expert and
medium snapshots, the learning curve and the training command (``behaviour.json``). A warm start makes a new run
folder from it:

- the expert's network as the online and the target network; fresh Adam moments, with the step size ramped up
  over ``warm_start_lr_warmup`` updates;
- an empty replay, refilled by the expert itself at the run's epsilon (no uniform random phase), with learning
  resuming once it holds ``warm_start_refill`` transitions;
- the env step, update and wall-time counters carried on from the expert's curve row, and the exported curve up to
  it as the start of the new curve, with the medium and expert snapshots copied in so a later export can choose them
  (the other rows keep their numbers but have no snapshot file).

The new run's ``config.json`` records where it started (``init_from``: the source folder, the expert's sha256 and env
steps, the command that trained it, and that run's own ``init_from``), so the chain of commands behind a snapshot
stays on record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from spin_bench._io import atomic_copy
from spin_bench.pipeline.behaviour.curve import read_curve
from spin_bench.pipeline.behaviour.network import DecoupledQNetwork
from spin_bench.pipeline.behaviour.policy import load_behaviour_policy, sha256_file

SNAPSHOT_NAME = "snapshots/step_{:09d}.pt"
"""Where a run keeps the snapshot taken at a number of env steps."""


def snapshot_name(env_steps: int) -> str:
    return SNAPSHOT_NAME.format(env_steps)


@dataclass(frozen=True)
class WarmStart:
    """An exported behaviour run, checked and ready to continue."""

    source: Path
    """The export folder (``datasets/checkpoints/<task>/bins<M>``)."""
    record: dict
    """Its ``behaviour.json``."""
    curve: list[dict]
    """Its curve up to and including the expert's row."""
    expert_network: DecoupledQNetwork
    """The expert snapshot's network (a plain head)."""

    @property
    def expert(self) -> dict:
        """The curve row of the expert snapshot."""
        return self.curve[-1]

    @property
    def env_steps(self) -> int:
        return int(self.record["snapshots"]["expert"]["env_steps"])

    def provenance(self) -> dict:
        """What ``config.json`` records as ``init_from``: JSON-safe, and enough to find the exact files in git."""
        expert = self.record["snapshots"]["expert"]
        return {
            "path": self.source.as_posix(),
            "expert_sha256": expert["sha256"],
            "env_steps": self.env_steps,
            "command": self.record["command"],
            "init_from": self.record.get("init_from"),
        }

    def seed_run_folder(self, out: Path) -> list[dict]:
        """Copy the medium and expert snapshots into ``out/snapshots`` under their step names; returns the curve rows
        (snapshot column naming those copies, empty for rows whose snapshot was not exported)."""
        kept = {}
        for quality in ("medium", "expert"):
            snap = self.record["snapshots"][quality]
            name = snapshot_name(int(snap["env_steps"]))
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            atomic_copy(self.source / snap["file"], out / name)
            kept[int(snap["env_steps"])] = name
        return [{**row, "snapshot": kept.get(int(row["env_steps"]), "")} for row in self.curve]


def load_warm_start(source: str | Path, task: str, bins: int) -> WarmStart:
    """The export at ``source``, checked: it is ``task`` at ``bins``, its snapshots match their recorded sha256, and its
    curve reaches the expert. Anything else is a ValueError naming what is wrong."""
    source = Path(source)
    record_path = source / "behaviour.json"
    if not record_path.is_file():
        raise ValueError(f"--init-from {str(source)!r} is not a behaviour export (no behaviour.json)")
    record = json.loads(record_path.read_text())
    if (record.get("task"), int(record.get("bins", -1))) != (task, bins):
        raise ValueError(
            f"--init-from {str(source)!r} holds {record.get('task')} at {record.get('bins')} bins, not {task} at {bins}"
        )
    for quality in ("medium", "expert"):
        snap = record["snapshots"][quality]
        path = source / snap["file"]
        if not path.is_file():
            raise ValueError(f"--init-from {str(source)!r} lacks {snap['file']}, its {quality} snapshot")
        if sha256_file(path) != snap["sha256"]:
            raise ValueError(
                f"{path} does not match the sha256 behaviour.json records for it ({snap['sha256'][:16]}...)"
            )
    expert_steps = int(record["snapshots"]["expert"]["env_steps"])
    curve = read_curve(source / "curve.csv")
    steps = [int(row["env_steps"]) for row in curve]
    if expert_steps not in steps:
        raise ValueError(f"{source / 'curve.csv'} has no row at the expert's {expert_steps:,} env steps")
    expert_network = load_behaviour_policy(source / record["snapshots"]["expert"]["file"]).network
    return WarmStart(source, record, curve[: steps.index(expert_steps) + 1], expert_network)
