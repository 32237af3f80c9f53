"""Start a run from the final checkpoint of a finished shorter run of the same config.

No setting depends on ``num_steps`` (there is no learning-rate schedule) and evaluation draws from its own
generator, so the first M steps of an N-step run are exactly an M-step run of the same config: the shorter run's
final checkpoint is the longer run's state at step M, and continuing from it gives the longer run's result to the
last bit. Only runs whose M is a multiple of ``eval_every`` qualify, so the longer run's evaluations fall on the
same steps as a run trained from step 0.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from spin_bench._io import read_json
from spin_bench.runner.spec import RunSpec


def find_shorter_run(root: Path, spec: RunSpec, agent_config: dict[str, Any], digest: str, device: str) -> Path | None:
    """The folder under ``root`` of the longest finished run that ``spec``'s run can continue, else None.

    It must be the same agent, task, dataset, bins and seed, on the same data (``digest``) and device, with the
    same resolved config (``agent_config``, as in config.json) except for fewer ``num_steps``, a multiple of
    ``eval_every``, and its final checkpoint still in its folder.
    """
    steps = agent_config["num_steps"]
    others = {k: v for k, v in agent_config.items() if k != "num_steps"}
    seeds_folder = spec.folder(root).parent.parent  # root/agent/task/dataset/bins{M}: one folder per config
    candidates: list[tuple[int, Path]] = []
    for folder in sorted(seeds_folder.glob(f"*/seed{spec.seed}")):
        config_path, summary_path = folder / "config.json", folder / "summary.json"
        if not (config_path.exists() and summary_path.exists() and (folder / "checkpoint.pt").exists()):
            continue
        if read_json(summary_path).get("status") != "finished":
            continue
        recorded = read_json(config_path)
        theirs = dict(recorded.get("agent_config", {}))
        their_steps = theirs.pop("num_steps", None)
        if (
            theirs == others
            and recorded.get("dataset_sha256") == digest
            and recorded.get("device") == device
            and isinstance(their_steps, int)
            and 0 < their_steps < steps
            and their_steps % agent_config["eval_every"] == 0
        ):
            candidates.append((their_steps, folder))
    return max(candidates)[1] if candidates else None


def lengthened(state: dict[str, Any], num_steps: int) -> dict[str, Any]:
    """An agent's ``state_dict()`` with its config's ``num_steps`` set to ``num_steps``, the rest as saved."""
    return {**state, "config": {**state["config"], "num_steps": num_steps}}


def provenance(root: Path, folder: Path, step: int) -> dict[str, Any]:
    """What a continued run records of the run it started from: its folder relative to its runs root, the step,
    and the host and git commit that trained those steps."""
    recorded = read_json(folder / "config.json")
    return {
        "run": folder.relative_to(root).as_posix(),
        "step": step,
        "host": recorded.get("host"),
        "git_commit": recorded.get("git_commit"),
    }
