"""The runner's view of the datasets: which exist, making them present, and what a run trains on."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from spin_bench.datasets.ids import ORIGINAL_DATASETS, QUALITIES, dataset_id
from spin_bench.datasets.resolved import ResolvedDataset, resolve_dataset
from spin_bench.datasets.scores import References
from spin_bench.datasets.transitions import Transitions
from spin_bench.envs import all_tasks as _all_tasks

DATASET_NAMES: tuple[str, ...] = QUALITIES + ORIGINAL_DATASETS
"""What ``--dataset`` accepts: a catalog quality, or ``original/<quality>`` (imported original benchmark files)."""

__all__ = [
    "DATASET_NAMES",
    "QUALITIES",
    "RunData",
    "all_tasks",
    "ensure_datasets",
    "load_run_data",
    "resolve",
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
    references: References
    """The dataset's reference scores (:func:`spin_bench.datasets.scores.references_of`)."""

    @property
    def normalize(self) -> Callable[[float], float]:
        """Return -> normalized score (0 = random, 100 = expert)."""
        return self.references.normalize


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


def resolve(task: str, quality: str, bins: int) -> ResolvedDataset:
    """The dataset a run names, resolved once before any work (the later steps get this record, not the id):
    CatalogError or ValueError (bad input) if it does not exist, DatasetError (a data failure) if it cannot be
    obtained."""
    from spin_bench.datasets.build import build_blockers
    from spin_bench.datasets.minari_io import DatasetError

    if quality in ORIGINAL_DATASETS:
        from spin_bench.datasets.original import check_available

        check_available(task, quality, bins)
        return resolve_dataset(dataset_id(task, quality, bins))
    dataset = resolve_dataset(dataset_id(task, quality, bins))
    if not _obtainable(dataset.entry, dataset.dataset_entry):
        raise DatasetError(
            f"dataset {dataset.id} is not local, not published and not buildable: "
            f"{build_blockers(dataset.entry, dataset.dataset_entry)[0]}"
        )
    return dataset


def ensure_datasets(datasets: Iterable[str | ResolvedDataset]) -> dict[str, ResolvedDataset]:
    """Download (or build, when no remote has it) every catalog dataset that is not installed; each one resolved,
    by id. Imported data cannot be downloaded or built: :func:`resolve` says when it is missing."""
    from spin_bench.datasets.loading import ensure_local

    resolved = {}
    for dataset in datasets:
        if not isinstance(dataset, ResolvedDataset):
            dataset = resolve_dataset(dataset)
        ensure_local(dataset)
        resolved[dataset.id] = dataset
    return resolved


def load_run_data(dataset: str | ResolvedDataset) -> RunData:
    """The transitions, evaluation env and references of a run's dataset (an id, or resolved already)."""
    if not isinstance(dataset, ResolvedDataset):
        dataset = resolve_dataset(dataset)
    if dataset.imported:
        from spin_bench.datasets.original import imported_transitions

        transitions = imported_transitions(dataset.id)
    else:
        from spin_bench.datasets.loading import load_dataset

        transitions = load_dataset(dataset).transitions
    return RunData(
        transitions=transitions,
        env_id=dataset.env_id,
        env_kwargs=dict(dataset.env_kwargs),
        references=dataset.references,
    )
