"""Tests for cluster.resources: request validation, placement checks, concurrency limits."""

from __future__ import annotations

import types

import pytest

from cluster import resources as resources_module
from cluster.resources import (
    InsufficientResourcesError,
    ResourcesError,
    TrialResources,
    check_cluster_can_place,
    check_machine_can_place,
    check_nodes_can_place,
    local_machine_resources,
    max_concurrent_trials,
    node_resources,
)

CPU_ONLY = {"CPU": 2.0, "memory": 1e9}
TWO_GPUS = {"CPU": 16.0, "GPU": 2.0}


# --- TrialResources ----------------------------------------------------------------------------


def test_defaults_request_one_cpu_and_no_gpu():
    assert TrialResources().to_tune() == {"cpu": 1, "gpu": 0}


@pytest.mark.parametrize("gpu", [0, 0.25, 0.5, 1, 2, 4.0])
def test_accepts_fractional_or_whole_gpus(gpu):
    assert TrialResources(cpu=2, gpu=gpu).to_tune() == {"cpu": 2, "gpu": gpu}


@pytest.mark.parametrize(
    "kwargs, field, message",
    [
        ({"cpu": -1}, "cpu", "got -1; use a number >= 0."),
        ({"cpu": "2"}, "cpu", "got '2'; use a number >= 0."),
        ({"cpu": float("nan")}, "cpu", "got nan; use a number >= 0."),
        ({"gpu": -0.5}, "gpu", "got -0.5; use a number >= 0."),
        ({"gpu": True}, "gpu", "got True; use a number >= 0."),
        ({"gpu": 1.5}, "gpu", "got 1.5; use a fraction below 1 (GPU sharing) or a whole number of GPUs, e.g. 1 or 2."),
        ({"cpu": 0, "gpu": 0}, "cpu", "got 0 with gpu 0; a trial must reserve something: use cpu > 0 (e.g. 1) or a gpu."),
    ],
)
def test_rejects_invalid_requests_naming_the_field(kwargs, field, message):
    with pytest.raises(ResourcesError) as raised:
        TrialResources(**kwargs)
    assert (raised.value.field, raised.value.message) == (field, message)
    assert str(raised.value) == f"{field}: {message}" and isinstance(raised.value, ValueError)


def test_a_gpu_alone_is_a_valid_request():
    assert TrialResources(cpu=0, gpu=0.5).to_tune() == {"cpu": 0, "gpu": 0.5}


def test_coerce_accepts_instances_mappings_and_objects_with_cpu_and_gpu():
    request = TrialResources(cpu=2, gpu=1)
    assert TrialResources.coerce(request) is request
    assert TrialResources.coerce({"gpu": 0.5}) == TrialResources(cpu=1, gpu=0.5)
    spec_like = types.SimpleNamespace(cpu=4, gpu=0)
    assert TrialResources.coerce(spec_like) == TrialResources(cpu=4, gpu=0)


def test_coerce_rejects_unknown_keys_and_types():
    with pytest.raises(ResourcesError, match="unknown \\['gpus'\\]; a request takes the keys 'cpu', 'gpu' and 'bundles'"):
        TrialResources.coerce({"gpus": 1})
    with pytest.raises(TypeError, match="resources must be a TrialResources"):
        TrialResources.coerce(3)


# --- check_cluster_can_place -------------------------------------------------------------------


def test_gpu_request_on_a_cpu_only_cluster_names_request_cluster_and_fix():
    with pytest.raises(InsufficientResourcesError) as raised:
        check_cluster_can_place(TrialResources(cpu=1, gpu=1), CPU_ONLY)
    assert raised.value.field == "gpu"
    message = str(raised.value)
    assert message.startswith("gpu: got 1 per trial, but the cluster has 2 CPU and 0 GPU")
    assert "PENDING forever" in message
    assert "lower it to at most 0" in message and "add GPU nodes" in message
    assert isinstance(raised.value, ResourcesError) and isinstance(raised.value, ValueError)


