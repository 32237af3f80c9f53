"""Load a catalog dataset for training: the Minari dataset, its flat transition view, and the evaluation env."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property

from spin_bench.datasets.catalog import Catalog, DatasetEntry, TaskEntry
from spin_bench.datasets.integrity import verified_digest
from spin_bench.datasets.minari_io import DatasetIntegrityError, is_installed, local_dataset_dir, reading
from spin_bench.datasets.resolved import ResolvedDataset, resolve_dataset
from spin_bench.datasets.scores import References
from spin_bench.datasets.transitions import Transitions


@dataclass(frozen=True, eq=False)
class SpinDataset:
    """A loaded spin-bench dataset.

    ``minari`` is the stock ``minari.MinariDataset`` (episodes, metadata, ``recover_environment()``);
    ``transitions`` the flat view offline agents train on (read on first access, then kept).
    """

    id: str
    minari: object
    entry: TaskEntry
    dataset_entry: DatasetEntry
    references: References
    """The catalog's reference scores of its task (:func:`spin_bench.datasets.scores.references_of`)."""

    @property
    def task(self) -> str:
        return self.entry.task

    @property
    def bins(self) -> int:
        return self.entry.bins

    @property
    def quality(self) -> str:
        return self.dataset_entry.quality

    @property
    def path(self):
        return local_dataset_dir(self.id)

    @cached_property
    def transitions(self) -> Transitions:
        """observations, actions (int8 bin indices), rewards, next_observations, terminals, timeouts, nvec."""
        from spin_bench.datasets.minari_io import read_transitions

        return read_transitions(self.path / "data", dataset_id=self.id)

    @property
    def ref_min_score(self) -> float:
        """The random reference return (the catalog's; the build copied it into the Minari metadata)."""
        return self.references.random

    @property
    def ref_max_score(self) -> float:
        """The expert reference return (the catalog's; the build copied it into the Minari metadata)."""
        return self.references.expert

    def normalized_score(self, returns):
        """100 * (returns - random) / (expert - random): :func:`spin_bench.datasets.scores.normalized_score` of
        this dataset."""
        return self.references.normalize(returns)

    def make_env(self, **kwargs):
        """The evaluation env: ``gymnasium.make(env_id, **env_kwargs)`` from the catalog."""
        return self.entry.make_env(**kwargs)


def ensure_local(
    dataset: str | ResolvedDataset,
    *,
    download: bool = True,
    build: bool = True,
    catalog: Catalog | None = None,
    quiet=False,
) -> None:
    """Make a catalog dataset (an id, or one resolved already) present locally: download it from a remote, or
    build it when no remote has it."""
    from spin_bench.datasets.remote import DatasetUnavailableError, build_hint, download_dataset

    if not isinstance(dataset, ResolvedDataset):
        dataset = resolve_dataset(dataset, catalog=catalog)
    dataset_id, catalog, entry, ds = dataset.id, dataset.catalog, dataset.entry, dataset.dataset_entry
    if dataset.imported or is_installed(dataset_id):  # imported data resolves only once it is installed
        return
    if download:
        try:
            download_dataset(dataset_id, catalog=catalog)
            return
        except DatasetUnavailableError as e:
            if not build:
                raise
            reason, cause = str(e), e.cause
    else:
        reason = f"{dataset_id} is not installed and downloading is disabled; {build_hint(entry, ds)}"
        cause = "downloading is disabled"
    from spin_bench.datasets.build import build_blockers, build_dataset

    if not build or build_blockers(entry, ds):
        raise DatasetUnavailableError(reason)
    if not quiet:
        why = f" ({cause})" if cause else ""
        print(f"{dataset_id} is not installed and cannot be downloaded{why}; building it locally.", file=sys.stderr)
    build_dataset(dataset_id, catalog=catalog, progress=not quiet)


def load_dataset(
    dataset: str | ResolvedDataset,
    *,
    download: bool = True,
    build: bool = True,
    verify: bool = False,
    catalog: Catalog | None = None,
) -> SpinDataset:
    """Load a spin-bench dataset by id (e.g. ``"spin/cheetah-run/expert-v0"``) or as resolved already.

    If it is not installed in Minari's data dir, it is downloaded from the configured remote (verified against the
    catalog's sha256), or built locally from its catalog recipe when no remote has it (``download`` / ``build``
    switch those off). ``verify=True`` also checks an installed copy against the catalog's sha256 (data and metadata;
    hashed about 1 s per GB, then remembered while its files are unchanged: ``integrity.verified_digest``).
    Damaged or changed data raises DatasetIntegrityError naming the fix.

    Returns a :class:`SpinDataset`: ``.minari`` (the ``MinariDataset``), ``.transitions`` (flat numpy view),
    ``.normalized_score(returns)``, ``.make_env()``.
    """
    import minari

    if not isinstance(dataset, ResolvedDataset):
        dataset = resolve_dataset(dataset, catalog=catalog)
    if dataset.imported:
        raise ValueError(
            f"{dataset.id} is an imported original-benchmark dataset, not a catalog one; "
            "minari.load_dataset reads it as any Minari dataset"
        )
    dataset_id = dataset.id
    ensure_local(dataset, download=download, build=build)
    if verify:
        if dataset.dataset_entry.sha256 is None:
            raise DatasetIntegrityError(f"{dataset_id}: the catalog has no sha256 for it yet; cannot verify")
        verified_digest(dataset, accept_local_build=True)
    with reading(local_dataset_dir(dataset_id) / "data", dataset_id):
        data = minari.load_dataset(dataset_id)
    return SpinDataset(
        id=dataset_id,
        minari=data,
        entry=dataset.entry,
        dataset_entry=dataset.dataset_entry,
        references=dataset.references,
    )


def make_env_and_dataset(dataset_id: str, **kwargs):
    """``(env, dataset)``: the evaluation env (``gymnasium.make`` of the catalog's env id and kwargs) and
    :func:`load_dataset` of ``dataset_id`` (keyword arguments go to it)."""
    dataset = load_dataset(dataset_id, **kwargs)
    return dataset.make_env(), dataset
