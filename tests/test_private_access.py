"""No private attribute of an Ax or Ray object is touched outside the documented adapters.

STYLE.md: "Reach into another library's private attributes only where it has no public way, in
one small adapter, with a comment naming the version checked and a test that fails loudly when
it breaks." The files allowed to reach in are ``ALLOWED_ADAPTERS``; this test reads every other
module of our packages with ``ast`` (nothing is imported) and flags, with ``file:line``:

1. Imports of a private name or module of Ray or Ax: ``from ray.x import _y``,
   ``from ray._private.x import y``, ``import ray._private.x``.
2. ``E._name`` (one leading underscore, or a mangled ``__name``; dunders are public), and the
   same spelled ``getattr``/``hasattr``/``setattr``/``delattr(E, "_name")``, where
   a. ``E`` starts at a name bound by an import from Ray or Ax (``Client._from_json_snapshot``,
      ``hyperband._Bracket``), whatever ``_name`` is; or
   b. ``E`` is anything but ``self``/``cls``/``super()`` and ``_name`` is not one of our own
      private names (``client._experiment``, ``client._generation_strategy._nodes``,
      ``self._client._to_json_snapshot``, ``getattr(self.scheduler, "_mode")``).

Our own private names are those our packages define: ``def _name``, ``self._name = ...``,
``cls._name = ...``, ``_name = ...`` in a class body or at module level. Names defined inside a
class derived from a Ray or Ax class do not count (``_metric``/``_mode`` of a ``Searcher``
subclass are Ray's protocol, so ``scheduler._mode`` is still flagged). So ``self._foo`` and
``self._cluster._trials`` (``SimulatedCluster`` defines ``_trials``) pass.

Not caught, by design of a static check: what a subclass of a public Ray or Ax class reads of
its base through ``self``; a private name of Ray or Ax that we happen to define too, read on a
variable. Expressions rooted at another library (``np``, ``torch``) are out of scope here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

import tests.test_import_graph as import_graph

ROOT = import_graph.ROOT
WATCHED_LIBRARIES = ("ray", "ax")
# File (relative to the repository root) -> why it may use Ray's or Ax's private API.
ALLOWED_ADAPTERS = {
    "cluster/configs.py": "validates `ray up` configs with Ray's own prepare/validate (Ray 2.60 has no public API)",
    "searchers/_ax_adapter.py": "builds Ax's default generation strategy the way Client does",
    "schedulers/hyperband.py": "subclasses Ray's private _Bracket: Ray 2.60 has no public bracket API",
}
# Public API spelled with a leading underscore (namedtuple's methods and fields).
PUBLIC_UNDERSCORE_NAMES = frozenset({"_asdict", "_replace", "_make", "_fields", "_field_defaults"})
_ATTRIBUTE_FUNCTIONS = ("getattr", "hasattr", "setattr", "delattr")


def is_private(name: str) -> bool:
    """``_x`` and ``__x`` are private; ``__x__`` is a public dunder."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def is_watched(module: str) -> bool:
    return module.split(".")[0] in WATCHED_LIBRARIES


@dataclass(frozen=True)
class Hit:
    path: str
    line: int
    expression: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.expression}"


def source_files() -> dict[str, ast.Module]:
    """Repository-relative path -> parsed module, for every ``.py`` file of our packages."""
    return {
        path.relative_to(ROOT).as_posix(): ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for path in import_graph.module_files().values()
    }


def watched_import_bindings(tree: ast.AST) -> set[str]:
    """Local names bound by imports from Ray or Ax (``import ray`` binds ``ray``)."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bound.update(alias.asname or alias.name.split(".")[0] for alias in node.names if is_watched(alias.name))
        elif isinstance(node, ast.ImportFrom) and not node.level and is_watched(node.module or ""):
            bound.update(alias.asname or alias.name for alias in node.names)
    return bound


def foreign_classes(trees: dict[str, ast.Module]) -> set[str]:
    """Names of our classes derived, directly or through our classes, from a Ray or Ax class."""
    bases: dict[str, set[str]] = {}
    foreign: set[str] = set()
    for tree in trees.values():
        watched = watched_import_bindings(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                roots = {root_name(base) for base in node.bases} - {None}
                bases.setdefault(node.name, set()).update(roots)
                if roots & watched:
                    foreign.add(node.name)
    changed = True
    while changed:
        grown = {name for name, roots in bases.items() if roots & foreign}
        changed = not grown <= foreign
        foreign |= grown
    return foreign


def root_name(node: ast.AST) -> str | None:
    """The name an expression starts at (``a`` for ``a.b[0].c()``); ``None`` for literals."""
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def defined_names(node: ast.AST) -> Iterator[str]:
    """Private names a statement defines: ``def _x``, ``_x = ...``, ``self._x = ...``."""
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        yield node.name
    targets: list[ast.AST] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    for target in targets:
        for leaf in ast.walk(target):
            if isinstance(leaf, ast.Name):
                yield leaf.id
            elif isinstance(leaf, ast.Attribute) and isinstance(leaf.value, ast.Name) and leaf.value.id in ("self", "cls"):
                yield leaf.attr


@lru_cache(maxsize=1)
def our_private_names() -> frozenset[str]:
    """Private names our packages define outside classes derived from Ray or Ax."""
    trees = source_files()
    foreign = foreign_classes(trees)
    names: set[str] = set()

    def visit(node: ast.AST, in_foreign_class: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if not in_foreign_class:
                names.update(name for name in defined_names(child) if is_private(name))
            visit(child, in_foreign_class or (isinstance(child, ast.ClassDef) and child.name in foreign))

    for tree in trees.values():
        visit(tree, False)
    return frozenset(names)


def private_accesses(tree: ast.AST, path: str, ours: frozenset[str]) -> Iterator[Hit]:
    """Hits in one module by the rules of this file's docstring."""
    watched = watched_import_bindings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if is_watched(alias.name) and any(is_private(part) for part in alias.name.split(".")):
                    yield Hit(path, node.lineno, ast.unparse(node))
        elif isinstance(node, ast.ImportFrom) and not node.level and is_watched(node.module or ""):
            parts = node.module.split(".") + [alias.name for alias in node.names]
            if any(is_private(part) for part in parts):
                yield Hit(path, node.lineno, ast.unparse(node))
        elif isinstance(node, ast.Attribute) and reaches_in(node.value, node.attr, watched, ours):
            yield Hit(path, node.lineno, ast.unparse(node))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _ATTRIBUTE_FUNCTIONS
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and reaches_in(node.args[0], node.args[1].value, watched, ours)
        ):
            yield Hit(path, node.lineno, ast.unparse(node))


