"""Reference scores and normalized scores (0 = uniform random policy, 100 = expert snapshot).

Reference scores live once per (task, bins) in the catalog: ``random`` is the mean return of the uniform random
policy over 100 episodes, ``expert`` the mean return of the greedy expert snapshot over 100 episodes, both measured
with spin-bench's rollout code (``spin-bench-maintain reference``). The original benchmark's figures (Beeson et al.
2024, used by the SPIN paper) are kept separately as ``paper_reference_scores`` and are used only when asked for
with ``reference="paper"``.
"""

from __future__ import annotations

import warnings

import numpy as np

from spin_bench.datasets.catalog import (
    Catalog,
    CatalogError,
    expert_status,
    expert_target,
    load_catalog,
)
from spin_bench.datasets.ids import DEFAULT_BINS

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
