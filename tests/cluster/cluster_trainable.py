"""A trainable that logs where and from which checkpoint each epoch ran, for the multi-node tests.

Each epoch appends ``{"trial", "epoch", "start", "node", "cuda", "begin", "end"}`` to
``config["log_path"]`` after ``tune.report`` returned, so every logged epoch has its checkpoint
in storage; ``start`` is the epoch the attempt restored from (0: from scratch). Tests read the
log back with :func:`read_log` to count trials running at once, the nodes and GPUs they used,
and where each restart resumed.

With ``config["barrier"] = n`` each trial waits, before its first epoch, until ``n`` trials have
reached that point (at most ``barrier_timeout_s``), so trials that can run together do overlap
however slowly their worker processes start; ``"barrier_met"`` in the log says whether it was.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import ray
from ray import tune


def train(config: dict) -> None:
    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            start = json.loads((Path(folder) / "state.json").read_text())["epoch"]
    trial_id = tune.get_context().get_trial_id()
    where = {
        "trial": trial_id,
        "node": ray.get_runtime_context().get_node_id(),
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "start": start,
        "barrier_met": _wait_at_barrier(config, trial_id) if "barrier" in config else None,
    }
    for epoch in range(start + 1, config["epochs"] + 1):
        begin = time.time()
        time.sleep(config["epoch_s"])
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report({"score": config["x"] * epoch, "epoch": epoch}, checkpoint=tune.Checkpoint.from_directory(folder))
        with open(config["log_path"], "a") as log:
            log.write(json.dumps({**where, "epoch": epoch, "begin": begin, "end": time.time()}) + "\n")
            log.flush()
            os.fsync(log.fileno())


def _wait_at_barrier(config: dict, trial_id: str) -> bool:
    folder = Path(config["log_path"] + ".barrier")
    folder.mkdir(exist_ok=True)
    (folder / trial_id).touch()
    deadline = time.monotonic() + config.get("barrier_timeout_s", 60)
    while time.monotonic() < deadline:
        if len(list(folder.iterdir())) >= config["barrier"]:
            return True
        time.sleep(0.05)
    return False


def read_log(path: str | os.PathLike[str]) -> list[dict]:
    """The epochs logged so far, in the order they were written."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals ``(begin, end)`` that hold one instant in common.

    Example:
        >>> max_overlap([(0, 2), (1, 3), (2.5, 4)])
        2
    """
    events = sorted([(begin, 1) for begin, _ in intervals] + [(end, -1) for _, end in intervals])
    running = most = 0
    for _, step in events:  # at a tie the end (-1) sorts first: touching intervals do not overlap
        running += step
        most = max(most, running)
    return most
