"""The dataset catalog: one human-readable JSON file (``datasets/catalog.json``) that defines every dataset.

One entry per (task, bins) holds the evaluation env (id + kwargs), the reference scores, the behaviour checkpoints
(path relative to the catalog's folder + sha256) and the datasets of that task: size, rollout recipe, and the sha256
and summary statistics of the built data once known. See ``datasets/README.md`` for the format.

Which file: ``$SPIN_BENCH_CATALOG`` if set, else ``datasets/catalog.json`` of the source checkout, else the copy
shipped inside the wheel (``spin_bench/_datasets/catalog.json``).

Recipes: a list of segments run in order, or the concatenation of other datasets of the same entry. Episode ``j`` of
a segment resets the env with ``seed + j`` and draws its exploration noise from ``np.random.default_rng([seed, j])``,
so an episode's content depends only on (segment seed, j), never on how episodes are spread over processes.
"""

from __future__ import annotations

import copy
import difflib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from spin_bench.datasets.digest import DIGEST_FORMAT
from spin_bench.datasets.ids import DEFAULT_BINS, DatasetKey, parse_dataset_id
from spin_bench.datasets.kernels import RECORDING_KERNELS

CATALOG_FORMAT = "spin-bench/catalog-v1"
CATALOG_ENV_VAR = "SPIN_BENCH_CATALOG"
RANDOM_POLICY = "random"
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class CatalogError(ValueError):
    """The catalog file is malformed, or a lookup names something it does not hold."""


@dataclass(frozen=True)
class Segment:
    """``episodes`` episodes of one policy; episode j resets with ``seed + j``, noise ``default_rng([seed, j])``."""

    policy: str
    """``"random"`` (uniform over every sub-action) or the name of one of the entry's checkpoints."""
    episodes: int
    seed: int
    epsilon: float = 0.0
    """Per-dimension epsilon-greedy exploration of a checkpoint policy (unused by ``random``)."""

    def to_json(self) -> dict:
        out: dict[str, Any] = {"policy": self.policy}
        if self.policy != RANDOM_POLICY:
            out["epsilon"] = self.epsilon
        out.update(episodes=self.episodes, seed=self.seed)
        return out


@dataclass(frozen=True)
class Checkpoint:
    name: str
    relpath: str
    path: Path
    sha256: str | None
    env_steps: int | None
    eval_return: float | None

    def status(self) -> str:
        """``available``, ``not registered`` (no sha256 yet), ``missing file`` or ``sha256 mismatch``."""
        from spin_bench.datasets.snapshot import sha256_file

        if self.sha256 is None:
            return "not registered"
        if not self.path.is_file():
            return "missing file"
        return "available" if sha256_file(self.path) == self.sha256 else "sha256 mismatch"


@dataclass(frozen=True)
class ReferenceScore:
    """Mean return of one policy over ``episodes`` episodes (``value`` is None until measured)."""

    value: float | None
    policy: str
    episodes: int
    seed: int
    epsilon: float
    std: float | None = None
    measured_with: dict | None = None


@dataclass(frozen=True)
class DatasetEntry:
    id: str
    key: DatasetKey
    size: int
    segments: tuple[Segment, ...]
    """The recipe resolved to segments (a ``concat`` recipe lists the segments of its parts, in order)."""
    concat: tuple[str, ...] | None
    sha256: str | None
    stats: dict | None
    raw: dict = field(repr=False)

    @property
    def quality(self) -> str:
        return self.key.quality

    @property
    def task(self) -> str:
        return self.key.task

    @property
    def bins(self) -> int:
        return self.key.bins

    @property
    def episodes(self) -> int:
        return sum(s.episodes for s in self.segments)

    def policies(self) -> set[str]:
        return {s.policy for s in self.segments}


@dataclass(frozen=True)
class TaskEntry:
    task: str
    bins: int
    env_id: str
    env_kwargs: dict
    max_episode_steps: int
    reference: dict[str, ReferenceScore]
    paper_reference: dict | None
    checkpoints: dict[str, Checkpoint]
    datasets: dict[str, DatasetEntry]
    raw: dict = field(repr=False)
    recording_kernels: str | None = None
    """The BLAS kernels this entry's datasets were recorded with (one of ``kernels.RECORDING_KERNELS``); rollouts
    decide near-ties as they did, so a rebuild matches on any CPU. None: not recorded yet (this CPU's own)."""

    @property
    def label(self) -> str:
        return f"{self.task} ({self.bins} bins)"

    def make_env(self, **kwargs):
        """``gymnasium.make(env_id, **env_kwargs)``: exactly the evaluation env of this entry's datasets."""
        import gymnasium as gym

        import spin_bench  # noqa: F401  (registers the SPIN/ env ids)

        return gym.make(self.env_id, **{**self.env_kwargs, **kwargs})

    def reference_pair(self) -> tuple[float | None, float | None]:
        return self.reference["random"].value, self.reference["expert"].value


