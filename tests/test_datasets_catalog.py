"""Dataset ids, the catalog file, reference and normalized scores."""

import json

import numpy as np
import pytest

import spin_bench
from spin_bench.datasets.catalog import Catalog, CatalogError, load_catalog
from spin_bench.datasets.ids import QUALITIES, dataset_id, parse_dataset_id


def test_dataset_id_scheme():
    assert dataset_id("cheetah-run", "expert") == "spin/cheetah-run/expert-v0"
    assert dataset_id("dog-trot", "medium-expert", bins=10) == "spin/dog-trot-bins10/medium-expert-v0"
    key = parse_dataset_id("spin/dog-trot-bins30/random-medium-expert-v2")
    assert (key.task, key.bins, key.quality, key.version) == ("dog-trot", 30, "random-medium-expert", 2)
    assert parse_dataset_id("spin/humanoid_CMU-run/random-v0").task == "humanoid_CMU-run"
    assert key.id == "spin/dog-trot-bins30/random-medium-expert-v2"


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("spin/cheetah-run/expert", "malformed dataset id"),
        ("cheetah-run/expert-v0", "malformed dataset id"),
        ("spin/cheetah-run/great-v0", "quality 'great'"),
        ("spin/cheetah-run-bins3/expert-v0", "'spin/cheetah-run/expert-v0'"),
        ("spin/cheetah-run-bins1/expert-v0", "bins=1"),
    ],
)
def test_bad_ids_get_one_line_errors(bad, needle):
    with pytest.raises(ValueError) as err:
        parse_dataset_id(bad)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_real_catalog_lists_every_benchmark_task():
    catalog = load_catalog()
    expected = {(t, 3) for t in spin_bench.BENCHMARK_TASKS} | {("dog-trot", 10), ("dog-trot", 30)}
    assert {(e.task, e.bins) for e in catalog} == expected
    for entry in catalog:
        assert {ds.quality for ds in entry.datasets.values()} == set(QUALITIES)
        env_kwargs = {} if entry.bins == 3 else {"bins": entry.bins}
        assert entry.env_id == spin_bench.env_id(entry.task) and entry.env_kwargs == env_kwargs
        sizes = {ds.quality: ds.size for ds in entry.datasets.values()}
        assert sizes == {
            "random": 1_000_000,
            "medium": 1_000_000,
            "expert": 1_000_000,
            "medium-expert": 2_000_000,
            "random-medium-expert": 200_000,
        }
        rme = entry.datasets[dataset_id(entry.task, "random-medium-expert", entry.bins)]
        assert [(s.policy, s.episodes) for s in rme.segments] == [("random", 67), ("medium", 67), ("expert", 66)]
        me = entry.datasets[dataset_id(entry.task, "medium-expert", entry.bins)]
        parts = [entry.datasets[dataset_id(entry.task, q, entry.bins)] for q in ("medium", "expert")]
        assert me.segments == parts[0].segments + parts[1].segments
        # Measured random references; no checkpoint yet, so nothing needing one is buildable.
        assert entry.reference["random"].value is not None and entry.reference["random"].episodes == 100
        for ds in entry.datasets.values():
            if ds.sha256 is None:
                assert ds.stats is None


def test_random_references_are_close_to_the_papers():
    for entry in load_catalog():
        paper = (entry.paper_reference or {}).get("random")
        if paper is not None:
            assert abs(entry.reference["random"].value - paper) < max(10.0, 0.5 * paper), entry.label


def test_catalog_validation_names_the_problem(tiny_catalog):
    raw = json.loads(tiny_catalog.read_text())
    ds = raw["entries"][0]["datasets"]["spin/cheetah-run/expert-v0"]
    ds["size"] = 5000
    with pytest.raises(CatalogError, match="size=5000 but the recipe has 2 episodes"):
        Catalog(raw, tiny_catalog)
    ds["size"] = 2000
    ds["recipe"]["segments"][0]["policy"] = "master"
    with pytest.raises(CatalogError, match="policy='master'; allowed: 'random' or a checkpoint"):
        Catalog(raw, tiny_catalog)
    ds["recipe"]["segments"][0]["policy"] = "random"
    raw["entries"][0]["recording_kernels"] = "openblas-zen5"
    with pytest.raises(CatalogError, match="recording_kernels='openblas-zen5'; must be one of openblas-haswell, "):
        Catalog(raw, tiny_catalog)


