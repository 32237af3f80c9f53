"""The package's layers import downwards only: no two subpackages import each other, directly or through others.

Every import counts, function-local ones included (a loop hidden inside functions is still a loop).
"""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("spin_bench", "baselines")


def _layer(module: str) -> str:
    """``spin_bench.datasets.build`` -> ``spin_bench.datasets``; ``baselines.bc`` -> ``baselines``."""
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "spin_bench" and len(parts) > 1 else parts[0]


def import_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    targets = [node.module]
                else:
                    continue
                for target in targets:
                    if target.split(".")[0] in PACKAGES and _layer(target) != _layer(module):
                        graph[_layer(module)].add(_layer(target))
    return graph


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    stack = [start]
    while stack:
        for nxt in graph.get(stack.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def test_no_import_loop_between_subpackages():
    graph = import_graph()
    assert {"spin_bench.cli", "spin_bench.runner", "spin_bench.datasets"} <= set(graph)  # the walk saw the code
    loops = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if a in reachable(graph, b))
    assert loops == []


def test_layers_point_down():
    graph = import_graph()
    below_runner = {"spin_bench.agents", "spin_bench.datasets", "spin_bench.envs", "baselines"}
    for layer in below_runner:
        assert not reachable(graph, layer) & {"spin_bench.runner", "spin_bench.cli", "spin_bench.pipeline"}, layer
    assert not reachable(graph, "spin_bench.envs") & {"spin_bench.datasets", "spin_bench.agents"}
