"""The content digest v2 (arrays and metadata), its migration from v1, the verified-digest fast path, damaged files.

Real Minari files built from the tiny test catalog; tampering is done as a user or a broken disk would (h5py, json).
"""

import json
import os
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from typer.testing import CliRunner

import spin_bench
from spin_bench.cli.datasets import app as datasets_app
from spin_bench.datasets.build import build_dataset
from spin_bench.datasets.catalog import CATALOG_FORMAT, CatalogError, load_catalog
from spin_bench.datasets.digest import (
    DIGEST_FORMAT,
    METADATA_FIELDS,
    arrays_digest,
    combine,
    dataset_digest,
    expected_metadata_fields,
    migrate_v1,
)
from spin_bench.datasets.ids import dataset_id as dataset_id_of
from spin_bench.datasets.integrity import SIDECAR, local_build_digest, verified_digest
from spin_bench.datasets.loading import load_dataset
from spin_bench.datasets.minari_io import DatasetIntegrityError, local_dataset_dir, read_transitions
from spin_bench.pipeline.catalog_edit import EditableCatalog, entry_json
from spin_bench.pipeline.migrate_digests import main as migrate_main
from spin_bench.pipeline.publish import publish_dataset
from spin_bench.pipeline.record import record_dataset

RANDOM = "spin/cheetah-run/random-v0"
V1_RECORD = Path(__file__).parent / "data" / "catalog_sha256_v1.json"


def _data(dataset_id):
    return local_dataset_dir(dataset_id) / "data"


def _build(dataset_id=RANDOM):
    return record_dataset(dataset_id, workers=1, progress=False)


def _set_nvec(metadata_path: Path, n: int) -> None:
    meta = json.loads(metadata_path.read_text())
    space = json.loads(meta["action_space"])
    space["nvec"] = [n] * len(space["nvec"])
    meta["action_space"] = json.dumps(space)
    metadata_path.write_text(json.dumps(meta))


def _assert_one_line_fix(message: str, dataset_id: str) -> None:
    assert "\n" not in message.strip()
    assert message.startswith(f"{dataset_id}: ")
    assert f"spin-bench datasets download {dataset_id} --force" in message
    assert f"spin-bench datasets build {dataset_id} --force" in message


# -- v2 and the migration rule -------------------------------------------------------------------------------------
def _bins5_catalog(folder: Path) -> Path:
    """cheetah-run at 5 bins (env kwargs {"bins": 5}, as the dog-trot 10/30-bin entries have): random-v0 only."""
    entry = entry_json(
        "cheetah-run",
        5,
        env_id=spin_bench.env_id("cheetah-run"),
        env_kwargs={"bins": 5},
        max_episode_steps=1000,
        checkpoints={"medium": "checkpoints/medium.pt", "expert": "checkpoints/expert.pt"},
        paper_reference=None,
        sizes={"random": 2000, "medium": 2000, "expert": 2000, "random-medium-expert": 3000},
        seeds={
            "random": 7,
            "medium": 8,
            "expert": 9,
            "random-medium-expert/random": 10,
            "random-medium-expert/medium": 11,
            "random-medium-expert/expert": 12,
        },
        epsilon=0.05,
        reference_seeds=(13, 14),
    )
    entry["reference_scores"]["random"]["value"] = 5.0
    entry["reference_scores"]["expert"]["value"] = 500.0
    folder.mkdir()
    raw = {"format": CATALOG_FORMAT, "remotes": [], "entries": [entry]}
    return EditableCatalog(raw, folder / "catalog.json").save()


@pytest.mark.parametrize("bins", [3, 5])
def test_v2_of_real_minari_files_follows_from_v1_and_the_catalog_entry(tiny_catalog, tmp_path, monkeypatch, bins):
    if bins == 5:
        monkeypatch.setenv("SPIN_BENCH_CATALOG", str(_bins5_catalog(tmp_path / "bins5")))
    dataset_id = dataset_id_of("cheetah-run", "random", bins)
    result = _build(dataset_id)
    entry = load_catalog().task_entry("cheetah-run", bins)
    v1 = arrays_digest(_data(dataset_id))
    assert result.sha256 == dataset_digest(_data(dataset_id)) == migrate_v1(v1, entry) != v1
    # Field by field, what the build wrote is what the catalog entry predicts.
    meta = json.loads((_data(dataset_id) / "metadata.json").read_text())
    expected = expected_metadata_fields(entry)
    for key in ("action_space", "observation_space", "env_spec", "eval_env_spec"):
        assert json.loads(meta[key]) == expected[key], key
    assert expected["action_space"]["nvec"] == [bins] * 6
    assert (meta["data_format"], meta["jpeg_encoding"]) == (expected["data_format"], expected["jpeg_encoding"])
    recorded = json.loads(load_catalog().path.read_text())
    assert recorded["digest_format"] == DIGEST_FORMAT  # written with the first recorded sha256


