"""A dataset id resolved once: everything later steps need (making it local, checking its digest, loading it,
scoring returns on it), so that none of them looks the id up again."""

from __future__ import annotations

from dataclasses import dataclass, field

from spin_bench.datasets.catalog import Catalog, DatasetEntry, TaskEntry, load_catalog
from spin_bench.datasets.ids import is_original_id
from spin_bench.datasets.scores import References, entry_references


@dataclass(frozen=True)
class ResolvedDataset:
    """One dataset of the catalog (``spin/...``) or one imported original-benchmark dataset (``original/...``)."""

    id: str
    task: str
    bins: int
    env_id: str
    """Evaluation env id."""
    env_kwargs: dict
    """Keyword arguments of ``gymnasium.make`` for the evaluation env."""
    references: References
    """What normalizes returns on this dataset (:func:`spin_bench.datasets.scores.references_of`)."""
    catalog: Catalog | None = field(default=None, repr=False)
    """The catalog the id was resolved in; None for an imported dataset (described by its own metadata)."""
    entry: TaskEntry | None = field(default=None, repr=False)
    """The catalog's task entry; None for an imported dataset."""
    dataset_entry: DatasetEntry | None = field(default=None, repr=False)
    """The catalog's dataset entry; None for an imported dataset."""

    @property
    def imported(self) -> bool:
        """True for an imported original-benchmark dataset (not in the catalog: not downloadable or buildable)."""
        return self.catalog is None


def resolve_dataset(dataset_id: str, *, catalog: Catalog | None = None) -> ResolvedDataset:
    """Look ``dataset_id`` up once: in the catalog (``spin/`` ids; CatalogError naming the closest ids when it is
    not there) or in the imported dataset's metadata (``original/`` ids; DatasetError when it is not imported).
    Issues ProvisionalReferenceWarning when its expert reference is provisional."""
    if is_original_id(dataset_id):
        from spin_bench.datasets.original import read_import

        env_id, env_kwargs, references = read_import(dataset_id)
        references.warn_if_provisional()
        bins = env_kwargs.get("bins")
        task = dataset_id.split("/")[1].removesuffix(f"-bins{bins}")
        return ResolvedDataset(dataset_id, task, bins, env_id, env_kwargs, references)
    catalog = catalog if catalog is not None else load_catalog()
    entry, ds = catalog.lookup(dataset_id)
    references = entry_references(entry)
    references.warn_if_provisional()
    return ResolvedDataset(
        id=dataset_id,
        task=entry.task,
        bins=entry.bins,
        env_id=entry.env_id,
        env_kwargs=dict(entry.env_kwargs),
        references=references,
        catalog=catalog,
        entry=entry,
        dataset_entry=ds,
    )
