"""A trainable that logs every epoch it executes, for the driver-crash tests (tests/orchestrator/test_crash_resume.py).

Each epoch appends ``{"x": ..., "epoch": ..., "start": ..., "run": ...}`` (``run``: the
driver run that executed it, from the harness's ``CRASH_RUN``) to ``config["log_path"]`` before it
reports, and saves a checkpoint holding the epoch, so a test can count the epochs executed, the
trials that restarted from scratch although they had a checkpoint, and the configurations run twice.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

from ray import tune


def train(config: dict) -> None:
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            start = json.loads((Path(folder) / "state.json").read_text())["epoch"]
    for epoch in range(start + 1, config["epochs"] + 1):
        time.sleep(config["epoch_s"])
        with open(config["log_path"], "a") as log:
            log.write(json.dumps({"x": config["x"], "epoch": epoch, "start": start, "run": os.environ.get("CRASH_RUN")}) + "\n")
            log.flush()
            os.fsync(log.fileno())
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report(
                {"score": config["x"] * epoch, "size": (1 - config["x"]) * 10 + epoch},
                checkpoint=tune.Checkpoint.from_directory(folder),
            )
