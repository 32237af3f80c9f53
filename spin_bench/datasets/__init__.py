"""Offline datasets: catalog (read), Minari build from shipped snapshots, download, loading, normalized scores.

Importing this package stays light: the names below load their modules on first use.
"""

from __future__ import annotations

import importlib

from spin_bench.datasets.transitions import Transitions

_LAZY = {
    "Catalog": "catalog",
    "CatalogError": "catalog",
    "load_catalog": "catalog",
    "default_catalog_path": "catalog",
    "QUALITIES": "ids",
    "dataset_id": "ids",
    "parse_dataset_id": "ids",
    "build_dataset": "build",
    "download_dataset": "remote",
    "DatasetError": "minari_io",
    "DatasetIntegrityError": "minari_io",
    "DamagedDatasetError": "minari_io",
    "DatasetUnavailableError": "remote",
    "dataset_digest": "digest",
    "verified_digest": "integrity",
    "load_dataset": "loading",
    "make_env_and_dataset": "loading",
    "SpinDataset": "loading",
    "normalized_score": "scores",
    "reference_scores": "scores",
    "references_of": "scores",
    "References": "scores",
    "ResolvedDataset": "resolved",
    "resolve_dataset": "resolved",
}

__all__ = ["Transitions", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'spin_bench.datasets' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"spin_bench.datasets.{module}"), name)
    globals()[name] = value
    return value
