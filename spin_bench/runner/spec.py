"""What one benchmark run is, and where its folder lives.

A run's identity is its resolved agent config and its data: the folder name holds a short hash of both, so a run
with another config or other data never shares a folder (never skipped, resumed or averaged as the same run),
while the same command finds its own folder again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

LABEL_HASH_CHARS = 8
"""Hex characters of the identity hash at the end of a run's label."""
LABEL_MAX_CHARS = 120
"""Longest readable part of a label (the overridden fields); the hash tells longer ones apart."""


@dataclass(frozen=True)
class RunSpec:
    """One (agent, task, dataset, bins, seed, config) cell of a benchmark grid."""

    agent: str
    """Registry name: spin, saint, f-iql, ar-iql or bc."""
    task: str
    """Task, e.g. ``cheetah-run``."""
    dataset: str
    """Dataset quality: random, medium, expert, medium-expert or random-medium-expert."""
    bins: int
    """Bins per action dimension."""
    seed: int
    """Seed of the agent, its batches and its evaluations."""
    preset: str
    """Named config preset: paper, lite or quick (``spin_bench.agents.presets``)."""
    overrides: tuple[tuple[str, Any], ...] = field(default=())
    """Config fields set on top of the preset (e.g. ``(("num_steps", 1000),)``), sorted by name."""
    data_digest: str | None = None
    """sha256 of the dataset the run trains on; part of the run's identity once known."""

    def __post_init__(self) -> None:
        # One spec per config whatever order the fields were given in; lists (from JSON) as tuples, so specs hash.
        items = sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in dict(self.overrides).items())
        object.__setattr__(self, "overrides", tuple(items))

    @property
    def dataset_id(self) -> str:
        from spin_bench.datasets.ids import dataset_id

        return dataset_id(self.task, self.dataset, self.bins)

    @property
    def key(self) -> str:
        """Short label for progress displays."""
        return f"{self.agent} {self.task} {self.dataset} m={self.bins} s{self.seed}"

    def with_data_digest(self, digest: str) -> RunSpec:
        """This spec on the data whose sha256 is ``digest``."""
        return dataclasses.replace(self, data_digest=digest)

    def resolved_config(self):
        """The agent's config: the preset, then the overrides (checked: fields, types, ranges)."""
        return _resolved_config(self.agent, self.preset, self.overrides)

    def identity_hash(self) -> str:
        """sha256 hex of (resolved agent config, data digest): what makes two runs of one seed the same run."""
        payload = {"agent_config": config_json(self.resolved_config())}
        if self.data_digest is not None:
            payload["data_digest"] = self.data_digest
        return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def changed_fields(self) -> dict[str, Any]:
        """The resolved config's fields that differ from the preset's, in the config's field order."""
        resolved = self.resolved_config()
        base = _resolved_config(self.agent, self.preset, ())
        return {
            f.name: getattr(resolved, f.name)
            for f in dataclasses.fields(resolved)
            if getattr(resolved, f.name) != getattr(base, f.name)
        }

    @property
    def label(self) -> str:
        """Readable folder name of the config: the preset, the fields changed from it and the identity hash,
        e.g. ``quick-beta=1-num_steps=300-1a2b3c4d``."""
        parts = [self.preset] + [f"{k}={_label_value(v)}" for k, v in self.changed_fields().items()]
        text, shown = parts[0], 1
        for part in parts[1:]:
            if len(text) + 1 + len(part) > LABEL_MAX_CHARS:
                break
            text, shown = f"{text}-{part}", shown + 1
        if shown < len(parts):
            text += f"-and{len(parts) - shown}more"
        return f"{_file_safe(text)}-{self.identity_hash()[:LABEL_HASH_CHARS]}"

    def folder(self, root: str | Path) -> Path:
        """root/agent/task/dataset/bins{M}/<label>/seed{s}: the seeds of one config side by side."""
        return Path(root) / self.agent / self.task / self.dataset / f"bins{self.bins}" / self.label / f"seed{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "task": self.task,
            "dataset": self.dataset,
            "bins": self.bins,
            "seed": self.seed,
            "preset": self.preset,
            "overrides": {k: list(v) if isinstance(v, tuple) else v for k, v in self.overrides},
            "data_digest": self.data_digest,
            "label": self.label,
        }


def config_json(config: Any) -> dict[str, Any]:
    """A config dataclass as JSON values (tuples as lists), as config.json records it."""
    return json.loads(json.dumps(dataclasses.asdict(config)))


@cache
def _resolved_config(agent: str, preset: str, overrides: tuple[tuple[str, Any], ...]):
    from spin_bench.registry import make_config

    return make_config(agent, preset, **dict(overrides))


def _label_value(value: Any) -> str:
    if isinstance(value, tuple):
        return "x".join(map(str, value)) or "none"
    if isinstance(value, bool) or value is None:
        return str(value).lower()
    if isinstance(value, float):
        return repr(value).removesuffix(".0")
    return str(value)


def _file_safe(text: str) -> str:
    """Characters that are safe in file names everywhere; others become ``_``."""
    return re.sub(r"[^A-Za-z0-9._=+-]", "_", text)
