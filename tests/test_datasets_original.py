"""Importing the original benchmark's files (the dmc_datasets layout): real pickles written as the original code
wrote them, real dm_control rollouts, real Minari datasets, the real CLI, and a short real run on the import."""

import csv
import json
import os
import pickle
from pathlib import Path

import h5py
import minari
import numpy as np
import pytest
from typer.testing import CliRunner

import spin_bench
from spin_bench.cli import app
from spin_bench.datasets.original import REFERENCE_SCORES, imported_transitions
from spin_bench.datasets.safe_pickle import RefusedPickleError, load_restricted

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray

CHEETAH_REFS = REFERENCE_SCORES[("cheetah-run", 3)]


class _Numpy1Pickler(pickle._Pickler):
    """Names numpy's array and scalar reconstructors ``numpy.core.multiarray.*``, as pickles written under numpy 1.x
    (the original files' era) do; pickle protocol 4, Python 3.8-3.13's default."""

    _NAMES = {id(_multiarray._reconstruct): "_reconstruct", id(_multiarray.scalar): "scalar"}

    def save_global(self, obj, name=None):
        alias = self._NAMES.get(id(obj))
        if alias is None:
            return super().save_global(obj, name)
        self.save("numpy.core.multiarray")
        self.save(alias)
        self.write(pickle.STACK_GLOBAL)
        self.memoize(obj)


def _write_original(path: Path, transitions) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        _Numpy1Pickler(f, protocol=4).dump(transitions)
    return path


def _original_rollout(task: str, seed: int, steps: int, rng) -> list[tuple]:
    """One episode as the original code records it: dm_control directly, bins ``np.linspace(-1, 1, 3)`` on every
    actuator (the loader's ``DMSuiteEnv`` action box is [-1, 1]), float64 observations flattened in key order,
    ``done = timestep.last()`` (True only at the 1000-step limit)."""
    from dm_control import suite

    domain, name = task.split("-", 1)
    env = suite.load(domain, name, task_kwargs={"random": seed})
    n = env.action_spec().shape[0]
    values = np.linspace(np.float64(-1.0), np.float64(1.0), 3)
    flat = lambda ts: np.concatenate([np.asarray(v).flatten() for v in ts.observation.values()])  # noqa: E731
    ts = env.reset()
    s, out = flat(ts), []
    for _ in range(steps):
        a = rng.integers(0, 3, size=n)
        ts = env.step([values[k] for k in a])
        s_next = flat(ts)
        out.append((s, a, ts.reward, s_next, ts.last()))
        s = s_next
    return out


@pytest.fixture(scope="module")
def original_root(tmp_path_factory):
    """A folder in the original layout with the quirks of the real files:

    - ``3_bins/cheetah-run-medium``: two whole 1000-step episodes back to back, ``done`` True at each time limit;
    - ``3_bins/cheetah-run-random-medium-expert``: two cuts of other episodes (300 and 200 steps) with no done
      flag at all, a reward as a Python float, an action as a list, ``done`` as numpy bools and ints;
    - ``3_bins/quadruped-walk-expert``: 200 steps acted with the original mapping (linspace(-1, 1, 3) everywhere);
    - ``3_bins/notes.txt``: not a data file.
    """
    root = tmp_path_factory.mktemp("dmc-original")
    rng = np.random.default_rng(0)
    _write_original(
        root / "3_bins" / "cheetah-run-medium",
        _original_rollout("cheetah-run", 11, 1000, rng) + _original_rollout("cheetah-run", 12, 1000, rng),
    )
    mixed = _original_rollout("cheetah-run", 13, 1000, rng)[100:400] + _original_rollout("cheetah-run", 14, 200, rng)
    mixed = [(s, a, r, s2, np.bool_(d)) for s, a, r, s2, d in mixed]
    s, a, r, s2, _ = mixed[5]
    mixed[5] = (s, a.tolist(), float(r), s2, 0)
    _write_original(root / "3_bins" / "cheetah-run-random-medium-expert", mixed)
    _write_original(root / "3_bins" / "quadruped-walk-expert", _original_rollout("quadruped-walk", 21, 200, rng))
    (root / "3_bins" / "notes.txt").write_text("not data\n")
    return root


