"""The committed reference results are what ``spin-bench report`` makes of the committed run files.

``results/README.md`` is generated (its header names the command); this test reruns that command on a copy of
``results/`` and requires the same bytes, like the dataset card's test. Plots are only checked to exist: their
bytes depend on the installed matplotlib and freetype.
"""

import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spin_bench.cli import app

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
COMMAND = ["report", "results/lite-v0", "--format", "md", "--output", "results/README.md", "--plots", "results/img"]

pytestmark = pytest.mark.skipif(not (RESULTS / "lite-v0").is_dir(), reason="no committed reference runs")


def test_the_committed_results_document_is_what_report_makes_of_the_committed_runs(tmp_path, monkeypatch):
    committed = (RESULTS / "README.md").read_text()
    assert "spin-bench " + " ".join(COMMAND) in committed  # the document names the command that made it
    shutil.copytree(RESULTS / "lite-v0", tmp_path / "results" / "lite-v0")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, COMMAND)
    assert result.exit_code == 0, result.output
    regenerated = (tmp_path / "results" / "README.md").read_text()
    assert regenerated == committed, "results/README.md is stale: rerun `spin-bench " + " ".join(COMMAND) + "`"
    for image in re.findall(r"\]\((img/[^)]+\.png)\)", committed):
        assert (tmp_path / "results" / image).is_file() and (RESULTS / image).is_file(), image


def test_committed_runs_hold_only_small_files():
    for path in (RESULTS / "lite-v0").rglob("*"):
        if path.is_file():
            assert path.name in {"config.json", "metrics.csv", "summary.json"}, path
            assert path.stat().st_size < 200_000, path
