"""The architecture as tests: the engine's import graph flows one way (DESIGN section 3)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[1] / "engine"
# pipeline order: a stage may import the ones before it, never the ones after
STAGES = ("world", "observe", "train", "da", "evaluate")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ENGINE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules ``path`` imports (``from a.b import c`` counts as a.b and a.b.c)."""
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    modules = {_module_name(p): p for p in ENGINE.rglob("*.py")}
    return {name: {m for m in _imports(path, top_level_only) if m in modules} for name, path in modules.items()}


def test_engine_import_graph_has_no_cycle():
    graph = _graph(top_level_only=True)
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node] - {node}:  # a package importing its own submodule is no cycle
            if state.get(nxt) == 1:
                pytest.fail(f"import cycle: {' -> '.join(path[path.index(nxt) :] + [nxt])}")
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_stages_import_only_earlier_stages():
    for name, imported in _graph(top_level_only=False).items():
        stage = name.split(".")[1] if name.count(".") >= 1 else None
        if stage not in STAGES:
            continue
        for other in imported:
            other_stage = other.split(".")[1] if "." in other else None
            if other_stage in STAGES:
                assert STAGES.index(other_stage) <= STAGES.index(stage), f"{name} imports {other} (upstream)"


def test_engine_never_imports_the_dashboard_and_nn_only_torch():
    for path in ENGINE.rglob("*.py"):
        roots = {m.split(".")[0] for m in _imports(path, top_level_only=False)}
        assert not roots & {"viewer", "panel", "holoviews", "bokeh", "geoviews", "datashader"}, path
        if path.parent.name == "nn":
            assert roots <= {"torch", "math", "__future__", "engine", "typing", "collections", "dataclasses"}, path
            assert all(m.startswith("engine.nn") for m in _imports(path, False) if m.startswith("engine")), path


def test_a_headless_verb_loads_no_dashboard_package(tmp_path):
    code = (
        "import sys; from engine import cli; cli.main(['observe', '--counts', '--period', '2005-2005']); "
        "loaded = {'panel', 'holoviews', 'bokeh', 'geoviews'} & set(sys.modules); assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ENGINE.parent)
    assert result.returncode == 0, result.stderr
    assert "2005" in result.stdout


def test_view_without_the_dashboard_stack_says_how_to_install_it(monkeypatch, capsys):
    import importlib.util

    from engine import cli

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "geoviews" else real(name, *a))
    assert cli.main(["view", "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "needs geoviews" in err and "[viewer]" in err and err.count("\n") == 1
