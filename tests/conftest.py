"""Fixtures shared by the whole test tree.

* ``data_dir``: the shared benchmarks folder (see :mod:`tests.benchmark_data`, which also has
  the ``needs_nmthpo`` / ``needs_yahpo`` skip markers).
* ``ray_session``: one local Ray session per test module.

Fixtures for one part of the tree sit in that folder's ``conftest.py``: synthetic NMT tables in
``tests/benchmarks``, the fake Tune session in ``tests/orchestrator``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared benchmarks folder; mark tests that need it with ``needs_nmthpo`` or ``needs_yahpo``."""
    # Imported here, not at the top: tests.benchmark_data loads the benchmarks package (torch),
    # which tests outside tests/benchmarks should not pay for.
    from tests.benchmark_data import DATA_DIR

    return DATA_DIR


@pytest.fixture(scope="module")
def ray_session():
    """A local 2-CPU Ray session for one test module (``ray.init`` costs seconds); yields ``ray``."""
    ray = pytest.importorskip("ray")
    # Workers must import `orchestrator` and `tests` even when the project is not pip-installed.
    ray.init(
        address="local",  # a new local instance, never one another process left running
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}},
    )
    yield ray
    ray.shutdown()
