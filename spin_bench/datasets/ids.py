"""Dataset ids: ``spin/<domain>-<task>/<quality>-v<N>`` at 3 bins, else ``spin/<domain>-<task>-bins<M>/<quality>-v<N>``.

The id is also the dataset's Minari id (namespace ``spin/<domain>-<task>[-bins<M>]``, name ``<quality>``), so
``minari.load_dataset("spin/cheetah-run/expert-v0")`` and ``minari download`` work on it unchanged. 3 bins is the
benchmark default and has exactly one spelling: ``spin/cheetah-run-bins3/...`` is rejected.

The original benchmark's files, once imported (``spin-bench datasets import-original``), have ids of the same form in
the ``original`` namespace (``original/cheetah-run/medium-v0``); runs name them ``original/<quality>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

NAMESPACE = "spin"
DEFAULT_BINS = 3
QUALITIES: tuple[str, ...] = ("random", "medium", "expert", "medium-expert", "random-medium-expert")
ORIGINAL_NAMESPACE = "original"
ORIGINAL_QUALITIES: tuple[str, ...] = ("medium", "expert", "medium-expert", "random-medium-expert")
"""The levels of the original benchmark's datasets (it has no random-only dataset)."""
ORIGINAL_DATASETS: tuple[str, ...] = tuple(f"{ORIGINAL_NAMESPACE}/{q}" for q in ORIGINAL_QUALITIES)
"""How a run names an imported original dataset: ``--dataset original/medium``."""

_ID_RE = re.compile(
    rf"^{NAMESPACE}/(?P<task>[A-Za-z0-9_]+-[A-Za-z0-9_]+?)(?:-bins(?P<bins>[0-9]+))?/(?P<quality>[a-z-]+)-v(?P<version>[0-9]+)$"
)


@dataclass(frozen=True)
class DatasetKey:
    """The parts of a dataset id."""

    task: str
    bins: int
    quality: str
    version: int

    @property
    def id(self) -> str:
        return dataset_id(self.task, self.quality, bins=self.bins, version=self.version)


def task_namespace(task: str, bins: int = DEFAULT_BINS, namespace: str = NAMESPACE) -> str:
    """The Minari namespace of a (task, bins): ``spin/dog-trot`` or ``spin/dog-trot-bins10``."""
    return f"{namespace}/{task}" if bins == DEFAULT_BINS else f"{namespace}/{task}-bins{bins}"


def is_original_id(dataset_id: str) -> bool:
    """True for the id of an imported original-benchmark dataset (``original/...``)."""
    return dataset_id.startswith(f"{ORIGINAL_NAMESPACE}/")


def dataset_id(task: str, quality: str, bins: int = DEFAULT_BINS, version: int = 0) -> str:
    """``dataset_id("dog-trot", "expert", bins=10)`` -> ``"spin/dog-trot-bins10/expert-v0"``;
    ``dataset_id("cheetah-run", "original/medium")`` -> ``"original/cheetah-run/medium-v0"``."""
    namespace = NAMESPACE
    if quality in ORIGINAL_DATASETS:
        namespace, quality = quality.split("/")
    elif quality not in QUALITIES:
        raise ValueError(
            f"quality={quality!r} is not allowed; use one of {', '.join(QUALITIES)} "
            f"(imported original datasets: {', '.join(ORIGINAL_DATASETS)})"
        )
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 2:
        raise ValueError(f"bins={bins!r} is not allowed; use an int >= 2")
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise ValueError(f"version={version!r} is not allowed; use an int >= 0")
    return f"{task_namespace(task, bins, namespace)}/{quality}-v{version}"


def parse_dataset_id(dataset_id: str) -> DatasetKey:
    """Split an id into (task, bins, quality, version); malformed ids raise ValueError naming the expected form."""
    if not isinstance(dataset_id, str):
        raise ValueError(f"dataset id {dataset_id!r} is not a string; expected e.g. 'spin/cheetah-run/expert-v0'")
    match = _ID_RE.fullmatch(dataset_id)
    if match is None:
        raise ValueError(
            f"malformed dataset id {dataset_id!r}; expected 'spin/<domain>-<task>/<quality>-v<N>' at 3 bins or "
            f"'spin/<domain>-<task>-bins<M>/<quality>-v<N>', e.g. 'spin/cheetah-run/expert-v0'"
        )
    quality = match["quality"]
    if quality not in QUALITIES:
        raise ValueError(f"dataset id {dataset_id!r} has quality {quality!r}; allowed: {', '.join(QUALITIES)}")
    bins = DEFAULT_BINS if match["bins"] is None else int(match["bins"])
    if match["bins"] is not None and bins == DEFAULT_BINS:
        canonical = f"{task_namespace(match['task'])}/{quality}-v{match['version']}"
        raise ValueError(f"dataset id {dataset_id!r} spells out the default 3 bins; use {canonical!r}")
    if bins < 2:
        raise ValueError(f"dataset id {dataset_id!r} has bins={bins}; allowed: an int >= 2")
    return DatasetKey(task=match["task"], bins=bins, quality=quality, version=int(match["version"]))
