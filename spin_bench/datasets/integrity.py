"""Is the installed dataset the catalog's? The verified content digest, with a fast path.

Hashing a 1M-transition dataset takes seconds, so the digest of an installed dataset is remembered in a small
sidecar file in its folder (``<data dir>/<id>/.spin-bench-digest.json``, outside ``data/`` so Minari's own size and
listings ignore it). The sidecar holds the digest format, the sha256, and the device, inode, size, mtime and ctime
(both in ns) of ``data/main_data.hdf5`` and ``data/metadata.json`` as they were hashed. Any change to either file
(rewritten, replaced, edited in place even with its mtime restored: the ctime still moves) misses the cache, and
the files are hashed again. The sidecar is only a cache: a missing, unreadable or unwritable one costs a rehash.

A local build whose sha256 differs from the catalog's (``datasets build --allow-mismatch``: this CPU breaks some
float32 near-ties of the behaviour network differently from the recording machine's) carries a second file,
``.spin-bench-local-build.json``, with the sha256 it was built with. Such a copy verifies against that record
instead of the catalog; runs on it carry its sha256 in their identity, so they never mix with runs on the
published data.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from spin_bench._io import atomic_write_json
from spin_bench.datasets.catalog import Catalog, load_catalog
from spin_bench.datasets.digest import DIGEST_FORMAT, dataset_digest
from spin_bench.datasets.ids import is_original_id
from spin_bench.datasets.minari_io import (
    DamagedDatasetError,
    DatasetError,
    DatasetIntegrityError,
    is_installed,
    local_dataset_dir,
    repair_hint,
)

if TYPE_CHECKING:
    from spin_bench.datasets.resolved import ResolvedDataset

__all__ = [
    "DamagedDatasetError",
    "DatasetIntegrityError",
    "forget_digest",
    "local_build_digest",
    "record_digest",
    "record_local_build",
    "verified_digest",
]

SIDECAR = ".spin-bench-digest.json"
LOCAL_BUILD = ".spin-bench-local-build.json"
"""In a dataset folder beside ``data/``: installed by ``build --allow-mismatch`` with a sha256 not the catalog's."""
_HASHED_FILES = ("data/main_data.hdf5", "data/metadata.json")


def _file_keys(dataset_dir: Path) -> dict | None:
    """The identity of the hashed files as the filesystem sees them (None: one is missing)."""
    keys = {}
    for name in _HASHED_FILES:
        try:
            st = os.stat(dataset_dir / name)
        except OSError:
            return None
        keys[name] = {
            "dev": st.st_dev,
            "inode": st.st_ino,
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "ctime_ns": st.st_ctime_ns,
        }
    return keys


