"""The committed reference results are what ``spin-bench report`` makes of the committed run files.

``results/README.md`` and the results block of ``README.md`` are generated (both name the command); this test reruns
that command on a copy of the run files git tracks under ``results/`` and requires the same bytes, like the dataset
card's test. Plots are only checked to exist: their bytes depend on the installed matplotlib and freetype.
"""

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from spin_bench.cli import app
from spin_bench.runner.report_md import README_BEGIN, README_END

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
COMMAND = ["report", "results/lite-v0", "--format", "md", "--output", "results/README.md", "--plots", "results/img"]
COMMAND += ["--readme", "README.md"]
RUN_FILES = {"config.json", "metrics.csv", "summary.json"}
"""The only files of a run that are committed."""

pytestmark = pytest.mark.skipif(not (RESULTS / "lite-v0").is_dir(), reason="no committed reference runs")


def tracked(folder: str) -> list[str]:
    """The files git tracks under ``folder`` (paths relative to the repository root): the committed results, not
    what a reader's reproduction left beside them (checkpoints, caches, unfinished runs)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: which results files are committed is unknown")
    listed = subprocess.run(["git", "ls-files", "-z", folder], cwd=ROOT, capture_output=True, check=True).stdout
    return [name for name in listed.decode().split("\0") if name]


def _readme_block(text: str) -> str:
    return text.split(README_BEGIN)[1].split(README_END)[0]


def test_the_committed_results_document_and_readme_block_are_what_report_makes_of_the_committed_runs(
    tmp_path, monkeypatch
):
    committed = (RESULTS / "README.md").read_text()
    readme = (ROOT / "README.md").read_text()
    command = "spin-bench " + " ".join(COMMAND)
    assert command in committed and command in _readme_block(readme)  # both name the command that made them
    for name in tracked("results/lite-v0"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ROOT / name, tmp_path / name)
    (tmp_path / "README.md").write_text(readme)
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, COMMAND)
    assert result.exit_code == 0, result.output
    regenerated = (tmp_path / "results" / "README.md").read_text()
    assert regenerated == committed, f"results/README.md is stale: rerun `{command}`"
    block = _readme_block((tmp_path / "README.md").read_text())
    assert block == _readme_block(readme), f"README.md's results block is stale: rerun `{command}`"
    assert "[results/README.md](results/README.md)" in block
    for image in re.findall(r"\]\((img/[^)]+\.png)\)", committed):
        assert (tmp_path / "results" / image).is_file() and (RESULTS / image).is_file(), image


def test_committed_results_hold_only_small_files():
    files = tracked("results")
    assert any(name.startswith("results/lite-v0/") for name in files)
    for name in files:
        path = ROOT / name
        if not path.is_file():
            continue  # deleted in this checkout, not yet in git
        if name.startswith("results/lite-v0/"):
            assert path.name in RUN_FILES, name
            assert path.stat().st_size < 200_000, name
        assert path.stat().st_size < 1_000_000, name  # documents, figures and protocol CSVs


def test_what_a_reproduced_grid_writes_beside_the_run_files_is_ignored_by_git():
    tracked("results")  # skips outside a git checkout
    seed = "results/lite-v0/spin/cheetah-run/medium-expert/bins3/lite-0123abcd/seed3"
    # run.py's folder: checkpoint, lock and live progress beside the three run files; run --out's ASM cache.
    written = [f"{seed}/checkpoint.pt", f"{seed}/lock", f"{seed}/progress.json", "results/lite-v0/_cache/asm-0123.pt"]
    kept = [f"{seed}/{name}" for name in sorted(RUN_FILES)]
    check = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin", "-z"],
        cwd=ROOT,
        input="\0".join(written + kept).encode(),
        capture_output=True,
    )
    ignored = [name for name in check.stdout.decode().split("\0") if name]
    assert ignored == written
