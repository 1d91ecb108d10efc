"""A stand-in for Ray Tune's trial session, so trainables run in-process without a Ray cluster."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


class FakeTuneSession:
    """Stands in for ``ray.tune.report`` / ``ray.tune.get_checkpoint`` inside one trial.

    Like Ray, ``report`` copies the checkpoint directory into storage before returning,
    because ``report_epoch`` deletes its temporary directory right after.
    """

    def __init__(self, storage: Path):
        self.storage = storage
        self.metrics: list[dict] = []
        self.checkpoint_dirs: list[Path] = []
        self.checkpoint_types: list[type] = []
        self.loaded_checkpoint = None

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeTuneSession:
        from ray import tune

        monkeypatch.setattr(tune, "report", self.report)
        monkeypatch.setattr(tune, "get_checkpoint", lambda: self.loaded_checkpoint)
        return self

    def report(self, metrics, *, checkpoint=None):
        self.metrics.append(metrics)
        self.checkpoint_types.append(type(checkpoint))
        destination = self.storage / f"checkpoint_{len(self.checkpoint_dirs):06d}"
        shutil.copytree(checkpoint.path, destination)
        self.checkpoint_dirs.append(destination)

    def resume_from(self, index: int) -> None:
        from ray import tune

        self.loaded_checkpoint = tune.Checkpoint.from_directory(self.checkpoint_dirs[index])
