"""Tests for cluster.connect: which address, whether it answers, storage every node reaches."""

from __future__ import annotations

import socket
import time

import pytest

from cluster import connect as connect_module
from cluster.connect import (
    ClusterError,
    check_address_answers,
    check_storage_shared,
    cluster_address,
    connect,
    is_remote_uri,
    machine_count,
)


@pytest.mark.parametrize(
    ("address", "environ", "expected"),
    [
        (None, {}, None),
        (None, {"RAY_ADDRESS": ""}, None),
        (None, {"RAY_ADDRESS": " 10.0.0.5:6379 "}, "10.0.0.5:6379"),
        ("ray://head:10001", {"RAY_ADDRESS": "auto"}, "ray://head:10001"),
        ("auto", {}, "auto"),
    ],
)
def test_the_spec_address_wins_then_ray_address_then_local(address, environ, expected):
    assert cluster_address(address, environ=environ) == expected


def test_an_address_that_answers_passes():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        check_address_answers(f"127.0.0.1:{port}")
        check_address_answers(f"ray://127.0.0.1:{port}")


def test_an_address_nothing_answers_at_fails_within_seconds():
    with socket.socket() as probe:  # a port that was free a moment ago
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(ClusterError) as raised:
        check_address_answers(f"127.0.0.1:{port}", timeout_s=2)
    assert time.monotonic() - started < 3
    assert raised.value.field == "address"
    message = str(raised.value)
    assert message.startswith(f"address: got '127.0.0.1:{port}', but nothing answers at 127.0.0.1 port {port}")
    assert "ray up" in message and "unset it (and RAY_ADDRESS) to run on this machine" in message


@pytest.mark.parametrize("address", ["head", "head:port", "ray://"])
def test_an_address_without_host_and_port_is_refused(address):
    with pytest.raises(ClusterError, match=r"^address: got .*; use host:port of the head node"):
        check_address_answers(address)


def test_auto_and_local_are_left_to_ray_init():
    check_address_answers("auto")
    check_address_answers("local")


class FakeRay:
    def __init__(self, initialised: bool = False) -> None:
        self.initialised = initialised
        self.calls: list[dict] = []

    def is_initialized(self) -> bool:
        return self.initialised

    def init(self, **options) -> None:
        self.calls.append(options)
        if options.get("address") == "auto" and self.no_cluster:
            raise ConnectionError("Could not find any running Ray instance.")

    no_cluster = False


@pytest.fixture
def fake_ray(monkeypatch):
    import ray

    fake = FakeRay()
    monkeypatch.setattr(ray, "is_initialized", fake.is_initialized)
    monkeypatch.setattr(ray, "init", fake.init)
    return fake


def test_connect_starts_a_new_local_ray_without_an_address(fake_ray, monkeypatch):
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert connect(None, include_dashboard=False) is None
    assert fake_ray.calls == [{"address": "local", "include_dashboard": False}]


def test_connect_goes_to_ray_address_without_local_only_options(fake_ray, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")
    probed = []
    monkeypatch.setattr(connect_module, "check_address_answers", probed.append)
    assert connect(None, include_dashboard=False, log_to_driver=True) == "10.0.0.5:6379"
    assert probed == ["10.0.0.5:6379"]
    assert fake_ray.calls == [{"address": "10.0.0.5:6379", "log_to_driver": True}]


def test_connect_leaves_an_existing_session_alone(fake_ray):
    fake_ray.initialised = True
    assert connect("10.0.0.5:6379") is None and fake_ray.calls == []


def test_connect_refuses_an_unreachable_address_before_ray_init(fake_ray):
    with pytest.raises(ClusterError, match="nothing answers"):
        connect("127.0.0.1:1")
    assert fake_ray.calls == []


def test_remote_uris_and_machines():
    assert is_remote_uri("s3://bucket/runs") and is_remote_uri("gs://bucket/runs")
    assert not is_remote_uri("/mnt/nfs/runs") and not is_remote_uri("file:///tmp/runs")
    assert machine_count([{"address": "127.0.0.1"}] * 3) == 1  # ray.cluster_utils.Cluster: one machine


def test_a_local_path_on_several_machines_is_refused_unless_declared_shared():
    nodes = [{"address": "10.0.0.5"}, {"address": "10.0.0.6"}, {"address": "10.0.0.6"}]
    with pytest.raises(ClusterError) as raised:
        check_storage_shared("./results", nodes, shared=False)
    assert raised.value.field == "storage_path"
    assert str(raised.value).startswith("storage_path: got './results', a path on this machine, but the cluster spans 2 machines")
    assert "cluster.shared_storage: true" in str(raised.value)
    check_storage_shared("/mnt/nfs/results", nodes, shared=True)
    check_storage_shared("s3://bucket/results", nodes, shared=False)
    check_storage_shared("./results", nodes[:1], shared=False)


def test_auto_without_a_cluster_on_this_machine_is_a_cluster_error(fake_ray):
    fake_ray.no_cluster = True
    with pytest.raises(ClusterError) as raised:
        connect("auto")
    assert str(raised.value).startswith("address: got 'auto', but Ray found no cluster there (Could not find any running")
    assert "`ray start --head`" in str(raised.value) and "drop the address" in str(raised.value)
