"""Prefix fingerprints, the generated dataset card, and catalog edits that do not overwrite each other."""

import json
import multiprocessing

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from spin_bench.datasets.catalog import Catalog, default_catalog_path, expert_status, expert_target, load_catalog
from spin_bench.datasets.kernels import local_kernels
from spin_bench.datasets.minari_io import episode_returns, local_dataset_dir
from spin_bench.pipeline.card import render_card
from spin_bench.pipeline.catalog_edit import edit_catalog
from spin_bench.pipeline.cli import app as maintain_app
from spin_bench.pipeline.fingerprint import _TieWatch, check_prefix, compare_prefix, prefix_positions, simulate_prefix
from spin_bench.pipeline.record import record_dataset

RME = "spin/cheetah-run/random-medium-expert-v0"
EXPERT = "spin/cheetah-run/expert-v0"


def test_prefix_takes_the_first_episode_of_every_segment(tiny_catalog):
    ds = load_catalog().dataset(RME)  # tiny catalog: one random, one medium, one expert episode
    assert prefix_positions(ds) == [0, 1, 2]
    me = load_catalog().dataset("spin/cheetah-run/medium-expert-v0")  # 2 medium then 2 expert episodes
    assert prefix_positions(me) == [0, 2]
    assert prefix_positions(me, per_segment=5) == [0, 1, 2, 3]


def test_recorded_build_carries_a_prefix_that_resimulation_matches(tiny_catalog):
    assert load_catalog().lookup(RME)[0].recording_kernels is None
    record_dataset(RME, workers=1, progress=False)
    catalog = load_catalog()
    entry, ds = catalog.lookup(RME)
    assert entry.recording_kernels == local_kernels()  # the first record names this machine's kernels
    recorded = ds.raw["prefix"]
    assert recorded["lengths"] == [1000, 1000, 1000]
    # With one episode per segment the prefix is the whole tiny dataset: its returns are the built episodes'.
    built = episode_returns(local_dataset_dir(RME) / "data")
    assert recorded["returns"] == pytest.approx(list(built), abs=1e-3)
    assert compare_prefix(recorded, simulate_prefix(entry, ds)) == []

    result = CliRunner().invoke(maintain_app, ["check-prefix", RME])
    assert result.exit_code == 0, result.output

    # A return no rounding tie explains (the random policy's has no greedy decisions) stays a failure.
    recorded["returns"][0] += 0.5
    problems, notes = check_prefix(entry, ds)
    assert problems == [f"prefix episode 0: return {recorded['returns'][0] - 0.5:.4f} != recorded "
                        f"{recorded['returns'][0]:.4f}"] and notes == []  # fmt: skip
    assert f"{RME}: OK" in result.output


def test_check_prefix_catches_a_changed_recipe(tiny_catalog):
    record_dataset(EXPERT, workers=1, progress=False)
    raw = json.loads(tiny_catalog.read_text())
    segment = raw["entries"][0]["datasets"][EXPERT]["recipe"]["segments"][0]
    segment["epsilon"] = 0.5  # what a silently edited recipe would do
    tiny_catalog.write_text(json.dumps(raw))
    result = CliRunner().invoke(maintain_app, ["check-prefix", EXPERT])
    assert result.exit_code == 1
    assert f"{EXPERT}: MISMATCH" in result.output and "prefix episode 0: return" in result.output


def test_check_prefix_can_backfill_from_an_installed_build(tiny_catalog):
    record_dataset(EXPERT, workers=1, progress=False)
    with edit_catalog() as catalog:  # a build recorded before prefixes existed
        del catalog.raw["entries"][0]["datasets"][EXPERT]["prefix"]
    result = CliRunner().invoke(maintain_app, ["check-prefix", "--record-from-installed"])
    assert result.exit_code == 0, result.output
    assert "prefix of 1 episodes recorded" in result.output and f"{EXPERT}: OK" in result.output
    assert "prefix" in load_catalog().dataset(EXPERT).raw


def test_check_prefix_without_any_recorded_prefix_is_a_one_line_error(tiny_catalog):
    result = CliRunner().invoke(maintain_app, ["check-prefix"])
    assert result.exit_code == 2
    assert "no dataset in the catalog has a recorded prefix" in result.output


def _record_reference(path, which, value):
    with edit_catalog(path) as catalog:
        catalog.set_reference("cheetah-run", 3, which, value=value)


