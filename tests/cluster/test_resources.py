"""Tests for cluster.resources: request validation, placement checks, concurrency limits."""

from __future__ import annotations

import types

import pytest

from cluster.resources import (
    InsufficientResourcesError,
    TrialResources,
    check_cluster_can_place,
    max_concurrent_trials,
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
    "kwargs, message",
    [
        ({"cpu": -1}, "resources.cpu must be a number >= 0, got -1"),
        ({"cpu": "2"}, "resources.cpu must be a number >= 0, got '2'"),
        ({"cpu": float("nan")}, "resources.cpu must be a number >= 0, got nan"),
        ({"gpu": -0.5}, "resources.gpu must be a number >= 0, got -0.5"),
        ({"gpu": True}, "resources.gpu must be a number >= 0, got True"),
        ({"gpu": 1.5}, "fraction below 1 .* or a whole number of GPUs, got 1.5; use 1 or 2"),
    ],
)
def test_rejects_invalid_requests_naming_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrialResources(**kwargs)


def test_coerce_accepts_instances_mappings_and_objects_with_cpu_and_gpu():
    request = TrialResources(cpu=2, gpu=1)
    assert TrialResources.coerce(request) is request
    assert TrialResources.coerce({"gpu": 0.5}) == TrialResources(cpu=1, gpu=0.5)
    spec_like = types.SimpleNamespace(cpu=4, gpu=0)
    assert TrialResources.coerce(spec_like) == TrialResources(cpu=4, gpu=0)


def test_coerce_rejects_unknown_keys_and_types():
    with pytest.raises(ValueError, match="unknown \\['gpus'\\]"):
        TrialResources.coerce({"gpus": 1})
    with pytest.raises(TypeError, match="resources must be a TrialResources"):
        TrialResources.coerce(3)


# --- check_cluster_can_place -------------------------------------------------------------------


def test_gpu_request_on_a_cpu_only_cluster_names_request_cluster_and_fix():
    with pytest.raises(InsufficientResourcesError) as raised:
        check_cluster_can_place(TrialResources(cpu=1, gpu=1), CPU_ONLY)
    message = str(raised.value)
    assert "requests 1 CPU and 1 GPU" in message
    assert "the cluster has 2 CPU and 0 GPU" in message
    assert "PENDING forever" in message
    assert "Lower resources.gpu to at most 0" in message and "add GPU nodes" in message
    assert isinstance(raised.value, ValueError)


def test_fractional_gpu_request_also_needs_a_gpu():
    with pytest.raises(InsufficientResourcesError, match="0.5 GPU"):
        check_cluster_can_place({"gpu": 0.5}, CPU_ONLY)


def test_more_gpus_than_the_cluster_has_is_rejected():
    with pytest.raises(InsufficientResourcesError, match="Lower resources.gpu to at most 2"):
        check_cluster_can_place(TrialResources(gpu=4), TWO_GPUS)


def test_more_cpus_than_the_cluster_has_is_rejected():
    with pytest.raises(InsufficientResourcesError, match="Lower resources.cpu to at most 2"):
        check_cluster_can_place(TrialResources(cpu=3), CPU_ONLY)


@pytest.mark.parametrize(
    "request_, cluster",
    [
        (TrialResources(cpu=1), CPU_ONLY),
        (TrialResources(cpu=2), CPU_ONLY),
        (TrialResources(cpu=0, gpu=0), {}),
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
    with pytest.raises(InsufficientResourcesError, match="has 8 CPU and 0 GPU"):
        check_cluster_can_place(TrialResources(gpu=1))


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


def test_max_concurrent_trials_needs_some_request():
    with pytest.raises(ValueError, match="request 0 CPU and 0 GPU.*resources.cpu > 0"):
        max_concurrent_trials(TrialResources(cpu=0), CPU_ONLY)
