"""Publish to a real loopback Minari remote (GCS emulator), download with stock Minari and spin-bench, verify."""

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys

import h5py
import minari
import numpy as np
import pytest
from typer.testing import CliRunner

import spin_bench
from spin_bench.cli.datasets import app as datasets_app
from spin_bench.datasets import build as build_module
from spin_bench.datasets.catalog import load_catalog
from spin_bench.datasets.integrity import SIDECAR, verified_digest
from spin_bench.datasets.minari_io import (
    STAGING_DIR,
    DatasetError,
    DatasetIntegrityError,
    datasets_root,
    is_installed,
    iter_episode_arrays,
    local_dataset_dir,
)
from spin_bench.datasets.remote import (
    DatasetUnavailableError,
    download_dataset,
    remote_has,
)
from spin_bench.pipeline.publish import publish_dataset
from spin_bench.pipeline.record import record_dataset

EXPERT = "spin/cheetah-run/expert-v0"


def _snapshot(dataset_id):
    data = local_dataset_dir(dataset_id) / "data"
    arrays = [(seed, a) for seed, _, a in iter_episode_arrays(data)]
    file_hash = hashlib.sha256((data / "main_data.hdf5").read_bytes()).hexdigest()
    return arrays, file_hash


def _assert_same(dataset_id, expected):
    arrays, file_hash = _snapshot(dataset_id)
    assert file_hash == expected[1]
    for (s1, a1), (s2, a2) in zip(arrays, expected[0], strict=True):
        assert s1 == s2
        for key in a1:
            assert a1[key].dtype == a2[key].dtype and a1[key].shape == a2[key].shape
            assert a1[key].tobytes() == a2[key].tobytes()  # bit for bit


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _blob(remote, path):
    import google.cloud.storage as gcs

    client = gcs.Client.create_anonymous_client()
    return gcs.Bucket(client, remote.split("://", 1)[1]).blob(path)


def test_publish_then_download_with_minari_and_spin_bench(tiny_catalog, gcs_remote, tmp_path):
    record_dataset(EXPERT, workers=1, progress=False)
    original = _snapshot(EXPERT)
    assert publish_dataset(EXPERT) == gcs_remote
    assert remote_has(gcs_remote, EXPERT)
    with pytest.raises(DatasetError, match="already on gcp://spin-test; published data is never replaced"):
        publish_dataset(EXPERT)

    # Stock Minari CLI, with only MINARI_REMOTE (and the emulator host) set.
    shutil.rmtree(local_dataset_dir(EXPERT))
    cli = subprocess.run(
        [sys.executable, "-m", "minari.cli", "download", EXPERT], capture_output=True, text=True, env=dict(os.environ)
    )
    assert cli.returncode == 0, cli.stderr[-2000:]
    _assert_same(EXPERT, original)
    assert minari.load_dataset(EXPERT).total_steps == 2000

    # spin-bench's download (CLI), verified against the catalog sha256.
    shutil.rmtree(local_dataset_dir(EXPERT))
    result = CliRunner().invoke(datasets_app, ["download", EXPERT])
    assert result.exit_code == 0, result.output
    assert "verified and installed" in result.output
    _assert_same(EXPERT, original)

    # A tampered remote copy (one reward changed) is refused, and nothing is left installed.
    tampered = tmp_path / "main_data.hdf5"
    shutil.copyfile(local_dataset_dir(EXPERT) / "data" / "main_data.hdf5", tampered)
    with h5py.File(tampered, "r+") as f:
        f["episode_1/rewards"][5] += np.float32(0.25)
    _blob(gcs_remote, f"{EXPERT}/data/main_data.hdf5").upload_from_filename(tampered)
    result = CliRunner().invoke(datasets_app, ["download", EXPERT, "--force"])
    assert result.exit_code == 1
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith(f"spin-bench: error: {EXPERT} was refused: the copy on gcp://spin-test has sha256")
    assert message.endswith(f"nothing was installed. Build it locally with: spin-bench datasets build {EXPERT}")
    _assert_same(EXPERT, original)  # --force never replaced the good local copy with the bad one
    shutil.rmtree(local_dataset_dir(EXPERT))
    with pytest.raises(DatasetIntegrityError, match="corrupt or changed"):
        download_dataset(EXPERT)
    assert not local_dataset_dir(EXPERT).exists()
    assert minari.list_local_datasets() == {}


