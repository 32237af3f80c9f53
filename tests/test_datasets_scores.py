"""One normalized score, one source of references, one resolution of a run's dataset id, one read of the catalog.

Real tiny datasets built from the tiny test catalog, the real CLI, real runs. Counting spies wrap (and call) the
catalog's lookup and parse to count how often a dataset id is resolved and the JSON read.
"""

import json
import os

import pytest
from typer.testing import CliRunner

import spin_bench
from spin_bench.cli import app
from spin_bench.datasets.catalog import Catalog, load_catalog

MEDIUM = "spin/cheetah-run/medium-v0"
RUN = ["--task", "cheetah-run", "--dataset", "medium", "--preset", "quick", "--eval-episodes", "1"]


def _set_references(catalog_path, random_ref: float, expert_ref: float) -> None:
    """Edit the catalog file's references, as a maintainer's new measurement would."""
    raw = json.loads(catalog_path.read_text())
    raw["entries"][0]["reference_scores"]["random"]["value"] = random_ref
    raw["entries"][0]["reference_scores"]["expert"]["value"] = expert_ref
    catalog_path.write_text(json.dumps(raw, indent=2))


@pytest.fixture
def counted(monkeypatch):
    """Counts of ``Catalog.lookup`` (a dataset id resolved) and ``Catalog._parse`` (a catalog file read)."""
    counts = {"lookup": 0, "parse": 0}
    lookup, parse = Catalog.lookup, Catalog._parse

    def counting_lookup(self, dataset_id):
        counts["lookup"] += 1
        return lookup(self, dataset_id)

    def counting_parse(self):
        counts["parse"] += 1
        return parse(self)

    monkeypatch.setattr(Catalog, "lookup", counting_lookup)
    monkeypatch.setattr(Catalog, "_parse", counting_parse)
    return counts


def test_built_metadata_references_are_the_catalogs(tiny_catalog):
    data = spin_bench.load_dataset(MEDIUM)
    meta = data.minari.storage.metadata
    catalog_pair = load_catalog().task_entry("cheetah-run").reference_pair()
    assert (meta["ref_min_score"], meta["ref_max_score"]) == catalog_pair == (5.0, 500.0)
    assert data.normalized_score(252.5) == spin_bench.normalized_score(MEDIUM, 252.5) == 50.0


def test_runs_and_eval_normalize_with_the_catalog_when_the_metadata_disagrees(tiny_catalog, tmp_path, counted):
    spin_bench.load_dataset(MEDIUM)  # built with references 5 / 500 in its Minari metadata
    _set_references(tiny_catalog, 5.0, 1000.0)  # the catalog, the documented source, now says 5 / 1000
    counted.update(lookup=0, parse=0)
    out = tmp_path / "runs"
    result = CliRunner().invoke(app, ["run", "bc", *RUN, "--steps", "20", "--eval-every", "20", "--out", str(out)])
    assert result.exit_code == 0, result.output
    # `run` resolved its one dataset once and read the (edited) catalog once, in this process.
    assert counted == {"lookup": 1, "parse": 1}

    (summary_path,) = out.rglob("summary.json")
    summary = json.loads(summary_path.read_text())
    run_return = summary["final_return_mean"]
    assert summary["final_normalized_score"] == pytest.approx(100 * (run_return - 5) / 995, abs=1e-3)
    assert summary["final_normalized_score"] == pytest.approx(spin_bench.normalized_score(MEDIUM, run_return), abs=1e-3)

    result = CliRunner().invoke(app, ["eval", str(summary_path.parent), "--episodes", "1"])
    assert result.exit_code == 0, result.output
    eval_return = float(result.output.split("return ")[1].split(" ")[0])
    eval_normalized = float(result.output.split("normalized ")[1].split()[0])
    assert eval_normalized == pytest.approx(spin_bench.normalized_score(MEDIUM, eval_return), abs=0.06)


def test_a_resolved_dataset_is_passed_on_without_another_lookup(tiny_catalog, counted):
    from spin_bench.datasets.integrity import verified_digest
    from spin_bench.runner import data

    resolved = data.resolve("cheetah-run", "medium", 3)
    assert counted == {"lookup": 1, "parse": 1}
    assert data.ensure_datasets([resolved]) == {MEDIUM: resolved}  # builds it
    counted.update(lookup=0, parse=0)
    verified_digest(resolved)
    run_data = data.load_run_data(resolved)
    assert counted == {"lookup": 0, "parse": 0}
    assert run_data.env_id == resolved.env_id and run_data.normalize(500.0) == 100.0


def test_load_catalog_reads_an_unchanged_file_once_and_sees_every_edit(tiny_catalog, counted):
    first = load_catalog()
    assert load_catalog() is first and counted["parse"] == 1

    _set_references(tiny_catalog, 5.0, 600.0)  # rewritten
    assert load_catalog().task_entry("cheetah-run").reference_pair() == (5.0, 600.0)

    stat = tiny_catalog.stat()
    text = tiny_catalog.read_text().replace('"value": 600.0', '"value": 700.0')
    with open(tiny_catalog, "r+") as f:  # edited in place, same size, mtime put back
        f.write(text)
    os.utime(tiny_catalog, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert load_catalog().task_entry("cheetah-run").reference_pair() == (5.0, 700.0)
    assert counted["parse"] == 3


def test_the_catalog_editor_never_changes_the_loaded_catalog(tiny_catalog):
    from spin_bench.pipeline.catalog_edit import EditableCatalog

    loaded = load_catalog()
    editor = EditableCatalog.read()
    editor.raw["entries"][0]["reference_scores"]["expert"]["value"] = 1.0  # an edit not saved
    assert load_catalog() is loaded and loaded.raw["entries"][0]["reference_scores"]["expert"]["value"] == 500.0


def test_normalized_score_of_dataset_ids(tiny_catalog):
    assert spin_bench.normalized_score(MEDIUM, 500.0) == 100.0
    assert spin_bench.normalized_score(MEDIUM, 664.57, reference="paper") == pytest.approx(100.0)
    with pytest.raises(ValueError, match="a dataset id names its own bins"):
        spin_bench.normalized_score(MEDIUM, 1.0, bins=10)
    with pytest.raises(ValueError, match="reference='spin' is for spin/ datasets"):
        spin_bench.normalized_score("original/cheetah-run/medium-v0", 1.0, reference="spin")
    with pytest.raises(ValueError, match="unknown dataset id 'spin/cheetah-run/expert-v9'"):
        spin_bench.normalized_score("spin/cheetah-run/expert-v9", 1.0)
