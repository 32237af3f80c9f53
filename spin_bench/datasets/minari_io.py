"""Minari storage: where datasets live, atomic installs, writing episodes, fast flat reads.

Datasets live in Minari's own data dir (``$MINARI_DATASETS_PATH``, default ``~/.minari/datasets``), so stock
``minari.load_dataset`` finds them. Nothing is written in place: builds and downloads go to a hidden staging folder
inside that dir (``.spin-bench-staging/``, invisible to Minari's listings) and are renamed into place only once
complete and verified. Every reader turns damaged or unreadable files into one :class:`DatasetIntegrityError` that
names the dataset and the fix (the content digest is in ``spin_bench/datasets/digest.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from spin_bench.datasets.transitions import Transitions
from spin_bench.errors import SpinBenchError

ARRAY_KEYS = ("observations", "actions", "rewards", "terminations", "truncations")
STAGING_DIR = ".spin-bench-staging"
_MAIN_FILE = "main_data.hdf5"
_METADATA_FILE = "metadata.json"
_NAMESPACE_FILE = "namespace_metadata.json"


class DatasetError(SpinBenchError):
    """A dataset operation cannot be done; the message says why and what to do instead."""


class DatasetIntegrityError(DatasetError):
    """Data does not match its catalog sha256, or cannot be read."""


class DamagedDatasetError(DatasetIntegrityError):
    """A dataset's files cannot be read as a dataset (truncated, missing episodes or fields, malformed metadata).

    ``reason``: what was wrong, in a few words (the message also names the dataset and the fix)."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


def repair_hint(dataset_id: str, *, verified: bool = False) -> str:
    """What to do about a damaged or changed installed dataset (``verified``: it was just hashed in full)."""
    fix = (
        f"re-download it (`spin-bench datasets download {dataset_id} --force`) or rebuild it "
        f"(`spin-bench datasets build {dataset_id} --force`)"
    )
    return fix if verified else f"check it with `spin-bench datasets verify {dataset_id}`, then {fix}"


def _dataset_id_of(data_dir: Path) -> str:
    """The id of an installed or staged dataset from its ``data`` folder's place under Minari's data dir."""
    parts = Path(data_dir).parts
    if STAGING_DIR in parts:
        parts = parts[parts.index(STAGING_DIR) + 2 :]
    else:
        try:
            parts = Path(data_dir).resolve().relative_to(datasets_root().resolve()).parts
        except ValueError:
            return str(data_dir)
    return "/".join(parts[:-1]) or str(data_dir)


def _reason(e: BaseException) -> str:
    text = e.args[0] if isinstance(e, KeyError) and e.args else str(e)
    text = " ".join(str(text).split()) or type(e).__name__
    return text if len(text) <= 200 else text[:197] + "..."


@contextlib.contextmanager
def reading(data_dir: Path, dataset_id: str | None = None) -> Iterator[None]:
    """Turn any failure to read a dataset's files (h5py, JSON, missing episodes or fields, inconsistent shapes) into
    one DatasetIntegrityError naming the dataset and the fix."""
    try:
        yield
    except DamagedDatasetError:
        raise  # from a reader inside this one: already says it all
    except DatasetIntegrityError as e:  # a reader's own consistency check
        raise _damaged(data_dir, dataset_id, str(e)) from None
    except (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError) as e:
        raise _damaged(data_dir, dataset_id, _reason(e)) from None


def _damaged(data_dir: Path, dataset_id: str | None, reason: str) -> DamagedDatasetError:
    dataset_id = dataset_id or _dataset_id_of(data_dir)
    return DamagedDatasetError(
        f"{dataset_id}: the data at {data_dir} is damaged or unreadable ({reason}); {repair_hint(dataset_id)}",
        reason,
    )


# -- locations --------------------------------------------------------------------------------------------
def datasets_root() -> Path:
    """Minari's data dir (``$MINARI_DATASETS_PATH`` or ``~/.minari/datasets``)."""
    from minari.storage.datasets_root_dir import get_dataset_path

    return get_dataset_path()


