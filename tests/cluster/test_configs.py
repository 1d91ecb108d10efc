"""Tests for cluster.configs: the shipped cluster configs pass Ray's own checks and ours, and
broken ones fail naming the key."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("ray")

from cluster.configs import (  # noqa: E402
    CONFIG_DIR,
    RAY_UP_CONFIGS,
    RAYJOB_MANIFEST,
    ConfigError,
    load_config,
    validate_ray_up_config,
    validate_rayjob,
)


def test_every_config_file_in_the_folder_is_validated_here():
    assert sorted(path.name for path in CONFIG_DIR.glob("*.yaml")) == sorted([*RAY_UP_CONFIGS, RAYJOB_MANIFEST])


@pytest.mark.parametrize("name", RAY_UP_CONFIGS)
def test_ray_up_configs_pass_rays_schema_and_declare_gpu_workers(name):
    prepared = validate_ray_up_config(CONFIG_DIR / name)
    node_types = prepared["available_node_types"]
    head = prepared["head_node_type"]
    assert node_types[head]["resources"] == {"CPU": 0}, "no trials on the head node"
    workers = [node_type for type_name, node_type in node_types.items() if type_name != head]
    assert any(node_type["resources"]["GPU"] >= 1 for node_type in workers)
    assert all(node_type["max_workers"] >= node_type["min_workers"] for node_type in workers)


@pytest.mark.parametrize("name", ["aws-gpu.yaml", "gcp-gpu.yaml"])
def test_cloud_configs_copy_and_install_this_package_on_every_node(name):
    prepared = validate_ray_up_config(CONFIG_DIR / name)
    assert prepared["file_mounts"] == {"~/tune-orchestrator": "."}
    assert any("-e ~/tune-orchestrator" in command for command in prepared["setup_commands"])
    assert any("--autoscaling-config" in command for command in prepared["head_start_ray_commands"])


def test_rays_schema_check_is_really_applied():
    config = load_config(CONFIG_DIR / "aws-gpu.yaml")
    config["max_worker"] = 3  # a typo of max_workers
    with pytest.raises(ConfigError, match=r"\(top level\): Additional properties are not allowed \('max_worker' was unexpected\)"):
        validate_ray_up_config(config)
    config = load_config(CONFIG_DIR / "gcp-gpu.yaml")
    config["available_node_types"]["gpu_worker"]["min_workers"] = "two"
    with pytest.raises(ConfigError, match=r"available_node_types\.gpu_worker\.min_workers: 'two' is not of type 'integer'"):
        validate_ray_up_config(config)
    config = load_config(CONFIG_DIR / "fake-multinode.yaml")
    del config["head_node_type"]
    with pytest.raises(ConfigError, match="Ray refused the config: You must specify `head_node_type`"):
        validate_ray_up_config(config)


def test_a_ray_up_config_without_gpu_workers_or_the_package_is_refused():
    config = load_config(CONFIG_DIR / "aws-gpu.yaml")
    config["available_node_types"]["gpu_worker"]["resources"] = {"CPU": 8}
    with pytest.raises(ConfigError, match="available_node_types: no worker type declares GPUs"):
        validate_ray_up_config(config)
    config = load_config(CONFIG_DIR / "aws-gpu.yaml")
    config["setup_commands"] = ["echo hello"]
    with pytest.raises(ConfigError, match="setup_commands: this package is not installed on the nodes"):
        validate_ray_up_config(config)


def test_the_rayjob_runs_the_orchestrator_on_gpu_workers_with_shared_storage():
    import ray

    manifest = validate_rayjob(CONFIG_DIR / RAYJOB_MANIFEST)
    assert (manifest["apiVersion"], manifest["kind"]) == ("ray.io/v1", "RayJob")
    assert manifest["spec"]["entrypoint"].startswith("python -m orchestrator run ")
    assert manifest["spec"]["rayClusterSpec"]["rayVersion"] == ray.__version__
    (group,) = manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"]
    assert group["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"


def broken(change) -> dict:
    manifest = load_config(CONFIG_DIR / RAYJOB_MANIFEST)
    change(manifest)
    return manifest


def workers(manifest) -> dict:
    return manifest["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(apiVersion="ray.io/v1alpha1"), "apiVersion/kind: got 'ray.io/v1alpha1'/'RayJob'; use apiVersion: ray.io/v1"),
        (lambda m: m["spec"].pop("entrypoint"), "spec.entrypoint: missing"),
        (lambda m: m["spec"].update(entrypoint="python train.py"), "spec.entrypoint: got 'python train.py'; use `python -m orchestrator run"),
        (lambda m: m["spec"]["rayClusterSpec"].update(rayVersion="2.9.0"), "spec.rayClusterSpec.rayVersion: got '2.9.0'; use"),
        (lambda m: m["spec"]["rayClusterSpec"]["headGroupSpec"]["rayStartParams"].update({"num-cpus": 0}),
         "spec.rayClusterSpec.headGroupSpec.rayStartParams.num-cpus: got 0; quote it"),
        (lambda m: m["spec"]["rayClusterSpec"].update(workerGroupSpecs=[]), "workerGroupSpecs: got []; give at least one GPU worker group"),
        (lambda m: workers(m)["template"]["spec"]["containers"][0]["resources"]["limits"].pop("nvidia.com/gpu"),
         "workerGroupSpecs: no group asks for GPUs"),
        (lambda m: workers(m).update(minReplicas=3), "workerGroupSpecs[0]: got minReplicas/replicas/maxReplicas [3, 2, 4]"),
        (lambda m: workers(m)["template"]["spec"]["containers"][0].pop("volumeMounts"),
         "volumeMounts: the head and the GPU workers share no persistent volume"),
        (lambda m: workers(m)["template"]["spec"]["containers"][0].pop("image"), "containers: every container needs an image"),
    ],
)
def test_a_broken_rayjob_names_the_key_and_the_fix(change, message):
    with pytest.raises(ConfigError) as raised:
        validate_rayjob(broken(change))
    assert message in str(raised.value)


@pytest.mark.slow  # about 40 s: a Ray head, its autoscaler and two fake GPU nodes start
def test_the_fake_multinode_config_runs_gpu_trials_on_its_emulated_nodes(tmp_path):
    """`RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config=cluster/configs/fake-multinode.yaml`
    for real: the autoscaler starts the two GPU worker nodes the config asks for, and an experiment
    with ``cluster.address: auto`` runs half-GPU trials on both."""
    import os
    import socket
    import subprocess
    import sys
    import time

    psutil = pytest.importorskip("psutil")
    import ray

    from orchestrator.run import run
    from orchestrator.spec import Experiment
    from tests.cluster.cluster_trainable import read_log
    from tests.cluster.conftest import REPO_ROOT

    with socket.socket() as probe:  # the fake provider finds the head's GCS at the default port
        if probe.connect_ex(("127.0.0.1", 6379)) == 0:
            pytest.skip("port 6379 is taken: another Ray head runs on this machine")
    # A private Ray temp folder: no other ray.init() on this machine finds this cluster, and every
    # process of it names the folder in its command line, which is how they are stopped below.
    temp_root = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    environ = {**os.environ, "RAY_TMPDIR": str(temp_root), "RAY_FAKE_CLUSTER": "1"}
    previous = os.environ.get("RAY_TMPDIR")
    ray_cli = str(Path(sys.executable).with_name("ray"))
    started = time.monotonic()
    try:
        subprocess.run(
            [ray_cli, "start", "--head", "--port=6379", "--num-cpus=0", "--num-gpus=0", "--include-dashboard=false",
             "--disable-usage-stats", f"--autoscaling-config={CONFIG_DIR / 'fake-multinode.yaml'}"],
            env=environ, check=True, capture_output=True, timeout=120,
        )
        os.environ["RAY_TMPDIR"] = str(temp_root)  # for address "auto" in this process
        ray.init(address="auto", log_to_driver=False, runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}})
        deadline = time.monotonic() + 120
        while sum(bool(node["Alive"] and node["Resources"].get("GPU")) for node in ray.nodes()) < 2:
            assert time.monotonic() < deadline, f"the autoscaler started no 2 GPU nodes: {ray.nodes()}"
            time.sleep(1)
        result = run(Experiment(
            name="fake",
            trainable="tests.cluster.cluster_trainable:train",
            search_space={"x": {"type": "uniform", "low": 0.1, "high": 1.0}},
            objectives=[{"name": "score", "mode": "max"}],
            method="random",
            budget={"num_trials": 4, "max_concurrent": 4},
            resources={"cpu": 0.5, "gpu": 0.5},
            cluster={"address": "auto"},
            storage_path=str(tmp_path),
            config={"epochs": 3, "epoch_s": 0.3, "log_path": str(tmp_path / "epochs.log")},
        ))
        assert result.results["status"].tolist() == ["completed"] * 4
        assert len({row["node"] for row in read_log(tmp_path / "epochs.log")}) == 2, "both fake GPU nodes ran trials"
        print(f"fake multinode: 2 GPU nodes, 4 half-GPU trials in {time.monotonic() - started:.0f} s")
    finally:
        ray.shutdown()
        if os.environ.get("RAY_TMPDIR") == str(temp_root):
            os.environ.pop("RAY_TMPDIR")
            if previous is not None:
                os.environ["RAY_TMPDIR"] = previous
        ours = [process for process in psutil.process_iter(["cmdline"]) if str(temp_root) in " ".join(process.info["cmdline"] or [])]
        ours += [child for process in ours for child in process.children(recursive=True)]
        for process in ours:
            with contextlib.suppress(psutil.Error):
                process.terminate()
        _, alive = psutil.wait_procs(ours, timeout=10)
        for process in alive:
            with contextlib.suppress(psutil.Error):
                process.kill()
        shutil.rmtree(temp_root, ignore_errors=True)
