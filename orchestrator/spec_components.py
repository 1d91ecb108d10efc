"""The parts an :class:`~orchestrator.spec.Experiment` is made of: objectives, budget, resources,
scheduler and outcome constraints. Each validates itself at construction and raises
:class:`SpecError` naming the field relative to itself; the experiment adds the enclosing path.

Example:
    >>> Budget(num_trials=20, max_concurrent=2)
    Budget(num_trials=20, max_concurrent=2, time_budget_s=None, trial_timeout_s=None)
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cluster.resources import ResourcesError, TrialResources
from orchestrator._validation import (
    SpecError,
    check_integer,
    check_keys,
    check_mode,
    check_name,
    check_number,
    check_required,
    suggest,
    within,
)

__all__ = [
    "Budget",
    "ClusterSpec",
    "Constraint",
    "Objective",
    "Resources",
    "SchedulerSpec",
    "coerce_component",
    "required_fields",
]



def coerce_component(cls: type, value: Any, field_name: str) -> Any:
    """Build the dataclass ``cls`` from a mapping (as read from YAML); pass an instance through."""
    if isinstance(value, cls):
        return value
    if not isinstance(value, Mapping):
        keys = ", ".join(_field_names(cls))
        raise SpecError(f"got {value!r}; use a mapping with keys {keys}.", field_name)
    with within(field_name):
        check_keys(value, _field_names(cls))
        check_required(value, required_fields(cls))
        return cls(**value)


def _field_names(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def required_fields(cls: type) -> list[str]:
    """Names of the dataclass fields of ``cls`` that have no default."""
    return [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]


@dataclass(frozen=True)
class Objective:
    """One metric to optimise: ``mode="max"`` prefers larger values, ``"min"`` smaller ones.

    Example:
        >>> Objective("latency_us", "MIN").mode
        'min'
    """

    name: str
    mode: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "name", check_name(self.name, "name"))
        object.__setattr__(self, "mode", check_mode(self.mode, "mode"))


@dataclass(frozen=True)
class Budget:
    """How many trials to run, how many at once, and optional wall-clock limits in seconds.

    ``time_budget_s`` bounds the whole experiment: trials still running when it is reached end
    as ``interrupted``. ``trial_timeout_s`` bounds each trial, from the moment its training
    function starts (again after a resume), whether it reports or hangs: it ends as ``timeout``
    (:func:`orchestrator.trials.with_trial_timeout` enforces it).

    Example:
        >>> Budget(num_trials=20, max_concurrent=2, trial_timeout_s=600).trial_timeout_s
        600
    """

    num_trials: int = 20
    max_concurrent: int = 2
    time_budget_s: float | None = None
    trial_timeout_s: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "num_trials", check_integer(self.num_trials, "num_trials", 1))
        concurrent = check_integer(self.max_concurrent, "max_concurrent", 1)
        object.__setattr__(self, "max_concurrent", concurrent)
        for name in ("time_budget_s", "trial_timeout_s"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_number(getattr(self, name), name, above=0))


@dataclass(frozen=True)
class Resources:
    """Resources one trial reserves; Ray runs ``cluster / per-trial`` trials at once at most.

    The request follows :class:`cluster.resources.TrialResources`: numbers >= 0, not both 0,
    and a ``gpu`` above 1 whole; ``gpu: 0.25`` packs four trials on each GPU. ``bundles``
    (optional) reserves more for the Ray tasks or actors a trial starts itself, one
    ``{cpu, gpu}`` mapping each, placed with the trial's own ``cpu``/``gpu`` as one placement
    group.

    Example:
        >>> Resources(cpu=1, gpu=0.5).gpu
        0.5
        >>> Resources(cpu=1, bundles=[{"gpu": 1}, {"gpu": 1}]).bundles
        [{'cpu': 1, 'gpu': 1}, {'cpu': 1, 'gpu': 1}]
    """

    cpu: float = 1
    gpu: float = 0
    bundles: list[dict[str, float]] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "cpu", check_number(self.cpu, "cpu"))
        object.__setattr__(self, "gpu", check_number(self.gpu, "gpu"))
        try:
            request = self.trial_resources()
        except ResourcesError as error:
            raise SpecError(error.message, error.field) from None
        if self.bundles is not None:  # kept as plain data, so the spec saves as YAML
            bundles = [{"cpu": part.cpu, "gpu": part.gpu} for part in request.bundles]
            object.__setattr__(self, "bundles", bundles or None)

    def trial_resources(self) -> TrialResources:
        """The request as :mod:`cluster.resources` checks it and Tune takes it (``to_tune()``)."""
        return TrialResources(cpu=self.cpu, gpu=self.gpu, bundles=self.bundles)


@dataclass(frozen=True)
class ClusterSpec:
    """Where trials run and how a lost node is survived.

    ``address`` names the Ray cluster (``host:6379``, ``ray://host:10001``, ``auto``); left
    out, ``RAY_ADDRESS`` decides (``ray submit`` and KubeRay set it), else Ray starts on this
    machine. ``autoscaling: true`` says an autoscaler adds nodes on demand, so a trial larger
    than today's nodes is not an error. ``shared_storage: true`` declares ``storage_path`` a
    mount every node has (NFS, s3fs, gcsfuse); without it a local path on a cluster of several
    machines is refused. A trial whose node or worker dies restarts from its last checkpoint up
    to ``max_failures`` times (a trial whose own code raises is not retried).

    Example:
        >>> ClusterSpec(address="10.0.0.5:6379").max_failures
        3
    """

    address: str | None = None
    autoscaling: bool = False
    shared_storage: bool = False
    max_failures: int = 3

    def __post_init__(self) -> None:
        if self.address is not None:
            object.__setattr__(self, "address", check_name(self.address, "address"))
        for name in ("autoscaling", "shared_storage"):
            if not isinstance(getattr(self, name), bool):
                raise SpecError(f"got {getattr(self, name)!r}; use true or false.", name)
        if isinstance(self.max_failures, bool) or not isinstance(self.max_failures, int) or self.max_failures < -1:
            raise SpecError(
                f"got {self.max_failures!r}; use an integer >= 0 (retries of a trial whose node died), "
                "or -1 to retry without limit.",
                "max_failures",
            )


@dataclass(frozen=True)
class SchedulerSpec:
    """An early-stopping scheduler; ``metric``/``mode`` default to the experiment's first objective.

    ``type`` names a scheduler of :mod:`schedulers.catalogue` (``mo-asha``, ``mo-asha-promotion``,
    ``mo-hyperband``, ``asha``, ``hyperband``, ``median``, ``fifo``, ``none``); left out, it is the
    method's own scheduler, else ``mo-asha``. The ``mo-`` schedulers rank trials on every
    objective (``metric`` does not apply to them); ``objective_thresholds`` (``mo-`` only) stop a
    trial as soon as it reports a value past the bound: give bounds training cannot recover
    from, such as latency or size. Options left out
    (``None``) take the catalogue's defaults (``orchestrator methods`` lists them); options
    given override them, and one the scheduler does not take is an error. ASHA stops a trial at
    rung ``grace_period * reduction_factor**k`` (in ``time_attr`` units) when it is outside the
    top ``1 / reduction_factor`` of trials at that rung, up to ``max_t``; ``type="none"`` runs
    every trial to the end.

    Example:
        >>> SchedulerSpec("asha", max_t=8, grace_period=2).reduction_factor is None
        True
    """

    type: str | None = None
    metric: str | None = None
    mode: str | None = None
    max_t: int = 100
    grace_period: int | None = None
    reduction_factor: float | None = None
    time_attr: str = "training_iteration"
    objective_thresholds: Mapping[str, float] | None = None

    def __post_init__(self) -> None:
        from schedulers.catalogue import scheduler_names

        if self.type is not None:
            kind = self.type.strip().lower() if isinstance(self.type, str) else self.type
            names = scheduler_names()
            if kind not in names:
                raise SpecError(
                    f"unknown scheduler {self.type!r}{suggest(self.type, names)}; "
                    f"use one of {', '.join(names)}.",
                    "type",
                )
            object.__setattr__(self, "type", kind)
        if self.metric is not None:
            object.__setattr__(self, "metric", check_name(self.metric, "metric"))
        if self.mode is not None:
            object.__setattr__(self, "mode", check_mode(self.mode, "mode"))
        object.__setattr__(self, "max_t", check_integer(self.max_t, "max_t", 1))
        if self.grace_period is not None:
            grace_period = check_integer(self.grace_period, "grace_period", 1)
            object.__setattr__(self, "grace_period", grace_period)
            if grace_period > self.max_t:
                raise SpecError(
                    f"got {grace_period}, more than max_t={self.max_t}; use grace_period <= max_t.",
                    "grace_period",
                )
        if self.reduction_factor is not None:
            factor = check_number(self.reduction_factor, "reduction_factor", above=1)
            object.__setattr__(self, "reduction_factor", factor)
        object.__setattr__(self, "time_attr", check_name(self.time_attr, "time_attr"))
        if self.objective_thresholds is not None:
            if not isinstance(self.objective_thresholds, Mapping):
                raise SpecError(
                    f"got {self.objective_thresholds!r}; use a mapping such as {{latency_ms: 5.0}}.",
                    "objective_thresholds",
                )
            object.__setattr__(self, "objective_thresholds", {
                check_name(name, "objective_thresholds"): check_number(bound, f"objective_thresholds.{name}")
                for name, bound in self.objective_thresholds.items()
            })

    @property
    def options(self) -> dict[str, Any]:
        """The scheduler options set in the spec (the others take the catalogue's defaults)."""
        given = {"grace_period": self.grace_period, "reduction_factor": self.reduction_factor,
                 "objective_thresholds": self.objective_thresholds}
        return {key: value for key, value in given.items() if value is not None}


_CONSTRAINT_PATTERN = re.compile(
    r"^\s*(?P<metric>[^\s<>=!]+)\s*(?P<operator><=|>=)\s*(?P<bound>\S+)\s*$"
)


@dataclass(frozen=True)
class Constraint:
    """An outcome constraint on a metric that is not an objective: ``metric <= bound`` or ``>=``.

    Example:
        >>> Constraint.parse("num_params <= 1e5").is_satisfied(4096)
        True
    """

    metric: str
    operator: str
    bound: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "metric", check_name(self.metric, "metric"))
        if self.operator not in ("<=", ">="):
            raise SpecError(f"got {self.operator!r}; use '<=' or '>='.", "operator")
        object.__setattr__(self, "bound", float(check_number(self.bound, "bound")))

    @classmethod
    def parse(cls, text: Any) -> Constraint:
        """Parse ``"metric <= number"`` or ``"metric >= number"``."""
        fix = "write 'metric <= number' or 'metric >= number', e.g. 'num_params <= 100000'."
        if not isinstance(text, str):
            raise SpecError(f"got {text!r}; {fix}")
        match = _CONSTRAINT_PATTERN.match(text)
        try:
            bound = float(match["bound"]) if match else float("nan")
        except ValueError:
            bound = float("nan")
        if not match or bound != bound:
            raise SpecError(f"cannot parse {text!r}; {fix} Only <= and >= are supported.")
        return cls(match["metric"], match["operator"], bound)

    def is_satisfied(self, value: float) -> bool:
        return value <= self.bound if self.operator == "<=" else value >= self.bound

    def __str__(self) -> str:
        return f"{self.metric} {self.operator} {self.bound!r}"
