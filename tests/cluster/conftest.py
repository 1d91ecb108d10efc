"""Fixtures for the multi-node tests: a ``ray.cluster_utils.Cluster`` of several raylets on this
machine, each with logical GPUs (Ray counts them; nothing runs on a GPU)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def local_cluster(*workers: dict) -> Iterator:
    """A head node that runs no trials (0 CPU, 0 GPU) and one worker node per ``workers`` entry
    (``ray.cluster_utils.Cluster.add_node`` options such as ``num_cpus=4, num_gpus=2``), with
    this process connected to it; yields the ``Cluster``."""
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    # Cluster writes its address to <temp>/ray/ray_current_cluster, where every plain ray.init()
    # on this machine (other test runs too) would find it and connect to this cluster instead of
    # starting its own: keep Ray's temp folder private to this cluster.
    previous = os.environ.get("RAY_TMPDIR")
    os.environ["RAY_TMPDIR"] = temp_root = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: socket paths
    cluster = None
    try:
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "num_gpus": 0, "include_dashboard": False})
        for options in workers:
            cluster.add_node(**options)
        cluster.wait_for_nodes()
        # Workers must import `tests` (the trainables) even when the project is not pip-installed.
        ray.init(address=cluster.address, log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}})
        yield cluster
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        if previous is None:
            os.environ.pop("RAY_TMPDIR", None)
        else:
            os.environ["RAY_TMPDIR"] = previous
        shutil.rmtree(temp_root, ignore_errors=True)


@pytest.fixture(scope="module")
def two_nodes_two_gpus() -> Iterator:
    """Two worker nodes with 4 CPUs and 2 GPUs each (head: nothing), for one test module."""
    with local_cluster({"num_cpus": 4, "num_gpus": 2}, {"num_cpus": 4, "num_gpus": 2}) as cluster:
        yield cluster