def test_unknown_id_lists_closest(tiny_catalog):
    with pytest.raises(CatalogError, match="closest catalog ids: spin/cheetah-run/expert-v0"):
        load_catalog().lookup("spin/cheetah-run/expert-v1")


def test_catalog_roundtrip_keeps_the_file(tiny_catalog):
    from spin_bench.pipeline.catalog_edit import EditableCatalog

    before = tiny_catalog.read_text()
    EditableCatalog.read().save()
    assert tiny_catalog.read_text() == before


def test_normalized_score_warns_when_the_expert_reference_is_provisional(tmp_path, monkeypatch):
    import warnings

    from conftest import write_tiny_catalog

    from spin_bench.datasets.scores import ProvisionalReferenceWarning

    monkeypatch.setenv("SPIN_BENCH_CATALOG", str(write_tiny_catalog(tmp_path / "met")))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an expert that meets its target: no warning at all
        assert spin_bench.normalized_score("cheetah-run", 500.0) == 100.0
    monkeypatch.setenv("SPIN_BENCH_CATALOG", str(write_tiny_catalog(tmp_path / "below", expert_ref=420.0)))
    with pytest.warns(
        ProvisionalReferenceWarning, match=r"cheetah-run \(3 bins\): the expert reference 420 is provisional"
    ):
        assert spin_bench.normalized_score("cheetah-run", 420.0) == 100.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the paper's references are not provisional
        spin_bench.normalized_score("cheetah-run", 664.57, reference="paper")


def test_normalized_score(tiny_catalog):
    assert spin_bench.normalized_score("cheetah-run", 5.0) == 0.0
    assert spin_bench.normalized_score("cheetah-run", 500.0) == 100.0
    np.testing.assert_allclose(spin_bench.normalized_score("cheetah-run", np.array([5.0, 252.5])), [0.0, 50.0])
    assert spin_bench.normalized_score("cheetah-run", 664.57, reference="paper") == pytest.approx(100.0)
    with pytest.raises(ValueError, match="reference='ours' is not allowed"):
        spin_bench.normalized_score("cheetah-run", 1.0, reference="ours")
    with pytest.raises(CatalogError, match="no entry for 'cheetah-run' at 10 bins"):
        spin_bench.normalized_score("cheetah-run", 1.0, bins=10)


def test_normalized_score_without_expert_reference_says_what_exists(tmp_path, monkeypatch):
    from conftest import write_tiny_catalog

    monkeypatch.setenv("SPIN_BENCH_CATALOG", str(write_tiny_catalog(tmp_path / "catalog", expert_ref=None)))
    with pytest.raises(CatalogError, match=r"cheetah-run \(3 bins\) has no spin-bench expert reference score yet; "):
        spin_bench.normalized_score("cheetah-run", 100.0)
    assert spin_bench.normalized_score("cheetah-run", 664.57, reference="paper") == pytest.approx(100.0)


def _snapshot_policies(tmp_path, network):
    """The rollout's torch-free policy and the trainer's torch policy of one saved snapshot."""
    from spin_bench.datasets.snapshot import load_snapshot_policy
    from spin_bench.pipeline.behaviour.policy import load_behaviour_policy, save_snapshot

    save_snapshot(tmp_path / "s.pt", network)
    return load_snapshot_policy(tmp_path / "s.pt"), load_behaviour_policy(tmp_path / "s.pt")