def test_catalog_edits_from_several_processes_are_all_kept(tiny_catalog):
    stale = load_catalog()  # loaded before the others write: its build record must not undo their edits
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_record_reference, args=(tiny_catalog, w, v)) for w, v in (("random", 7.5),)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert all(p.exitcode == 0 for p in procs)
    record_dataset(EXPERT, workers=1, progress=False, catalog=stale)
    catalog = load_catalog()
    assert catalog.task_entry("cheetah-run").reference["random"].value == 7.5
    assert catalog.dataset(EXPERT).sha256 is not None


def test_card_lists_every_entry_and_marks_targets(tiny_catalog):
    loaded = load_catalog()
    catalog = Catalog(loaded.raw, loaded.path)  # a copy to edit: load_catalog's result is shared and read-only
    entry = catalog.task_entry("cheetah-run")
    assert expert_target(entry) == 450.0  # the catalog's own target wins over 85% of the paper's expert
    assert expert_status(entry) == "met"  # the tiny catalog's expert reference is 500
    del entry.raw["expert_target"]
    assert expert_target(entry) == pytest.approx(0.85 * 664.57, abs=0.01)
    assert expert_status(entry) == "below target"
    text = render_card(catalog)
    assert "| cheetah-run | 3 | 6 | 17 | 729 | 5.0 | 500.0 (564.9) | below target | – | – |" in text
    record_dataset(EXPERT, workers=1, progress=False)  # reads the file, with its target of 450
    stats = load_catalog().dataset(EXPERT).stats
    assert f"0.002M / {stats['return_mean']:,.1f}" in render_card(load_catalog())


def test_committed_dataset_card_is_generated_from_the_catalog():
    result = CliRunner().invoke(maintain_app, ["card", "--check"])
    assert result.exit_code == 0, (
        f"{result.output} datasets/README.md is stale: run `spin-bench-maintain card` and commit it"
    )
    assert default_catalog_path().parent.joinpath("README.md").is_file()


def _recorded_ids() -> list[str]:
    catalog = load_catalog(default_catalog_path())
    return [i for i in catalog.dataset_ids() if catalog.dataset(i).sha256 is not None]


def test_every_recorded_catalog_dataset_has_a_prefix_fingerprint():
    catalog = load_catalog()
    recorded = _recorded_ids()
    assert recorded, "the catalog records no built dataset"
    missing = [i for i in recorded if "prefix" not in catalog.dataset(i).raw]
    assert not missing, (
        f"recorded without a prefix (spin-bench-maintain check-prefix --record-from-installed): {missing}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("dataset_id", _recorded_ids())
def test_catalog_dataset_prefix_rebuilds_from_its_checkpoints(dataset_id):
    """Re-simulate the prefix of every published dataset: a changed trainer, simulator or recipe fails here."""
    entry, ds = load_catalog().lookup(dataset_id)
    problems, notes = check_prefix(entry, ds)
    assert problems == [], notes  # notes: episodes another CPU's float32 rounding can send another way
    if entry.recording_kernels is not None:  # emulated near-ties: the prefix is the same bits on every CPU
        assert notes == []


def test_tie_watch_flags_greedy_decisions_float32_rounding_could_flip_and_acts_unchanged(tmp_path):
    from spin_bench.datasets.snapshot import load_snapshot_policy
    from spin_bench.pipeline.behaviour.network import DecoupledQNetwork
    from spin_bench.pipeline.behaviour.policy import save_snapshot

    torch.manual_seed(0)
    network = DecoupledQNetwork(6, [3, 3], (16,))
    with torch.no_grad():  # dimension 0: bins 0 and 2 get the same, best utility, so they tie on every input
        network.head.weight[2] = network.head.weight[0]
        network.head.bias[0] = network.head.bias[2] = 100.0
    save_snapshot(tmp_path / "tie.pt", network)
    policy = load_snapshot_policy(tmp_path / "tie.pt")
    watch = _TieWatch(policy)
    obs = np.random.default_rng(0).standard_normal((20, 1, 6)).astype(np.float32)
    acted = [watch.act(o, 0.1, np.random.default_rng(k)) for k, o in enumerate(obs)]
    expected = [policy.act(o, 0.1, np.random.default_rng(k)) for k, o in enumerate(obs)]
    np.testing.assert_array_equal(np.concatenate(acted), np.concatenate(expected))  # the same actions, same draws
    assert {tie.dimension for tie in watch.ties} == {0} and [t.step for t in watch.ties] == list(range(20))
    assert all(tie.margin == 0.0 <= tie.rounding for tie in watch.ties)