def _cached(dataset_dir: Path, keys: dict | None) -> str | None:
    if keys is None:
        return None
    try:
        cache = json.loads((dataset_dir / SIDECAR).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(cache, dict) or cache.get("format") != DIGEST_FORMAT or cache.get("files") != keys:
        return None
    sha256 = cache.get("sha256")
    return sha256 if isinstance(sha256, str) else None


def record_digest(dataset_dir: Path, sha256: str, keys: dict | None = None) -> None:
    """Remember that the files of ``dataset_dir`` hash to ``sha256`` (``keys``: their identity when hashed;
    default: now). Best effort: a read-only folder just means no fast path."""
    keys = keys if keys is not None else _file_keys(dataset_dir)
    if keys is None:
        return
    with contextlib.suppress(OSError):
        atomic_write_json(dataset_dir / SIDECAR, {"format": DIGEST_FORMAT, "sha256": sha256, "files": keys})


def forget_digest(dataset_dir: Path) -> None:
    """Drop the sidecar (before uploading the folder: it describes this machine's files only)."""
    with contextlib.suppress(OSError):
        (Path(dataset_dir) / SIDECAR).unlink(missing_ok=True)


def record_local_build(dataset_dir: Path, sha256: str, catalog_sha256: str) -> None:
    """Mark ``dataset_dir`` as a local build whose data hashes to ``sha256``, not the catalog's ``catalog_sha256``."""
    atomic_write_json(
        Path(dataset_dir) / LOCAL_BUILD,
        {"format": DIGEST_FORMAT, "sha256": sha256, "catalog_sha256": catalog_sha256},
    )


def local_build_digest(dataset_id: str) -> str | None:
    """The sha256 that an installed local build (``build --allow-mismatch``) was built with; None for any other copy."""
    try:
        record = json.loads((local_dataset_dir(dataset_id) / LOCAL_BUILD).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != DIGEST_FORMAT:
        return None
    sha256 = record.get("sha256")
    return sha256 if isinstance(sha256, str) else None


def installed_digest(dataset_id: str, *, recompute: bool = False) -> str:
    """The ``spin-bench-digest-v2`` sha256 of the installed ``dataset_id``: the sidecar's when the files are
    unchanged since they were hashed (and ``recompute`` is False), else hashed now and remembered."""
    dataset_dir = local_dataset_dir(dataset_id)
    if not is_installed(dataset_id):
        raise DatasetError(
            f"{dataset_id} is not installed at {dataset_dir}; download it (spin-bench datasets download "
            f"{dataset_id}) or build it (spin-bench datasets build {dataset_id})"
        )
    before = _file_keys(dataset_dir)
    if not recompute:
        cached = _cached(dataset_dir, before)
        if cached is not None:
            return cached
    digest = dataset_digest(dataset_dir / "data", dataset_id=dataset_id)
    if before is not None and _file_keys(dataset_dir) == before:  # not changed while it was being hashed
        record_digest(dataset_dir, digest, before)
    return digest


def verified_digest(
    dataset: str | ResolvedDataset,
    *,
    catalog: Catalog | None = None,
    recompute: bool = False,
    accept_local_build: bool = False,
) -> str:
    """The installed dataset's sha256 (digest format v2: arrays and ``metadata.json``), checked against the catalog.

    Uses the cached digest while the data and metadata files are unchanged (size, mtime, ctime, inode), so a
    large dataset is not rehashed on every call; ``recompute=True`` hashes the files regardless.
    Raises DatasetIntegrityError (one line naming the dataset, both digests and the fix) when the digest differs
    from the catalog's recorded sha256 or the files cannot be read. A dataset without a recorded sha256 (not
    published yet) gets its computed digest back. ``accept_local_build``: a local build (:func:`record_local_build`)
    whose files still hash to the sha256 it was built with gets its digest back too (training and checking may use
    one; publishing and recording from the installed copy may not). ``dataset``: an id, or a dataset resolved
    already.
    """
    dataset_id = dataset if isinstance(dataset, str) else dataset.id
    if is_original_id(dataset_id):  # imported data: not in the catalog, checked against its import record
        from spin_bench.datasets.original import verified_digest as verified_import_digest

        return verified_import_digest(dataset_id, recompute=recompute)
    if isinstance(dataset, str):
        ds = (catalog if catalog is not None else load_catalog()).dataset(dataset_id)
    else:
        ds = dataset.dataset_entry
    digest = installed_digest(dataset_id, recompute=recompute)
    if ds.sha256 is not None and digest != ds.sha256:
        local = local_build_digest(dataset_id)
        if local == digest:
            if accept_local_build:
                return digest
            raise DatasetIntegrityError(
                f"{dataset_id}: the installed copy is a local build (sha256 {digest[:16]}...), not the catalog's "
                f"data ({ds.sha256[:16]}...); download the published data (spin-bench datasets download "
                f"{dataset_id} --force) or build it on a machine that reproduces it"
            )
        if local is not None:
            raise DatasetIntegrityError(
                f"{dataset_id}: the installed local build has sha256 {digest[:16]}..., it was built with "
                f"{local[:16]}... (corrupt or changed); {repair_hint(dataset_id, verified=recompute)}"
            )
        raise DatasetIntegrityError(
            f"{dataset_id}: the installed data has sha256 {digest[:16]}..., the catalog records {ds.sha256[:16]}... "
            f"(corrupt or changed); {repair_hint(dataset_id, verified=recompute)}"
        )
    return digest
