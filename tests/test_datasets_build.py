"""Build small datasets end to end and load them with stock Minari and spin-bench."""

import json
import os
import subprocess
import sys

import gymnasium as gym
import minari
import numpy as np
import pytest
from typer.testing import CliRunner

import spin_bench
from spin_bench.cli.datasets import app as datasets_app
from spin_bench.datasets import build as build_module
from spin_bench.datasets.build import build_blockers, build_dataset
from spin_bench.datasets.catalog import load_catalog
from spin_bench.datasets.digest import dataset_digest
from spin_bench.datasets.minari_io import (
    STAGING_DIR,
    DatasetError,
    datasets_root,
    is_installed,
    iter_episode_arrays,
    local_dataset_dir,
    staging_area,
)
from spin_bench.datasets.progress import episode_progress
from spin_bench.pipeline.record import record_dataset

EXPERT = "spin/cheetah-run/expert-v0"


def _arrays(dataset_id):
    return list(iter_episode_arrays(local_dataset_dir(dataset_id) / "data"))


def test_build_end_to_end_loads_with_stock_minari(tiny_catalog):
    result = record_dataset(EXPERT, workers=1, progress=False)
    assert result.recorded and result.catalog_sha256 is None
    assert load_catalog().dataset(EXPERT).sha256 == result.sha256  # recorded in the catalog file

    dataset = minari.load_dataset(EXPERT)
    entry = load_catalog().task_entry("cheetah-run")
    env = gym.make(entry.env_id, **entry.env_kwargs)
    assert dataset.observation_space == env.observation_space
    assert dataset.action_space == env.action_space
    assert dataset.total_episodes == 2 and dataset.total_steps == 2000
    nvec = env.action_space.nvec
    for episode in dataset.iterate_episodes():
        assert len(episode.observations) == len(episode.actions) + 1 == 1001
        assert episode.observations.dtype == np.float32 and episode.actions.dtype == np.int8
        assert episode.rewards.dtype == np.float32
        assert np.all(episode.actions >= 0) and np.all(episode.actions < nvec)
        assert not episode.terminations.any()
        assert episode.truncations[-1] and not episode.truncations[:-1].any()

    # Replaying the stored actions from the stored seed reproduces the stored rewards and observations.
    metadata = list(dataset.storage.get_episode_metadata(range(dataset.total_episodes)))
    for episode, labels in zip(dataset.iterate_episodes(), metadata, strict=True):
        assert labels["policy"] == "expert" and labels["epsilon"] == 0.05
        assert labels["seed"] == labels["segment_seed"] + labels["segment_index"]
        replay = gym.make(entry.env_id, **entry.env_kwargs)
        obs, _ = replay.reset(seed=labels["seed"])
        np.testing.assert_array_equal(obs, episode.observations[0])
        for t, action in enumerate(episode.actions):
            obs, reward, terminated, truncated, _ = replay.step(action)
            assert np.float32(reward) == episode.rewards[t]
            np.testing.assert_array_equal(obs, episode.observations[t + 1])
        assert truncated and not terminated

    # recover_environment() rebuilds exactly the catalog's env; metadata records versions and the catalog entry.
    assert dataset.recover_environment().spec == env.spec
    assert dataset.recover_environment(eval_env=True).spec == env.spec
    meta = dataset.storage.metadata
    assert meta["ref_min_score"] == 5.0 and meta["ref_max_score"] == 500.0
    assert any(r.startswith("mujoco==") for r in meta["requirements"])
    assert any(r.startswith("dm_control==") for r in meta["requirements"])
    versions = meta["spin_bench"]["versions"]
    assert {"mujoco", "dm_control", "gymnasium", "spin-bench"} <= set(versions)
    assert meta["spin_bench"]["catalog_entry"]["recipe"]["segments"][0]["policy"] == "expert"
    assert meta["spin_bench"]["sha256"] == result.sha256


