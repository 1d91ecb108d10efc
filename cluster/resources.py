"""Per-trial resource requests, checked against the Ray cluster or this machine before any trial starts.

Ray Tune (2.60) keeps a trial that asks for more CPUs or GPUs than the cluster owns PENDING
forever instead of failing, and refuses a trial that asks for nothing only once the experiment
runs. :class:`TrialResources` rejects the empty request at construction;
:func:`check_cluster_can_place` (a running Ray cluster) and :func:`check_machine_can_place`
(this machine, for a local ``ray.init()`` that has not started yet) turn the silent hang into an
error that names the fix. On a multi-node cluster the totals are not enough: Ray places each
bundle of a trial (its own ``cpu``/``gpu``, and any extra ``bundles``) on one node, so
:func:`check_nodes_can_place` compares every bundle with the largest node (``ray.nodes()``).
:func:`max_concurrent_trials` says how many trials can run at once, which is the natural
``max_concurrent`` for a searcher.

Example:
    >>> request = TrialResources(cpu=1, gpu=0.5)
    >>> max_concurrent_trials(request, {"CPU": 16.0, "GPU": 2.0})
    4
    >>> check_cluster_can_place(request, {"CPU": 2.0})
    Traceback (most recent call last):
    ...
    cluster.resources.InsufficientResourcesError: gpu: got 0.5 per trial, but the cluster has 2 CPU and 0 GPU, ...
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FieldError",
    "InsufficientResourcesError",
    "ResourcesError",
    "TrialResources",
    "check_cluster_can_place",
    "check_machine_can_place",
    "check_nodes_can_place",
    "local_machine_resources",
    "node_resources",
    "max_concurrent_trials",
]

# Absorbs float error in ratios such as 1.0 / 0.1 = 9.999...
_TOLERANCE = 1e-9


class FieldError(ValueError):
    """A setting at fault: ``str(error)`` reads ``field: message`` (just ``message`` without a field)."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class ResourcesError(FieldError):
    """An invalid per-trial request; ``field`` names the request key at fault (``"cpu"``, ``"gpu"``).

    ``str(error)`` reads ``field: message``; a caller that knows where the request came from
    puts its own path in front of ``field`` (the orchestrator: ``resources.gpu``).

    Example:
        >>> str(ResourcesError("got -1; use a number >= 0.", "cpu"))
        'cpu: got -1; use a number >= 0.'
    """