def test_tampered_metadata_is_refused(tiny_catalog, gcs_remote):
    dataset_id = "spin/cheetah-run/random-v0"
    record_dataset(dataset_id, workers=1, progress=False)
    publish_dataset(dataset_id)
    meta = json.loads((local_dataset_dir(dataset_id) / "data" / "metadata.json").read_text())
    meta["ref_max_score"] = 1000.0
    _blob(gcs_remote, f"{dataset_id}/data/metadata.json").upload_from_string(json.dumps(meta))
    shutil.rmtree(local_dataset_dir(dataset_id))
    with pytest.raises(DatasetIntegrityError, match=f"{dataset_id} was refused"):
        download_dataset(dataset_id)
    assert not is_installed(dataset_id)


def test_missing_on_remote_says_how_to_build(tiny_catalog, gcs_remote):
    dataset_id = "spin/cheetah-run/medium-v0"
    record_dataset(dataset_id, workers=1, progress=False)  # records the sha256 ...
    shutil.rmtree(local_dataset_dir(dataset_id))  # ... but never publishes it
    with pytest.raises(DatasetUnavailableError) as err:
        download_dataset(dataset_id)
    assert "gcp://spin-test does not have it" in str(err.value)
    assert f"build it locally with: spin-bench datasets build {dataset_id}" in str(err.value)


def test_unreachable_remote_fails_fast_with_build_hint(tiny_catalog, monkeypatch, capsys):
    record_dataset(EXPERT, workers=1, progress=False)
    shutil.rmtree(local_dataset_dir(EXPERT))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    monkeypatch.setenv("MINARI_REMOTE", "gcp://spin-test")
    result = CliRunner().invoke(datasets_app, ["download", EXPERT])
    assert result.exit_code == 1
    assert "gcp://spin-test cannot be reached" in result.output
    assert f"build it locally with: spin-bench datasets build {EXPERT}" in result.output
    # load_dataset falls back to building when no remote can serve it, and says why.
    capsys.readouterr()
    data = spin_bench.load_dataset(EXPERT)
    assert len(data.transitions) == 2000
    assert "cannot be downloaded (gcp://spin-test cannot be reached" in capsys.readouterr().err


def test_load_dataset_downloads_instead_of_building(tiny_catalog, gcs_remote, monkeypatch):
    record_dataset(EXPERT, workers=1, progress=False)
    publish_dataset(EXPERT)
    shutil.rmtree(local_dataset_dir(EXPERT))

    def no_build(*args, **kwargs):
        raise AssertionError("must download, not build")

    monkeypatch.setattr(build_module, "build_dataset", no_build)
    env, data = spin_bench.make_env_and_dataset(EXPERT, verify=True)
    assert data.minari.total_episodes == 2 and env.spec.id == spin_bench.env_id("cheetah-run")


def test_bad_remote_value_is_named(tiny_catalog, monkeypatch):
    monkeypatch.setenv("MINARI_REMOTE", "s3://bucket")
    result = CliRunner().invoke(datasets_app, ["download", EXPERT])
    assert result.exit_code == 2  # bad input, like every command's
    assert "remote 's3://bucket' is not allowed; use 'gcp://<bucket>' or 'hf://<organisation>'" in result.output


def _upload_with_nvec(remote, dataset_id, n):
    """Replace the remote's metadata.json by one whose action space says ``n`` bins (the arrays stay as they are)."""
    meta = json.loads(_blob(remote, f"{dataset_id}/data/metadata.json").download_as_bytes())
    space = json.loads(meta["action_space"])
    space["nvec"] = [n] * len(space["nvec"])
    meta["action_space"] = json.dumps(space)
    _blob(remote, f"{dataset_id}/data/metadata.json").upload_from_string(json.dumps(meta))