def _cli(*args: str):
    return CliRunner().invoke(app, [str(a) for a in args])


def _transitions(path: Path) -> list[tuple]:
    with open(path, "rb") as f:
        return pickle.load(f)  # the test's own files: trusted


def _one_error_line(result) -> str:
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("spin-bench: error: "), result.output
    return lines[0]


def test_import_converts_the_layout_with_truncations_where_done_or_the_chain_breaks(original_root):
    result = _cli(
        "datasets", "import-original", original_root, "--tasks", "cheetah-run", "--quality",
        "medium,random-medium-expert",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "not importable:" in result.output and "notes.txt" in result.output
    assert "original/cheetah-run/medium-v0: 2,000 transitions in 2 episodes of 1000 steps" in result.output

    data = minari.load_dataset("original/cheetah-run/medium-v0")  # stock Minari reads it
    assert data.total_episodes == 2 and data.total_steps == 2000
    assert (data.storage.metadata["ref_min_score"], data.storage.metadata["ref_max_score"]) == CHEETAH_REFS
    env = data.recover_environment(eval_env=True)
    assert env.unwrapped.bin_bounds == "unit" and env.spec.kwargs["bins"] == 3 and env.spec.max_episode_steps == 1000
    env.close()

    source = _transitions(original_root / "3_bins" / "cheetah-run-medium")
    t = imported_transitions("original/cheetah-run/medium-v0")
    np.testing.assert_array_equal(t.observations, np.array([x[0] for x in source], dtype=np.float32))
    np.testing.assert_array_equal(t.next_observations, np.array([x[3] for x in source], dtype=np.float32))
    np.testing.assert_array_equal(t.actions, np.array([x[1] for x in source]))
    np.testing.assert_array_equal(t.rewards, np.array([x[2] for x in source], dtype=np.float32))
    assert not t.terminals.any()  # the done flags are time limits, never terminal states
    assert np.flatnonzero(t.timeouts).tolist() == [999, 1999]

    mixed = _transitions(original_root / "3_bins" / "cheetah-run-random-medium-expert")
    t = imported_transitions("original/cheetah-run/random-medium-expert-v0")
    assert not any(x[4] for x in mixed) and len(t) == 500
    np.testing.assert_array_equal(t.next_observations, np.array([x[3] for x in mixed], dtype=np.float32))
    assert not t.terminals.any() and np.flatnonzero(t.timeouts).tolist() == [299, 499]  # chain break, end of file
    meta = minari.load_dataset("original/cheetah-run/random-medium-expert-v0").storage.metadata["spin_bench"]
    assert meta["import"]["episodes_ended_by"] == {"done": 0, "chain break": 1, "end of file": 1}
    assert meta["reference_scores"]["random"] == CHEETAH_REFS[0] and meta["env_kwargs"]["bin_bounds"] == "unit"


def test_the_imported_env_replays_data_acted_with_the_original_quadruped_mapping(original_root):
    result = _cli("datasets", "import-original", original_root / "3_bins", "--tasks", "quadruped-walk")
    assert result.exit_code == 0, result.output
    data = minari.load_dataset("original/quadruped-walk/expert-v0")
    episode = next(iter(data.iterate_episodes()))
    replays = {}
    for bounds in ("unit", "actuator"):
        env = data.recover_environment(eval_env=True, bin_bounds=bounds)
        obs, _ = env.reset(seed=21)  # the file's episode was reset with random=21
        assert np.array_equal(obs, episode.observations[0])
        replays[env.unwrapped.bin_bounds] = np.array([env.step(a)[0] for a in episode.actions])
        env.close()
    np.testing.assert_array_equal(replays["unit"], episode.observations[1:])  # bit-identical to the data
    assert not np.allclose(replays["actuator"], episode.observations[1:])  # spin-bench's default bins: not the data


def test_unit_bins_are_the_loaders_linspace_on_every_actuator_and_actuator_bins_differ_on_quadruped():
    from spin_bench.envs import DiscreteDMCEnv

    unit, own = DiscreteDMCEnv("quadruped-walk", bins=3, bin_bounds="unit"), DiscreteDMCEnv("quadruped-walk", bins=3)
    assert all(np.array_equal(v, np.linspace(-1, 1, 3)) for v in unit.bin_values)
    low, high = own.action_bins.low, own.action_bins.high  # the actuators' control ranges
    effective = [np.clip(unit.bin_values[d], low[d], high[d]) for d in range(12)]  # what MuJoCo applies
    differ = [d for d in range(12) if not np.array_equal(own.bin_values[d], effective[d])]
    assert differ == [1, 4, 7, 10]  # at 3 bins the [-1, 1.1] actuators: 0 and 1 instead of 0.05 and 1.1
    with pytest.raises(ValueError, match="bin_bounds='box' is not allowed; use one of actuator, unit"):
        DiscreteDMCEnv("cheetah-run", bin_bounds="box")


def test_a_run_on_an_imported_dataset_is_normalized_by_the_papers_references(original_root, tmp_path):
    out = tmp_path / "runs"
    args = ["run", "bc", "--task", "cheetah-run", "--dataset", "original/medium", "--preset", "quick"]
    args += ["--steps", "20", "--eval-every", "20", "--eval-episodes", "1", "--out", out]
    result = _cli(*args)
    assert result.exit_code == 1 and "original/cheetah-run/medium-v0 is not imported" in _one_error_line(result)

    assert _cli("datasets", "import-original", original_root, "--quality", "medium").exit_code == 0
    listed = _cli("datasets", "list", "--task", "cheetah-run", "--offline")
    assert listed.exit_code == 0 and "original/cheetah-run/medium-v0" in listed.output and "imported" in listed.output
    info = _cli("datasets", "info", "original/cheetah-run/medium-v0")
    assert info.exit_code == 0, info.output
    assert "random 5.39, expert 664.57 (the original benchmark's published reference scores" in info.output
    assert "2,000 transitions, 2 episodes" in info.output and "cheetah-run-medium" in info.output
    result = _cli(*args)
    assert result.exit_code == 0, result.output
    (summary_path,) = out.rglob("summary.json")
    summary = json.loads(summary_path.read_text())
    config = json.loads((summary_path.parent / "config.json").read_text())
    assert config["dataset_id"] == "original/cheetah-run/medium-v0"
    assert config["env_kwargs"] == {"bins": 3, "bin_bounds": "unit"}  # evaluated with the data's mapping
    low, high = CHEETAH_REFS
    expected = 100 * (summary["final_return_mean"] - low) / (high - low)
    assert summary["final_normalized_score"] == pytest.approx(expected, abs=0.01)

    result = _cli("report", out, "--format", "csv")
    assert result.exit_code == 0, result.output
    (row,) = csv.DictReader(open(out / "report.csv"))
    assert row["dataset"] == "original/medium" and float(row["normalized_score"]) == pytest.approx(expected, abs=0.01)
    header = " ".join(_cli("report", out).output.split())
    assert "with the original benchmark's published reference scores" in header and "catalog" not in header
    assert spin_bench.normalized_score("original/cheetah-run/medium-v0", summary["final_return_mean"]) == pytest.approx(
        expected
    )

    result = _cli("eval", summary_path.parent, "--episodes", "1")
    assert result.exit_code == 0, result.output
    returned = float(result.output.split("return ")[1].split(" ")[0])
    normalized = float(result.output.split("normalized ")[1].split()[0])
    assert normalized == pytest.approx(100 * (returned - low) / (high - low), abs=0.1)  # printed to 0.1

    assert "OK" in _cli("datasets", "verify", "original/cheetah-run/medium-v0").output
    data_file = next((Path(os.environ["MINARI_DATASETS_PATH"]) / "original/cheetah-run/medium-v0").rglob("*.hdf5"))
    with h5py.File(data_file, "r+") as f:
        f["episode_0/rewards"][0] += 1.0  # damaged data no longer matches its import record
    result = _cli(*args[:-2], "--out", tmp_path / "runs2")
    line = result.output.strip().splitlines()[-1]  # after the line announcing the run, as for catalog data
    assert result.exit_code == 1 and line.startswith("spin-bench: error: original/cheetah-run/medium-v0: the ")
    assert "installed data has sha256" in line and "import-original PATH --force" in line


def test_a_malicious_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    root = tmp_path / "data"
    path = root / "3_bins" / "cheetah-run-medium"
    path.parent.mkdir(parents=True)
    path.write_bytes(pickle.dumps([(np.zeros(17), np.zeros(6, dtype=np.int64), 0.0, np.zeros(17), Payload())]))
    result = _cli("datasets", "import-original", root)
    line = _one_error_line(result)
    assert result.exit_code == 1 and f"{path}: refused to unpickle: it references {os.system.__module__}.system" in line
    assert not marker.exists()  # nothing ran
    assert not (Path(os.environ["MINARI_DATASETS_PATH"]) / "original").exists()  # nothing installed


@pytest.mark.parametrize(
    ("payload", "refused"),
    [
        (lambda m: (eval, (f"open({str(m)!r}, 'w')",)), "builtins.eval"),
        (lambda m: (Path.touch, (m,)), "pathlib"),
        (lambda m: (np.array, ([str(m)], object)), r"numpy\S*\.array"),
    ],
)
def test_restricted_unpickler_refuses_every_other_name(tmp_path, payload, refused):
    marker = tmp_path / "marker"

    class Payload:
        def __reduce__(self):
            return payload(marker)

    path = tmp_path / "file"
    path.write_bytes(pickle.dumps([1, Payload()]))
    with pytest.raises(RefusedPickleError, match=f"refused to unpickle: it references {refused}") as err:
        load_restricted(path)
    assert "\n" not in str(err.value) and not marker.exists()


def test_restricted_unpickler_reads_numpy_data_of_every_protocol_and_refuses_object_arrays(tmp_path):
    data = [(np.arange(3.0), np.array([0, 2]), np.float64(0.5), np.zeros(3, np.float32), np.bool_(True)), (1, "a")]
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        (tmp_path / "p").write_bytes(pickle.dumps(data, protocol=protocol))
        back = load_restricted(tmp_path / "p")
        assert np.array_equal(back[0][0], data[0][0]) and back[0][2] == 0.5 and back[0][4] and back[1] == (1, "a")
    (tmp_path / "o").write_bytes(pickle.dumps(np.array([1, "a"], dtype=object)))
    with pytest.raises(RefusedPickleError, match="numpy dtype object is not a plain numeric type"):
        load_restricted(tmp_path / "o")


@pytest.mark.parametrize(
    ("where", "args", "message"),
    [
        ("nowhere", [], "is not a folder; give the folder that holds the original benchmark's <bins>_bins folders"),
        ("empty", [], "holds no <bins>_bins folder (e.g. 3_bins)"),
        ("root", ["--tasks", "walker-walk"], "--tasks walker-walk: the original benchmark has no datasets for it"),
        ("root", ["--bins", "7"], "--bins 7: the original benchmark has no datasets at 7 bins"),
        ("root", ["--quality", "random"], "--quality random: not a level of the original benchmark"),
        ("root", ["--tasks", "dog-trot"], "no original benchmark file under"),
    ],
)
def test_bad_paths_and_filters_are_one_line_with_exit_code_2(original_root, tmp_path, where, args, message):
    (tmp_path / "empty").mkdir()
    folder = {"nowhere": tmp_path / "nowhere", "empty": tmp_path / "empty", "root": original_root}[where]
    result = _cli("datasets", "import-original", folder, *args)
    assert result.exit_code == 2 and message in _one_error_line(result)


def test_a_file_of_another_task_is_refused_naming_the_transition(original_root, tmp_path):
    root = tmp_path / "data"
    cheetah = _transitions(original_root / "3_bins" / "cheetah-run-medium")[:3]
    _write_original(root / "3_bins" / "finger-spin-expert", cheetah)  # cheetah's 17-number observations
    result = _cli("datasets", "import-original", root)
    assert result.exit_code == 1
    assert "finger-spin-expert: transition 0: s is an array of shape (17,)" in _one_error_line(result)
    assert "expected 9 numbers" in result.output


def test_the_catalogs_paper_references_are_the_original_benchmarks():
    from spin_bench.datasets.catalog import load_catalog

    for entry in load_catalog():
        paper = entry.paper_reference or {}
        if (entry.task, entry.bins) in REFERENCE_SCORES and paper.get("random") is not None:
            assert (paper["random"], paper["expert"]) == REFERENCE_SCORES[(entry.task, entry.bins)], entry.label
