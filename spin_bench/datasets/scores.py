"""Reference scores and normalized scores (0 = uniform random policy, 100 = expert): one formula, one source each.

Every normalized score in spin-bench (``normalized_score``, a training run's evaluations, ``spin-bench eval``, the
reports that read the runs) is :meth:`References.normalize` of the references :func:`references_of` gives:

- ``spin/`` datasets and task names: the catalog's reference scores, once per (task, bins). ``random`` is the mean
  return of the uniform random policy over 100 episodes, ``expert`` that of the greedy expert snapshot, both
  measured with spin-bench's rollout code (``spin-bench-maintain reference``). ``datasets build`` copies them into
  each dataset's Minari metadata (``ref_min_score`` / ``ref_max_score``); the catalog is what is read.
- ``original/`` datasets (imported files of the original benchmark): the original benchmark's published figures
  (Beeson et al. 2024, used by the SPIN paper), as the import recorded them in the dataset.

The catalog also keeps the original benchmark's figures per task (``paper_reference_scores``), used only when asked
for with ``reference="paper"``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from spin_bench.datasets.catalog import (
    Catalog,
    CatalogError,
    TaskEntry,
    expert_status,
    expert_target,
    load_catalog,
)
from spin_bench.datasets.ids import DEFAULT_BINS, is_original_id

REFERENCES = ("spin", "paper")


class ProvisionalReferenceWarning(UserWarning):
    """A normalized score was computed against an expert reference that is still below its target (a provisional
    snapshot): such scores are not comparable with other tasks' and will change when the expert is replaced."""


SPIN_SOURCE = "spin-bench's reference scores (the dataset catalog)"
PAPER_SOURCE = "the original benchmark's published reference scores (Beeson et al. 2024)"


@dataclass(frozen=True)
class References:
    """The two returns that fix a normalized score: 0 at ``random``, 100 at ``expert``."""

    random: float
    """Mean return of the uniform random policy."""
    expert: float
    """Mean return of the expert."""
    source: str
    """Where the two figures come from, in words (:data:`SPIN_SOURCE` or :data:`PAPER_SOURCE`)."""
    provisional: str | None = None
    """Why the expert figure is provisional (an expert snapshot below its target); None when it is not."""

    def normalize(self, returns):
        """``100 * (returns - random) / (expert - random)`` of one raw episode return (a float) or an array of them
        (an array of the same shape)."""
        arr = np.asarray(returns, dtype=np.float64)
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"returns must be finite numbers, got {returns!r}")
        score = 100.0 * (arr - self.random) / (self.expert - self.random)
        return float(score) if score.ndim == 0 else score

    def warn_if_provisional(self, stacklevel: int = 2) -> None:
        """Issue :class:`ProvisionalReferenceWarning` when the expert figure is provisional."""
        if self.provisional is not None:
            warnings.warn(self.provisional, ProvisionalReferenceWarning, stacklevel=stacklevel + 1)


def entry_references(entry: TaskEntry, reference: str = "spin") -> References:
    """The references of a catalog task entry: its own measurements (``"spin"``) or the paper's (``"paper"``)."""
    paper = entry.paper_reference or {}
    paper_text = (
        f"reference='paper' gives the original benchmark's figures (random {paper['random']}, expert {paper['expert']})"
        if paper.get("random") is not None and paper.get("expert") is not None
        else "the original benchmark published no figures for it"
    )
    if reference == "paper":
        if paper.get("random") is None or paper.get("expert") is None:
            raise CatalogError(f"{entry.label}: {paper_text}; use reference='spin'")
        return References(float(paper["random"]), float(paper["expert"]), PAPER_SOURCE)
    low, high = entry.reference_pair()
    for which, value in (("random", low), ("expert", high)):
        if value is None:
            raise CatalogError(f"{entry.label} has no spin-bench {which} reference score yet; {paper_text}")
    provisional = None
    if expert_status(entry) == "below target":
        provisional = (
            f"{entry.label}: the expert reference {high:g} is provisional (below its target "
            f"{expert_target(entry):g}); normalized scores against it are not comparable with other tasks'"
        )
    return References(float(low), float(high), SPIN_SOURCE, provisional)


def _resolve(name: str, bins: int, reference: str | None, catalog: Catalog | None) -> References:
    if reference is not None and reference not in REFERENCES:
        raise ValueError(f"reference={reference!r} is not allowed; use one of {', '.join(REFERENCES)}")
    is_id = "/" in name  # task names never hold a slash; dataset ids always do
    if is_id and bins != DEFAULT_BINS:
        raise ValueError(f"bins={bins!r} with the dataset id {name!r}: a dataset id names its own bins; leave bins out")
    if is_original_id(name):
        if reference == "spin":
            raise ValueError(
                f"{name} is scored with the original benchmark's references; reference='spin' is for spin/ datasets"
            )
        from spin_bench.datasets.original import imported_references

        return imported_references(name)
    catalog = catalog if catalog is not None else load_catalog()
    entry = catalog.lookup(name)[0] if is_id else catalog.task_entry(name, bins)
    return entry_references(entry, reference or "spin")


def references_of(
    name: str, bins: int = DEFAULT_BINS, *, reference: str | None = None, catalog: Catalog | None = None
) -> References:
    """The references that normalize returns on ``name``: a task (at ``bins`` bins) or a dataset id.

    ``reference``: ``"spin"`` (the default for tasks and ``spin/`` ids: the catalog's measurements) or ``"paper"``
    (the original benchmark's published figures; the only ones for ``original/`` ids). Issues
    :class:`ProvisionalReferenceWarning` when the expert figure is provisional.
    """
    refs = _resolve(name, bins, reference, catalog)
    refs.warn_if_provisional()
    return refs


def reference_scores(
    task: str, bins: int = DEFAULT_BINS, *, reference: str | None = None, catalog: Catalog | None = None
) -> tuple[float, float]:
    """``(random, expert)`` reference returns of ``task`` at ``bins`` bins (or of a dataset id).

    ``reference="spin"`` (the default for tasks and ``spin/`` ids): spin-bench's own measurements in the catalog,
    copied into the datasets' Minari metadata when they are built. ``reference="paper"``: the original benchmark's
    published figures, for comparison with the papers (the only ones for ``original/`` ids).
    """
    refs = _resolve(task, bins, reference, catalog)
    return refs.random, refs.expert


def normalized_score(
    name: str,
    returns,
    bins: int = DEFAULT_BINS,
    *,
    reference: str | None = None,
    catalog: Catalog | None = None,
):
    """``100 * (returns - random) / (expert - random)``: 0 = uniform random policy, 100 = expert.

    ``name``: a task (``"cheetah-run"``, at ``bins`` bins) or a dataset id (``"spin/cheetah-run/expert-v0"``,
    ``"original/cheetah-run/medium-v0"``). ``returns``: one raw episode return or an array of them; returns a float
    or an array of the same shape. ``reference``: see :func:`references_of`.
    """
    refs = _resolve(name, bins, reference, catalog)
    refs.warn_if_provisional()
    return refs.normalize(returns)
