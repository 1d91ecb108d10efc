"""Connecting to a Ray cluster, and storage that every node of it can reach.

A run goes to the cluster named by an explicit address (``auto``: the cluster ``ray start``
started on this machine, as on the head node of a ``ray up`` cluster), else by ``RAY_ADDRESS``
(which KubeRay's ``RayJob`` sets for its entrypoint), else to a new Ray instance on this
machine: :func:`cluster_address` decides, :func:`connect` connects, and
fails in seconds with :class:`ClusterError` when nothing answers at the address instead of
letting ``ray.init`` retry for a minute.

Tune writes checkpoints and the experiment state to ``storage_path`` from every node; a trial
restarted on another node reads its checkpoint from there. :func:`check_storage_shared` refuses a
local path when the cluster spans several machines, unless the caller declares the path shared
(NFS, a mounted bucket), since the checkpoints of a lost node would otherwise be lost with it.

Example:
    >>> cluster_address(None, environ={})  # no address anywhere: a local ray.init()
    >>> cluster_address(None, environ={"RAY_ADDRESS": "10.0.0.5:6379"})
    '10.0.0.5:6379'
    >>> check_storage_shared("/tmp/runs", [{"address": "10.0.0.5"}, {"address": "10.0.0.6"}], shared=False)
    Traceback (most recent call last):
    ...
    cluster.connect.ClusterError: storage_path: got '/tmp/runs', a path on this machine, but the cluster spans 2 machines, ...
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping, Sequence
from typing import Any

from cluster.resources import FieldError

__all__ = [
    "ClusterError",
    "check_address_answers",
    "check_storage_shared",
    "cluster_address",
    "connect",
    "is_remote_uri",
    "machine_count",
]

# Addresses ray.init resolves itself: the cluster started on this machine by `ray start`, or a
# fresh local one. Nothing to probe for them.
_SELF_RESOLVED = ("auto", "local")
# Seconds to wait for a TCP answer before calling an address unreachable.
_PROBE_TIMEOUT_S = 5.0


class ClusterError(FieldError):
    """The cluster cannot be reached, or cannot run the experiment as asked; ``field`` names the
    setting at fault (``"address"``, ``"storage_path"``).

    Example:
        >>> str(ClusterError("got 'x:1'; nothing answers there.", "address"))
        "address: got 'x:1'; nothing answers there."
    """


def cluster_address(address: str | None, environ: Mapping[str, str] | None = None) -> str | None:
    """The address to connect to: ``address`` if given, else ``RAY_ADDRESS``, else ``None`` (local).

    Example:
        >>> cluster_address("ray://head:10001", environ={"RAY_ADDRESS": "auto"})
        'ray://head:10001'
    """
    environ = os.environ if environ is None else environ
    chosen = address if address else environ.get("RAY_ADDRESS", "").strip()
    return chosen or None


def _host_and_port(address: str) -> tuple[str, int] | None:
    """``("head", 6379)`` for ``head:6379``, ``ray://head:10001`` or ``http://head:8265``."""
    rest = address.split("://", 1)[-1].rstrip("/")
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def check_address_answers(address: str, timeout_s: float = _PROBE_TIMEOUT_S) -> None:
    """Raise :class:`ClusterError` unless something accepts a TCP connection at ``address``.

    ``auto`` and ``local`` are left to ``ray.init``; an address without ``host:port`` is refused.

    Example:
        >>> check_address_answers("auto")
        >>> check_address_answers("127.0.0.1:1", timeout_s=1)
        Traceback (most recent call last):
        ...
        cluster.connect.ClusterError: address: got '127.0.0.1:1', but nothing answers at 127.0.0.1 port 1 ...
    """
    if address in _SELF_RESOLVED:
        return
    parsed = _host_and_port(address)
    if parsed is None:
        raise ClusterError(
            f"got {address!r}; use host:port of the head node (e.g. 10.0.0.5:6379), "
            "ray://host:10001 for Ray Client, or 'auto' for the cluster started on this machine.",
            "address",
        )
    host, port = parsed
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as error:
        raise ClusterError(
            f"got {address!r}, but nothing answers at {host} port {port} ({error.strerror or error}); "
            "start the cluster (`ray up cluster/configs/aws-gpu.yaml` or `ray start --head`), fix the address, "
            "or unset it (and RAY_ADDRESS) to run on this machine.",
            "address",
        ) from None


