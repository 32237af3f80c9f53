"""Build a catalog dataset locally: roll out its recipe and write a Minari hdf5 dataset, atomically.

``build_dataset("spin/cheetah-run/expert-v0")`` checks that the recipe's checkpoints are present with the catalog's
sha256 and that both reference scores are measured, simulates the episodes (one process per core), writes them to a
hidden staging folder, computes the content digest, compares it with the catalog's ``sha256`` when one is recorded,
and only then renames the dataset into Minari's data dir. An interrupted build leaves nothing under the id.

A ``concat`` recipe (medium-expert) reuses the installed part datasets' arrays where present and simulates the
missing parts; both give the same arrays because each episode depends only on its (segment seed, index).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spin_bench._io import atomic_write_text
from spin_bench.datasets.catalog import (
    RANDOM_POLICY,
    Catalog,
    DatasetEntry,
    TaskEntry,
    expert_status,
    expert_target,
    load_catalog,
)
from spin_bench.datasets.digest import DIGEST_FORMAT, dataset_digest
from spin_bench.datasets.integrity import record_digest, record_local_build
from spin_bench.datasets.minari_io import (
    DatasetError,
    DatasetIntegrityError,
    datasets_root,
    episode_returns,
    install_staged,
    is_installed,
    local_dataset_dir,
    minari_env,
    read_episodes,
    staging_area,
    write_episodes,
)
from spin_bench.datasets.progress import episode_progress
from spin_bench.datasets.provenance import library_versions, requirements
from spin_bench.datasets.rollout import RolloutConfig, rollout_config, run_episodes, segment_jobs
from spin_bench.datasets.snapshot import NUMPY_EVALUATION


@dataclass(frozen=True)
class BuildResult:
    dataset_id: str
    path: Path
    sha256: str
    catalog_sha256: str | None
    """The catalog's sha256 (None: not recorded yet)."""
    stats: dict
    """Transitions and the return statistics the catalog records (``dataset_stats``)."""
    seconds: float

    @property
    def matches_catalog(self) -> bool | None:
        return None if self.catalog_sha256 is None else self.sha256 == self.catalog_sha256


def build_blockers(entry: TaskEntry, ds: DatasetEntry) -> list[str]:
    """Why ``ds`` cannot be built yet (empty when it can)."""
    reasons = []
    for which in ("random", "expert"):
        if entry.reference[which].value is None:
            reasons.append(
                f"the {which} reference score of {entry.label} is not measured yet "
                f"(spin-bench-maintain reference {entry.task} --bins {entry.bins} --which {which})"
            )
    if expert_status(entry) == "below target":
        # The data would have to be replaced (a new -vN) once the expert improves: build only from finished ones.
        reasons.append(
            f"the expert reference of {entry.label}, {entry.reference['expert'].value:.1f}, is below its target "
            f"{expert_target(entry):.1f}: its checkpoints are provisional until training reaches the target"
        )
    for name in sorted(ds.policies() - {RANDOM_POLICY}):
        status = entry.checkpoints[name].status()
        if status != "available":
            reasons.append(f"checkpoint {name!r} ({entry.checkpoints[name].relpath}) is {status}")
    return reasons


def describe_recipe(entry: TaskEntry, ds: DatasetEntry) -> str:
    parts = []
    for s in ds.segments:
        if s.policy == RANDOM_POLICY:
            parts.append(f"{s.episodes} episodes of the uniform random policy")
        else:
            parts.append(
                f"{s.episodes} episodes of the DecQN {s.policy} snapshot (per-dimension epsilon {s.epsilon:g})"
            )
    return "; ".join(parts)


def _algorithm_name(ds: DatasetEntry) -> str:
    names = []
    for s in ds.segments:
        name = "uniform random policy" if s.policy == RANDOM_POLICY else f"DecQN {s.policy} (epsilon {s.epsilon:g})"
        if name not in names:
            names.append(name)
    return " + ".join(names)


