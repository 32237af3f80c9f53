"""The SPIN paper's reported results, and whether a grid reproduces the orderings of agents they show."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any

from spin_bench.runner.report import (
    ALL_DATASETS,
    BOOTSTRAP_SEED,
    agent_order,
    bootstrap_varies,
    comparable,
    comparisons,
    pairwise_improvement,
    scores_by_entry,
)

if TYPE_CHECKING:
    from spin_bench.runner.report import CellRow


@dataclass(frozen=True)
class PaperResult:
    """One agent's result on one dataset quality in the SPIN paper's main table."""

    dataset: str
    """Quality level: ``medium``, ``medium-expert``, ``random-medium-expert`` or ``expert``."""
    agent: str
    """spin-bench's name for the agent."""
    mean_return: float
    """Raw return (0-1000) of the final evaluation, averaged over the paper's tasks and 5 seeds, after 1M gradient
    steps at the paper's sizes on the original benchmark's data."""
    minutes_to_target: float
    """Wall-clock minutes on one A40 until an evaluation reached 95% of F-IQL's final return, SPIN's ASM
    pre-training included."""


PAPER_RESULTS: tuple[PaperResult, ...] = tuple(
    PaperResult(dataset, agent, mean_return, minutes)
    for dataset, by_agent in {
        "medium": {"f-iql": (341.8, 48.2), "ar-iql": (334.7, 114.3), "saint": (343.0, 174.6), "spin": (345.2, 45.5)},
        "medium-expert": {
            "f-iql": (724.7, 257.3),
            "ar-iql": (717.2, 285.8),
            "saint": (733.3, 308.4),
            "spin": (753.2, 62.0),
        },
        "random-medium-expert": {
            "f-iql": (388.3, 85.1),
            "ar-iql": (395.6, 95.8),
            "saint": (438.9, 100.2),
            "spin": (499.2, 38.4),
        },
        "expert": {"f-iql": (778.1, 167.5), "ar-iql": (770.3, 288.7), "saint": (773.1, 261.8), "spin": (778.7, 77.4)},
    }.items()
    for agent, (mean_return, minutes) in by_agent.items()
)
"""The paper's main table (returns averaged over its tasks; time-to-target on one A40)."""
PAPER_BINS = 3
"""The bins per dimension of the paper's main table: grid entries at other bins are not compared with it."""

REPRODUCED = "reproduced"
REVERSED = "reversed"
UNRESOLVED = "not resolved"
NO_INTERVAL = "no CI (one run per cell)"


def quality(dataset: str) -> str:
    """A grid dataset's quality level: ``original/medium-expert`` and ``medium-expert`` are both ``medium-expert``."""
    return dataset.rsplit("/", 1)[-1]


def paper_results(dataset: str) -> dict[str, PaperResult]:
    """The paper's results on ``dataset``'s quality level, by agent; empty for a level the paper does not report."""
    return {r.agent: r for r in PAPER_RESULTS if r.dataset == quality(dataset)}


def verdict(low: float, high: float, resampled: bool) -> str:
    """Whether a grid reproduces the paper's "higher > lower": the 95% CI of P(higher > lower) above 0.5,
    below it (reversed) or across it. Without a resample that can vary there is no interval, hence no verdict."""
    if not resampled:
        return NO_INTERVAL
    if low > 0.5:
        return REPRODUCED
    if high < 0.5:
        return REVERSED
    return UNRESOLVED


def paper_comparison(rows: list[CellRow], seed: int = BOOTSTRAP_SEED) -> list[dict[str, Any]]:
    """For each dataset of the grid that the paper reports and each pair of the paper's agents that the grid
    compares there (same bins and budget, on the dataset's compared cells): the paper's order and margin, and the
    grid's probability that the paper's higher agent beats its lower one, with its CI and verdict."""
    scores = scores_by_entry(rows)
    out = []
    for comparison in comparisons(rows):
        paper = paper_results(comparison.scope) if comparison.scope != ALL_DATASETS else {}
        entries = [e for e in comparison.entries if e.agent in paper and e.bins == PAPER_BINS]
        entries = entries if comparison.cells else []
        for a, b in combinations(entries, 2):
            if a.agent == b.agent or not comparable(a, b):
                continue
            higher, lower = (a, b) if paper[a.agent].mean_return >= paper[b.agent].mean_return else (b, a)
            row = pairwise_improvement(higher, lower, comparison, rows, scores, seed)
            resampled = bootstrap_varies(row["tasks"], row["runs"], row["baseline_runs"])
            out.append(
                {
                    "dataset": comparison.scope,
                    "higher": row["agent"],
                    "lower": row["baseline"],
                    "paper_higher_return": paper[higher.agent].mean_return,
                    "paper_lower_return": paper[lower.agent].mean_return,
                    **{k: row[k] for k in ("bins", "tasks", "runs", "baseline_runs", "probability")},
                    "ci95_low": row["ci95_low"] if resampled else None,
                    "ci95_high": row["ci95_high"] if resampled else None,
                    "verdict": verdict(row["ci95_low"], row["ci95_high"], resampled),
                }
            )
    out.sort(key=lambda r: (r["dataset"], -r["paper_higher_return"], -r["paper_lower_return"]))
    return out


def paper_order(dataset: str) -> list[PaperResult]:
    """The paper's agents on ``dataset``'s quality level, best first (ties in spin-bench's agent order)."""
    results = paper_results(dataset).values()
    return sorted(results, key=lambda r: (-r.mean_return, agent_order(r.agent)))