def local_dataset_dir(dataset_id: str, root: Path | None = None) -> Path:
    return (root if root is not None else datasets_root()) / dataset_id


def is_installed(dataset_id: str, root: Path | None = None) -> bool:
    data = local_dataset_dir(dataset_id, root) / "data"
    return (data / _METADATA_FILE).is_file() and (data / _MAIN_FILE).is_file()


@contextlib.contextmanager
def minari_env(*, datasets_path: Path | None = None, remote: str | None = None):
    """Point Minari (which reads ``MINARI_DATASETS_PATH`` / ``MINARI_REMOTE`` on every call) elsewhere, then restore.

    Process-wide: not for use from several threads at once.
    """
    saved = {k: os.environ.get(k) for k in ("MINARI_DATASETS_PATH", "MINARI_REMOTE")}
    try:
        if datasets_path is not None:
            os.environ["MINARI_DATASETS_PATH"] = str(datasets_path)
        if remote is not None:
            os.environ["MINARI_REMOTE"] = remote
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale_staging(base: Path, max_age_s: float = 7 * 24 * 3600) -> None:
    """Remove staging folders left by processes that were killed (same host, dead pid) or that are very old."""
    if not base.is_dir():
        return
    host = socket.gethostname()
    for d in base.iterdir():
        try:
            d_host, pid, _ = d.name.rsplit("-", 2)
            stale = (d_host == host and not _pid_alive(int(pid))) or time.time() - d.stat().st_mtime > max_age_s
        except (ValueError, OSError):
            continue
        if stale:
            shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def staging_area(root: Path | None = None) -> Iterator[Path]:
    """A fresh hidden folder inside the data dir (same filesystem, so installing is a rename); always removed."""
    root = root if root is not None else datasets_root()
    base = root / STAGING_DIR
    _clean_stale_staging(base)
    path = base / f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        with contextlib.suppress(OSError):
            base.rmdir()  # only when empty


def _namespace_levels(dataset_id: str) -> list[str]:
    parts = dataset_id.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def install_staged(staging: Path, dataset_id: str, *, force: bool = False, root: Path | None = None) -> Path:
    """Move ``staging/<dataset_id>`` to ``root/<dataset_id>`` by rename; namespace metadata is added where missing."""
    root = root if root is not None else datasets_root()
    src = staging / dataset_id
    dst = root / dataset_id
    if not (src / "data" / _METADATA_FILE).is_file():
        raise DatasetError(f"{dataset_id}: nothing complete to install in {src}")
    for level in _namespace_levels(dataset_id):
        (root / level).mkdir(parents=True, exist_ok=True)
        target = root / level / _NAMESPACE_FILE
        if not target.exists():
            source = staging / level / _NAMESPACE_FILE
            tmp = target.with_name(f".{_NAMESPACE_FILE}.{os.getpid()}.tmp")
            tmp.write_text(source.read_text() if source.is_file() else "{}")
            tmp.replace(target)
    if dst.exists():
        if not force:
            raise DatasetError(f"{dataset_id} already exists at {dst}; pass force=True (--force) to replace it")
        old = staging / ".replaced"
        dst.rename(old)
        src.rename(dst)
        shutil.rmtree(old, ignore_errors=True)
    else:
        src.rename(dst)
    return dst


# -- writing ---------------------------------------------------------------------------------------------
def _buffer(episode):
    from minari.data_collector.episode_buffer import EpisodeBuffer

    return EpisodeBuffer(
        seed=None if episode.seed is None else int(episode.seed),  # None: reset seed unknown (imported data)
        observations=episode.observations,
        actions=episode.actions,
        rewards=episode.rewards,
        terminations=episode.terminations,
        truncations=episode.truncations,
    )


