"""Nodes removed from a running experiment (``ray.cluster_utils.Cluster.remove_node``).

A trial whose node dies must restart on another node from its last checkpoint (no epoch run
again once its checkpoint was stored), up to ``cluster.max_failures`` times, and the experiment
must complete with every trial. The trainable (tests/cluster/cluster_trainable.py) logs each
epoch after its checkpoint is stored, with the node it ran on and the epoch it resumed from.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import pytest

pytest.importorskip("ray")

from orchestrator.run import run  # noqa: E402
from orchestrator.spec import Experiment  # noqa: E402
from tests.cluster.cluster_trainable import read_log  # noqa: E402
from tests.cluster.conftest import local_cluster  # noqa: E402

pytestmark = [pytest.mark.ray]

NODE = {"num_cpus": 4, "num_gpus": 2}


def node_loss_experiment(tmp_path, *, num_trials: int, epochs: int, max_failures: int) -> Experiment:
    return Experiment(
        name="node_loss",
        trainable="tests.cluster.cluster_trainable:train",
        search_space={"x": {"type": "uniform", "low": 0.1, "high": 1.0}},
        objectives=[{"name": "score", "mode": "max"}],
        method="random",
        budget={"num_trials": num_trials, "max_concurrent": 4},
        resources={"cpu": 1, "gpu": 1},
        cluster={"max_failures": max_failures},
        storage_path=str(tmp_path),
        config={"epochs": epochs, "epoch_s": 0.3, "log_path": str(tmp_path / "epochs.log")},
    )


class NodeRemover:
    """Removes ``count`` worker nodes, each while a trial trains on it, adding a fresh node after each.

    Runs in the main thread (``Cluster.add_node`` installs signal handlers); the experiment runs
    in another.
    """

    def __init__(self, cluster, log_path, count: int, epochs: int) -> None:
        self.cluster, self.log_path, self.count, self.epochs = cluster, log_path, count, epochs
        self.removed: list[dict] = []  # {"node", "at"}

    def remove_while(self, running: threading.Thread, timeout_s: float = 300) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.removed) < self.count and running.is_alive() and time.monotonic() < deadline:
            victim = self._busy_node()
            if victim is None:
                time.sleep(0.1)
                continue
            self.cluster.remove_node(victim)
            self.removed.append({"node": victim.node_id, "at": time.time()})
            self.cluster.add_node(**NODE)
            self.cluster.wait_for_nodes()

    def _busy_node(self):
        """A worker node on which an unfinished trial stored a checkpoint in the last second."""
        alive = {node.node_id: node for node in self.cluster.worker_nodes}
        recent = [
            row for row in read_log(self.log_path)
            if row["end"] > time.time() - 1.0 and row["node"] in alive and row["epoch"] < self.epochs
        ]
        return alive[recent[-1]["node"]] if recent else None


def check_resumed_from_last_checkpoint(log: list[dict], removed: list[dict], epochs: int) -> dict:
    """Assert what a node loss may and may not do to the trials; returns figures for the report."""
    by_trial = defaultdict(list)
    for row in log:
        by_trial[row["trial"]].append(row)
    dead = {removal["node"] for removal in removed}
    restarts = 0
    # (trial, node) for each trial that trained on a node before the node was removed
    interrupted = {(row["trial"], row["node"]) for row in log if row["node"] in dead}
    for trial, rows in by_trial.items():
        done = [row["epoch"] for row in rows]
        assert len(done) == len(set(done)), f"{trial} ran a checkpointed epoch again: {done}"
        assert max(done) == epochs, f"{trial} did not finish: {done}"
        last_stored = 0
        for previous, row in zip([None, *rows], rows):
            if previous is not None and (row["node"], row["start"]) != (previous["node"], previous["start"]):
                restarts += 1
                # A node can die after an epoch's checkpoint was stored and before the epoch was
                # logged; the restart then resumes one epoch later than the log shows.
                assert last_stored <= row["start"] <= last_stored + 1, (
                    f"{trial} resumed from epoch {row['start']} after storing epoch {last_stored}: {rows}"
                )
                assert row["node"] not in dead or row["node"] == previous["node"] or row["begin"] < min(
                    removal["at"] for removal in removed if removal["node"] == row["node"]
                ), f"{trial} restarted on a node that was already removed"
            last_stored = row["epoch"]
        assert rows[-1]["node"] not in dead or rows[-1]["epoch"] == epochs
    return {"trials": len(by_trial), "restarts": restarts, "interrupted": len(interrupted)}


def run_with_removals(tmp_path, *, removals: int, num_trials: int, epochs: int, max_failures: int) -> tuple:
    outcome: dict = {}

    def experiment_thread() -> None:
        try:
            outcome["result"] = run(experiment)
        except BaseException as error:  # re-raised by the test
            outcome["error"] = error

    with local_cluster(NODE, NODE) as cluster:
        experiment = node_loss_experiment(tmp_path, num_trials=num_trials, epochs=epochs, max_failures=max_failures)
        remover = NodeRemover(cluster, tmp_path / "epochs.log", removals, epochs)
        started = time.monotonic()
        running = threading.Thread(target=experiment_thread, daemon=True)
        running.start()
        remover.remove_while(running)
        running.join(timeout=600)
        seconds = time.monotonic() - started
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"], remover.removed, read_log(tmp_path / "epochs.log"), seconds


@pytest.mark.slow  # about 60 s on two busy cores
def test_a_node_removed_mid_trial_restarts_its_trials_elsewhere_from_their_checkpoints(tmp_path):
    result, removed, log, seconds = run_with_removals(tmp_path, removals=1, num_trials=6, epochs=10, max_failures=3)

    assert len(removed) == 1
    assert len(result.results) == 6 and (result.results["status"] == "completed").all(), result.results["status"]
    figures = check_resumed_from_last_checkpoint(log, removed, epochs=10)
    assert figures["interrupted"] >= 1 and figures["restarts"] >= 1, "the removed node was training a trial"
    print(f"1 removal: {figures}, {seconds:.0f} s")


@pytest.mark.slow  # about 2-3 minutes on two busy cores
def test_ten_node_removals_lose_no_trial_and_resume_each_from_its_checkpoint(tmp_path):
    result, removed, log, seconds = run_with_removals(tmp_path, removals=10, num_trials=16, epochs=12, max_failures=10)

    assert len(removed) == 10, f"the experiment ended after {len(removed)} removals"
    assert len(result.results) == 16 and (result.results["status"] == "completed").all(), result.results["status"]
    figures = check_resumed_from_last_checkpoint(log, removed, epochs=12)
    assert figures["interrupted"] >= 10 and figures["restarts"] >= 10, "each removal interrupted a trial"
    print(f"10 removals: {figures}, {seconds:.0f} s")