EXPERT_TARGET_FRACTION = 0.85
"""An expert snapshot meets its target at 85% of the original benchmark's expert reference return."""


def expert_target(entry: TaskEntry) -> float | None:
    """The return the expert reference must reach: the catalog's ``expert_target``, else 85% of the paper's."""
    explicit = entry.raw.get("expert_target")
    if explicit is not None:
        return float(explicit)
    paper = (entry.paper_reference or {}).get("expert")
    return None if paper is None else round(EXPERT_TARGET_FRACTION * float(paper), 2)


def expert_status(entry: TaskEntry) -> str:
    """``met``, ``below target`` or ``not trained`` (no measured expert reference yet)."""
    value, target = entry.reference["expert"].value, expert_target(entry)
    if value is None:
        return "not trained"
    if target is None:
        return "no target"
    return "met" if value >= target else "below target"


def default_catalog_path() -> Path:
    """``$SPIN_BENCH_CATALOG``, else the source checkout's ``datasets/catalog.json``, else the packaged copy."""
    env = os.environ.get(CATALOG_ENV_VAR)
    if env:
        return Path(env).expanduser()
    here = Path(__file__).resolve()
    candidates = [here.parents[2] / "datasets" / "catalog.json", here.parents[1] / "_datasets" / "catalog.json"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise CatalogError(
        f"no dataset catalog found (looked at {', '.join(str(c) for c in candidates)}); "
        f"set {CATALOG_ENV_VAR} to a catalog.json"
    )


_LOADED: dict[Path, tuple[tuple[int, ...], Catalog]] = {}
"""Catalogs read in this process, by absolute path, with the identity of the file they were read from."""


def _file_identity(path: Path) -> tuple[int, ...]:
    """Device, inode, size, mtime and ctime (ns): an atomic replace or an edit in place changes at least one."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise CatalogError(f"catalog file {path} does not exist") from None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Read and validate a catalog file (default: :func:`default_catalog_path`).

    A file unchanged since this process last read it is not read again: the same (read-only) :class:`Catalog` comes
    back. Any change to the file (an edit, an atomic replace) makes the next call read it.
    """
    path = Path(path) if path is not None else default_catalog_path()
    key = path.absolute()
    identity = _file_identity(path)
    cached = _LOADED.get(key)
    if cached is not None and cached[0] == identity:
        return cached[1]
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise CatalogError(f"catalog file {path} does not exist") from None
    except json.JSONDecodeError as e:
        raise CatalogError(f"catalog file {path} is not valid JSON: {e}") from None
    catalog = Catalog(raw, path)
    if _file_identity(path) == identity:  # not replaced while it was read
        _LOADED[key] = (identity, catalog)
    return catalog


def _require(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise CatalogError(f"{where}: {message}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


class Catalog:
    """A parsed, validated catalog (read only). ``raw`` is the JSON document. The maintainers' pipeline edits it
    through :class:`spin_bench.pipeline.catalog_edit.EditableCatalog`."""

    def __init__(self, raw: dict, path: Path):
        self.path = Path(path)
        # A catalog made from a loaded one's document (the editor's) edits a copy: the loaded one stays as read.
        self.raw = copy.deepcopy(raw) if any(raw is c.raw for _, c in _LOADED.values()) else raw
        self._parse()

    # -- parsing and validation -------------------------------------------------------------------
    def _parse(self) -> None:
        where = f"catalog {self.path}"
        raw = self.raw
        _require(isinstance(raw, dict), where, "top level must be a JSON object")
        _require(
            raw.get("format") == CATALOG_FORMAT, where, f"format is {raw.get('format')!r}; expected {CATALOG_FORMAT!r}"
        )
        remotes = raw.get("remotes", [])
        _require(isinstance(remotes, list) and all(isinstance(r, str) for r in remotes), where, "remotes: list of str")
        self.remotes: tuple[str, ...] = tuple(remotes)
        self.maintainers: dict = dict(raw.get("maintainers") or {})
        entries = raw.get("entries")
        _require(isinstance(entries, list), where, "'entries' must be a list")
        self.entries: list[TaskEntry] = []
        self._by_task: dict[tuple[str, int], TaskEntry] = {}
        self._by_id: dict[str, tuple[TaskEntry, DatasetEntry]] = {}
        for i, e in enumerate(entries):
            entry = self._parse_entry(e, f"{where}, entries[{i}]")
            _require((entry.task, entry.bins) not in self._by_task, where, f"duplicate entry {entry.label}")
            self._by_task[(entry.task, entry.bins)] = entry
            self.entries.append(entry)
            for ds in entry.datasets.values():
                self._by_id[ds.id] = (entry, ds)
        self._check_digest_format(where)

    def _check_digest_format(self, where: str) -> None:
        """Recorded sha256 values must be in this spin-bench's digest format (no field: the original v1)."""
        recorded = any(ds.sha256 is not None for _, ds in self._by_id.values())
        found = self.raw.get("digest_format")
        if found is None and not recorded:
            return
        if found != DIGEST_FORMAT:
            raise CatalogError(
                f"{where}: its sha256 values are {found or 'spin-bench-digest-v1 (no digest_format field)'}; this "
                f"spin-bench checks {DIGEST_FORMAT}: migrate the file once with "
                f"`python -m spin_bench.pipeline.migrate_digests {self.path}`"
            )

    def _parse_entry(self, e: dict, where: str) -> TaskEntry:
        _require(isinstance(e, dict), where, "must be an object")
        for k in ("task", "bins", "env_id", "env_kwargs", "max_episode_steps", "reference_scores", "checkpoints"):
            _require(k in e, where, f"missing field {k!r}")
        task, bins = e["task"], e["bins"]
        _require(isinstance(task, str), where, "task must be a string")
        _require(_is_int(bins) and bins >= 2, where, f"bins={bins!r}; must be an int >= 2")
        where = f"{where} ({task}, {bins} bins)"
        _require(isinstance(e["env_id"], str), where, "env_id must be a string")
        _require(isinstance(e["env_kwargs"], dict), where, "env_kwargs must be an object")
        expected_bins = e["env_kwargs"].get("bins", DEFAULT_BINS)
        _require(expected_bins == bins, where, f"env_kwargs bins={expected_bins!r} differs from the entry's bins")
        _require(_is_int(e["max_episode_steps"]) and e["max_episode_steps"] > 0, where, "max_episode_steps: int > 0")

        kernels = e.get("recording_kernels")
        _require(
            kernels is None or kernels in RECORDING_KERNELS,
            where,
            f"recording_kernels={kernels!r}; must be one of {', '.join(RECORDING_KERNELS)} (or absent)",
        )

        checkpoints = {}
        _require(isinstance(e["checkpoints"], dict), where, "checkpoints must be an object")
        for name, c in e["checkpoints"].items():
            w = f"{where}, checkpoint {name!r}"
            _require(name != RANDOM_POLICY, w, f"{RANDOM_POLICY!r} is reserved for the uniform random policy")
            _require(isinstance(c, dict) and isinstance(c.get("path"), str), w, "needs a 'path' string")
            sha = c.get("sha256")
            _require(sha is None or (isinstance(sha, str) and _SHA256_RE.match(sha)), w, f"sha256={sha!r} malformed")
            checkpoints[name] = Checkpoint(
                name=name,
                relpath=c["path"],
                path=(self.path.parent / c["path"]).resolve(),
                sha256=sha,
                env_steps=c.get("env_steps"),
                eval_return=c.get("eval_return"),
            )

        reference = {}
        refs = e["reference_scores"]
        _require(isinstance(refs, dict), where, "reference_scores must be an object")
        for which in ("random", "expert"):
            r = refs.get(which)
            w = f"{where}, reference_scores.{which}"
            _require(isinstance(r, dict), w, "missing")
            _require(r.get("value") is None or _is_number(r["value"]), w, f"value={r.get('value')!r}; number or null")
            _require(_is_int(r.get("episodes")) and r["episodes"] > 0, w, "episodes: int > 0")
            _require(_is_int(r.get("seed")) and r["seed"] >= 0, w, "seed: int >= 0")
            policy = r.get("policy", RANDOM_POLICY if which == "random" else "expert")
            _require(policy == RANDOM_POLICY or policy in checkpoints, w, f"policy {policy!r} is not a checkpoint")
            reference[which] = ReferenceScore(
                value=None if r.get("value") is None else float(r["value"]),
                policy=policy,
                episodes=r["episodes"],
                seed=r["seed"],
                epsilon=float(r.get("epsilon") or 0.0),
                std=r.get("std"),
                measured_with=r.get("measured_with"),
            )

        datasets: dict[str, DatasetEntry] = {}
        raw_datasets = e.get("datasets", {})
        _require(isinstance(raw_datasets, dict), where, "datasets must be an object keyed by dataset id")
        pending_concat = []
        for ds_id, d in raw_datasets.items():
            w = f"{where}, dataset {ds_id!r}"
            try:
                key = parse_dataset_id(ds_id)
            except ValueError as err:
                raise CatalogError(f"{w}: {err}") from None
            _require((key.task, key.bins) == (task, bins), w, "id does not match the entry's task and bins")
            _require(isinstance(d, dict), w, "must be an object")
            _require(d.get("quality", key.quality) == key.quality, w, "quality field differs from the id")
            _require(_is_int(d.get("size")) and d["size"] > 0, w, f"size={d.get('size')!r}; must be an int > 0")
            sha = d.get("sha256")
            _require(sha is None or (isinstance(sha, str) and _SHA256_RE.match(sha)), w, f"sha256={sha!r} malformed")
            recipe = d.get("recipe")
            _require(isinstance(recipe, dict), w, "recipe must be an object with 'segments' or 'concat'")
            if "concat" in recipe:
                parts = recipe["concat"]
                _require(isinstance(parts, list) and len(parts) >= 2, w, "concat: list of >= 2 dataset ids")
                pending_concat.append((ds_id, key, d, tuple(parts), w))
                continue
            segments = self._parse_segments(recipe.get("segments"), checkpoints, w)
            datasets[ds_id] = self._dataset(ds_id, key, d, segments, None, e["max_episode_steps"], w)
        for ds_id, key, d, parts, w in pending_concat:
            segments: list[Segment] = []
            for part in parts:
                _require(part in datasets, w, f"concat part {part!r} is not a segment-recipe dataset of this entry")
                segments.extend(datasets[part].segments)
            datasets[ds_id] = self._dataset(ds_id, key, d, tuple(segments), parts, e["max_episode_steps"], w)
        # Keep the file's order.
        datasets = {ds_id: datasets[ds_id] for ds_id in raw_datasets}
        return TaskEntry(
            task=task,
            bins=bins,
            env_id=e["env_id"],
            env_kwargs=dict(e["env_kwargs"]),
            max_episode_steps=e["max_episode_steps"],
            reference=reference,
            paper_reference=e.get("paper_reference_scores"),
            checkpoints=checkpoints,
            datasets=datasets,
            raw=e,
            recording_kernels=kernels,
        )

    @staticmethod
    def _parse_segments(raw: Any, checkpoints: dict, where: str) -> tuple[Segment, ...]:
        _require(isinstance(raw, list) and raw, where, "recipe.segments must be a non-empty list")
        out = []
        for i, s in enumerate(raw):
            w = f"{where}, segment {i}"
            _require(isinstance(s, dict), w, "must be an object")
            policy = s.get("policy")
            _require(
                policy == RANDOM_POLICY or policy in checkpoints,
                w,
                f"policy={policy!r}; allowed: {RANDOM_POLICY!r} or a checkpoint ({', '.join(checkpoints) or 'none'})",
            )
            _require(_is_int(s.get("episodes")) and s["episodes"] > 0, w, "episodes: int > 0")
            _require(_is_int(s.get("seed")) and 0 <= s["seed"] < 2**31, w, "seed: int in [0, 2**31)")
            eps = s.get("epsilon", 0.0)
            _require(_is_number(eps) and 0.0 <= eps <= 1.0, w, f"epsilon={eps!r}; must be in [0, 1]")
            out.append(Segment(policy=policy, episodes=s["episodes"], seed=s["seed"], epsilon=float(eps)))
        return tuple(out)

    @staticmethod
    def _dataset(ds_id, key, d, segments, concat, steps, where) -> DatasetEntry:
        episodes = sum(s.episodes for s in segments)
        _require(
            d["size"] == episodes * steps,
            where,
            f"size={d['size']} but the recipe has {episodes} episodes of {steps} steps ({episodes * steps})",
        )
        return DatasetEntry(
            id=ds_id,
            key=key,
            size=d["size"],
            segments=tuple(segments),
            concat=concat,
            sha256=d.get("sha256"),
            stats=d.get("stats"),
            raw=d,
        )

    # -- lookups ------------------------------------------------------------------------------------
    def dataset_ids(self) -> list[str]:
        return list(self._by_id)

    def __iter__(self) -> Iterator[TaskEntry]:
        return iter(self.entries)

    def task_entry(self, task: str, bins: int = DEFAULT_BINS) -> TaskEntry:
        entry = self._by_task.get((task, bins))
        if entry is None:
            known = ", ".join(f"{t} ({b} bins)" for t, b in self._by_task)
            raise CatalogError(f"the catalog has no entry for {task!r} at {bins} bins; entries: {known}")
        return entry

    def dataset(self, dataset_id: str) -> DatasetEntry:
        return self.lookup(dataset_id)[1]

    def lookup(self, dataset_id: str) -> tuple[TaskEntry, DatasetEntry]:
        """(task entry, dataset entry) of an id; unknown ids raise CatalogError naming the closest known ids."""
        found = self._by_id.get(dataset_id)
        if found is None:
            parse_dataset_id(dataset_id)  # a malformed id gets the format message
            close = difflib.get_close_matches(dataset_id, self.dataset_ids(), n=3, cutoff=0.0)
            raise CatalogError(
                f"unknown dataset id {dataset_id!r}; closest catalog ids: {', '.join(close)} "
                "(all: spin-bench datasets list)"
            )
        return found