def test_rollout_forward_pass_matches_torch_with_symlog_observations(tmp_path):
    import torch

    from spin_bench.datasets.snapshot import NUMPY_EVALUATION
    from spin_bench.pipeline.behaviour.network import DecoupledQNetwork
    from spin_bench.pipeline.behaviour.policy import BehaviourPolicy

    torch.manual_seed(0)
    network = DecoupledQNetwork(24, [3, 3, 3], hidden=(64, 64), observation_transform="symlog").eval()
    fast, policy = _snapshot_policies(tmp_path, network)
    assert fast.evaluation == NUMPY_EVALUATION
    # Dog-like observations: mostly O(1), a few features in the tens of thousands.
    rng = np.random.default_rng(2)
    obs = rng.standard_normal((500, 24)).astype(np.float32)
    obs[:, -4:] *= rng.choice([1.0, 100.0, 5e4], size=(500, 4)).astype(np.float32)
    got = np.concatenate([fast.greedy(o[None]) for o in obs])
    np.testing.assert_array_equal(got, policy.greedy(obs))
    # Without the transform in the numpy pass, the greedy actions would differ.
    plain = DecoupledQNetwork(24, [3, 3, 3], hidden=(64, 64)).eval()
    plain.load_state_dict(network.state_dict())
    assert not np.array_equal(got, BehaviourPolicy(network=plain, metadata={}).greedy(obs))


def test_rollout_forward_pass_matches_torch(tmp_path):
    import torch

    from spin_bench.datasets.snapshot import SnapshotError, load_snapshot_policy
    from spin_bench.pipeline.behaviour.network import DecoupledQNetwork
    from spin_bench.pipeline.behaviour.policy import save_snapshot

    torch.manual_seed(0)
    for layer_norm in ("first", "all"):
        network = DecoupledQNetwork(24, [3, 5, 2, 4], hidden=(64, 64), layer_norm=layer_norm).eval()
        fast, policy = _snapshot_policies(tmp_path, network)
        obs = np.random.default_rng(1).standard_normal((500, 24)).astype(np.float32) * 3
        got = np.concatenate([fast.greedy(o[None]) for o in obs])
        np.testing.assert_array_equal(got, policy.greedy(obs))
        assert np.all(got < np.array([3, 5, 2, 4]))  # padded bins are never chosen
        # Same exploration stream as the torch policy's act.
        a = fast.act(obs[:1], 0.5, np.random.default_rng(7))
        np.testing.assert_array_equal(a, policy.act(obs[:1], 0.5, np.random.default_rng(7)))
    # A network the numpy pass does not evaluate is refused in one line, never acted with.
    save_snapshot(tmp_path / "basis.pt", DecoupledQNetwork(24, [9, 9], hidden=(8,), utility_basis=3))
    with pytest.raises(SnapshotError, match=r"basis.pt: cannot act with this snapshot \(a snapshot with a utility"):
        load_snapshot_policy(tmp_path / "basis.pt")


def test_snapshot_reader_refuses_what_a_snapshot_does_not_hold(tmp_path):
    import torch

    from spin_bench.datasets.snapshot import SnapshotError, read_snapshot

    torch.save({"format": "spin-bench/decqn-snapshot-v1", "x": np.float64(1.0)}, tmp_path / "numpy.pt")
    with pytest.raises(SnapshotError, match=r"numpy.pt: not a readable behaviour snapshot \(it references numpy"):
        read_snapshot(tmp_path / "numpy.pt")
    torch.save({"format": "something else"}, tmp_path / "other.pt")
    with pytest.raises(SnapshotError, match="not a spin-bench behaviour snapshot \\(format='something else'\\)"):
        read_snapshot(tmp_path / "other.pt")
    (tmp_path / "text.pt").write_text("not a zip")
    with pytest.raises(SnapshotError, match="text.pt: not a readable behaviour snapshot"):
        read_snapshot(tmp_path / "text.pt")


def test_shipped_snapshots_read_without_torch_as_torch_reads_them():
    """The torch-free reader returns exactly torch.load's arrays for every checkpoint the catalog lists."""
    import torch

    from spin_bench.datasets.snapshot import read_snapshot

    paths = sorted({cp.path for entry in load_catalog() for cp in entry.checkpoints.values() if cp.path.is_file()})
    assert len(paths) >= 20
    for path in paths:
        expected, got = torch.load(path, weights_only=True), read_snapshot(path)
        assert got["architecture"] == expected["architecture"] and got["metadata"] == expected["metadata"]
        assert set(got["state_dict"]) == set(expected["state_dict"])
        for name, tensor in expected["state_dict"].items():
            assert got["state_dict"][name].dtype == tensor.numpy().dtype
            np.testing.assert_array_equal(got["state_dict"][name], tensor.numpy(), err_msg=f"{path}: {name}")
