"""Per-trial resource requests, checked against the Ray cluster before any trial is launched.

Ray Tune (2.60) keeps a trial that asks for more CPUs or GPUs than the cluster owns PENDING
forever instead of failing; :func:`check_cluster_can_place` turns that silent hang into an
error that names the fix. :func:`max_concurrent_trials` says how many trials can run at once,
which is the natural ``max_concurrent`` for a searcher.

Example:
    >>> request = TrialResources(cpu=1, gpu=0.5)
    >>> max_concurrent_trials(request, {"CPU": 16.0, "GPU": 2.0})
    4
    >>> check_cluster_can_place(request, {"CPU": 2.0})  # doctest: +SKIP
    InsufficientResourcesError: Each trial requests 1 CPU and 0.5 GPU, ...
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Absorbs float error in ratios such as 1.0 / 0.1 = 9.999...
_TOLERANCE = 1e-9


class InsufficientResourcesError(ValueError):
    """The cluster cannot place even one trial with the requested resources."""


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class TrialResources:
    """Resources reserved for each trial: ``cpu`` cores and ``gpu`` devices.

    A fractional ``gpu`` (``0 < gpu < 1``) shares one GPU between ``floor(1 / gpu)`` trials; a
    request of one GPU or more must be a whole number, as Ray cannot split a trial over parts
    of several GPUs.

    Example:
        >>> TrialResources(cpu=2, gpu=1).to_tune()
        {'cpu': 2, 'gpu': 1}
    """

    cpu: float = 1
    gpu: float = 0

    def __post_init__(self) -> None:
        if not _is_number(self.cpu) or self.cpu < 0:
            raise ValueError(f"resources.cpu must be a number >= 0, got {self.cpu!r}.")
        if not _is_number(self.gpu) or self.gpu < 0:
            raise ValueError(f"resources.gpu must be a number >= 0, got {self.gpu!r}.")
        if self.gpu > 1 and not float(self.gpu).is_integer():
            raise ValueError(
                f"resources.gpu must be a fraction below 1 (GPU sharing) or a whole number of "
                f"GPUs, got {self.gpu!r}; use {math.floor(self.gpu)} or {math.ceil(self.gpu)}."
            )

    @classmethod
    def coerce(cls, resources: Any) -> TrialResources:
        """Build from a ``TrialResources``, a mapping with ``cpu``/``gpu`` keys, or any object
        with ``cpu``/``gpu`` attributes (such as the orchestrator's ``Resources``)."""
        if isinstance(resources, cls):
            return resources
        if isinstance(resources, Mapping):
            unknown = set(resources) - {"cpu", "gpu"}
            if unknown:
                raise ValueError(
                    f"resources accepts the keys 'cpu' and 'gpu', got unknown {sorted(unknown)}."
                )
            return cls(**resources)
        if hasattr(resources, "cpu") and hasattr(resources, "gpu"):
            return cls(cpu=resources.cpu, gpu=resources.gpu)
        raise TypeError(
            f"resources must be a TrialResources, a {{'cpu', 'gpu'}} mapping or an object with "
            f"cpu and gpu attributes, got {resources!r}."
        )

    def to_tune(self) -> dict[str, float]:
        """The request as ``tune.with_resources(trainable, resources=...)`` expects it."""
        return {"cpu": self.cpu, "gpu": self.gpu}


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


def _format_request(resources: TrialResources) -> str:
    return f"{resources.cpu:g} CPU and {resources.gpu:g} GPU"


def check_cluster_can_place(
    resources: Any, cluster_resources: Mapping[str, float] | None = None
) -> None:
    """Raise unless the cluster can run at least one trial with ``resources``.

    Compares against the cluster's totals (``ray.cluster_resources()`` when
    ``cluster_resources`` is None, which needs ``ray.init()`` first). That is necessary but
    not sufficient on multi-node clusters, where one node must hold a whole trial.

    Raises:
        InsufficientResourcesError: naming the request, what the cluster has and the fix.

    Example:
        >>> check_cluster_can_place(TrialResources(cpu=1), {"CPU": 2.0})
    """
    request = TrialResources.coerce(resources)
    available = _read_cluster_resources(cluster_resources)
    cpus, gpus = float(available.get("CPU", 0)), float(available.get("GPU", 0))
    has = f"the cluster has {cpus:g} CPU and {gpus:g} GPU"
    if request.gpu > gpus + _TOLERANCE:
        raise InsufficientResourcesError(
            f"Each trial requests {_format_request(request)}, but {has}, so Ray Tune would "
            f"leave every trial PENDING forever. Lower resources.gpu to at most {gpus:g} "
            "(0 trains on CPU) or add GPU nodes to the cluster."
        )
    if request.cpu > cpus + _TOLERANCE:
        raise InsufficientResourcesError(
            f"Each trial requests {_format_request(request)}, but {has}, so Ray Tune would "
            f"leave every trial PENDING forever. Lower resources.cpu to at most {cpus:g} or "
            "add CPU nodes to the cluster."
        )


def max_concurrent_trials(resources: Any, cluster_resources: Mapping[str, float]) -> int:
    """How many trials with ``resources`` fit on the cluster at the same time.

    ``min(floor(CPU / cpu), gpu_slots)`` where ``gpu_slots = floor(GPU / gpu)`` for whole
    GPUs and ``floor(1 / gpu) * floor(GPU)`` for a fractional share, because a share cannot
    straddle two devices. Resources the trial does not request impose no limit.

    Raises:
        ValueError: when the trial requests nothing, so nothing bounds concurrency.

    Example:
        >>> max_concurrent_trials(TrialResources(cpu=1, gpu=0.4), {"CPU": 8, "GPU": 2})
        4
    """
    request = TrialResources.coerce(resources)
    cpus = float(cluster_resources.get("CPU", 0))
    gpus = float(cluster_resources.get("GPU", 0))
    limits = []
    if request.cpu > 0:
        limits.append(math.floor(cpus / request.cpu + _TOLERANCE))
    if 0 < request.gpu < 1:
        limits.append(math.floor(1 / request.gpu + _TOLERANCE) * math.floor(gpus + _TOLERANCE))
    elif request.gpu >= 1:
        limits.append(math.floor(gpus / request.gpu + _TOLERANCE))
    if not limits:
        raise ValueError(
            "resources request 0 CPU and 0 GPU, so nothing bounds how many trials run at once; "
            "request at least resources.cpu > 0."
        )
    return min(limits)
