"""GPU trials on a Ray cluster of two nodes with 2 (logical) GPUs each, through ``orchestrator.run``.

Checks what cluster.resources promises: trials spread over the nodes' GPUs as their
``resources`` allow, each sees only its own GPU in ``CUDA_VISIBLE_DEVICES``, and a request no
node can hold fails in seconds instead of waiting PENDING forever.
"""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

pytest.importorskip("ray")

from orchestrator.run import run  # noqa: E402
from orchestrator.spec import Experiment, SpecError  # noqa: E402
from tests.cluster.cluster_trainable import max_overlap, read_log  # noqa: E402

pytestmark = [pytest.mark.ray]


def gpu_experiment(
    tmp_path, name: str, gpu: float, *, num_trials: int = 8, epochs: int = 4, barrier: int | None = None, **fields
) -> Experiment:
    """``num_trials`` trials of ``gpu`` GPU each; with ``barrier``, each waits until that many run."""
    barrier_config = {} if barrier is None else {"barrier": barrier, "barrier_timeout_s": 60}
    return Experiment(
        name=name,
        trainable="tests.cluster.cluster_trainable:train",
        search_space={"x": {"type": "uniform", "low": 0.1, "high": 1.0}},
        objectives=[{"name": "score", "mode": "max"}],
        method="random",
        budget={"num_trials": num_trials, "max_concurrent": num_trials},
        resources={"cpu": 0.5, "gpu": gpu},
        storage_path=str(tmp_path),
        config={"epochs": epochs, "epoch_s": 0.4, "log_path": str(tmp_path / f"{name}.log"), **barrier_config},
        **fields,
    )


def placement(tmp_path, name: str) -> tuple[list[dict], int, dict]:
    """The log, the most trials in an epoch at once, and the most at once per (node, GPU)."""
    log = read_log(tmp_path / f"{name}.log")
    per_device = defaultdict(list)
    for row in log:
        per_device[(row["node"], row["cuda"])].append((row["begin"], row["end"]))
    return log, max_overlap([(row["begin"], row["end"]) for row in log]), {
        device: max_overlap(spans) for device, spans in per_device.items()
    }


@pytest.mark.slow  # about 60 s on two busy cores: 16 trial processes start
def test_whole_and_half_gpu_trials_fill_both_nodes(tmp_path, two_nodes_two_gpus):
    nodes = {node.node_id for node in two_nodes_two_gpus.worker_nodes}

    result = run(gpu_experiment(tmp_path, "whole", gpu=1, barrier=4))
    assert (result.results["status"] == "completed").all() and len(result.results) == 8
    log, most, per_device = placement(tmp_path, "whole")
    assert all(row["barrier_met"] for row in log) and most == 4, "4 GPUs, 1 per trial: 4 trials at a time"
    assert {row["node"] for row in log} == nodes, "both nodes ran trials"
    assert {row["cuda"] for row in log} == {"0", "1"}, "each trial sees the one GPU Ray gave it"
    assert set(per_device.values()) == {1}, "no two trials on one GPU at once"

    # Eight trials wait for each other before training: they meet only if all 8 run at once.
    result = run(gpu_experiment(tmp_path, "half", gpu=0.5, barrier=8))
    assert (result.results["status"] == "completed").all() and len(result.results) == 8
    log, most, per_device = placement(tmp_path, "half")
    assert all(row["barrier_met"] for row in log) and most == 8, "4 GPUs, half of one per trial: all 8 at once"
    assert {row["node"] for row in log} == nodes
    assert max(per_device.values()) == 2 and len(per_device) == 4, "two trials share each of the 4 GPUs"


def test_three_gpus_per_trial_on_two_gpu_nodes_fail_in_seconds(tmp_path, two_nodes_two_gpus):
    started = time.monotonic()
    with pytest.raises(SpecError) as raised:
        run(gpu_experiment(tmp_path, "three", gpu=3))
    assert time.monotonic() - started < 10
    assert str(raised.value).startswith(
        "resources.gpu: got 3 per trial, but no node has that many: the largest has 4 CPU and 2 GPU "
        "(3 nodes, 8 CPU and 4 GPU in all)"
    )
    assert "lower it to at most 2" in str(raised.value) and "cluster.autoscaling: true" in str(raised.value)
    assert not (tmp_path / "three").exists(), "no trial started"


def test_declared_autoscaling_lets_a_larger_request_through_the_check(tmp_path, two_nodes_two_gpus):
    from orchestrator.preflight import check_cluster

    check_cluster(gpu_experiment(tmp_path, "later", gpu=3, cluster={"autoscaling": True}))