def _metadata(catalog: Catalog, entry: TaskEntry, ds: DatasetEntry) -> tuple[dict, dict]:
    ref_min, ref_max = entry.reference_pair()
    description = (
        f"spin-bench dataset {ds.id}: DeepMind Control {entry.task} with {entry.bins} bins per action dimension "
        f"({entry.env_id}, kwargs {entry.env_kwargs}), {ds.size:,} transitions in {ds.episodes} episodes of "
        f"{entry.max_episode_steps} steps: {describe_recipe(entry, ds)}. Episode j of a segment resets with seed "
        f"segment_seed + j. Episodes end by time limit only (truncations), terminations are all False. "
        f"Actions are int8 bin indices (bin k of dimension d is linspace(low_d, high_d, m)[k]). Normalized score = "
        f"100 * (return - ref_min_score) / (ref_max_score - ref_min_score)."
    )
    maintainers = catalog.maintainers
    metadata = {
        "algorithm_name": _algorithm_name(ds),
        "author": maintainers.get("author"),
        "author_email": maintainers.get("author_email"),
        "code_permalink": maintainers.get("code_permalink"),
        "description": description,
        "ref_min_score": ref_min,
        "ref_max_score": ref_max,
        "num_episodes_average_score": entry.reference["expert"].episodes,
        "requirements": requirements(),
    }
    used = sorted(ds.policies() - {RANDOM_POLICY})
    extra = {
        "spin_bench": {
            "task": entry.task,
            "bins": entry.bins,
            "quality": ds.quality,
            "env_id": entry.env_id,
            "env_kwargs": entry.env_kwargs,
            "catalog_entry": {
                "id": ds.id,
                "quality": ds.quality,
                "size": ds.size,
                "recipe": ds.raw["recipe"],
                "segments": [s.to_json() for s in ds.segments],
            },
            "checkpoints": {
                name: {
                    "path": entry.checkpoints[name].relpath,
                    "sha256": entry.checkpoints[name].sha256,
                    "env_steps": entry.checkpoints[name].env_steps,
                    "eval_return": entry.checkpoints[name].eval_return,
                    "evaluation": NUMPY_EVALUATION,
                }
                for name in used
            },
            "reference_scores": entry.raw["reference_scores"],
            "versions": library_versions(),
            "digest_format": DIGEST_FORMAT,
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
    }
    return metadata, extra


def dataset_stats(returns: np.ndarray, labels: list[str], ref_min: float | None, ref_max: float | None) -> dict:
    """Summary statistics of episode returns (recorded in the catalog after a build)."""
    stats = {
        "episodes": int(returns.size),
        "return_mean": round(float(returns.mean()), 3),
        "return_std": round(float(returns.std()), 3),
        "return_min": round(float(returns.min()), 3),
        "return_max": round(float(returns.max()), 3),
    }
    if ref_min is not None and ref_max is not None and ref_max != ref_min:
        stats["normalized_return_mean"] = round(100.0 * (float(returns.mean()) - ref_min) / (ref_max - ref_min), 2)
    if len(set(labels)) > 1:
        by = {}
        for name in dict.fromkeys(labels):
            sel = np.array([lbl == name for lbl in labels])
            by[name] = round(float(returns[sel].mean()), 3)
        stats["return_mean_by_policy"] = by
    return stats


def _episode_source(catalog: Catalog, ds: DatasetEntry, config: RolloutConfig, workers, advance, installed_root: Path):
    """The episodes of ``ds`` in order: a concat recipe reads installed parts and simulates the others.

    ``installed_root`` is the user's Minari data dir, fixed before the build points Minari at its staging area
    (this generator runs lazily, inside that context).
    """
    parts = [catalog.dataset(p) for p in ds.concat] if ds.concat else [ds]
    for part in parts:
        if ds.concat and is_installed(part.id, installed_root):
            for episode in read_episodes(local_dataset_dir(part.id, installed_root) / "data", dataset_id=part.id):
                advance(episode)
                yield episode
        else:
            yield from run_episodes(config, segment_jobs(part.segments), workers=workers, on_episode=advance)


def build_dataset(
    dataset_id: str,
    *,
    workers: int | None = None,
    force: bool = False,
    allow_mismatch: bool = False,
    progress: bool = True,
    catalog: Catalog | None = None,
) -> BuildResult:
    """Build ``dataset_id`` from its catalog recipe into Minari's data dir.

    Args:
        dataset_id: a catalog id, e.g. ``"spin/cheetah-run/expert-v0"``.
        workers: simulation processes (default: one per core; 1 runs in this process).
        force: replace an installed copy.
        allow_mismatch: install even when the data's sha256 differs from the catalog's (it is then not the
            published data; by default such a build is refused and nothing is installed).
        progress: show a rich progress bar.
        catalog: the catalog to use (default: :func:`load_catalog`).
    """
    catalog = catalog if catalog is not None else load_catalog()
    entry, ds = catalog.lookup(dataset_id)
    blockers = build_blockers(entry, ds)
    if blockers:
        raise DatasetError(f"{dataset_id} cannot be built yet: {'; '.join(blockers)}")
    if is_installed(dataset_id) and not force:
        raise DatasetError(
            f"{dataset_id} is already installed at {local_dataset_dir(dataset_id)}; pass --force to rebuild it"
        )
    config = rollout_config(entry, ds)
    env = entry.make_env()
    env_spec, observation_space, action_space = env.spec, env.observation_space, env.action_space
    env.close()
    if env_spec.max_episode_steps != entry.max_episode_steps:
        raise DatasetError(
            f"{entry.env_id} has max_episode_steps={env_spec.max_episode_steps} but the catalog says "
            f"{entry.max_episode_steps}"
        )
    metadata, extra = _metadata(catalog, entry, ds)
    start = time.perf_counter()
    labels: list[str] = []

    installed_root = datasets_root()
    with staging_area() as stage:
        with minari_env(datasets_path=stage):
            _create_namespaces(entry, ds)
            with episode_progress(f"build {dataset_id}", ds.episodes, enabled=progress) as advance:

                def on_episode(episode) -> None:
                    labels.append(str(episode.metadata.get("policy", "")))
                    advance(episode)

                episodes = _episode_source(catalog, ds, config, workers, on_episode, installed_root)
                write_episodes(
                    dataset_id,
                    episodes,
                    env_spec=env_spec,
                    observation_space=observation_space,
                    action_space=action_space,
                    metadata=metadata,
                    extra_metadata=extra,
                )
        data_dir = stage / dataset_id / "data"
        digest = dataset_digest(data_dir, dataset_id=dataset_id)
        returns = episode_returns(data_dir, dataset_id=dataset_id)
        if len(returns) != ds.episodes or len(labels) != ds.episodes:
            raise DatasetError(f"{dataset_id}: wrote {len(returns)} episodes, the recipe has {ds.episodes}")
        stats = dataset_stats(returns, labels, *entry.reference_pair())
        mismatch = ds.sha256 is not None and digest != ds.sha256
        if mismatch and not allow_mismatch:
            raise DatasetIntegrityError(
                f"{dataset_id}: this build's sha256 {digest[:16]}... differs from the catalog's {ds.sha256[:16]}..., "
                "so this machine does not reproduce the published data (most often: its CPU rounds some float32 "
                "near-ties of the behaviour network the other way, docs/datasets.md); nothing was installed. "
                f"Download the published data (spin-bench datasets download {dataset_id}) or install this "
                f"machine's build as a local build (spin-bench datasets build {dataset_id} --allow-mismatch), "
                "whose runs are kept apart from runs on the published data"
            )
        _store_digest(data_dir, digest)  # for reference; verification trusts the catalog's sha256, not this
        # Only spin_bench.sha256 changed since hashing, a field the digest leaves out: the digest still holds.
        record_digest(data_dir.parent, digest)
        if mismatch:
            record_local_build(data_dir.parent, digest, ds.sha256)
        path = install_staged(stage, dataset_id, force=force)

    return BuildResult(
        dataset_id=dataset_id,
        path=path,
        sha256=digest,
        catalog_sha256=ds.sha256,
        stats={"transitions": int(ds.size), **stats},
        seconds=time.perf_counter() - start,
    )


def _store_digest(data_dir: Path, digest: str) -> None:
    import json

    path = data_dir / "metadata.json"
    meta = json.loads(path.read_text())
    meta["spin_bench"]["sha256"] = digest
    atomic_write_text(path, json.dumps(meta))


def _create_namespaces(entry: TaskEntry, ds: DatasetEntry) -> None:
    """Describe the ``spin`` and ``spin/<task>[-binsM]`` namespaces (Minari shows and uploads these)."""
    from minari.namespace import create_namespace, list_local_namespaces

    top, task_ns = ds.id.split("/")[0], "/".join(ds.id.split("/")[:2])
    if top not in list_local_namespaces():
        create_namespace(
            top, description="spin-bench: offline RL datasets for discretized DeepMind Control (factored actions)"
        )
    if task_ns not in list_local_namespaces():
        create_namespace(
            task_ns, description=f"{entry.task} with {entry.bins} bins per action dimension ({entry.env_id})"
        )
