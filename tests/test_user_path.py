"""The user path stands on its own: it never imports the maintainers' pipeline, and its data half needs no torch.

Each check runs a fresh interpreter with an import hook that refuses some modules (as if they were not installed)
and records every attempt, then imports the user side and uses it as a user would: ``datasets build`` on the tiny
catalog (its expert dataset acts with a behaviour snapshot), ``load_dataset``, ``normalized_score``.
"""

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PIPELINE = ("spin_bench.pipeline", "spin_bench.behaviour")
"""The maintainers' pipeline, under its name and its former one (``spin_bench.behaviour``), which must not return."""

HEAVY = ("torch", "ray", "matplotlib")
"""What the base install leaves out (extras ``[agents]``, ``[ray]``, ``[report]``)."""

_HOOK = """
import importlib.abc, json, sys

BLOCKED = tuple(json.loads(sys.argv[1]))
ATTEMPTS = []


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if any(name == b or name.startswith(b + ".") for b in BLOCKED):
            ATTEMPTS.append(name)
            raise ImportError(f"{name} is blocked by the test")
        return None


sys.meta_path.insert(0, Refuse())
"""

_REPORT = """
loaded = sorted(m for m in sys.modules if any(m == b or m.startswith(b + ".") for b in BLOCKED))
print("REPORT " + json.dumps({"attempts": sorted(set(ATTEMPTS)), "loaded": loaded}))
"""


def _run_blocked(blocked: tuple[str, ...], body: str) -> dict:
    script = _HOOK + body + _REPORT
    result = subprocess.run(
        [sys.executable, "-c", script, json.dumps(blocked)], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("REPORT ")]
    return json.loads(line.removeprefix("REPORT "))


_BUILD_AND_LOAD = """
import gymnasium as gym
import spin_bench
from spin_bench.datasets import build_dataset, verified_digest

env = gym.make(spin_bench.env_id("cheetah-run"))
env.reset(seed=0)
env.close()
for dataset_id in ("spin/cheetah-run/expert-v0", "spin/cheetah-run/random-v0"):
    build_dataset(dataset_id, workers=1, progress=False)  # what `spin-bench datasets build` runs
    verified_digest(dataset_id, recompute=True)
dataset = spin_bench.load_dataset("spin/cheetah-run/expert-v0")
assert len(dataset.transitions) == 2000, len(dataset.transitions)
assert spin_bench.normalized_score("cheetah-run", 500.0) == 100.0
"""


def _user_modules() -> list[str]:
    """Every module of the user side: spin_bench but its pipeline, and baselines."""
    names = []
    for package in ("spin_bench", "baselines"):
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[:2] in (("spin_bench", "pipeline"), ("spin_bench", "behaviour")):
                continue
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


# The user's dataset commands through the real CLI app (a forced rebuild, so the build really runs).
_DATASETS_CLI = """
from typer.testing import CliRunner
from spin_bench.cli import app

for args in (
    ["build", "spin/cheetah-run/medium-v0", "--workers", "1", "--force"],
    ["verify", "spin/cheetah-run/medium-v0"],
    ["list", "--offline"],
    ["info", "spin/cheetah-run/medium-v0"],
):
    result = CliRunner().invoke(app, ["datasets", *args])
    assert result.exit_code == 0, (args, result.output)
"""


def test_user_path_imports_and_builds_with_the_pipeline_blocked(tiny_catalog):
    modules = _user_modules()
    assert {"spin_bench.cli.app", "spin_bench.datasets.build", "spin_bench.runner.run"} <= set(modules)
    body = (
        f"""
import importlib
for name in {modules!r}:
    importlib.import_module(name)
"""
        + _BUILD_AND_LOAD
        + _DATASETS_CLI
    )
    report = _run_blocked(PIPELINE, body)
    assert report == {"attempts": [], "loaded": []}


def test_no_user_module_names_the_pipeline_in_an_import():
    """Function-local imports too, which the walk above only reaches on the paths it takes."""
    offenders = []
    for name in _user_modules():
        path = ROOT / Path(*name.split("."))
        path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        for node in ast.walk(ast.parse(path.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            if any(t == p or t.startswith(p + ".") for t in targets for p in PIPELINE):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert offenders == []


def test_datasets_build_load_and_scores_need_no_torch_ray_or_matplotlib(tiny_catalog):
    report = _run_blocked(HEAVY + PIPELINE, _BUILD_AND_LOAD + _DATASETS_CLI)
    assert report["loaded"] == []
    assert not [m for m in report["attempts"] if m.startswith(PIPELINE)]
