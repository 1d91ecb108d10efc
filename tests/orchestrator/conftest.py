"""Fixtures for the orchestrator tests."""

from __future__ import annotations

import pytest

from tests.orchestrator.fake_tune_session import FakeTuneSession


@pytest.fixture
def session(monkeypatch, tmp_path) -> FakeTuneSession:
    """``ray.tune.report`` / ``get_checkpoint`` replaced for one test; checkpoints land in ``tmp_path``."""
    return FakeTuneSession(tmp_path).install(monkeypatch)
