"""Migrate a catalog's recorded sha256 values from ``spin-bench-digest-v1`` to ``spin-bench-digest-v2``, without data.

    python -m spin_bench.pipeline.migrate_digests [CATALOG]   # default: the catalog spin-bench uses

v2 is the SHA-256 of the v1 digest and the metadata fields v1 left out (see ``spin_bench/datasets/digest.py``);
those fields are what a build writes for the entry's env, so every recorded v1 value has exactly one v2 value and
the published data files stay as they are. A maintainer's tool: nothing on the user path imports it.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

from spin_bench.datasets.catalog import CatalogError, default_catalog_path
from spin_bench.datasets.digest import ARRAYS_FORMAT, DIGEST_FORMAT, combine, expected_metadata_fields
from spin_bench.pipeline.catalog_edit import EditableCatalog, catalog_lock


def migrate_catalog_raw(raw: dict, path: Path) -> tuple[dict, dict[str, tuple[str, str]]]:
    """The catalog document with v2 sha256 values, and ``{dataset id: (v1, v2)}`` for every recorded dataset."""
    found = raw.get("digest_format", ARRAYS_FORMAT)
    if found != ARRAYS_FORMAT:
        raise CatalogError(f"catalog {path} records {found} digests; only {ARRAYS_FORMAT} ones are migrated")
    migrated = {}
    for key, value in raw.items():  # digest_format right after format, the rest in the file's order
        if key != "digest_format":
            migrated[key] = copy.deepcopy(value)
        if key == "format":
            migrated["digest_format"] = DIGEST_FORMAT
    catalog = EditableCatalog(migrated, path)  # parses and validates the entries (their v1 values are well-formed too)
    changes: dict[str, tuple[str, str]] = {}
    for entry in catalog:
        recorded = [ds for ds in entry.datasets.values() if ds.sha256 is not None]
        if not recorded:
            continue
        fields = expected_metadata_fields(entry)
        for ds in recorded:
            v2 = combine(ds.sha256, fields)
            entry.raw["datasets"][ds.id]["sha256"] = v2
            changes[ds.id] = (ds.sha256, v2)
    return migrated, changes


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else default_catalog_path()
    with catalog_lock(path):
        raw = json.loads(path.read_text())
        migrated, changes = migrate_catalog_raw(raw, path)
        EditableCatalog(migrated, path).save()
    for dataset_id, (v1, v2) in changes.items():
        print(f"{dataset_id}: {v1} -> {v2}")
    print(f"{path}: {len(changes)} recorded sha256 values now {DIGEST_FORMAT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