def write_episodes(
    dataset_id: str,
    episodes: Iterable,
    *,
    env_spec,
    observation_space,
    action_space,
    metadata: dict,
    extra_metadata: dict,
    batch_episodes: int = 16,
):
    """Write ``episodes`` (``rollout.Episode``) as a new Minari hdf5 dataset in the *current* Minari data dir.

    The first batch goes through ``minari.create_dataset_from_buffers``; later batches are appended through the
    same storage (``update_episodes``), so memory holds one batch at a time. ``metadata``: keyword arguments of
    ``create_dataset_from_buffers`` (author, description, ref scores, requirements ...); ``extra_metadata``:
    further ``metadata.json`` keys. Per-episode ``Episode.metadata`` becomes HDF5 attributes of each episode group.
    """
    import minari

    dataset = None
    labels: list[dict] = []
    batch: list = []

    def flush() -> None:
        nonlocal dataset
        if not batch:
            return
        if dataset is None:
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r"`(author|author_email|code_permalink)` is set to None")
                dataset = minari.create_dataset_from_buffers(
                    dataset_id,
                    [_buffer(e) for e in batch],
                    env=env_spec,
                    eval_env=env_spec,
                    observation_space=observation_space,
                    action_space=action_space,
                    data_format="hdf5",
                    **metadata,
                )
        else:
            dataset.storage.update_episodes([_buffer(e) for e in batch])
        batch.clear()

    for episode in episodes:
        batch.append(episode)
        labels.append(dict(episode.metadata))
        if len(batch) >= batch_episodes:
            flush()
    flush()
    if dataset is None:
        raise DatasetError(f"{dataset_id}: no episodes to write")
    if any(labels):
        dataset.storage.update_episode_metadata(labels, range(len(labels)))
    dataset.storage.update_metadata(extra_metadata)
    return dataset


# -- reading -----------------------------------------------------------------------------------------------
def read_metadata(data_dir: Path) -> dict:
    return json.loads((Path(data_dir) / _METADATA_FILE).read_text())


def _read(fid, path: bytes, out: np.ndarray | None = None) -> np.ndarray:
    """Read a whole hdf5 dataset through h5py's low-level API (several times faster than ``group[key][()]``)."""
    import h5py

    dsid = h5py.h5d.open(fid, path)
    if out is None:
        out = np.empty(dsid.shape, dtype=dsid.dtype)
    elif out.shape != dsid.shape:
        raise DatasetIntegrityError(f"{path.decode()} has shape {dsid.shape}, expected {out.shape}")
    dsid.read(h5py.h5s.ALL, h5py.h5s.ALL, out)
    return out


def _seed(fid, i: int) -> int:
    import h5py

    gid = h5py.h5g.open(fid, f"episode_{i}".encode())
    if not h5py.h5a.exists(gid, b"seed"):
        return -1
    attr = h5py.h5a.open(gid, b"seed")
    value = np.empty(attr.shape, dtype=attr.dtype)
    attr.read(value)
    return int(value)


def iter_episode_arrays(
    data_dir: Path, *, with_attrs: bool = True, dataset_id: str | None = None
) -> Iterator[tuple[int, dict, dict[str, np.ndarray]]]:
    """Yield ``(seed, attributes, {key: array})`` for every episode, in order, straight from the hdf5 file.

    ``with_attrs=False`` skips the episode attributes other than the seed (faster). Damaged files raise
    DatasetIntegrityError (``dataset_id`` names the dataset in it; default: from the folder's place).
    """
    import h5py

    data_dir = Path(data_dir)
    with reading(data_dir, dataset_id):
        meta = read_metadata(data_dir)
        with h5py.File(data_dir / _MAIN_FILE, "r") as f:
            for i in range(meta["total_episodes"]):
                if with_attrs:
                    attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f[f"episode_{i}"].attrs.items()}
                    seed = int(attrs.get("seed", -1))
                else:
                    attrs, seed = {}, _seed(f.id, i)
                yield seed, attrs, {k: _read(f.id, f"episode_{i}/{k}".encode()) for k in ARRAY_KEYS}


