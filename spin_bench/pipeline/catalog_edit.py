"""Editing the dataset catalog: the maintainers' writes (checkpoints, reference scores, recorded builds, new entries).

Every edit goes through :func:`edit_catalog`, which re-reads the file under an exclusive lock and writes it back
atomically with its key order, so concurrent builds and measurements (one per task) never overwrite each other and
the file stays readable. Reading is the user side's :mod:`spin_bench.datasets.catalog`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from spin_bench._io import atomic_write_text
from spin_bench.datasets.catalog import (
    RANDOM_POLICY,
    Catalog,
    CatalogError,
    Segment,
    default_catalog_path,
    load_catalog,
)
from spin_bench.datasets.digest import DIGEST_FORMAT
from spin_bench.datasets.ids import QUALITIES, dataset_id


class EditableCatalog(Catalog):
    """A catalog whose ``set_*``/``record_*`` methods edit ``raw`` (validated again after each edit); :meth:`save`
    writes it back atomically."""

    @classmethod
    def read(cls, path: str | Path | None = None) -> EditableCatalog:
        catalog = load_catalog(path)
        return cls(catalog.raw, catalog.path)

    def _raw_entry(self, task: str, bins: int) -> dict:
        return self.task_entry(task, bins).raw

    def set_checkpoint(self, task: str, bins: int, name: str, **fields: Any) -> None:
        """Update a checkpoint's fields (``sha256``, ``env_steps``, ``eval_return`` ...)."""
        raw = self._raw_entry(task, bins)
        if name not in raw["checkpoints"]:
            raise CatalogError(
                f"{task} ({bins} bins) has no checkpoint {name!r}; checkpoints: {', '.join(raw['checkpoints'])}"
            )
        raw["checkpoints"][name].update(fields)
        self._parse()

    def set_reference(self, task: str, bins: int, which: str, **fields: Any) -> None:
        """Update ``reference_scores.<which>`` (``value``, ``std``, ``measured_with`` ...)."""
        if which not in ("random", "expert"):
            raise CatalogError(f"reference {which!r} is not allowed; use 'random' or 'expert'")
        self._raw_entry(task, bins)["reference_scores"][which].update(fields)
        self._parse()

    def record_build(
        self, dataset_id: str, sha256: str, stats: dict, recorded_with: dict, prefix: dict | None = None
    ) -> None:
        """Store the sha256, summary statistics and prefix fingerprint of a built dataset."""
        entry, ds = self.lookup(dataset_id)
        d = entry.raw["datasets"][dataset_id]
        d["sha256"] = sha256
        d["stats"] = stats
        if prefix is not None:
            d["prefix"] = prefix
        d["recorded_with"] = recorded_with
        self.raw.setdefault("digest_format", DIGEST_FORMAT)
        self._parse()

    def set_recording_kernels(self, task: str, bins: int, kernels: str) -> None:
        """Name the BLAS kernels the entry's datasets are recorded with (placed after ``max_episode_steps``)."""
        raw = self._raw_entry(task, bins)
        items = [(k, v) for k, v in raw.items() if k != "recording_kernels"]
        at = next(i for i, (k, _) in enumerate(items) if k == "max_episode_steps") + 1
        items.insert(at, ("recording_kernels", kernels))
        raw.clear()
        raw.update(items)
        self._parse()

    def record_prefix(self, dataset_id: str, prefix: dict) -> None:
        """Store the prefix fingerprint of a recorded build (see :mod:`spin_bench.pipeline.fingerprint`)."""
        entry, _ = self.lookup(dataset_id)
        entry.raw["datasets"][dataset_id]["prefix"] = prefix
        self._parse()

    def save(self, path: str | Path | None = None) -> Path:
        """Write the catalog atomically (temporary file, then rename)."""
        path = Path(path) if path is not None else self.path
        atomic_write_text(path, json.dumps(self.raw, indent=2, ensure_ascii=False) + "\n")
        return path


