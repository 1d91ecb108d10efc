"""The static import graph of our packages: no cycles, and the layers point one way.

The graph is built from source with ``ast`` alone (nothing is imported, no Ray start), and it
counts every import statement: module level, inside functions (lazy), under
``if TYPE_CHECKING:`` and in ``try`` blocks. A lazy or type-only import does not fail at run
time, but it still ties two modules together, which is what these tests guard.

Edges, from module ``m`` (``pkg/__init__.py`` is the module ``pkg``):

- ``import a.b.c`` gives ``m -> a.b.c``, the module named;
- ``from a.b import x`` gives ``m -> a.b.x`` when ``a.b.x`` is one of our modules (``x`` is a
  submodule), else ``m -> a.b`` (``x`` is a name that ``a.b`` defines or re-exports);
- relative imports are resolved against ``m``'s package first;
- a package ``__init__`` that re-exports its submodules has edges to them like any module.

The enclosing packages that Python imports on the way (``a`` and ``a.b`` for ``import a.b.c``)
are not edges. They are always initialised before, or while, their submodule loads, so
importing them cannot fail half-way; counting them would turn every package whose
``__init__`` re-exports a submodule that imports a sibling into a false cycle
(``pkg -> pkg.a -> pkg.b -> (pkg) -> pkg.a``). A module that asks its own package for a name
(``from pkg import X`` inside ``pkg.b``) does get the edge ``pkg.b -> pkg``, and with the
``__init__`` re-exporting ``pkg.b`` that is a real cycle and is reported. An edge from a module
to itself is ignored.

Layers (``STYLE.md``): ``searchers``, ``schedulers``, ``cluster`` and ``multiobjective`` never
import ``orchestrator`` or ``benchmarks``; ``multiobjective`` imports none of our other packages.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PACKAGES = tuple(
    name
    for name in ("orchestrator", "searchers", "schedulers", "cluster", "benchmarks", "multiobjective")
    if (ROOT / name / "__init__.py").is_file()
)
# package -> our packages it must not import
FORBIDDEN = {
    "searchers": {"orchestrator", "benchmarks"},
    "schedulers": {"orchestrator", "benchmarks"},
    "cluster": {"orchestrator", "benchmarks"},
    "multiobjective": set(PACKAGES) - {"multiobjective"},
}


def module_files() -> dict[str, Path]:
    """Dotted module name -> source file, for every ``.py`` under our packages."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def imported_names(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[str, list[str], int]]:
    """``(base, names, line)`` per import statement: ``from base import names`` / ``import base``."""
    package_parts = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, [], node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package_parts[: len(package_parts) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield base, [alias.name for alias in node.names], node.lineno


@lru_cache(maxsize=1)
def import_graph() -> dict[str, dict[str, tuple[Path, int]]]:
    """``graph[m][n] = (file, line)`` of the first import in ``m`` that makes the edge ``m -> n``."""
    modules = module_files()
    graph: dict[str, dict[str, tuple[Path, int]]] = {name: {} for name in modules}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for base, names, line in imported_names(tree, module, path.name == "__init__.py"):
            targets = [f"{base}.{name}" if f"{base}.{name}" in modules else base for name in names] or [base]
            for target in targets:
                if target in modules and target != module and line < graph[module].get(target, (path, 1e9))[1]:
                    graph[module][target] = (path, line)
    return graph


def find_cycles(graph: dict[str, dict[str, object]]) -> list[list[str]]:
    """One cycle ``[a, b, ..., a]`` per strongly connected component of more than one module."""
    index: dict[str, int] = {}
    lowlink: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the graph is a few hundred modules at most
        index[node] = lowlink[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in sorted(graph[node]):
            if successor not in index:
                visit(successor)
                lowlink[node] = min(lowlink[node], lowlink[successor])
            elif successor in on_stack:
                lowlink[node] = min(lowlink[node], index[successor])
        if lowlink[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [shortest_cycle(graph, component) for component in sorted(components)]


def shortest_cycle(graph: dict[str, dict[str, object]], component: list[str]) -> list[str]:
    """The shortest path from ``component[0]`` back to itself inside the component."""
    start, members = component[0], set(component)
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        next_frontier = []
        for node in frontier:
            for successor in sorted(graph[node]):
                if successor == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if successor in members and successor not in parents:
                    parents[successor] = node
                    next_frontier.append(successor)
        frontier = next_frontier
    raise AssertionError(f"component {component} has no cycle through {start}")


def describe(cycle: list[str]) -> str:
    graph = import_graph()
    steps = [
        f"    {source} -> {target}  ({graph[source][target][0].relative_to(ROOT)}:{graph[source][target][1]})"
        for source, target in zip(cycle, cycle[1:])
    ]
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


def test_the_graph_sees_every_kind_of_import():
    tree = ast.parse(
        "import benchmarks.simulator\n"
        "from . import sibling, name_in_init\n"
        "from .._sim_pool import CandidatePool\n"
        "if TYPE_CHECKING:\n    from orchestrator.results import X\n"
        "def lazy():\n    from orchestrator import plots\n"
    )
    found = list(imported_names(tree, "benchmarks.sub.module", is_package=False))
    assert found == [
        ("benchmarks.simulator", [], 1),
        ("benchmarks.sub", ["sibling", "name_in_init"], 2),
        ("benchmarks._sim_pool", ["CandidatePool"], 3),
        ("orchestrator.results", ["X"], 5),
        ("orchestrator", ["plots"], 7),
    ]
    assert list(imported_names(ast.parse("from . import a"), "searchers", is_package=True)) == [
        ("searchers", ["a"], 1)
    ]
    assert find_cycles({"a": {"b": 0}, "b": {"c": 0}, "c": {"a": 0, "d": 0}, "d": {}}) == [["a", "b", "c", "a"]]
    assert find_cycles({"p": {"r": 0}, "r": {"p": 0}, "x": {"p": 0}}) == [["p", "r", "p"]]


def test_no_import_cycles_between_our_modules():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles (break each one):\n" + "\n".join(describe(cycle) for cycle in cycles)


def test_the_simulator_parts_import_nothing_of_ours():
    # The clock, the trial stand-ins and the pool are leaves; only the cluster ties them together.
    graph = import_graph()
    parts = ("benchmarks._sim_events", "benchmarks._sim_trial", "benchmarks._sim_pool")
    assert {part: sorted(graph[part]) for part in parts} == {part: [] for part in parts}
    assert set(parts) <= set(graph["benchmarks.simulator"])


def test_lower_layers_never_import_upper_ones():
    violations = []
    for module, targets in sorted(import_graph().items()):
        forbidden = FORBIDDEN.get(module.split(".")[0], set())
        for target, (path, line) in sorted(targets.items()):
            if target.split(".")[0] in forbidden:
                violations.append(f"{path.relative_to(ROOT)}:{line}: {module} imports {target}")
    assert not violations, "layering violations (see STYLE.md, 'For this project'):\n" + "\n".join(violations)


def test_each_package_imports_first_in_a_fresh_interpreter():
    # A package that only imports after another one was imported hides an import-order bug.
    # One interpreter per package, all started at once: the slowest (Ax, torch) sets the time.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    processes = {
        package: subprocess.Popen(
            [sys.executable, "-c", f"import {package}"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True,
        )
        for package in PACKAGES
    }
    failures = []
    for package, process in processes.items():
        _, stderr = process.communicate(timeout=180)
        if process.returncode != 0:
            failures.append(f"`python -c 'import {package}'` failed:\n{stderr[-2000:]}")
    assert not failures, "\n".join(failures)