def test_every_recorded_dataset_of_the_real_catalog_follows_the_migration_rule():
    """Every entry's metadata fields can be computed (one env each), and every recorded sha256 is the v2 of the
    v1 value recorded before the migration: the rule cannot change without this test failing."""
    catalog = load_catalog()
    assert catalog.raw["digest_format"] == DIGEST_FORMAT
    v1 = json.loads(V1_RECORD.read_text())["sha256"]
    recorded = {i for i in catalog.dataset_ids() if catalog.dataset(i).sha256 is not None}
    assert recorded == set(v1) and len(recorded) == 45
    for entry in catalog:
        fields = expected_metadata_fields(entry)
        assert set(fields) == set(METADATA_FIELDS)
        assert fields["env_spec"]["id"] == entry.env_id
        assert fields["env_spec"]["max_episode_steps"] == entry.max_episode_steps
        assert entry.env_kwargs.items() <= fields["env_spec"]["kwargs"].items()
        assert set(fields["action_space"]["nvec"]) == {entry.bins}
        for ds in entry.datasets.values():
            if ds.sha256 is not None:
                assert ds.sha256 == combine(v1[ds.id], fields), ds.id


def test_a_v1_catalog_is_refused_until_migrated_then_verifies_the_installed_data(tiny_catalog, capsys):
    result = _build()
    raw = json.loads(tiny_catalog.read_text())
    del raw["digest_format"]
    raw["entries"][0]["datasets"][RANDOM]["sha256"] = arrays_digest(_data(RANDOM))  # as spin-bench v1 recorded it
    tiny_catalog.write_text(json.dumps(raw, indent=2))
    with pytest.raises(CatalogError, match="sha256 values are spin-bench-digest-v1") as err:
        load_catalog()
    assert f"python -m spin_bench.pipeline.migrate_digests {tiny_catalog}" in str(err.value)

    assert migrate_main([str(tiny_catalog)]) == 0
    assert f"{RANDOM}: {raw['entries'][0]['datasets'][RANDOM]['sha256']} -> {result.sha256}" in capsys.readouterr().out
    assert load_catalog().dataset(RANDOM).sha256 == result.sha256
    assert verified_digest(RANDOM, recompute=True) == result.sha256
    with pytest.raises(CatalogError, match="records spin-bench-digest-v2 digests"):
        migrate_main([str(tiny_catalog)])  # once only


# -- tampering: the digest covers the metadata --------------------------------------------------------------------
def _edit_json_field(key, change):
    def edit(meta):
        value = json.loads(meta[key])
        change(value)
        meta[key] = json.dumps(value)

    return edit


METADATA_EDITS = {
    "action_space": _edit_json_field("action_space", lambda v: v.update(nvec=[4] * len(v["nvec"]))),
    "observation_space": _edit_json_field("observation_space", lambda v: v["low"].__setitem__(0, -1.0)),
    "env_spec": _edit_json_field("env_spec", lambda v: v.update(order_enforce=False)),
    "eval_env_spec": _edit_json_field("eval_env_spec", lambda v: v["kwargs"].update(bins=5)),
    "data_format": lambda meta: meta.update(data_format="arrow"),
    "jpeg_encoding": lambda meta: meta.update(jpeg_encoding=False),
}


