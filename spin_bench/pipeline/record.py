"""Recording a dataset: build it from its recipe and store its sha256, statistics and prefix fingerprint in the
catalog, which is what every later build and download is checked against."""

from __future__ import annotations

from dataclasses import dataclass

from spin_bench.datasets.build import BuildResult, build_dataset
from spin_bench.datasets.catalog import Catalog, load_catalog
from spin_bench.datasets.provenance import library_versions
from spin_bench.pipeline.catalog_edit import edit_catalog
from spin_bench.pipeline.fingerprint import prefix_from_installed


@dataclass(frozen=True)
class RecordResult(BuildResult):
    recorded: bool
    """True when this build's sha256, statistics and prefix were written into the catalog (False: it had them)."""


def record_dataset(
    dataset_id: str,
    *,
    workers: int | None = None,
    force: bool = False,
    progress: bool = True,
    catalog: Catalog | None = None,
) -> RecordResult:
    """Build ``dataset_id`` and, when the catalog has no sha256 for it yet, record this build's.

    A catalog that already records the dataset is left as it is: the build must then match it (as any build).
    """
    catalog = catalog if catalog is not None else load_catalog()
    result = build_dataset(dataset_id, workers=workers, force=force, progress=progress, catalog=catalog)
    if result.catalog_sha256 is not None:
        return RecordResult(**vars(result), recorded=False)
    ds = catalog.dataset(dataset_id)
    prefix = prefix_from_installed(ds, result.path / "data")
    stats = {k: v for k, v in result.stats.items() if k != "transitions"}
    with edit_catalog(catalog.path) as fresh:  # re-read: another build may have recorded meanwhile
        fresh.record_build(dataset_id, result.sha256, stats, recorded_with=library_versions(), prefix=prefix)
    return RecordResult(**vars(result), recorded=True)