def episode_returns(data_dir: Path, *, dataset_id: str | None = None) -> np.ndarray:
    import h5py

    data_dir = Path(data_dir)
    with reading(data_dir, dataset_id):
        meta = read_metadata(data_dir)
        with h5py.File(data_dir / _MAIN_FILE, "r") as f:
            return np.array(
                [f[f"episode_{i}"]["rewards"][()].sum(dtype=np.float64) for i in range(meta["total_episodes"])]
            )


def read_transitions(data_dir: Path, *, dataset_id: str | None = None) -> Transitions:
    """The flat transition view of a dataset, read episode by episode in bulk (no per-step Python loop).

    Per episode: ``observations = obs[:-1]``, ``next_observations = obs[1:]``, ``terminals = terminations``,
    ``timeouts = truncations``. Damaged files raise DatasetIntegrityError naming the dataset and the fix.
    """
    data_dir = Path(data_dir)
    with reading(data_dir, dataset_id):
        return _read_transitions(data_dir)


def _read_transitions(data_dir: Path) -> Transitions:
    import h5py
    from minari.serialization import deserialize_space

    meta = read_metadata(data_dir)
    n_episodes = int(meta["total_episodes"])
    nvec = np.asarray(deserialize_space(meta["action_space"]).nvec, dtype=np.int64)
    total = int(meta["total_steps"])
    with h5py.File(data_dir / _MAIN_FILE, "r") as f:
        fid = f.id
        first = f["episode_0"]
        obs_dim = first["observations"].shape[1]
        num_dims = first["actions"].shape[1]
        if first["observations"].dtype != np.float32:
            raise DatasetIntegrityError(f"observations are {first['observations'].dtype}, expected float32")
        observations = np.empty((total, obs_dim), dtype=np.float32)
        next_observations = np.empty((total, obs_dim), dtype=np.float32)
        actions = np.empty((total, num_dims), dtype=first["actions"].dtype)
        rewards = np.empty(total, dtype=np.float32)
        terminals = np.empty(total, dtype=bool)
        timeouts = np.empty(total, dtype=bool)
        buf = np.empty((first["observations"].shape[0], obs_dim), dtype=np.float32)
        start = 0
        for i in range(n_episodes):
            prefix = f"episode_{i}/"
            dsid = h5py.h5d.open(fid, (prefix + "observations").encode())
            length = dsid.shape[0] - 1
            end = start + length
            if end > total or dsid.shape[1:] != (obs_dim,):
                raise DatasetIntegrityError(f"episode {i} does not match total_steps={total}")
            if length + 1 > len(buf):
                buf = np.empty((length + 1, obs_dim), dtype=np.float32)
            obs = buf[: length + 1]
            dsid.read(h5py.h5s.ALL, h5py.h5s.ALL, obs)
            observations[start:end] = obs[:-1]
            next_observations[start:end] = obs[1:]
            _read(fid, (prefix + "actions").encode(), actions[start:end])
            _read(fid, (prefix + "rewards").encode(), rewards[start:end])
            _read(fid, (prefix + "terminations").encode(), terminals[start:end])
            _read(fid, (prefix + "truncations").encode(), timeouts[start:end])
            start = end
        if start != total:
            raise DatasetIntegrityError(f"episodes hold {start} steps, metadata says {total}")
    return Transitions(
        observations=observations,
        actions=actions,
        rewards=rewards,
        next_observations=next_observations,
        terminals=terminals,
        timeouts=timeouts,
        nvec=nvec,
    )


def read_episodes(data_dir: Path, *, dataset_id: str | None = None) -> Iterator:
    """The episodes of an installed dataset as ``rollout.Episode`` objects (to assemble a concatenated dataset)."""
    from spin_bench.datasets.rollout import Episode

    for seed, attrs, arrays in iter_episode_arrays(data_dir, dataset_id=dataset_id):
        labels = {k: attrs[k] for k in ("policy", "epsilon", "segment_seed", "segment_index") if k in attrs}
        yield Episode(seed=seed, metadata=labels, **arrays)