def test_every_loading_metadata_field_changes_the_digest_but_not_v1(tiny_catalog):
    _build()
    data = _data(RANDOM)
    original = json.loads((data / "metadata.json").read_text())
    before_v1, before = arrays_digest(data), dataset_digest(data)
    assert set(METADATA_EDITS) == set(METADATA_FIELDS)
    for key, edit in METADATA_EDITS.items():
        meta = json.loads(json.dumps(original))
        edit(meta)
        (data / "metadata.json").write_text(json.dumps(meta))
        assert arrays_digest(data) == before_v1, key  # v1 saw none of these
        assert dataset_digest(data) != before, key
    # Spacing and key order of the stored JSON strings do not count, only their content.
    meta = json.loads(json.dumps(original))
    meta["action_space"] = json.dumps(json.loads(meta["action_space"]), indent=4, sort_keys=True)
    (data / "metadata.json").write_text(json.dumps(meta))
    assert dataset_digest(data) == before


def test_tampered_local_copy_is_refused_by_load_verify_and_verified_digest(tiny_catalog):
    _build()
    good = load_dataset(RANDOM, verify=True)
    np.testing.assert_array_equal(good.transitions.nvec, [3] * 6)
    _set_nvec(_data(RANDOM) / "metadata.json", 4)
    assert load_dataset(RANDOM).transitions.nvec.tolist() == [4] * 6  # what a run would train on, unchecked
    with pytest.raises(DatasetIntegrityError) as err:
        verified_digest(RANDOM)
    _assert_one_line_fix(str(err.value), RANDOM)
    assert f"check it with `spin-bench datasets verify {RANDOM}`" in str(err.value)
    recorded = load_catalog().dataset(RANDOM).sha256
    assert f"the catalog records {recorded[:16]}..." in str(err.value)
    with pytest.raises(DatasetIntegrityError, match="corrupt or changed"):
        load_dataset(RANDOM, verify=True)
    result = CliRunner().invoke(datasets_app, ["verify", RANDOM])
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"spin-bench: error: {RANDOM}: the installed data has sha256")


def _record_elsewhere(catalog_path: Path, dataset_id: str) -> str:
    """Give ``dataset_id`` another sha256 in the catalog, as if recorded on a CPU that rounds differently."""
    raw = json.loads(catalog_path.read_text())
    other = "e" * 64
    raw["entries"][0]["datasets"][dataset_id]["sha256"] = other
    catalog_path.write_text(json.dumps(raw, indent=2))
    return other


def test_a_build_that_differs_installs_only_with_allow_mismatch_and_then_verifies_as_a_local_build(tiny_catalog):
    local = _build().sha256
    published = _record_elsewhere(tiny_catalog, RANDOM)
    with pytest.raises(DatasetIntegrityError) as err:
        build_dataset(RANDOM, workers=1, progress=False, force=True)
    message = str(err.value)
    assert "\n" not in message and "nothing was installed" in message
    assert f"(spin-bench datasets build {RANDOM} --allow-mismatch)" in message
    assert local_build_digest(RANDOM) is None
    with pytest.raises(DatasetIntegrityError, match="the catalog records eeeeeeeeeeeeeeee"):
        verified_digest(RANDOM)  # the copy installed before is not the published data either

    built = build_dataset(RANDOM, workers=1, progress=False, force=True, allow_mismatch=True)
    assert built.matches_catalog is False and built.sha256 == local != published
    assert local_build_digest(RANDOM) == local
    assert verified_digest(RANDOM, accept_local_build=True) == local
    assert verified_digest(RANDOM, recompute=True, accept_local_build=True) == local
    with pytest.raises(DatasetIntegrityError, match="is a local build .*, not the catalog's data"):
        verified_digest(RANDOM)  # what publishing and recording ask: is this the catalog's data?
    with pytest.raises(DatasetIntegrityError, match="only the catalog's data can be published: .* is a local build"):
        publish_dataset(RANDOM, remote="gcp://never-reached")
    assert load_dataset(RANDOM, verify=True).transitions.nvec.tolist() == [3] * 6
    runner = CliRunner()
    result = runner.invoke(datasets_app, ["verify", RANDOM])
    assert result.exit_code == 0, result.output
    assert f"{RANDOM}: OK as a local build ({local}); the published data is eeeeeeeeeeeeeeee..." in result.stdout
    result = runner.invoke(datasets_app, ["info", RANDOM])
    assert "local build: --allow-mismatch, not the published data" in " ".join(result.stdout.split())

    _set_nvec(_data(RANDOM) / "metadata.json", 4)  # a local build is still checked against what it was built as
    with pytest.raises(DatasetIntegrityError, match=f"the installed local build has sha256 .*built with {local[:16]}"):
        verified_digest(RANDOM, accept_local_build=True)