def connect(address: str | None = None, **init_options: Any) -> str | None:
    """Connect to the cluster :func:`cluster_address` names, or start Ray on this machine.

    Does nothing when Ray is already initialised (a test's cluster, a notebook's session).
    ``init_options`` go to ``ray.init`` (``runtime_env``, ``log_to_driver``, ...).

    Returns:
        The address connected to, ``None`` for a local Ray.

    Raises:
        ClusterError: when nothing answers at the address (within seconds), or ``auto`` finds
            no cluster on this machine.

    Example:
        >>> connect(include_dashboard=False)  # doctest: +SKIP
    """
    import ray

    if ray.is_initialized():
        return None
    resolved = cluster_address(address)
    if resolved is None:
        # A new local instance: a bare ray.init() would join any cluster `ray start` (or a test's
        # ray.cluster_utils.Cluster) left on this machine; address "auto" asks for that.
        ray.init(address="local", **init_options)
        return None
    check_address_answers(resolved)
    options = {key: value for key, value in init_options.items() if key != "include_dashboard"}
    try:
        ray.init(address=resolved, **options)
    except ConnectionError as error:  # "auto" and no cluster on this machine, or one that went away
        raise ClusterError(
            f"got {resolved!r}, but Ray found no cluster there ({error}); start one (`ray start --head`, "
            "or run on the head node of a `ray up` cluster), give host:port of the head node, or drop "
            "the address to start Ray on this machine.",
            "address",
        ) from None
    return resolved


def is_remote_uri(path: str) -> bool:
    """Whether ``path`` is a URI such as ``s3://bucket/runs`` rather than a file-system path.

    Example:
        >>> is_remote_uri("s3://bucket/runs"), is_remote_uri("/mnt/nfs/runs")
        (True, False)
    """
    return "://" in str(path) and not str(path).startswith("file://")


def machine_count(nodes: Sequence[Mapping[str, Any]]) -> int:
    """How many machines the nodes run on: distinct node addresses (``ray.cluster_utils.Cluster``
    starts several nodes on one machine, all at the same address).

    Example:
        >>> machine_count([{"address": "10.0.0.5"}, {"address": "10.0.0.5"}, {"address": "10.0.0.6"}])
        2
    """
    return len({node.get("address") for node in nodes})


def check_storage_shared(storage_path: str, nodes: Sequence[Mapping[str, Any]], *, shared: bool) -> None:
    """Raise unless every node can reach ``storage_path``.

    A local path is fine on one machine, or when ``shared`` declares it a mount every node has
    (NFS, a bucket mounted with s3fs or gcsfuse). On several machines, a local path would keep
    each node's checkpoints on that node, and a trial restarted elsewhere after its node died
    would find none.

    Raises:
        ClusterError: for ``storage_path``, naming the machines and the fixes.

    Example:
        >>> check_storage_shared("/mnt/nfs/runs", [{"address": "a"}, {"address": "b"}], shared=True)
    """
    machines = machine_count(nodes)
    if shared or machines <= 1 or is_remote_uri(storage_path):
        return
    raise ClusterError(
        f"got {storage_path!r}, a path on this machine, but the cluster spans {machines} machines, and "
        "a trial restarted on another node after its node died would not find its checkpoints; use a "
        "path every node mounts (NFS, a bucket mounted with s3fs/gcsfuse) and declare it with "
        "cluster.shared_storage: true.",
        "storage_path",
    )
