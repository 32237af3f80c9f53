"""Recording a dataset: build it from its recipe and store its sha256, statistics and prefix fingerprint in the
catalog, which is what every later build and download is checked against."""

from __future__ import annotations

from dataclasses import dataclass

from spin_bench.datasets.build import BuildResult, build_dataset
from spin_bench.datasets.catalog import Catalog, load_catalog
from spin_bench.datasets.kernels import RECORDING_KERNELS, local_kernels, local_openblas_core
from spin_bench.datasets.minari_io import DatasetError
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

    A catalog that already records the dataset is left as it is: the build must then match it (as any build). An
    entry recorded for the first time also records the BLAS kernels of this machine (``recording_kernels``).
    """
    catalog = catalog if catalog is not None else load_catalog()
    entry, ds = catalog.lookup(dataset_id)
    kernels = entry.recording_kernels or local_kernels()
    if kernels is None and ds.sha256 is None:
        raise DatasetError(
            f"cannot record {dataset_id} here: numpy runs OpenBLAS core {local_openblas_core()!r}, whose "
            f"arithmetic spin-bench cannot reproduce elsewhere; record on an x86-64 machine running one of "
            f"{', '.join(RECORDING_KERNELS)}"
        )
    result = build_dataset(dataset_id, workers=workers, force=force, progress=progress, catalog=catalog)
    if result.catalog_sha256 is not None:
        return RecordResult(**vars(result), recorded=False)
    prefix = prefix_from_installed(ds, result.path / "data")
    stats = {k: v for k, v in result.stats.items() if k != "transitions"}
    with edit_catalog(catalog.path) as fresh:  # re-read: another build may have recorded meanwhile
        if fresh.task_entry(entry.task, entry.bins).recording_kernels is None:
            fresh.set_recording_kernels(entry.task, entry.bins, kernels)
        fresh.record_build(dataset_id, result.sha256, stats, recorded_with=library_versions(), prefix=prefix)
    return RecordResult(**vars(result), recorded=True)