def test_fractional_gpu_request_also_needs_a_gpu():
    with pytest.raises(InsufficientResourcesError, match="^gpu: got 0.5 per trial"):
        check_cluster_can_place({"gpu": 0.5}, CPU_ONLY)


def test_more_gpus_than_the_cluster_has_is_rejected():
    with pytest.raises(InsufficientResourcesError, match="^gpu: got 4 per trial.*lower it to at most 2"):
        check_cluster_can_place(TrialResources(gpu=4), TWO_GPUS)


def test_more_cpus_than_the_cluster_has_is_rejected():
    with pytest.raises(InsufficientResourcesError, match="^cpu: got 3 per trial.*lower it to at most 2 or add CPU nodes"):
        check_cluster_can_place(TrialResources(cpu=3), CPU_ONLY)


@pytest.mark.parametrize(
    "request_, cluster",
    [
        (TrialResources(cpu=1), CPU_ONLY),
        (TrialResources(cpu=2), CPU_ONLY),
        (TrialResources(cpu=0, gpu=1), {"GPU": 1.0}),
        (TrialResources(cpu=4, gpu=2), TWO_GPUS),
        (TrialResources(cpu=1, gpu=0.1), {"CPU": 1.0, "GPU": 1.0}),
    ],
)
def test_requests_the_cluster_can_hold_pass(request_, cluster):
    assert check_cluster_can_place(request_, cluster) is None


def test_reads_ray_cluster_resources_when_none_given(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 8.0})
    check_cluster_can_place(TrialResources(cpu=8))
    with pytest.raises(InsufficientResourcesError, match="cluster has 8 CPU and 0 GPU"):
        check_cluster_can_place(TrialResources(gpu=1))


# --- check_machine_can_place (a local ray.init() that has not started) -------------------------


@pytest.fixture
def two_cpu_machine(monkeypatch):
    """This machine has 2 CPUs, and PyTorch sees no GPU."""
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(resources_module.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)


def test_local_machine_resources_are_cpu_count_and_torch_gpus(two_cpu_machine):
    assert local_machine_resources() == {"CPU": 2.0, "GPU": 0.0}


