"""Measuring the reference scores of a task (``spin-bench-maintain reference``): the uniform random policy and the
greedy expert snapshot, with the catalog's protocol (policy, seed, epsilon, episodes). The user side reads them
back through :func:`spin_bench.datasets.scores.normalized_score`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from spin_bench.datasets.catalog import RANDOM_POLICY, Catalog, CatalogError, Segment, load_catalog
from spin_bench.datasets.ids import DEFAULT_BINS
from spin_bench.datasets.progress import episode_progress
from spin_bench.datasets.provenance import library_versions
from spin_bench.datasets.rollout import RolloutConfig, run_episodes, segment_jobs


@dataclass(frozen=True)
class ReferenceMeasurement:
    task: str
    bins: int
    which: str
    returns: np.ndarray
    seed: int
    policy: str
    epsilon: float

    @property
    def value(self) -> float:
        return float(self.returns.mean())

    def catalog_fields(self) -> dict:
        return {
            "value": round(self.value, 3),
            "std": round(float(self.returns.std()), 3),
            "episodes": int(self.returns.size),
            "measured_with": library_versions(),
        }


def measure_reference(
    task: str,
    bins: int = DEFAULT_BINS,
    which: str = "random",
    *,
    episodes: int | None = None,
    workers: int | None = None,
    progress: bool = True,
    catalog: Catalog | None = None,
) -> ReferenceMeasurement:
    """Measure a reference score with the catalog's protocol (policy, seed, epsilon; ``episodes`` default 100).

    Episode k resets with ``seed + k``, like a dataset segment. Does not write the catalog (the CLI does).
    """
    if which not in ("random", "expert"):
        raise ValueError(f"which={which!r} is not allowed; use 'random' or 'expert'")
    catalog = catalog if catalog is not None else load_catalog()
    entry = catalog.task_entry(task, bins)
    ref = entry.reference[which]
    n = ref.episodes if episodes is None else episodes
    if n < 1:
        raise ValueError(f"episodes={n} is not allowed; use an int >= 1")
    checkpoints = {}
    if ref.policy != RANDOM_POLICY:
        status = entry.checkpoints[ref.policy].status()
        if status != "available":
            raise CatalogError(
                f"{entry.label}: checkpoint {ref.policy!r} ({entry.checkpoints[ref.policy].relpath}) is {status}"
            )
        checkpoints[ref.policy] = str(entry.checkpoints[ref.policy].path)
    config = RolloutConfig(entry.env_id, dict(entry.env_kwargs), checkpoints, entry.max_episode_steps)
    jobs = segment_jobs([Segment(ref.policy, n, ref.seed, ref.epsilon)])
    with episode_progress(f"{which} reference {entry.label}", n, enabled=progress) as advance:
        returns = np.array([e.episode_return for e in run_episodes(config, jobs, workers=workers, on_episode=advance)])
    return ReferenceMeasurement(task, bins, which, returns, ref.seed, ref.policy, ref.epsilon)
