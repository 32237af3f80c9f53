"""Where the agents' code lives: ``baselines -> spin_bench.agents``, never the reverse, and every agent is listed
statically in ``spin_bench.registry`` (imported by name in code, never through a string)."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
AGENTS = sorted((ROOT / "spin_bench" / "agents").glob("*.py"))
BASELINES = sorted((ROOT / "baselines").glob("*.py"))


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-local imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_the_layout_is_what_this_file_checks():
    assert {p.stem for p in BASELINES} >= {"saint", "f_iql", "ar_iql", "bc"}
    assert {"spin", "iql", "base", "transformer"} <= {p.stem for p in AGENTS}


@pytest.mark.parametrize("path", AGENTS, ids=lambda p: p.name)
def test_the_agents_core_imports_no_baseline_and_not_the_registry(path):
    imports = imported_modules(path)
    assert not {m for m in imports if m == "baselines" or m.startswith("baselines.")}
    assert "spin_bench.registry" not in imports
    if path.name != "__init__.py":  # the package's lazy names (torch on first use) are its own modules
        assert "importlib" not in imports


def test_the_packages_lazy_names_are_its_own_modules():
    import spin_bench.agents

    for name, module in spin_bench.agents._LAZY.items():
        assert (ROOT / "spin_bench" / "agents" / f"{module}.py").is_file(), (name, module)
        assert getattr(spin_bench.agents, name) is not None


@pytest.mark.parametrize("path", BASELINES, ids=lambda p: p.name)
def test_baselines_build_on_the_core_only(path):
    imports = imported_modules(path)
    assert "spin_bench.registry" not in imports and "importlib" not in imports
    outside = {m for m in imports if m.startswith("spin_bench.") and not m.startswith("spin_bench.agents.")}
    assert not outside, outside


def test_the_registry_lists_every_agent_by_its_class_with_its_config_beside_it():
    import spin_bench.registry as registry

    assert "importlib" not in imported_modules(ROOT / "spin_bench" / "registry.py")
    assert registry.AGENT_NAMES == ("spin", "saint", "f-iql", "ar-iql", "bc")
    for name, cls in registry.AGENTS.items():
        assert cls.name == name and registry.agent_class(name) is cls
        assert cls.__module__ in {"spin_bench.agents.spin"} | {f"baselines.{p.stem}" for p in BASELINES}
        assert cls.config_class.__module__ == cls.__module__, "an agent's config lives in its agent's file"