def test_flat_view_and_make_env_and_dataset(tiny_catalog, capsys):
    # Not installed and not yet published (no sha256 to verify a download): make_env_and_dataset builds it, saying why.
    env, data = spin_bench.make_env_and_dataset("spin/cheetah-run/random-medium-expert-v0")
    assert "cannot be downloaded (no sha256 in the catalog yet); building it locally" in capsys.readouterr().err
    assert env.spec == gym.make(spin_bench.env_id("cheetah-run")).spec
    assert is_installed(data.id)
    tr = data.transitions
    assert len(tr) == 3000 and tr.observations.shape == (3000, 17) and tr.actions.shape == (3000, 6)
    assert tr.observations.dtype == np.float32 and tr.actions.dtype == np.int8 and tr.rewards.dtype == np.float32
    assert not tr.terminals.any()
    np.testing.assert_array_equal(np.flatnonzero(tr.timeouts), [999, 1999, 2999])
    episodes = _arrays(data.id)
    for k, (_, _, arrays) in enumerate(episodes):
        rows = slice(1000 * k, 1000 * (k + 1))
        np.testing.assert_array_equal(tr.observations[rows], arrays["observations"][:-1])
        np.testing.assert_array_equal(tr.next_observations[rows], arrays["observations"][1:])
        np.testing.assert_array_equal(tr.actions[rows], arrays["actions"])
        np.testing.assert_array_equal(tr.rewards[rows], arrays["rewards"])
    assert [a["policy"] for _, a, _ in episodes] == ["random", "medium", "expert"]
    np.testing.assert_array_equal(tr.nvec, [3] * 6)
    assert data.normalized_score(500.0) == 100.0
    assert data.quality == "random-medium-expert"


def test_same_recipe_same_arrays_whatever_the_workers(tiny_catalog, monkeypatch):
    """Episodes depend only on (segment seed, index): 1 or 2 processes, simulated or assembled, same data."""
    one = build_dataset("spin/cheetah-run/medium-expert-v0", workers=1, progress=False)
    first = _arrays(one.dataset_id)
    two = build_dataset("spin/cheetah-run/medium-expert-v0", workers=2, progress=False, force=True)
    assert two.sha256 == one.sha256
    for (s1, _, a1), (s2, _, a2) in zip(first, _arrays(two.dataset_id), strict=True):
        assert s1 == s2
        for key in a1:
            assert a1[key].dtype == a2[key].dtype
            np.testing.assert_array_equal(a1[key], a2[key])
    # Assembled from the installed medium and expert datasets instead of re-simulated: same sha256.
    build_dataset("spin/cheetah-run/medium-v0", workers=1, progress=False)
    build_dataset(EXPERT, workers=1, progress=False)

    def no_simulation(*args, **kwargs):
        raise AssertionError("a concat dataset whose parts are installed must not simulate them again")

    monkeypatch.setattr(build_module, "run_episodes", no_simulation)
    assembled = build_dataset("spin/cheetah-run/medium-expert-v0", workers=1, progress=False, force=True)
    assert assembled.sha256 == one.sha256


def test_build_checks_the_recorded_sha256(tiny_catalog):
    first = record_dataset(EXPERT, workers=1, progress=False)
    again = build_dataset(EXPERT, workers=1, progress=False, force=True)
    assert again.matches_catalog and again.sha256 == first.sha256
    raw = json.loads(tiny_catalog.read_text())
    raw["entries"][0]["datasets"][EXPERT]["sha256"] = "0" * 64
    tiny_catalog.write_text(json.dumps(raw))
    with pytest.raises(DatasetError, match="differs from the catalog's 0000000000000000...") as err:
        build_dataset(EXPERT, workers=1, progress=False, force=True)
    assert "nothing was installed" in str(err.value)
    assert dataset_digest(local_dataset_dir(EXPERT) / "data") == first.sha256  # the installed copy is untouched