def reaches_in(owner: ast.AST, name: str, watched: set[str], ours: frozenset[str]) -> bool:
    """Whether ``owner.name`` reads a private attribute of what may be a Ray or Ax object."""
    if not is_private(name) or name in PUBLIC_UNDERSCORE_NAMES:
        return False
    root = root_name(owner)
    if root in watched:
        return True
    is_self = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
    is_super = isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super"
    if is_self or is_super:
        return False
    return name not in ours and root not in third_party_roots()


@lru_cache(maxsize=1)
def third_party_roots() -> frozenset[str]:
    """Top-level modules other than Ray, Ax and ours that our code imports (``np`` via its alias too)."""
    ours = set(import_graph.PACKAGES)
    roots: set[str] = set()
    for tree in source_files().values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    top = alias.name.split(".")[0]
                    if top not in ours and not is_watched(top) and (alias.asname or "." not in alias.name):
                        roots.add(alias.asname or top)
    return frozenset(roots)


def all_hits() -> list[Hit]:
    """Hits outside ``ALLOWED_ADAPTERS`` by file and line; ``a._b._c`` is not also reported as ``a._b``."""
    ours = our_private_names()
    hits = {
        hit
        for path, tree in source_files().items()
        if path not in ALLOWED_ADAPTERS
        for hit in private_accesses(tree, path, ours)
    }
    outer = {(hit.path, hit.line, hit.expression) for hit in hits}
    return sorted(
        (
            hit for hit in hits
            if not any(
                (path, line) == (hit.path, hit.line) and expression.startswith(hit.expression + ".")
                for path, line, expression in outer
            )
        ),
        key=lambda hit: (hit.path, hit.line, hit.expression),
    )


def hits_in(code: str) -> list[str]:
    return sorted(hit.expression for hit in private_accesses(ast.parse(code), "snippet.py", our_private_names()))


def test_the_rules_catch_the_known_ways_in():
    assert hits_in(
        "from ax import Client\n"
        "from ray.tune.schedulers import hyperband\n"
        "from ray.tune.schedulers.hyperband import HyperBandScheduler, _Bracket\n"
        "import ray._private.utils\n"
        "def f(client, scheduler, self):\n"
        "    client._experiment\n"
        "    client._generation_strategy._nodes\n"
        "    Client._from_json_snapshot(client.snapshot)\n"
        "    hyperband._Bracket\n"
        "    self._client._to_json_snapshot()\n"
        "    getattr(self.scheduler, '_mode', None)\n"
    ) == sorted([
        "from ray.tune.schedulers.hyperband import HyperBandScheduler, _Bracket",
        "import ray._private.utils",
        "client._experiment",
        "client._generation_strategy._nodes",
        "client._generation_strategy",
        "Client._from_json_snapshot",
        "hyperband._Bracket",
        "self._client._to_json_snapshot",
        "getattr(self.scheduler, '_mode', None)",
    ])


def test_the_rules_let_our_own_private_state_through():
    assert hits_in(
        "import numpy as np\n"
        "class Cluster:\n"
        "    def run(self, other, row):\n"
        "        self._foo, type(self).__name__, super()._helper()\n"
        "        self._cluster._trials, other._trials\n"
        "        row._asdict(), np._NoValue\n"
    ) == []


def test_no_private_ray_or_ax_access_outside_the_adapters():
    hits = all_hits()
    assert not hits, (
        "private attribute of a Ray/Ax object (or of our subclass of one) used outside ALLOWED_ADAPTERS; "
        "use the public API, or move the access into an adapter listed there with the version checked:\n" + "\n".join(map(str, hits))
    )


def test_each_allowed_adapter_exists_and_names_the_version_it_was_checked_against():
    problems = []
    for path in ALLOWED_ADAPTERS:
        file = ROOT / path
        if not file.is_file():
            problems.append(f"{path}: listed in ALLOWED_ADAPTERS but missing; remove the entry.")
        elif not re.search(r"\b(ray|ax-platform|ax)[ =]+\d+\.\d+", file.read_text(encoding="utf-8"), re.IGNORECASE):
            problems.append(f"{path}: names no version checked (e.g. 'checked on ray 2.60'); add that comment.")
    assert not problems, "\n".join(problems)
