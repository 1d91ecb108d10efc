"""The shared benchmark data for the tests: where it lives, what it holds, and skip markers.

The data sits beside the checkout, in ``<checkout>/../shared/benchmarks`` (so in CI too);
``TUNE_ORCHESTRATOR_BENCHMARKS`` points the tests at another folder. Test functions get the
folder from the ``data_dir`` fixture of ``tests/conftest.py``; this is a plain module because
``skipif`` markers and ``parametrize`` lists need the values when a test module is imported.

Example::

    from tests.benchmark_data import NMTHPO_PAIRS, needs_nmthpo

    @needs_nmthpo
    @pytest.mark.parametrize("pair", NMTHPO_PAIRS or ["<no tables>"])
    def test_something(data_dir, pair): ...
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from benchmarks.blackboxes.nmthpo import available_instances

ENVIRONMENT_VARIABLE = "TUNE_ORCHESTRATOR_BENCHMARKS"
DATA_DIR = Path(
    os.environ.get(ENVIRONMENT_VARIABLE) or Path(__file__).resolve().parents[2] / "shared" / "benchmarks"
)
"""The shared benchmarks folder, holding ``nmthpo/`` and ``yahpo/``."""

NMTHPO_DIR = DATA_DIR / "nmthpo"
YAHPO_DIR = DATA_DIR / "yahpo"

NMTHPO_PAIRS: list[str] = available_instances(NMTHPO_DIR) if NMTHPO_DIR.is_dir() else []
"""Language pairs with all their NMT tables, sorted; empty without the data."""

# A YAHPO scenario is a folder with its config space, as benchmarks.report.yahpo_dev_instances reads them.
YAHPO_SCENARIOS: list[str] = (
    sorted(p.name for p in YAHPO_DIR.iterdir() if (p / "config_space.json").is_file()) if YAHPO_DIR.is_dir() else []
)
"""YAHPO Gym scenarios present, sorted; empty without the data."""

needs_nmthpo = pytest.mark.skipif(
    not NMTHPO_PAIRS, reason=f"nmthpo data missing: no NMT tables in {NMTHPO_DIR} (set {ENVIRONMENT_VARIABLE})"
)
needs_yahpo = pytest.mark.skipif(
    not YAHPO_SCENARIOS, reason=f"yahpo data missing: no scenario in {YAHPO_DIR} (set {ENVIRONMENT_VARIABLE})"
)
