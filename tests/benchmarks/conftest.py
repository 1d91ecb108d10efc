"""Fixtures for the benchmark tests: small synthetic NMT tables and their blackbox.

``test_cli.py`` and ``test_run_cache.py`` write tables of their own (another pair or size) under
the same fixture names.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.blackboxes import NMTBlackbox, make_blackbox
from tests.benchmarks.synthetic_tables import SYNTHETIC_PAIR, write_nmt_tables


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> Path:
    """A data folder with 40 random models of pair ``SYNTHETIC_PAIR`` in ``nmthpo/``."""
    return write_nmt_tables(tmp_path_factory.mktemp("tables"), SYNTHETIC_PAIR, rows=40)


@pytest.fixture(scope="module")
def nmt(tables) -> NMTBlackbox:
    """The ``NMTBlackbox`` over ``tables``."""
    return make_blackbox("nmthpo", tables, SYNTHETIC_PAIR)
