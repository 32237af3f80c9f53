"""The runner's view of the datasets: which exist, making them present, and what a run trains on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spin_bench.datasets.ids import ORIGINAL_DATASETS, QUALITIES, dataset_id, is_original_id
from spin_bench.datasets.transitions import Transitions
from spin_bench.envs import all_tasks as _all_tasks

DATASET_NAMES: tuple[str, ...] = QUALITIES + ORIGINAL_DATASETS
"""What ``--dataset`` accepts: a catalog quality, or ``original/<quality>`` (imported original benchmark files)."""

__all__ = [
    "DATASET_NAMES",
    "QUALITIES",
    "RunData",
    "all_tasks",
    "check_dataset_available",
    "ensure_datasets",
    "load_run_data",
    "normalizer",
    "tasks_with_datasets",
    "tasks_without_datasets",
]


@dataclass(frozen=True)
class RunData:
    """What one run needs from its dataset."""

    transitions: Transitions
    """The flat transition view."""
    env_id: str
    """Evaluation env id (the catalog's)."""
    env_kwargs: dict[str, Any]
    """Keyword arguments of ``gymnasium.make`` for the evaluation env."""
    normalize: Callable[[float], float]
    """Return -> normalized score (0 = random, 100 = expert)."""


def all_tasks() -> tuple[str, ...]:
    return _all_tasks()


def _obtainable(entry, ds) -> bool:
    from spin_bench.datasets.build import build_blockers
    from spin_bench.datasets.minari_io import is_installed

    return is_installed(ds.id) or ds.sha256 is not None or not build_blockers(entry, ds)


def tasks_with_datasets(bins: int) -> tuple[str, ...]:
    """Tasks whose catalog entry at ``bins`` has a dataset that is local, published or buildable."""
    from spin_bench.datasets.catalog import load_catalog

    return tuple(
        entry.task
        for entry in load_catalog()
        if entry.bins == bins and any(_obtainable(entry, ds) for ds in entry.datasets.values())
    )


def tasks_without_datasets(bins: int) -> list[tuple[str, str]]:
    """``(task, why)`` for every catalog entry at ``bins`` whose datasets cannot be obtained (``--task all`` skips
    them)."""
    from spin_bench.datasets.build import build_blockers
    from spin_bench.datasets.catalog import load_catalog

    skipped = []
    for entry in load_catalog():
        if entry.bins != bins or any(_obtainable(entry, ds) for ds in entry.datasets.values()):
            continue
        blockers = [b for ds in entry.datasets.values() for b in build_blockers(entry, ds)]
        skipped.append((entry.task, blockers[0] if blockers else "no dataset is local, published or buildable"))
    return skipped


def check_dataset_available(task: str, quality: str, bins: int) -> None:
    """Before any work: CatalogError (bad input) if the dataset is not in the catalog, DatasetError (a data
    failure) if it cannot be obtained."""
    from spin_bench.datasets.build import build_blockers
    from spin_bench.datasets.catalog import load_catalog
    from spin_bench.datasets.minari_io import DatasetError

    if quality in ORIGINAL_DATASETS:
        from spin_bench.datasets.original import check_available

        return check_available(task, quality, bins)
    name = dataset_id(task, quality, bins)
    entry, ds = load_catalog().lookup(name)
    if not _obtainable(entry, ds):
        raise DatasetError(
            f"dataset {name} is not local, not published and not buildable: {build_blockers(entry, ds)[0]}"
        )


def ensure_datasets(ids: list[str]) -> None:
    """Download (or build, when no remote has it) every dataset in ``ids`` that is not installed."""
    from spin_bench.datasets.loading import ensure_local

    for name in ids:
        if not is_original_id(name):  # imported data cannot be downloaded or built: check_dataset_available says so
            ensure_local(name)


def normalizer(name: str) -> Callable[[float], float]:
    from spin_bench.datasets.catalog import load_catalog
    from spin_bench.datasets.scores import normalized_score

    if is_original_id(name):
        from spin_bench.datasets.original import reference_of

        low, high = reference_of(name)
        return lambda value: 100.0 * (float(value) - low) / (high - low)
    entry, _ = load_catalog().lookup(name)
    return lambda value: float(normalized_score(entry.task, value, bins=entry.bins))


def load_run_data(name: str) -> RunData:
    from spin_bench.datasets.loading import load_dataset

    if is_original_id(name):
        from spin_bench.datasets.original import load_imported

        imported = load_imported(name)
        return RunData(
            transitions=imported.transitions,
            env_id=imported.env_id,
            env_kwargs=imported.env_kwargs,
            normalize=imported.normalized_score,
        )
    dataset = load_dataset(name)
    return RunData(
        transitions=dataset.transitions,
        env_id=dataset.entry.env_id,
        env_kwargs=dict(dataset.entry.env_kwargs),
        normalize=lambda value: float(dataset.normalized_score(value)),
    )
