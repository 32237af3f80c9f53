"""Import the original factorisable-action benchmark's files (Beeson, Ireland & Montana, TMLR 2024; the data of
the SPIN paper) as Minari datasets, and read them back for runs.

**The files** (as the benchmark's loader, github.com/davidireland3/dmc_datasets, reads them): ``<root>/<m>_bins/
<domain>-<task>-<level>``, no extension, ``<level>`` one of medium, expert, medium-expert, random-medium-expert.
Each file is one pickle of a list of transitions ``(s, a, r, s', done)``: ``s`` and ``s'`` the dm_control
observation dict flattened in key order (float64 arrays), ``a`` one bin index per action dimension, ``r`` the
reward, ``done`` a flag. Pickles can run code when loaded, so they are read with
:func:`spin_bench.datasets.safe_pickle.load_restricted`.

**done**: the loader's environment (``DMSuiteEnv.step``) returns ``terminated=False`` on every step and
``truncated=True`` at dm_control's 1000-step limit, and none of the benchmark's tasks has terminal states, so a
``done`` flag can only mark a time limit. It is stored as a truncation; terminations are all False. (The original
training code of both papers bootstraps with ``1 - done``, i.e. treats these time limits as terminal.)

**Episodes**: the files do not delimit episodes; consecutive transitions belong to one episode while ``s'`` of one
is exactly ``s`` of the next. An episode ends after a ``done`` flag, where that chain breaks (a reset, or a mix
of separately collected data), and at the end of the file; each end that is not a terminal state is a truncation.

**Actions**: the loader maps bin ``k`` of every action dimension to ``np.linspace(-1, 1, m)[k]``, whatever the
actuator's range, and MuJoCo clamps the control to that range. The imported datasets' environment reproduces this
with ``bin_bounds="unit"`` (``spin_bench.envs.bins``); it differs from spin-bench's default per-actuator bins on
quadruped only.

**Reference scores** are the original benchmark's published random / expert returns (:data:`REFERENCE_SCORES`),
recorded by the import in the dataset (``spin_bench.reference_scores``, also Minari's ``ref_min_score`` /
``ref_max_score``): :func:`spin_bench.datasets.scores.normalized_score` of an ``original/`` id reads them there, so
a run's normalized score is the paper's.

**Integrity**: the catalog does not list imported data, so the import records its content digest (the catalog's
digest format) in the dataset's own ``metadata.json`` (``spin_bench.sha256``, a field the digest leaves out), and
runs check the installed data against that record.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from spin_bench.datasets.ids import DEFAULT_BINS, ORIGINAL_NAMESPACE, ORIGINAL_QUALITIES, dataset_id, task_namespace
from spin_bench.datasets.minari_io import DatasetError, DatasetIntegrityError, is_installed, local_dataset_dir
from spin_bench.datasets.scores import PAPER_SOURCE, References
from spin_bench.datasets.transitions import Transitions

REFERENCE_SOURCE = (
    "Random / expert reference returns of the original benchmark (Beeson, Ireland & Montana, 'An Investigation of "
    "Offline RL in Factorisable Action Spaces', TMLR 2024, arXiv 2411.11088; Expert_Random_Scores.csv of "
    "github.com/AlexBeesonWarwick/OfflineRLFactorisableActionSpaces), as used by SPIN (arXiv 2601.04441)"
)
REFERENCE_SCORES: dict[tuple[str, int], tuple[float, float]] = {
    ("finger-spin", 3): (4.36, 853.62),
    ("fish-swim", 3): (72.32, 418.58),
    ("cheetah-run", 3): (5.39, 664.57),
    ("quadruped-walk", 3): (121.37, 781.19),
    ("humanoid-stand", 3): (4.54, 711.90),
    ("dog-trot", 3): (7.32, 724.37),
    ("dog-trot", 10): (6.48, 736.95),
    ("dog-trot", 30): (6.39, 768.24),
    ("dog-trot", 50): (6.10, 752.58),
    ("dog-trot", 75): (6.31, 803.05),
    ("dog-trot", 100): (6.14, 756.86),
}
"""``(task, bins)`` -> ``(random, expert)`` return: every (task, bins) the original benchmark has datasets for.
(The loader's own ``constants.py`` differs in two figures: quadruped-walk random 121.31, dog-trot 30-bin expert
681.14; the authors' table above is the one the paper reports.)"""

BIN_BOUNDS = "unit"
"""The ``bin_bounds`` of the imported datasets' environment: the original loader's bin -> action mapping."""

_BINS_DIR = re.compile(r"^([0-9]+)_bins$")
_CHAIN_ROWS = 65536
"""Rows compared at a time when finding where the chain s'_t == s_{t+1} breaks (bounds the memory used)."""


@dataclass(frozen=True)
class OriginalFile:
    """One data file of the original layout."""

    path: Path
    task: str
    """``domain-task``, e.g. ``cheetah-run``."""
    bins: int
    quality: str
    """The file's level: medium, expert, medium-expert or random-medium-expert."""

    @property
    def dataset_id(self) -> str:
        return dataset_id(self.task, f"{ORIGINAL_NAMESPACE}/{self.quality}", self.bins)


def _benchmark_tasks() -> list[str]:
    return sorted({task for task, _ in REFERENCE_SCORES})


def _parse_name(name: str) -> tuple[str, str] | None:
    """``"cheetah-run-medium-expert"`` -> ``("cheetah-run", "medium-expert")``; None if no level ends the name."""
    for level in sorted(ORIGINAL_QUALITIES, key=len, reverse=True):  # medium-expert before expert
        if name.endswith(f"-{level}") and len(name) > len(level) + 1:
            return name[: -len(level) - 1], level
    return None


def find_original_files(
    root: str | Path,
    *,
    bins: list[int] | None = None,
    tasks: list[str] | None = None,
    qualities: list[str] | None = None,
) -> tuple[list[OriginalFile], list[str]]:
    """The files of the original layout under ``root`` (or ``root`` itself when it is a ``<m>_bins`` folder),
    filtered by ``bins``, ``tasks`` and ``qualities``; and, for each other entry of the bins folders, why it is not
    one. Bad filters or a folder without any such file raise ValueError naming what was found."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ValueError(
            f"{str(root)!r} is not a folder; give the folder that holds the original benchmark's <bins>_bins folders "
            "(the dmc_datasets loader's DMC_DISCRETE_DATA_DIR)"
        )
    for m in bins or []:
        if not any(b == m for _, b in REFERENCE_SCORES):
            raise ValueError(f"--bins {m}: the original benchmark has no datasets at {m} bins; it has {_bin_list()}")
    for task in tasks or []:
        if task not in _benchmark_tasks():
            raise ValueError(
                f"--tasks {task}: the original benchmark has no datasets for it; it has {', '.join(_benchmark_tasks())}"
            )
    for quality in qualities or []:
        if quality not in ORIGINAL_QUALITIES:
            raise ValueError(f"--quality {quality}: not a level of the original benchmark; use {_quality_list()}")
    match = _BINS_DIR.match(root.name)
    folders = [(root, int(match[1]))] if match else []
    if not match:
        folders = sorted(
            ((d, int(_BINS_DIR.match(d.name)[1])) for d in root.iterdir() if d.is_dir() and _BINS_DIR.match(d.name)),
            key=lambda pair: pair[1],
        )
    if not folders:
        raise ValueError(
            f"{root} holds no <bins>_bins folder (e.g. 3_bins); the original layout is "
            "<root>/<bins>_bins/<domain>-<task>-<level>"
        )
    found, skipped = [], []
    for folder, m in folders:
        for path in sorted(folder.iterdir()):
            parsed = _parse_name(path.name)
            if parsed is None or not path.is_file():
                skipped.append(f"{path} (not a <domain>-<task>-<level> file, level one of {_quality_list()})")
                continue
            task, quality = parsed
            if (task, m) not in REFERENCE_SCORES:
                skipped.append(f"{path} (the original benchmark has no {task} datasets at {m} bins)")
                continue
            if (bins and m not in bins) or (tasks and task not in tasks) or (qualities and quality not in qualities):
                continue
            found.append(OriginalFile(path=path, task=task, bins=m, quality=quality))
    if not found:
        wanted = ", ".join(
            f"{name} {','.join(map(str, values))}"
            for name, values in (("bins", bins), ("tasks", tasks), ("quality", qualities))
            if values
        )
        raise ValueError(
            f"no original benchmark file under {root}{' matches ' + wanted if wanted else ''}; "
            f"looked in {', '.join(str(f) for f, _ in folders)}"
            + (f"; not importable: {'; '.join(skipped[:3])}" if skipped else "")
        )
    return found, skipped


def _bin_list() -> str:
    return ", ".join(map(str, sorted({b for _, b in REFERENCE_SCORES})))


def _quality_list() -> str:
    return ", ".join(ORIGINAL_QUALITIES)


# -- reading a file -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class OriginalArrays:
    """The transitions of one file as arrays, in the file's order, as they were stored (float64 observations)."""

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    next_observations: np.ndarray
    dones: np.ndarray


def read_original_file(path: Path, obs_dim: int, nvec: np.ndarray) -> OriginalArrays:
    """The transitions pickled in ``path``, checked against the task's observation size and bins per dimension.

    Refuses (one line naming the file and the transition) anything that is not a list of ``(s, a, r, s', done)``
    with ``s``, ``s'`` of ``obs_dim`` finite numbers, ``a`` one whole bin index per dimension within ``nvec``,
    a finite reward and a 0/1 flag.
    """
    from spin_bench.datasets.safe_pickle import load_restricted

    data = load_restricted(path)
    if not isinstance(data, list | tuple):
        raise DatasetError(f"{path}: holds a {type(data).__name__}; the original files hold a list of transitions")
    if not data:
        raise DatasetError(f"{path}: holds no transitions")
    n, num_dims = len(data), len(nvec)
    out = OriginalArrays(
        observations=np.empty((n, obs_dim)),
        actions=np.empty((n, num_dims), dtype=np.int64),
        rewards=np.empty(n),
        next_observations=np.empty((n, obs_dim)),
        dones=np.empty(n, dtype=bool),
    )
    if isinstance(data, tuple):
        data = list(data)
    for i in range(n):
        _store(data[i], i, out, path)
        data[i] = None  # the arrays hold it now: memory for one copy of the file, not two
    for name, values in (("observation", out.observations), ("next observation", out.next_observations)):
        bad = np.flatnonzero(~np.isfinite(values).all(axis=1))
        if bad.size:
            raise DatasetError(f"{path}: transition {int(bad[0])}: the {name} is not finite")
    bad = np.flatnonzero(~np.isfinite(out.rewards))
    if bad.size:
        raise DatasetError(f"{path}: transition {int(bad[0])}: the reward {out.rewards[bad[0]]} is not finite")
    outside = (out.actions < 0) | (out.actions >= nvec)
    if outside.any():
        i, d = map(int, np.argwhere(outside)[0])
        raise DatasetError(
            f"{path}: transition {i}: action[{d}]={int(out.actions[i, d])} is not a bin index of a "
            f"{int(nvec[d])}-bin dimension (0..{int(nvec[d]) - 1})"
        )
    return out


def _store(item: object, i: int, out: OriginalArrays, path: Path) -> None:
    where = f"{path}: transition {i}"
    if not isinstance(item, tuple | list) or len(item) != 5:
        raise DatasetError(f"{where} is {_describe(item)}; expected a tuple (s, a, r, s', done)")
    s, a, r, s_next, done = item
    for name, value, row in (("s", s, out.observations), ("s'", s_next, out.next_observations)):
        array = np.asarray(value)
        if array.shape != row.shape[1:] or array.dtype.kind not in "biuf":
            raise DatasetError(
                f"{where}: {name} is {_describe(value)}; expected {row.shape[1]} numbers (this task's observation)"
            )
        row[i] = array
    action = np.asarray(a)
    if action.shape != out.actions.shape[1:] or action.dtype.kind not in "iuf":
        raise DatasetError(
            f"{where}: the action is {_describe(a)}; expected {out.actions.shape[1]} bin indices, one per dimension"
        )
    if action.dtype.kind == "f" and not np.array_equal(action, np.round(action)):
        raise DatasetError(f"{where}: the action {action.tolist()} is not whole bin indices")
    out.actions[i] = action
    reward = np.asarray(r)
    if reward.size != 1 or reward.dtype.kind not in "biuf":
        raise DatasetError(f"{where}: the reward is {_describe(r)}; expected one number")
    out.rewards[i] = reward.item()
    flag = np.asarray(done)
    if flag.size != 1 or flag.dtype.kind not in "biuf" or flag.item() not in (0, 1):
        raise DatasetError(f"{where}: done is {_describe(done)}; expected a flag (True/False or 1/0)")
    out.dones[i] = bool(flag.item())


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of {len(value)} items"
    text = repr(value)
    return f"{type(value).__name__} {text if len(text) <= 40 else text[:37] + '...'}"


# -- episodes --------------------------------------------------------------------------------------------------
ENDED_BY = ("done", "chain break", "end of file")
"""Why an episode of an imported file ends (each end is stored as a truncation)."""


def episode_bounds(arrays: OriginalArrays) -> list[tuple[int, int, str]]:
    """``(start, stop, ended_by)`` of each episode, in order (transitions ``start..stop-1``): an episode ends after a
    done flag, where the next transition does not start from this one's ``s'``, and at the end of the file."""
    n = len(arrays.rewards)
    breaks = np.zeros(max(n - 1, 0), dtype=bool)
    for lo in range(0, n - 1, _CHAIN_ROWS):
        hi = min(lo + _CHAIN_ROWS, n - 1)
        breaks[lo:hi] = (arrays.next_observations[lo:hi] != arrays.observations[lo + 1 : hi + 1]).any(axis=1)
    bounds, start = [], 0
    for stop in np.flatnonzero(arrays.dones[:-1] | breaks) + 1:
        bounds.append((start, int(stop), "done" if arrays.dones[stop - 1] else "chain break"))
        start = int(stop)
    bounds.append((start, n, "done" if arrays.dones[-1] else "end of file"))
    return bounds


def _episodes(arrays: OriginalArrays, bounds: list[tuple[int, int, str]]):
    from spin_bench.datasets.rollout import Episode

    for start, stop, ended_by in bounds:
        length = stop - start
        truncations = np.zeros(length, dtype=bool)
        truncations[-1] = True  # no task of the benchmark has terminal states: every end is a truncation
        yield Episode(
            seed=None,  # the files do not record how episodes were reset
            observations=np.concatenate(
                [arrays.observations[start:stop], arrays.next_observations[stop - 1 : stop]]
            ).astype(np.float32),
            actions=arrays.actions[start:stop].astype(np.int8),
            rewards=arrays.rewards[start:stop].astype(np.float32),
            terminations=np.zeros(length, dtype=bool),
            truncations=truncations,
            metadata={"source_first_transition": start, "ended_by": ended_by},
        )


# -- importing -------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ImportResult:
    dataset_id: str
    path: Path
    transitions: int
    episode_lengths: np.ndarray
    ended_by: dict[str, int]
    """Episodes per reason they end (:data:`ENDED_BY`)."""
    returns: np.ndarray
    """Return of each episode."""
    sha256: str
    reference: References
    """The original benchmark's references the dataset is scored with."""


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _make_env(task: str, bins: int):
    import gymnasium as gym

    import spin_bench  # noqa: F401  (registers the SPIN/ env ids)
    from spin_bench.envs.tasks import env_id

    return gym.make(env_id(task), bins=bins, bin_bounds=BIN_BOUNDS)


def import_original_file(file: OriginalFile, *, force: bool = False) -> ImportResult:
    """Convert one original file into the Minari dataset ``file.dataset_id``, installed atomically in Minari's data
    dir (DatasetError if it is installed already and ``force`` is False)."""
    from spin_bench.datasets.digest import DIGEST_FORMAT, dataset_digest
    from spin_bench.datasets.integrity import record_digest
    from spin_bench.datasets.minari_io import install_staged, minari_env, staging_area, write_episodes
    from spin_bench.datasets.provenance import library_versions, requirements

    name = file.dataset_id
    if is_installed(name) and not force:
        raise DatasetError(f"{name} is already imported at {local_dataset_dir(name)}; pass --force to replace it")
    env = _make_env(file.task, file.bins)
    try:
        spec, observation_space, action_space = env.spec, env.observation_space, env.action_space
    finally:
        env.close()
    arrays = read_original_file(file.path, observation_space.shape[0], np.asarray(action_space.nvec))
    bounds = episode_bounds(arrays)
    random_ref, expert_ref = REFERENCE_SCORES[(file.task, file.bins)]
    lengths = np.array([stop - start for start, stop, _ in bounds])
    ended_by = {reason: sum(1 for *_, why in bounds if why == reason) for reason in ENDED_BY}
    returns = np.array([arrays.rewards[start:stop].sum() for start, stop, _ in bounds])
    env_kwargs = {"bins": file.bins, "bin_bounds": BIN_BOUNDS}
    metadata = {
        "algorithm_name": "the original benchmark's DecQN behaviour agents (Beeson et al. 2024)",
        "description": (
            f"The original factorisable-action benchmark's {file.quality} dataset of {file.task} at {file.bins} bins "
            f"(Beeson, Ireland & Montana, TMLR 2024; the data of the SPIN paper), imported by spin-bench from the file "
            f"{file.path.name}: {len(arrays.rewards):,} transitions in {len(bounds):,} episodes. Bin k of every action "
            f"dimension is linspace(-1, 1, m)[k] whatever the actuator's range, clamped by MuJoCo (env kwarg "
            f"bin_bounds='unit'). The files' done flags mark the 1000-step time limit: stored as truncations; "
            f"terminations are all False. Normalized score = 100 * (return - ref_min_score) / (ref_max_score - "
            f"ref_min_score) with the original benchmark's reference returns."
        ),
        "ref_min_score": random_ref,
        "ref_max_score": expert_ref,
        "requirements": requirements(),
    }
    record = {
        "source": ORIGINAL_NAMESPACE,
        "task": file.task,
        "bins": file.bins,
        "quality": f"{ORIGINAL_NAMESPACE}/{file.quality}",
        "env_id": spec.id,
        "env_kwargs": env_kwargs,
        "reference_scores": {"random": random_ref, "expert": expert_ref, "source": REFERENCE_SOURCE},
        "import": {
            "file": file.path.name,
            "file_bytes": file.path.stat().st_size,
            "file_sha256": _sha256_file(file.path),
            "transitions": int(len(arrays.rewards)),
            "done_flags": int(arrays.dones.sum()),
            "episodes_ended_by": ended_by,
            "episode_length_min": int(lengths.min()),
            "episode_length_max": int(lengths.max()),
        },
        "versions": library_versions(),
        "digest_format": DIGEST_FORMAT,
    }
    with staging_area() as stage:
        with minari_env(datasets_path=stage):
            _create_namespaces(file)
            dataset = write_episodes(
                name,
                _episodes(arrays, bounds),
                env_spec=spec,
                observation_space=observation_space,
                action_space=action_space,
                metadata=metadata,
                extra_metadata={"spin_bench": record},
            )
        data_dir = stage / name / "data"
        digest = dataset_digest(data_dir, dataset_id=name)
        # The digest leaves spin_bench.* out, so recording it there does not change it.
        dataset.storage.update_metadata({"spin_bench": {**record, "sha256": digest}})
        record_digest(data_dir.parent, digest)
        path = install_staged(stage, name, force=force)
    return ImportResult(
        dataset_id=name,
        path=path,
        transitions=int(len(arrays.rewards)),
        episode_lengths=lengths,
        ended_by=ended_by,
        returns=returns,
        sha256=digest,
        reference=References(random_ref, expert_ref, PAPER_SOURCE),
    )


def _create_namespaces(file: OriginalFile) -> None:
    """Describe the ``original`` and ``original/<task>[-binsM]`` namespaces (Minari lists these)."""
    from minari.namespace import create_namespace, list_local_namespaces

    task_ns = task_namespace(file.task, file.bins, ORIGINAL_NAMESPACE)
    if ORIGINAL_NAMESPACE not in list_local_namespaces():
        create_namespace(
            ORIGINAL_NAMESPACE,
            description="The original factorisable-action benchmark's datasets (Beeson et al. 2024), imported by "
            "spin-bench from the published files",
        )
    if task_ns not in list_local_namespaces():
        create_namespace(task_ns, description=f"{file.task} with {file.bins} bins per action dimension")


# -- reading an imported dataset back --------------------------------------------------------------------------
def check_available(task: str, quality: str, bins: int = DEFAULT_BINS) -> None:
    """Before a run: ValueError if the original benchmark has no such dataset, DatasetError if it is not imported."""
    if (task, bins) not in REFERENCE_SCORES:
        have = ", ".join(f"{t} ({b} bins)" for t, b in REFERENCE_SCORES)
        raise ValueError(f"the original benchmark has no {task} datasets at {bins} bins; it has {have}")
    name = dataset_id(task, quality, bins)
    if not is_installed(name):
        raise DatasetError(
            f"{name} is not imported; import the original benchmark's files with `spin-bench datasets "
            f"import-original PATH` (PATH: the folder holding {bins}_bins/{task}-{quality.split('/')[-1]})"
        )


def _metadata(name: str) -> dict:
    from spin_bench.datasets.minari_io import read_metadata, reading

    data_dir = local_dataset_dir(name) / "data"
    if not is_installed(name):
        raise DatasetError(f"{name} is not imported; import it with `spin-bench datasets import-original PATH`")
    with reading(data_dir, name):
        return read_metadata(data_dir)


def verified_digest(name: str, *, recompute: bool = False) -> str:
    """The installed dataset's digest, checked against the one recorded when it was imported (DatasetIntegrityError
    naming the fix when they differ or none is recorded)."""
    from spin_bench.datasets.integrity import installed_digest

    recorded = (_metadata(name).get("spin_bench") or {}).get("sha256")
    fix = "import it again (`spin-bench datasets import-original PATH --force`)"
    if not isinstance(recorded, str):
        raise DatasetIntegrityError(f"{name}: no import record of its sha256 in its metadata.json; {fix}")
    digest = installed_digest(name, recompute=recompute)
    if digest != recorded:
        raise DatasetIntegrityError(
            f"{name}: the installed data has sha256 {digest[:16]}..., its import recorded {recorded[:16]}... "
            f"(corrupt or changed); {fix}"
        )
    return digest


def imported_ids() -> list[str]:
    """Ids of the original-benchmark datasets imported into Minari's data dir, in (task, bins, level) order."""
    return [
        name
        for task, bins in sorted(REFERENCE_SCORES)
        for quality in ORIGINAL_QUALITIES
        if is_installed(name := dataset_id(task, f"{ORIGINAL_NAMESPACE}/{quality}", bins))
    ]


def import_metadata(name: str) -> dict:
    """The Minari metadata of the imported dataset ``name`` (its import record under ``spin_bench``)."""
    return _metadata(name)


def read_import(name: str) -> tuple[str, dict, References]:
    """The evaluation env id, its ``gymnasium.make`` keyword arguments (the stored eval env spec's, less the
    registered ``task``) and the references of the imported dataset ``name``, from its metadata (one read)."""
    from spin_bench.datasets.minari_io import reading

    data_dir = local_dataset_dir(name) / "data"
    meta = _metadata(name)
    with reading(data_dir, name):
        spec = json.loads(meta["eval_env_spec"])
        recorded = (meta.get("spin_bench") or {}).get("reference_scores") or {}
        references = References(float(recorded["random"]), float(recorded["expert"]), PAPER_SOURCE)
    return spec["id"], {k: v for k, v in spec["kwargs"].items() if k != "task"}, references


def imported_references(name: str) -> References:
    """The references an imported dataset is scored with: the original benchmark's, as its import recorded them."""
    return read_import(name)[2]


def imported_transitions(name: str) -> Transitions:
    """The flat transitions of the imported dataset ``name``."""
    from spin_bench.datasets.minari_io import read_transitions

    return read_transitions(local_dataset_dir(name) / "data", dataset_id=name)