def test_machine_check_counts_gpus_only_when_a_trial_asks_for_one(monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(resources_module.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: pytest.fail("counted GPUs for a CPU-only trial"))
    assert local_machine_resources(count_gpus=False) == {"CPU": 2.0, "GPU": 0.0}
    check_machine_can_place(TrialResources(cpu=2))


@pytest.mark.parametrize(
    "request_, fragments",
    [
        (TrialResources(cpu=3), ["cpu: got 3 per trial", "this machine", "has 2 CPU and 0 GPU", "at most 2", "RAY_ADDRESS"]),
        (TrialResources(cpu=1, gpu=1), ["gpu: got 1 per trial", "this machine", "at most 0", "RAY_ADDRESS"]),
    ],
)
def test_machine_check_refuses_what_this_machine_lacks(two_cpu_machine, request_, fragments):
    with pytest.raises(InsufficientResourcesError) as raised:
        check_machine_can_place(request_)
    for fragment in fragments:
        assert fragment in str(raised.value)


def test_machine_check_passes_what_this_machine_has(two_cpu_machine):
    assert check_machine_can_place({"cpu": 2}) is None


def test_without_a_ray_session_asks_for_ray_init(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(RuntimeError, match="call ray.init\\(\\) first"):
        check_cluster_can_place(TrialResources())


# --- max_concurrent_trials ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_, cluster, expected",
    [
        (TrialResources(cpu=1), CPU_ONLY, 2),
        (TrialResources(cpu=0.5), CPU_ONLY, 4),
        (TrialResources(cpu=0.1), {"CPU": 1.0}, 10),  # 1 / 0.1 is 9.999... in floats
        (TrialResources(cpu=3), CPU_ONLY, 0),
        (TrialResources(cpu=1, gpu=1), TWO_GPUS, 2),
        (TrialResources(cpu=1, gpu=2), TWO_GPUS, 1),
        (TrialResources(cpu=1, gpu=0.5), TWO_GPUS, 4),
        (TrialResources(cpu=1, gpu=0.4), TWO_GPUS, 4),  # 2 per GPU, not floor(2 / 0.4) = 5
        (TrialResources(cpu=4, gpu=0.25), TWO_GPUS, 4),  # CPUs are the bottleneck
        (TrialResources(cpu=0, gpu=1), TWO_GPUS, 2),
        (TrialResources(cpu=1, gpu=1), CPU_ONLY, 0),
    ],
)
def test_max_concurrent_trials(request_, cluster, expected):
    assert max_concurrent_trials(request_, cluster) == expected



def test_max_concurrent_trials_refuses_bundles_it_cannot_count():
    with pytest.raises(ResourcesError, match="^bundles: got a request with bundles"):
        max_concurrent_trials(TrialResources(bundles=[{"gpu": 1}]), TWO_GPUS)


# --- bundles -----------------------------------------------------------------------------------


def test_bundles_become_a_placement_group_with_the_trial_own_bundle_first():
    request = TrialResources(cpu=1, gpu=0.5, bundles=[{"cpu": 2}, {"cpu": 0, "gpu": 1}])
    assert request.bundle_list() == [{"CPU": 1, "GPU": 0.5}, {"CPU": 2}, {"GPU": 1}]
    assert request.total == {"CPU": 3, "GPU": 1.5}
    factory = request.to_tune()
    from ray import tune

    assert isinstance(factory, tune.PlacementGroupFactory)
    assert factory.bundles == [{"CPU": 1, "GPU": 0.5}, {"CPU": 2}, {"GPU": 1}]
    assert factory.strategy == "PACK"


def test_coerce_reads_bundles_from_mappings_and_objects():
    assert TrialResources.coerce({"cpu": 1, "bundles": [{"gpu": 1}]}).bundles == (TrialResources(cpu=1, gpu=1),)
    spec_like = types.SimpleNamespace(cpu=1, gpu=0, bundles=None)
    assert TrialResources.coerce(spec_like).bundles == ()


@pytest.mark.parametrize(
    "bundles, message",
    [
        ("gpu", "bundles: got 'gpu'; use a list of {cpu, gpu} mappings"),
        ({"gpu": 1}, "bundles: got {'gpu': 1}; use a list of {cpu, gpu} mappings"),
        ([3], "bundles[0]: got 3; use a mapping such as {cpu: 1, gpu: 1}."),
        ([{"gpu": 1}, {"gpu": 1.5}], "bundles[1].gpu: got 1.5; use a fraction below 1"),
        ([{"cpu": 0}], "bundles[0].cpu: got 0 with gpu 0; a trial must reserve something"),
        ([{"gpus": 1}], "bundles[0]: got unknown ['gpus']"),
        ([{"cpu": 1, "bundles": [{"cpu": 1}]}], "bundles[0]: got bundles inside a bundle"),
    ],
)
def test_bad_bundles_name_their_index_and_field(bundles, message):
    with pytest.raises(ResourcesError) as raised:
        TrialResources(cpu=1, bundles=bundles)
    assert str(raised.value).startswith(message)


def test_the_cluster_totals_count_every_bundle():
    with pytest.raises(InsufficientResourcesError, match="^bundles: got 3 per trial.*lower the sum to at most 2"):
        check_cluster_can_place(TrialResources(cpu=1, gpu=1, bundles=[{"gpu": 1}, {"gpu": 1}]), TWO_GPUS)


# --- check_nodes_can_place (per node: Ray puts one bundle on one node) ------------------------

TWO_NODES_TWO_GPUS = [{"CPU": 8.0, "GPU": 2.0}, {"CPU": 8.0, "GPU": 2.0}]


def test_three_gpus_on_two_gpu_nodes_is_refused_although_the_cluster_has_four():
    request = TrialResources(cpu=1, gpu=3)
    check_cluster_can_place(request, {"CPU": 16.0, "GPU": 4.0})  # the totals alone say yes
    with pytest.raises(InsufficientResourcesError) as raised:
        check_nodes_can_place(request, TWO_NODES_TWO_GPUS)
    assert raised.value.field == "gpu"
    assert str(raised.value) == (
        "gpu: got 3 per trial, but no node has that many: the largest has 8 CPU and 2 GPU (2 nodes, "
        "16 CPU and 4 GPU in all), and Ray places one trial's GPUs on one node, so Ray Tune would "
        "leave every trial PENDING forever; lower it to at most 2, or add nodes with at least 3 GPU."
    )


def test_gpus_on_a_cpu_only_cluster_say_how_to_train_on_cpu():
    with pytest.raises(InsufficientResourcesError) as raised:
        check_nodes_can_place(TrialResources(gpu=0.25), [{"CPU": 4.0}, {"CPU": 4.0, "GPU": 0.0}])
    assert str(raised.value).startswith("gpu: got 0.25 per trial, but the cluster has 8 CPU and 0 GPU")
    assert "lower it to at most 0 (0 trains on CPU)" in str(raised.value)


def test_cpus_and_gpus_that_only_fit_on_different_nodes_are_refused():
    nodes = [{"CPU": 4.0}, {"CPU": 1.0, "GPU": 1.0}]
    with pytest.raises(InsufficientResourcesError, match="^gpu: got 4 CPU with 1 GPU per trial, but no node has both"):
        check_nodes_can_place(TrialResources(cpu=4, gpu=1), nodes)


def test_each_bundle_is_checked_on_its_own_node():
    check_nodes_can_place(TrialResources(cpu=8, gpu=2, bundles=[{"cpu": 8, "gpu": 2}]), TWO_NODES_TWO_GPUS)
    with pytest.raises(InsufficientResourcesError, match=r"^bundles\[1\]\.cpu: got 9 per trial, but no node has that many"):
        check_nodes_can_place(TrialResources(cpu=1, bundles=[{"cpu": 1}, {"cpu": 9}]), TWO_NODES_TWO_GPUS)


@pytest.mark.parametrize(
    "request_",
    [TrialResources(gpu=2), TrialResources(cpu=0, gpu=0.5), TrialResources(cpu=8, gpu=1), TrialResources(cpu=1)],
)
def test_requests_one_node_holds_pass(request_):
    assert check_nodes_can_place(request_, TWO_NODES_TWO_GPUS) is None


def test_node_resources_reads_the_alive_nodes_of_ray_nodes(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "nodes", lambda: [
        {"NodeID": "a", "Alive": True, "NodeManagerAddress": "10.0.0.5", "Resources": {"CPU": 8.0, "GPU": 2.0}},
        {"NodeID": "b", "Alive": False, "NodeManagerAddress": "10.0.0.6", "Resources": {"CPU": 8.0, "GPU": 2.0}},
        {"NodeID": "c", "Alive": True, "NodeManagerAddress": "10.0.0.7", "Resources": {"CPU": 4.0}},
    ])
    assert node_resources() == [
        {"node_id": "a", "address": "10.0.0.5", "CPU": 8.0, "GPU": 2.0},
        {"node_id": "c", "address": "10.0.0.7", "CPU": 4.0, "GPU": 0.0},
    ]
    check_nodes_can_place(TrialResources(cpu=8, gpu=2))  # node a; the dead node b does not count
    with pytest.raises(InsufficientResourcesError, match="^cpu: got 9 per trial, but no node has that many"):
        check_nodes_can_place(TrialResources(cpu=9))  # 12 CPU in all, 8 at most on one node


def test_node_resources_needs_a_ray_session(monkeypatch):
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    with pytest.raises(RuntimeError, match="call ray.init\\(\\) first"):
        node_resources()