def test_a_build_that_matches_again_replaces_the_local_build_mark(tiny_catalog):
    local = _build().sha256
    _record_elsewhere(tiny_catalog, RANDOM)
    build_dataset(RANDOM, workers=1, progress=False, force=True, allow_mismatch=True)
    raw = json.loads(tiny_catalog.read_text())
    raw["entries"][0]["datasets"][RANDOM]["sha256"] = local  # this machine's data becomes the published data
    tiny_catalog.write_text(json.dumps(raw, indent=2))
    assert build_dataset(RANDOM, workers=1, progress=False, force=True).matches_catalog
    assert local_build_digest(RANDOM) is None and verified_digest(RANDOM, recompute=True) == local


# -- the fast path --------------------------------------------------------------------------------------------------
def test_unchanged_files_are_not_rehashed_and_any_change_is_seen(tiny_catalog):
    digest = _build().sha256
    sidecar = local_dataset_dir(RANDOM) / SIDECAR
    cache = json.loads(sidecar.read_text())  # written by the build, for the files as installed
    assert cache["sha256"] == digest and cache["format"] == DIGEST_FORMAT

    # While the files are unchanged the sidecar answers (here it is made to lie, to show that it is read) ...
    sidecar.write_text(json.dumps({**cache, "sha256": "f" * 64}))
    with pytest.raises(DatasetIntegrityError, match="has sha256 ffffffffffffffff"):
        verified_digest(RANDOM)
    assert verified_digest(RANDOM, recompute=True) == digest  # ... and a full check rewrites it
    assert json.loads(sidecar.read_text()) == cache
    assert verified_digest(RANDOM) == digest

    # One reward changed in place, the file's size and mtime put back: the ctime still shows the change.
    main = _data(RANDOM) / "main_data.hdf5"
    st = main.stat()
    with h5py.File(main, "r+") as f:
        f["episode_1/rewards"][5] += np.float32(0.25)
    os.utime(main, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (main.stat().st_size, main.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    with pytest.raises(DatasetIntegrityError, match="corrupt or changed"):
        verified_digest(RANDOM)

    # Put back the original bytes as a new file (new inode): hashed again, and right again.
    with h5py.File(main, "r+") as f:
        f["episode_1/rewards"][5] -= np.float32(0.25)
    shutil.copyfile(main, main.with_suffix(".copy"))
    main.with_suffix(".copy").replace(main)
    assert verified_digest(RANDOM) == digest


def test_unrecorded_datasets_get_their_computed_digest(tiny_catalog):
    build_dataset(RANDOM, workers=1, progress=False)  # not recorded: the catalog's sha256 stays None
    assert load_catalog().dataset(RANDOM).sha256 is None
    assert verified_digest(RANDOM) == dataset_digest(_data(RANDOM))


# -- damaged files: one line naming the dataset and the fix, never a KeyError -----------------------------------
def _truncate(dataset_id):
    main = _data(dataset_id) / "main_data.hdf5"
    main.write_bytes(main.read_bytes()[: main.stat().st_size // 2])


def _drop_episode(dataset_id):
    with h5py.File(_data(dataset_id) / "main_data.hdf5", "r+") as f:
        del f["episode_1"]


@pytest.mark.parametrize("damage", [_truncate, _drop_episode], ids=["truncated", "missing-episode"])
def test_damaged_hdf5_raises_one_integrity_error_naming_the_fix(tiny_catalog, damage):
    _build()
    damage(RANDOM)
    with pytest.raises(DatasetIntegrityError) as err:
        read_transitions(_data(RANDOM))
    _assert_one_line_fix(str(err.value), RANDOM)
    assert "is damaged or unreadable" in str(err.value)
    with pytest.raises(DatasetIntegrityError) as err:
        load_dataset(RANDOM).transitions  # noqa: B018  (the property reads the file)
    _assert_one_line_fix(str(err.value), RANDOM)
    with pytest.raises(DatasetIntegrityError) as err:
        verified_digest(RANDOM)
    _assert_one_line_fix(str(err.value), RANDOM)
    result = CliRunner().invoke(datasets_app, ["verify", RANDOM])
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"spin-bench: error: {RANDOM}: the data at ")