def test_remote_metadata_with_other_bins_is_refused_and_nothing_is_installed(tiny_catalog, gcs_remote, tmp_path):
    dataset_id = "spin/cheetah-run/random-v0"
    record_dataset(dataset_id, workers=1, progress=False)
    publish_dataset(dataset_id)
    original = _snapshot(dataset_id)
    _upload_with_nvec(gcs_remote, dataset_id, 4)

    result = CliRunner().invoke(datasets_app, ["download", dataset_id, "--force"])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"spin-bench: error: {dataset_id} was refused: the copy on gcp://spin-test has sha256")
    assert "nothing was installed" in lines[-1] and "verified and installed" not in result.output
    _assert_same(dataset_id, original)  # the good copy stays, bit for bit
    assert json.loads(json.loads(_metadata_text(dataset_id))["action_space"])["nvec"] == [3] * 6
    assert not (datasets_root() / STAGING_DIR).exists()
    good = tmp_path / "good"
    shutil.copytree(local_dataset_dir(dataset_id), good)
    shutil.rmtree(local_dataset_dir(dataset_id))
    with pytest.raises(DatasetIntegrityError, match="corrupt or changed"):
        download_dataset(dataset_id)
    assert not local_dataset_dir(dataset_id).exists() and minari.list_local_datasets() == {}
    assert not (datasets_root() / STAGING_DIR).exists()
    shutil.copytree(good, local_dataset_dir(dataset_id))

    # A truncated data file on the remote (right metadata): refused as unreadable.
    _upload_with_nvec(gcs_remote, dataset_id, 3)
    truncated = tmp_path / "main_data.hdf5"
    data = (local_dataset_dir(dataset_id) / "data" / "main_data.hdf5").read_bytes()
    truncated.write_bytes(data[: len(data) // 2])
    _blob(gcs_remote, f"{dataset_id}/data/main_data.hdf5").upload_from_filename(truncated)
    result = CliRunner().invoke(datasets_app, ["download", dataset_id, "--force"])
    assert result.exit_code == 1
    assert "was refused: the copy on gcp://spin-test is unreadable (" in result.stderr.strip().splitlines()[-1]
    _assert_same(dataset_id, original)

    shutil.rmtree(local_dataset_dir(dataset_id))
    with pytest.raises(DatasetIntegrityError, match="is unreadable"):
        download_dataset(dataset_id)
    assert not local_dataset_dir(dataset_id).exists() and minari.list_local_datasets() == {}
    assert not (datasets_root() / STAGING_DIR).exists()


def _metadata_text(dataset_id):
    return (local_dataset_dir(dataset_id) / "data" / "metadata.json").read_text()


def _stock_minari_download(dataset_id):
    cli = subprocess.run(
        [sys.executable, "-m", "minari.cli", "download", dataset_id, "--force"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert cli.returncode == 0, cli.stderr[-2000:]


def test_tampered_copies_fetched_with_stock_minari_fail_verify_and_load(tiny_catalog, gcs_remote, tmp_path):
    dataset_id = "spin/cheetah-run/random-v0"
    record_dataset(dataset_id, workers=1, progress=False)
    publish_dataset(dataset_id)
    good_main = tmp_path / "main_data.hdf5"
    shutil.copyfile(local_dataset_dir(dataset_id) / "data" / "main_data.hdf5", good_main)
    assert verified_digest(dataset_id)  # the good copy passes, and its digest is remembered

    # metadata.json says 4 bins: stock Minari installs it; spin-bench's checks refuse it in one line.
    _upload_with_nvec(gcs_remote, dataset_id, 4)
    _stock_minari_download(dataset_id)
    assert spin_bench.load_dataset(dataset_id).transitions.nvec.tolist() == [4] * 6
    result = CliRunner().invoke(datasets_app, ["verify", dataset_id])
    assert result.exit_code == 1 and result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"spin-bench: error: {dataset_id}: the installed data has sha256")
    assert f"spin-bench datasets download {dataset_id} --force" in lines[0]
    with pytest.raises(DatasetIntegrityError, match=f"^{dataset_id}: the installed data has sha256"):
        verified_digest(dataset_id)
    with pytest.raises(DatasetIntegrityError, match="corrupt or changed"):
        spin_bench.load_dataset(dataset_id, verify=True)

    # Right metadata, one reward changed in the data file: refused the same way.
    _upload_with_nvec(gcs_remote, dataset_id, 3)
    tampered = tmp_path / "tampered.hdf5"
    shutil.copyfile(good_main, tampered)
    with h5py.File(tampered, "r+") as f:
        f["episode_0/rewards"][7] += np.float32(0.5)
    _blob(gcs_remote, f"{dataset_id}/data/main_data.hdf5").upload_from_filename(tampered)
    _stock_minari_download(dataset_id)
    result = CliRunner().invoke(datasets_app, ["verify", dataset_id])
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1
    with pytest.raises(DatasetIntegrityError, match="corrupt or changed"):
        verified_digest(dataset_id)

    # spin-bench's own download puts the published data back, and it verifies.
    _blob(gcs_remote, f"{dataset_id}/data/main_data.hdf5").upload_from_filename(good_main)
    assert CliRunner().invoke(datasets_app, ["download", dataset_id, "--force"]).exit_code == 0
    cache = json.loads((local_dataset_dir(dataset_id) / SIDECAR).read_text())  # the verified digest, remembered
    assert cache["sha256"] == load_catalog().dataset(dataset_id).sha256
    assert (
        cache["files"]["data/main_data.hdf5"]["inode"]
        == (local_dataset_dir(dataset_id) / "data/main_data.hdf5").stat().st_ino
    )
    result = CliRunner().invoke(datasets_app, ["verify", dataset_id])
    assert result.exit_code == 0 and f"{dataset_id}: OK" in result.stdout
