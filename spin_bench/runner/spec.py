"""What one benchmark run is, and where its folder lives."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunSpec:
    """One (agent, task, dataset, bins, seed, preset) cell of a benchmark grid."""

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
    """Named config preset: quick or paper."""
    overrides: tuple[tuple[str, Any], ...] = field(default=())
    """Config fields set on top of the preset (e.g. ``(("num_steps", 1000),)``)."""

    @property
    def dataset_id(self) -> str:
        from spin_bench.datasets.ids import dataset_id

        return dataset_id(self.task, self.dataset, self.bins)

    @property
    def key(self) -> str:
        """Short label for progress displays."""
        return f"{self.agent} {self.task} {self.dataset} m={self.bins} s{self.seed}"

    def folder(self, root: str | Path) -> Path:
        return (
            Path(root) / self.agent / self.task / self.dataset / f"bins{self.bins}" / self.preset / f"seed{self.seed}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent": self.agent,
            "task": self.task,
            "dataset": self.dataset,
            "bins": self.bins,
            "seed": self.seed,
            "preset": self.preset,
            "overrides": dict(self.overrides),
        }