def test_interrupted_build_leaves_nothing(tiny_catalog, monkeypatch):
    real = build_module.run_episodes

    def interrupted(*args, **kwargs):
        yield next(iter(real(*args, **kwargs)))
        raise KeyboardInterrupt

    monkeypatch.setattr(build_module, "run_episodes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build_dataset(EXPERT, workers=1, progress=False)
    assert not local_dataset_dir(EXPERT).exists()
    assert minari.list_local_datasets() == {}
    assert not (datasets_root() / STAGING_DIR).exists()


def test_staging_left_by_a_killed_process_is_cleaned():
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = datasets_root() / STAGING_DIR / f"{os.uname().nodename}-{int(dead.stdout)}-deadbeef"
    (leftover / "spin").mkdir(parents=True)
    with staging_area() as stage:
        assert stage.exists() and not leftover.exists()
    assert not (datasets_root() / STAGING_DIR).exists()


def test_not_buildable_and_already_installed_errors(tiny_catalog):
    raw = json.loads(tiny_catalog.read_text())
    raw["entries"][0]["checkpoints"]["expert"]["sha256"] = None
    raw["entries"][0]["reference_scores"]["expert"]["value"] = None
    tiny_catalog.write_text(json.dumps(raw))
    with pytest.raises(DatasetError, match="cannot be built yet: the expert reference score of cheetah-run") as err:
        build_dataset(EXPERT, workers=1, progress=False)
    assert "checkpoint 'expert' (checkpoints/expert.pt) is not registered" in str(err.value)
    with pytest.raises(DatasetError, match="random-v0 cannot be built yet: the expert reference score") as err:
        build_dataset("spin/cheetah-run/random-v0", workers=1, progress=False)
    assert "checkpoint" not in str(err.value)


def test_cli_list_info_build(tiny_catalog):
    from spin_bench.pipeline.cli import app as maintain_app

    runner = CliRunner()
    result = runner.invoke(datasets_app, ["build", EXPERT, "--workers", "1", "--record"])
    assert result.exit_code == 2 and "No such option: --record" in result.output  # recording is the maintainers'
    result = runner.invoke(maintain_app, ["record", EXPERT, "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert "recorded" in result.output
    assert f"build {EXPERT}: " in result.output and " episodes, " in result.output  # plain progress lines
    result = runner.invoke(datasets_app, ["build", EXPERT, "--workers", "1"])
    assert result.exit_code == 1
    assert result.output.strip().count("\n") == 0 and "already installed" in result.output
    result = runner.invoke(datasets_app, ["list", "--offline"])
    assert result.exit_code == 0, result.output
    assert "spin/cheetah-run/random-medium-expert-v0" in result.output and "buildable" in result.output
    result = runner.invoke(datasets_app, ["info", EXPERT])
    assert result.exit_code == 0, result.output
    assert load_catalog().dataset(EXPERT).sha256 in result.output
    assert "450.00: met" in result.output  # the tiny catalog's expert reference is 500
    result = runner.invoke(datasets_app, ["info", "spin/cheetah-run/expert-v9"])
    assert result.exit_code == 2 and "unknown dataset id 'spin/cheetah-run/expert-v9'" in result.output
    result = runner.invoke(datasets_app, ["verify", EXPERT])
    assert result.exit_code == 0 and "OK" in result.output


def test_real_catalog_list_shows_which_datasets_are_buildable():
    result = CliRunner().invoke(datasets_app, ["list", "--offline"])
    assert result.exit_code == 0, result.output
    catalog = load_catalog()
    seen = {}
    for line in result.output.splitlines():
        cells = [c.strip() for c in line.strip().strip("│┃|").split("│")]
        if cells[0].startswith("spin/"):
            seen[cells[0]] = cells[-1]
    assert set(seen) == set(catalog.dataset_ids())
    for dataset_id, buildable in seen.items():
        entry, ds = catalog.lookup(dataset_id)
        assert buildable == ("no" if build_blockers(entry, ds) else "yes"), dataset_id
    assert seen["spin/cheetah-run/expert-v0"] == "yes"


def test_an_expert_below_its_target_blocks_every_dataset_of_its_entry(tmp_path, monkeypatch):
    from conftest import write_tiny_catalog

    path = write_tiny_catalog(tmp_path / "catalog", expert_ref=420.0)  # the target is 450
    monkeypatch.setenv("SPIN_BENCH_CATALOG", str(path))
    with pytest.raises(
        DatasetError, match=r"expert reference of cheetah-run \(3 bins\), 420.0, is below its target 450.0"
    ):
        build_dataset("spin/cheetah-run/random-v0", workers=1, progress=False)
    assert not is_installed("spin/cheetah-run/random-v0")


def test_progress_redirected_to_a_file_prints_plain_lines(capsys):
    # Under pytest stderr is not a terminal, as under `nohup ... > log`: a rich bar would
    # only appear at the end, so the rollout reports a plain line per tenth instead.
    with episode_progress("build spin/x/expert-v0", 25) as advance:
        for _ in range(25):
            advance(range(10))
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 9  # every 3rd episode of 25, and the last
    assert lines[0].startswith("build spin/x/expert-v0: 3/25 episodes, 30 steps, ")
    assert lines[-1].startswith("build spin/x/expert-v0: 25/25 episodes, 250 steps, ")
    assert lines[-1].endswith("about 0 s left")
