"""Reference scores and normalized scores (0 = uniform random policy, 100 = expert snapshot).

Reference scores live once per (task, bins) in the catalog: ``random`` is the mean return of the uniform random
policy over 100 episodes, ``expert`` the mean return of the greedy expert snapshot over 100 episodes, both measured
with spin-bench's rollout code (``spin-bench datasets reference``). The original benchmark's figures (Beeson et al.
2024, used by the SPIN paper) are kept separately as ``paper_reference_scores`` and are used only when asked for
with ``reference="paper"``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from spin_bench.datasets.catalog import (
    RANDOM_POLICY,
    Catalog,
    CatalogError,
    Segment,
    expert_status,
    expert_target,
    load_catalog,
)
from spin_bench.datasets.ids import DEFAULT_BINS
from spin_bench.datasets.progress import episode_progress
from spin_bench.datasets.provenance import library_versions
from spin_bench.datasets.rollout import RolloutConfig, run_episodes, segment_jobs

REFERENCES = ("spin", "paper")


class ProvisionalReferenceWarning(UserWarning):
    """A normalized score was computed against an expert reference that is still below its target (a provisional
    snapshot): such scores are not comparable with other tasks' and will change when the expert is replaced."""


def reference_scores(
    task: str, bins: int = DEFAULT_BINS, *, reference: str = "spin", catalog: Catalog | None = None
) -> tuple[float, float]:
    """``(random, expert)`` reference returns of ``task`` at ``bins`` bins.

    ``reference="spin"`` (default): spin-bench's own measurements, the ones stored in the datasets' Minari metadata.
    ``reference="paper"``: the original benchmark's published figures, for comparison with the papers.
    """
    if reference not in REFERENCES:
        raise ValueError(f"reference={reference!r} is not allowed; use one of {', '.join(REFERENCES)}")
    catalog = catalog if catalog is not None else load_catalog()
    entry = catalog.task_entry(task, bins)
    paper = entry.paper_reference or {}
    paper_text = (
        f"reference='paper' gives the original benchmark's figures (random {paper['random']}, expert {paper['expert']})"
        if paper.get("random") is not None and paper.get("expert") is not None
        else "the original benchmark published no figures for it"
    )
    if reference == "paper":
        if paper.get("random") is None or paper.get("expert") is None:
            raise CatalogError(f"{entry.label}: {paper_text}; use reference='spin'")
        return float(paper["random"]), float(paper["expert"])
    low, high = entry.reference_pair()
    for which, value in (("random", low), ("expert", high)):
        if value is None:
            raise CatalogError(f"{entry.label} has no spin-bench {which} reference score yet; {paper_text}")
    return float(low), float(high)


def normalized_score(
    task: str,
    returns,
    bins: int = DEFAULT_BINS,
    *,
    reference: str = "spin",
    catalog: Catalog | None = None,
):
    """``100 * (returns - random) / (expert - random)``: 0 = uniform random policy, 100 = expert snapshot.

    ``returns``: one raw episode return or an array of them; returns a float or an array of the same shape.
    """
    catalog = catalog if catalog is not None else load_catalog()
    low, high = reference_scores(task, bins, reference=reference, catalog=catalog)
    if reference == "spin":
        entry = catalog.task_entry(task, bins)
        if expert_status(entry) == "below target":
            warnings.warn(
                f"{entry.label}: the expert reference {high:g} is provisional (below its target "
                f"{expert_target(entry):g}); normalized scores against it are not comparable with other tasks'",
                ProvisionalReferenceWarning,
                stacklevel=2,
            )
    arr = np.asarray(returns, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"returns must be finite numbers, got {returns!r}")
    score = 100.0 * (arr - low) / (high - low)
    return float(score) if score.ndim == 0 else score


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
