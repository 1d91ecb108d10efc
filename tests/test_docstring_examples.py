"""Every ``Example:`` in the packages runs and prints what its docstring says: one case per module.

Modules are found on disk, so collecting imports nothing, and each case imports its own module,
so a module that fails to import fails only its own case. Examples run with ``ELLIPSIS`` and
``NORMALIZE_WHITESPACE``; a line marked ``# doctest: +SKIP`` is skipped. Use it only where an
example cannot run here: it needs the shared benchmark data at a fixed path, starts Ray (minutes
on 2 CPUs), or uses names the example leaves undefined; say which in the line's comment. Ray
must not start in this test: ``ray.init`` raises, so such an example fails loudly instead.
"""

from __future__ import annotations

import doctest
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# The project's top-level packages (orchestrator, searchers, schedulers, cluster, benchmarks,
# multiobjective, ...): every folder of the checkout with an __init__.py, except the tests.
PACKAGES = sorted(p.parent.name for p in REPO_ROOT.glob("*/__init__.py") if p.parent.name != "tests")
OPTION_FLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE

# Modules whose examples fail today, in files being rewritten elsewhere; each value says why.
# The cases are strict xfails: once a module's examples pass again its case fails until the name
# is removed here. The goal is an empty set.
KNOWN_BROKEN: dict[str, str] = {}


def _modules_with_examples() -> Iterator[str]:
    """Dotted names of the package modules whose source holds a ``>>>`` line."""
    for package in PACKAGES:
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            in_packages = all((REPO_ROOT.joinpath(*parts[:i]) / "__init__.py").is_file() for i in range(1, len(parts)))
            if in_packages and ">>>" in path.read_text(encoding="utf-8"):
                yield ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = list(_modules_with_examples())


def _case(module: str):
    if module in KNOWN_BROKEN:
        return pytest.param(module, marks=pytest.mark.xfail(reason=KNOWN_BROKEN[module], strict=True))
    return module


@pytest.fixture
def no_ray_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ray.init`` (which Tune and ``ray.remote`` call too) raises instead of starting a cluster."""
    ray = pytest.importorskip("ray")

    def refuse(*args, **kwargs):
        raise RuntimeError(
            "a docstring example started Ray; mark that line `# doctest: +SKIP` with a comment saying it starts Ray"
        )

    monkeypatch.setattr(ray, "init", refuse)


# Ray warns when report/get_checkpoint run outside a trial, which the trainable examples do on purpose.
@pytest.mark.filterwarnings("ignore:`(report|get_checkpoint)` is meant to only be called:UserWarning")
@pytest.mark.parametrize("module_name", [_case(module) for module in MODULES])
def test_examples_in_module_run(module_name: str, no_ray_cluster, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything an example writes to a relative path lands here
    module = importlib.import_module(module_name)
    # A package that loads its public names on first use (PEP 562 `__getattr__`) has them in
    # `__all__` but not in its globals, where doctest looks; examples see them as `import *` would.
    public = {name: getattr(module, name) for name in getattr(module, "__all__", ())}
    runner = doctest.DocTestRunner(optionflags=OPTION_FLAGS)
    report: list[str] = []
    failed = 0
    for test in doctest.DocTestFinder().find(module, module_name, extraglobs=public):
        failed += runner.run(test, out=report.append).failed
    if failed:
        pytest.fail(f"{failed} example(s) failed in {module_name}:\n" + "".join(report), pytrace=False)


def test_known_broken_names_modules_with_examples() -> None:
    assert set(KNOWN_BROKEN) <= set(MODULES)
