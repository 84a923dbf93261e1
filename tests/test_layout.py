"""The layout reads as api -> engine -> store: no import cycles, and no part imports one above it.

Imports are read from the source with ``ast``, all of them: those inside functions and under
``TYPE_CHECKING`` too, since a cycle hidden in a function is still a knot a reader has to untie.
A *part* is a subpackage of tasky (``tasky.chains``) or a module at its top (``tasky.settings``).
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "tasky"

Graph = Mapping[str, set[str]]


def modules_under(package: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every module of ``package`` (a directory)."""
    found = {}
    for path in package.rglob("*.py"):
        parts = [package.name, *path.relative_to(package).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _resolve(name: str, modules: Mapping[str, Path]) -> str | None:
    """The module ``name`` loads: itself, or the nearest enclosing package (for a name in it)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def imports_of(module: str, path: Path, modules: Mapping[str, Path]) -> set[str]:
    """The modules of ``modules`` that ``module`` imports, wherever the import statement is."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    wanted: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            wanted += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            # ``from tasky import prom`` imports the module tasky.prom; ``from tasky.api import
            # create_app`` a name of tasky.api.
            for alias in node.names:
                name = f"{source}.{alias.name}"
                wanted.append(name if name in modules else source)
    found = {_resolve(name, modules) for name in wanted}
    return {name for name in found if name is not None and name != module}


def import_graph(package: Path) -> dict[str, set[str]]:
    modules = modules_under(package)
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def part_of(module: str) -> str:
    """``tasky.api.app`` -> ``api``; ``tasky.settings`` -> ``settings``; ``tasky`` -> ``tasky``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else parts[0]


def parts_graph(graph: Graph) -> dict[str, set[str]]:
    parts: dict[str, set[str]] = {part_of(m): set() for m in graph}
    for module, targets in graph.items():
        parts[part_of(module)] |= {part_of(t) for t in targets} - {part_of(module)}
    return parts


def cycles(graph: Graph) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def reachable(graph: Graph, start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph.get(start, ()))
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += graph.get(node, ())
    return seen


# What each layer must never reach, directly or through others (docs/architecture.md).
_FEATURES = {"chains", "schedules", "retention", "prom", "ui", "callbacks", "auth", "idempotency"}
_TOP = {"server", "cli", "__main__", "shutdown"}
NEVER_REACHES: dict[str, set[str]] = {
    # The store is the bottom: it knows no engine, HTTP, or anything built on them.
    "store": {"engine", "api", "http", "workers", *_FEATURES, *_TOP},
    # A worker sees its config and a task context: never the store or the engine.
    "workers": {"store", "engine", "api", "http", *_FEATURES, *_TOP},
    # The engine calls the store only; it serves no HTTP.
    "engine": {"api", "http", *_FEATURES, *_TOP},
    # What every group of routes shares builds on nothing of the server.
    "http": {"api", "engine", "store", *_FEATURES, *_TOP},
    # The task API is handed its route groups (tasky.server): it imports none of them.
    "api": {"chains", "schedules", "retention", "prom", "ui", *_TOP},
}


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(PACKAGE)


def test_no_module_imports_itself_back(graph: Graph) -> None:
    assert cycles(graph) == []


def test_no_two_parts_import_each_other(graph: Graph) -> None:
    assert cycles(parts_graph(graph)) == []


@pytest.mark.parametrize("part", sorted(NEVER_REACHES))
def test_no_part_reaches_a_layer_above_it(graph: Graph, part: str) -> None:
    parts = parts_graph(graph)
    assert part in parts
    assert reachable(parts, part) & NEVER_REACHES[part] == set()


def _write(root: Path, files: Mapping[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


def test_a_cycle_through_an_import_inside_a_function_is_found(tmp_path: Path) -> None:
    package = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a/__init__.py": "",
            "pkg/a/one.py": "def late() -> None:\n    from pkg.b import two\n",
            "pkg/b/__init__.py": "",
            "pkg/b/two.py": "from ..a import one\n",
            "pkg/c.py": "from pkg import a\n",
        },
    )
    graph = import_graph(package)
    assert graph["pkg.a.one"] == {"pkg.b.two"}
    assert graph["pkg.b.two"] == {"pkg.a.one"}
    assert graph["pkg.c"] == {"pkg.a"}
    assert cycles(graph) == [["pkg.a.one", "pkg.b.two"]]
    assert cycles(parts_graph(graph)) == [["a", "b"]]
    assert reachable(parts_graph(graph), "c") == {"a", "b"}


def test_a_tree_without_cycles_passes(tmp_path: Path) -> None:
    package = _write(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/low.py": "import os\n",
            "pkg/high.py": "from pkg.low import *\nfrom . import low\n",
        },
    )
    graph = import_graph(package)
    assert graph["pkg.high"] == {"pkg.low"}
    assert cycles(graph) == [] and cycles(parts_graph(graph)) == []