class InsufficientResourcesError(ResourcesError):
    """The cluster (or this machine) cannot place even one trial with the requested resources."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class TrialResources:
    """Resources reserved for each trial: ``cpu`` cores and ``gpu`` devices, not both 0.

    A fractional ``gpu`` (``0 < gpu < 1``) shares one GPU between ``floor(1 / gpu)`` trials; a
    request of one GPU or more must be a whole number, as Ray cannot split a trial over parts
    of several GPUs. Ray refuses a trial that reserves nothing (``cpu=0, gpu=0``).

    ``bundles`` reserves more, for the Ray tasks or actors a trial starts itself (say, one per
    data-parallel worker): Tune then reserves one placement group per trial, the trial's own
    ``{cpu, gpu}`` first, then each bundle; Ray puts every bundle on one node, and packs them on
    as few nodes as it can (``PACK``).

    Example:
        >>> TrialResources(cpu=2, gpu=1).to_tune()
        {'cpu': 2, 'gpu': 1}
        >>> TrialResources(cpu=1, bundles=({"gpu": 1}, {"gpu": 1})).bundle_list()
        [{'CPU': 1}, {'CPU': 1, 'GPU': 1}, {'CPU': 1, 'GPU': 1}]
        >>> TrialResources(cpu=0, gpu=0)
        Traceback (most recent call last):
        ...
        cluster.resources.ResourcesError: cpu: got 0 with gpu 0; a trial must reserve something: ...
    """

    cpu: float = 1
    gpu: float = 0
    bundles: tuple[TrialResources, ...] = ()

    def __post_init__(self) -> None:
        for field in ("cpu", "gpu"):
            value = getattr(self, field)
            if not _is_number(value) or value < 0:
                raise ResourcesError(f"got {value!r}; use a number >= 0.", field)
        if self.gpu > 1 and not float(self.gpu).is_integer():
            raise ResourcesError(
                f"got {self.gpu!r}; use a fraction below 1 (GPU sharing) or a whole number of "
                f"GPUs, e.g. {math.floor(self.gpu)} or {math.ceil(self.gpu)}.",
                "gpu",
            )
        if self.cpu == 0 and self.gpu == 0:
            # Ray: "Cannot initialize a ResourceRequest with an empty head and zero worker bundles".
            raise ResourcesError(
                "got 0 with gpu 0; a trial must reserve something: use cpu > 0 (e.g. 1) or a gpu.",
                "cpu",
            )
        object.__setattr__(self, "bundles", self._checked_bundles(self.bundles))

    @classmethod
    def _checked_bundles(cls, bundles: Any) -> tuple[TrialResources, ...]:
        if bundles is None:
            return ()
        if isinstance(bundles, (str, Mapping)) or not isinstance(bundles, Sequence):
            raise ResourcesError(
                f"got {bundles!r}; use a list of {{cpu, gpu}} mappings, e.g. [{{cpu: 1, gpu: 1}}].",
                "bundles",
            )
        checked = []
        for index, bundle in enumerate(bundles):
            try:
                if not isinstance(bundle, (cls, Mapping)):
                    raise ResourcesError(f"got {bundle!r}; use a mapping such as {{cpu: 1, gpu: 1}}.")
                part = cls.coerce(bundle)
                if part.bundles:
                    raise ResourcesError("got bundles inside a bundle; give one flat list of {cpu, gpu}.")
            except ResourcesError as error:
                where = f"bundles[{index}]" + (f".{error.field}" if error.field else "")
                raise ResourcesError(error.message, where) from None
            checked.append(part)
        return tuple(checked)

    @classmethod
    def coerce(cls, resources: Any) -> TrialResources:
        """Build from a ``TrialResources``, a mapping with ``cpu``/``gpu`` (and ``bundles``) keys,
        or any object with ``cpu``/``gpu`` (and ``bundles``) attributes (such as the
        orchestrator's ``Resources``)."""
        if isinstance(resources, cls):
            return resources
        if isinstance(resources, Mapping):
            unknown = set(resources) - {"cpu", "gpu", "bundles"}
            if unknown:
                raise ResourcesError(
                    f"got unknown {sorted(unknown)}; a request takes the keys 'cpu', 'gpu' and 'bundles'."
                )
            return cls(**resources)
        if hasattr(resources, "cpu") and hasattr(resources, "gpu"):
            return cls(cpu=resources.cpu, gpu=resources.gpu, bundles=getattr(resources, "bundles", None) or ())
        raise TypeError(
            f"resources must be a TrialResources, a {{'cpu', 'gpu'}} mapping or an object with "
            f"cpu and gpu attributes, got {resources!r}."
        )

    def bundle_list(self) -> list[dict[str, float]]:
        """Every bundle in Ray's spelling (``CPU``/``GPU``, zeros left out), the trial's own first."""
        return [
            {key: value for key, value in (("CPU", part.cpu), ("GPU", part.gpu)) if value}
            for part in (self, *self.bundles)
        ]

    @property
    def total(self) -> dict[str, float]:
        """What one trial reserves across all its bundles, in Ray's spelling."""
        return {
            "CPU": self.cpu + sum(bundle.cpu for bundle in self.bundles),
            "GPU": self.gpu + sum(bundle.gpu for bundle in self.bundles),
        }

    def to_tune(self) -> Any:
        """The request as ``tune.with_resources(trainable, resources=...)`` expects it.

        ``{"cpu", "gpu"}`` without ``bundles``, else a ``tune.PlacementGroupFactory`` of
        :meth:`bundle_list` with the ``PACK`` strategy.
        """
        if not self.bundles:
            return {"cpu": self.cpu, "gpu": self.gpu}
        from ray import tune

        return tune.PlacementGroupFactory(self.bundle_list(), strategy="PACK")


def _read_cluster_resources(cluster_resources: Mapping[str, float] | None) -> Mapping[str, float]:
    if cluster_resources is not None:
        return cluster_resources
    import ray

    if not ray.is_initialized():
        raise RuntimeError(
            "Reading the cluster's resources needs a Ray session: call ray.init() first, or "
            "pass cluster_resources={'CPU': ..., 'GPU': ...}."
        )
    return ray.cluster_resources()


def _check_can_place(
    request: TrialResources, available: Mapping[str, float], where: str, more: str
) -> None:
    cpus, gpus = float(available.get("CPU", 0)), float(available.get("GPU", 0))
    has = f"{where} has {cpus:g} CPU and {gpus:g} GPU, so Ray Tune would leave every trial PENDING forever"
    total = request.total
    # With bundles the fix is the bundles' sum, which the user may cut anywhere.
    field, at_most = ("bundles", "lower the sum") if request.bundles else (None, "lower it")
    if total["GPU"] > gpus + _TOLERANCE:
        raise InsufficientResourcesError(
            f"got {total['GPU']:g} per trial, but {has}; {at_most} to at most {gpus:g} "
            f"(0 trains on CPU) or {more.format(kind='GPU')}.",
            field or "gpu",
        )
    if total["CPU"] > cpus + _TOLERANCE:
        raise InsufficientResourcesError(
            f"got {total['CPU']:g} per trial, but {has}; {at_most} to at most {cpus:g} "
            f"or {more.format(kind='CPU')}.",
            field or "cpu",
        )


def check_cluster_can_place(
    resources: Any, cluster_resources: Mapping[str, float] | None = None
) -> None:
    """Raise unless the cluster can run at least one trial with ``resources``.

    Compares against the cluster's totals (``ray.cluster_resources()`` when
    ``cluster_resources`` is None, which needs ``ray.init()`` first). That is necessary but
    not sufficient on multi-node clusters, where one node must hold a whole trial.

    Raises:
        InsufficientResourcesError: naming the request key, what the cluster has and the fix.

    Example:
        >>> check_cluster_can_place(TrialResources(cpu=1), {"CPU": 2.0})
    """
    request = TrialResources.coerce(resources)
    available = _read_cluster_resources(cluster_resources)
    _check_can_place(request, available, "the cluster", "add {kind} nodes to the cluster")


def node_resources() -> list[dict[str, Any]]:
    """The alive nodes of the connected Ray cluster: ``{"node_id", "address", "CPU", "GPU"}`` each.

    Read from ``ray.nodes()`` (needs ``ray.init()`` first); a node without GPUs has ``GPU`` 0.

    Example:
        >>> node_resources()  # doctest: +SKIP
        [{'node_id': '4f1c...', 'address': '10.0.0.5', 'CPU': 8.0, 'GPU': 2.0}]
    """
    import ray

    if not ray.is_initialized():
        raise RuntimeError("Reading the cluster's nodes needs a Ray session: call ray.init() first.")
    return [
        {
            "node_id": node["NodeID"],
            "address": node.get("NodeManagerAddress", ""),
            "CPU": float(node.get("Resources", {}).get("CPU", 0)),
            "GPU": float(node.get("Resources", {}).get("GPU", 0)),
        }
        for node in ray.nodes()
        if node.get("Alive")
    ]


def check_nodes_can_place(resources: Any, nodes: Sequence[Mapping[str, float]] | None = None) -> None:
    """Raise unless every bundle of one trial fits on some node, and the whole trial on the cluster.

    Ray places a trial's ``cpu``/``gpu`` (and each of its ``bundles``) on a single node, so on
    two nodes of 2 GPUs a trial of 3 GPUs waits forever although the cluster has 4. ``nodes``
    are mappings with ``CPU``/``GPU`` counts, :func:`node_resources` (the connected cluster)
    when None. Bundles are checked one by one, so a request whose bundles each fit but cannot be
    packed together still passes; Ray then spreads them over nodes (``PACK``).

    Raises:
        InsufficientResourcesError: naming the request key, the largest node, the cluster's
            totals and the fix.

    Example:
        >>> two_nodes = [{"CPU": 8, "GPU": 2}, {"CPU": 8, "GPU": 2}]
        >>> check_nodes_can_place(TrialResources(gpu=2), two_nodes)
        >>> check_nodes_can_place(TrialResources(gpu=3), two_nodes)
        Traceback (most recent call last):
        ...
        cluster.resources.InsufficientResourcesError: gpu: got 3 per trial, but no node has that many: ...
    """
    request = TrialResources.coerce(resources)
    nodes = node_resources() if nodes is None else nodes
    totals = {kind: sum(float(node.get(kind, 0)) for node in nodes) for kind in ("CPU", "GPU")}
    _check_can_place(request, totals, "the cluster", "add {kind} nodes to the cluster")
    largest = {kind: max((float(node.get(kind, 0)) for node in nodes), default=0.0) for kind in ("CPU", "GPU")}
    has = (
        f"the largest has {largest['CPU']:g} CPU and {largest['GPU']:g} GPU ({len(nodes)} nodes, "
        f"{totals['CPU']:g} CPU and {totals['GPU']:g} GPU in all), and Ray places"
    )
    for index, part in enumerate((request, *request.bundles)):
        if any(_fits(part, node) for node in nodes):
            continue
        prefix = "" if index == 0 else f"bundles[{index - 1}]."
        missing = [kind for kind in ("GPU", "CPU") if getattr(part, kind.lower()) > largest[kind] + _TOLERANCE]
        if missing:
            kind = missing[0]
            wanted = getattr(part, kind.lower())
            raise InsufficientResourcesError(
                f"got {wanted:g} per trial, but no node has that many: {has} one trial's {kind}s on "
                f"one node, so Ray Tune would leave every trial PENDING forever; lower it to at most "
                f"{largest[kind]:g}, or add nodes with at least {wanted:g} {kind}.",
                prefix + kind.lower(),
            )
        kind = "GPU" if part.gpu else "CPU"
        raise InsufficientResourcesError(
            f"got {part.cpu:g} CPU with {part.gpu:g} GPU per trial, but no node has both: {has} them "
            "together on one node, so Ray Tune would leave every trial PENDING forever; lower one "
            f"of them, or add nodes with at least {part.cpu:g} CPU and {part.gpu:g} GPU.",
            prefix + kind.lower(),
        )


def _fits(part: TrialResources, node: Mapping[str, float]) -> bool:
    return part.cpu <= float(node.get("CPU", 0)) + _TOLERANCE and part.gpu <= float(node.get("GPU", 0)) + _TOLERANCE


def local_machine_resources(*, count_gpus: bool = True) -> dict[str, float]:
    """What a local ``ray.init()`` would find on this machine, without starting Ray.

    CPUs are ``os.cpu_count()``: Ray counts that many, or fewer under a container's CPU quota,
    so a request refused here would be refused by Ray too. GPUs are counted as PyTorch sees them
    (``torch.cuda.device_count()``, which honours ``CUDA_VISIBLE_DEVICES``); ``count_gpus=False``
    reports 0 without importing PyTorch.

    Example:
        >>> local_machine_resources(count_gpus=False)["CPU"] >= 1
        True
    """
    gpus = 0
    if count_gpus:
        import torch

        gpus = torch.cuda.device_count()
    return {"CPU": float(os.cpu_count() or 1), "GPU": float(gpus)}


def check_machine_can_place(resources: Any) -> None:
    """Raise unless a local ``ray.init()`` on this machine could run one trial with ``resources``.

    For a cluster reached through ``RAY_ADDRESS`` the resources are known only once connected:
    use :func:`check_cluster_can_place` then.

    Raises:
        InsufficientResourcesError: naming the request key, what this machine has and the fix.

    Example:
        >>> check_machine_can_place(TrialResources(cpu=1))
    """
    request = TrialResources.coerce(resources)
    available = local_machine_resources(count_gpus=request.gpu > 0)
    _check_can_place(
        request,
        available,
        "this machine (as a local ray.init() sees it)",
        "run on a Ray cluster with more {kind}s (start it, then set RAY_ADDRESS)",
    )


def max_concurrent_trials(resources: Any, cluster_resources: Mapping[str, float]) -> int:
    """How many trials with ``resources`` fit on the cluster at the same time.

    ``min(floor(CPU / cpu), gpu_slots)`` where ``gpu_slots = floor(GPU / gpu)`` for whole
    GPUs and ``floor(1 / gpu) * floor(GPU)`` for a fractional share, because a share cannot
    straddle two devices. Resources the trial does not request impose no limit.

    Example:
        >>> max_concurrent_trials(TrialResources(cpu=1, gpu=0.4), {"CPU": 8, "GPU": 2})
        4
    """
    request = TrialResources.coerce(resources)
    if request.bundles:
        raise ResourcesError(
            "got a request with bundles, which Ray may spread over nodes, so the cluster's totals do "
            "not tell how many fit; count them on the cluster's nodes instead.",
            "bundles",
        )
    cpus = float(cluster_resources.get("CPU", 0))
    gpus = float(cluster_resources.get("GPU", 0))
    limits = []
    if request.cpu > 0:
        limits.append(math.floor(cpus / request.cpu + _TOLERANCE))
    if 0 < request.gpu < 1:
        limits.append(math.floor(1 / request.gpu + _TOLERANCE) * math.floor(gpus + _TOLERANCE))
    elif request.gpu >= 1:
        limits.append(math.floor(gpus / request.gpu + _TOLERANCE))
    return min(limits)  # TrialResources requests at least one of the two