@contextlib.contextmanager
def edit_catalog(path: str | Path | None = None) -> Iterator[EditableCatalog]:
    """Read the catalog under an exclusive lock, yield it for edits, and save it atomically on success.

    Builds, reference measurements and checkpoint registrations may run at the same time (one per task):
    each re-reads the file under the lock, so none overwrites what another recorded.
    """
    path = Path(path) if path is not None else default_catalog_path()
    with catalog_lock(path):
        catalog = EditableCatalog.read(path)
        yield catalog
        catalog.save(path)


@contextlib.contextmanager
def catalog_lock(path: Path) -> Iterator[None]:
    """Hold the exclusive lock that every edit of the catalog file at ``path`` takes."""
    import fcntl

    with open(path.with_name(f".{path.name}.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def entry_json(
    task: str,
    bins: int,
    *,
    env_id: str,
    env_kwargs: dict,
    max_episode_steps: int,
    checkpoints: dict[str, str],
    paper_reference: dict | None,
    sizes: dict[str, int],
    seeds: dict[str, int],
    epsilon: float,
    reference_seeds: tuple[int, int],
    reference_episodes: int = 100,
) -> dict:
    """A fresh catalog entry with the standard five datasets (used to write the catalog; see ``sizes``/``seeds``).

    ``sizes``: transitions per quality (``medium-expert`` is the sum of medium and expert). ``seeds``: segment seed
    per quality, and ``random-medium-expert/<policy>`` for the three segments of the mix.
    """
    per_episode = max_episode_steps

    def n(size: int) -> int:
        if size % per_episode:
            raise ValueError(f"size={size} is not a whole number of {per_episode}-step episodes")
        return size // per_episode

    def ds(quality: str, recipe: dict, size: int) -> tuple[str, dict]:
        return dataset_id(task, quality, bins), {
            "quality": quality,
            "size": size,
            "recipe": recipe,
            "sha256": None,
            "stats": None,
        }

    def seg(policy: str, episodes: int, seed: int) -> dict:
        return Segment(policy, episodes, seed, 0.0 if policy == RANDOM_POLICY else epsilon).to_json()

    rme = n(sizes["random-medium-expert"])
    thirds = [rme // 3 + (i < rme % 3) for i in range(3)]  # as even as possible, earlier first: 200 -> 67, 67, 66
    datasets = dict(
        [
            ds("random", {"segments": [seg("random", n(sizes["random"]), seeds["random"])]}, sizes["random"]),
            ds("medium", {"segments": [seg("medium", n(sizes["medium"]), seeds["medium"])]}, sizes["medium"]),
            ds("expert", {"segments": [seg("expert", n(sizes["expert"]), seeds["expert"])]}, sizes["expert"]),
            ds(
                "medium-expert",
                {"concat": [dataset_id(task, "medium", bins), dataset_id(task, "expert", bins)]},
                sizes["medium"] + sizes["expert"],
            ),
            ds(
                "random-medium-expert",
                {
                    "segments": [
                        seg(policy, count, seeds[f"random-medium-expert/{policy}"])
                        for policy, count in zip(("random", "medium", "expert"), thirds, strict=True)
                    ]
                },
                sizes["random-medium-expert"],
            ),
        ]
    )
    assert set(QUALITIES) == {d["quality"] for d in datasets.values()}
    return {
        "task": task,
        "bins": bins,
        "env_id": env_id,
        "env_kwargs": env_kwargs,
        "max_episode_steps": max_episode_steps,
        "reference_scores": {
            "random": {
                "value": None,
                "std": None,
                "policy": RANDOM_POLICY,
                "episodes": reference_episodes,
                "seed": reference_seeds[0],
                "measured_with": None,
            },
            "expert": {
                "value": None,
                "std": None,
                "policy": "expert",
                "epsilon": 0.0,
                "episodes": reference_episodes,
                "seed": reference_seeds[1],
                "measured_with": None,
            },
        },
        "paper_reference_scores": paper_reference,
        "checkpoints": {
            name: {"path": path, "sha256": None, "env_steps": None, "eval_return": None}
            for name, path in checkpoints.items()
        },
        "datasets": datasets,
    }
