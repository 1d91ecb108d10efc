"""A function trainable for the pause/resume test: checkpoints each epoch, logs every epoch it runs."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from ray import tune


def train(config: dict) -> None:
    """``acc`` rises towards ``config["quality"]``; ``ms`` is fixed per configuration.

    Appends ``"<trial_id> start <epoch>"`` when the trial (re)starts and ``"<trial_id> epoch <k>"``
    for every epoch it runs to ``config["log"]``, so a test can see resumes and repeated epochs.
    """
    trial_id = tune.get_context().get_trial_id()
    log = Path(config["log"])
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            start = json.loads((Path(directory) / "state.json").read_text())["epoch"] + 1
    with log.open("a") as handle:
        handle.write(f"{trial_id} start {start}\n")
    for epoch in range(start, config["epochs"]):
        time.sleep(0.02)
        with log.open("a") as handle:
            handle.write(f"{trial_id} epoch {epoch}\n")
        metrics = {"epoch": epoch, "acc": config["quality"] * (1 - 0.5 ** (epoch + 1)), "ms": config["ms"]}
        with tempfile.TemporaryDirectory() as directory:
            (Path(directory) / "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(directory))
