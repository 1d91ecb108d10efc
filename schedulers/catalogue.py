"""The catalogue of early-stopping schedulers by name, each with its defaults, written once.

A scheduler is named (``"mo-asha"``, ``"asha"``, ``"hyperband"``, ``"none"``, ...) in the experiment spec, by a
search method that comes with one (the ``asha`` method is random search plus the ``asha``
scheduler) and by the benchmarks; all three build it here, through :func:`scheduler_config`, so a
name means one configuration everywhere. The rule for options is the same for every caller: the
scheduler's defaults below, overridden by each option the caller sets (``None`` means "not set").
Multi-objective schedulers (``multi_objective=True``) rank on every objective of the
``objectives`` they are given; the others promote on one ``metric``.

Example:
    >>> config = scheduler_config("asha", metric="acc", mode="max", max_t=27)
    >>> dict(config.options)
    {'grace_period': 1, 'reduction_factor': 3}
    >>> type(config.build()).__name__
    'AsyncHyperBandScheduler'
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "DEFAULT_SCHEDULER",
    "SchedulerConfig",
    "SchedulerType",
    "describe_schedulers",
    "get_scheduler_type",
    "scheduler_config",
    "scheduler_names",
]

DEFAULT_SCHEDULER = "mo-asha"
"""The scheduler of a spec whose ``scheduler`` section names no ``type`` (and whose method has none)."""


@dataclass(frozen=True)
class SchedulerType:
    """A named scheduler: how to build it and the default of each option it takes.

    ``build(metric, mode, max_t, time_attr, **options)`` returns a fresh Ray Tune
    ``TrialScheduler``, or ``None`` for "run every trial to the end". A ``multi_objective``
    scheduler gets tuples of metrics and modes; ``pauses_trials`` ones pause trials and resume
    them from their checkpoints.
    """

    name: str
    description: str
    build: Callable[..., Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    multi_objective: bool = False
    pauses_trials: bool = False


@dataclass(frozen=True)
class SchedulerConfig:
    """A fully resolved scheduler: its type, the metric it promotes on, its horizon and options.

    Two configs that compare equal build schedulers that take the same decisions.
    """

    type: str
    metric: str | tuple[str, ...]
    mode: str | tuple[str, ...]
    max_t: int
    time_attr: str = "training_iteration"
    options: Mapping[str, Any] = field(default_factory=dict)

    def build(self) -> Any:
        """A fresh ``TrialScheduler`` (``None`` for ``"none"``)."""
        return get_scheduler_type(self.type).build(
            metric=self.metric, mode=self.mode, max_t=self.max_t, time_attr=self.time_attr, **self.options
        )


def _asha(*, metric: str, mode: str, max_t: int, time_attr: str, grace_period: int, reduction_factor: float) -> Any:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr=time_attr, metric=metric, mode=mode, max_t=max_t,
        grace_period=grace_period, reduction_factor=reduction_factor,
    )


def _hyperband(*, metric: str, mode: str, max_t: int, time_attr: str, reduction_factor: float) -> Any:
    from schedulers.hyperband import SynchronousHyperBand

    return SynchronousHyperBand(
        time_attr=time_attr, metric=metric, mode=mode, max_t=max_t, reduction_factor=reduction_factor
    )


def _none(*, metric: str, mode: str, max_t: int, time_attr: str) -> None:
    return None


def _fifo(*, metric: str, mode: str, max_t: int, time_attr: str) -> Any:
    from ray.tune.schedulers import FIFOScheduler

    return FIFOScheduler()


def _median(*, metric: str, mode: str, max_t: int, time_attr: str, grace_period: int, min_samples_required: int) -> Any:
    from ray.tune.schedulers import MedianStoppingRule

    return MedianStoppingRule(
        time_attr=time_attr, metric=metric, mode=mode, grace_period=grace_period,
        min_samples_required=min_samples_required,
    )


def _mo_asha(*, promotion: bool = False, **options: Any) -> Any:
    from schedulers.mo_asha import MultiObjectiveASHA, MultiObjectivePromotionASHA

    metric, mode = list(options.pop("metric")), list(options.pop("mode"))
    return (MultiObjectivePromotionASHA if promotion else MultiObjectiveASHA)(metric=metric, mode=mode, **options)


def _mo_hyperband(*, metric: tuple[str, ...], mode: tuple[str, ...], max_t: int, time_attr: str, reduction_factor: float) -> Any:
    from schedulers.hyperband import MultiObjectiveHyperBand

    return MultiObjectiveHyperBand(
        time_attr=time_attr, metric=list(metric), mode=list(mode), max_t=max_t, reduction_factor=reduction_factor
    )


_TYPES: dict[str, SchedulerType] = {}


def _register(scheduler_type: SchedulerType) -> None:
    _TYPES[scheduler_type.name] = scheduler_type


_register(SchedulerType(
    "asha",
    "Ray's asynchronous successive halving: stops a trial at rung grace_period * reduction_factor**k "
    "unless it is in the top 1/reduction_factor there",
    _asha,
    {"grace_period": 1, "reduction_factor": 3},
))
_register(SchedulerType(
    "hyperband",
    "Synchronous HyperBand (SynchronousHyperBand): brackets of n0 trials, the best 1/reduction_factor "
    "continue at each milestone",
    _hyperband,
    {"reduction_factor": 3},
    pauses_trials=True,
))
_register(SchedulerType("none", "no early stopping: every trial runs to the end", _none))
_register(SchedulerType("fifo", "Ray's FIFOScheduler: every trial runs to the end, in arrival order", _fifo))
_register(SchedulerType(
    "median",
    "Ray's median stopping rule: stops a trial whose best result is below the median of the other "
    "trials' running averages at the same time",
    _median,
    {"grace_period": 1, "min_samples_required": 3},
))
_register(SchedulerType(
    "mo-asha",
    "Multi-objective ASHA (MultiObjectiveASHA): at rung grace_period * reduction_factor**k a trial "
    "goes on iff it is in the top 1/reduction_factor by Pareto rank (non-dominated front, then "
    "hypervolume contribution); objective_thresholds stop a trial past a bound",
    _mo_asha,
    {"grace_period": 1, "reduction_factor": 3, "objective_thresholds": None},
    multi_objective=True,
))
_register(SchedulerType(
    "mo-asha-promotion",
    "Promotion multi-objective ASHA (MultiObjectivePromotionASHA): pauses trials at each rung and "
    "resumes from their checkpoints the ones that enter the top 1/reduction_factor",
    lambda **options: _mo_asha(promotion=True, **options),
    {"grace_period": 1, "reduction_factor": 3, "objective_thresholds": None},
    multi_objective=True,
    pauses_trials=True,
))
_register(SchedulerType(
    "mo-hyperband",
    "Multi-objective synchronous HyperBand (MultiObjectiveHyperBand): brackets of n0 trials, the "
    "best 1/reduction_factor by Pareto rank resume from their checkpoints at each milestone",
    _mo_hyperband,
    {"reduction_factor": 3},
    multi_objective=True,
    pauses_trials=True,
))


def scheduler_names() -> list[str]:
    """Registered scheduler names, in registration order."""
    return list(_TYPES)


def describe_schedulers() -> dict[str, str]:
    """``{name: description with defaults}`` of every scheduler."""
    described = {}
    for name, scheduler_type in _TYPES.items():
        defaults = ", ".join(f"{key}={value}" for key, value in scheduler_type.defaults.items())
        described[name] = scheduler_type.description + (f" (defaults: {defaults})" if defaults else "")
    return described


def get_scheduler_type(name: str) -> SchedulerType:
    """The scheduler called ``name``; the error names the closest one and lists them all."""
    try:
        return _TYPES[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), list(_TYPES), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"scheduler: got {name!r}{hint}; use one of {', '.join(_TYPES)}."
        ) from None


def scheduler_config(
    name: str,
    *,
    metric: str | None = None,
    mode: str | None = None,
    max_t: int,
    time_attr: str = "training_iteration",
    objectives: Any = None,
    **options: Any,
) -> SchedulerConfig:
    """Resolve ``name`` with its defaults, overridden by every option given that is not ``None``.

    A multi-objective scheduler ranks on every objective of ``objectives`` (a
    :class:`multiobjective.Objectives`); the others promote on ``metric``/``mode``, which default to
    the first objective.

    Raises:
        ValueError: for an unknown scheduler or an option the scheduler does not take.

    Example:
        >>> scheduler_config("hyperband", metric="loss", mode="min", max_t=9, reduction_factor=None).options
        {'reduction_factor': 3}
    """
    scheduler_type = get_scheduler_type(name)
    given = {key: value for key, value in options.items() if value is not None}
    unknown = sorted(set(given) - set(scheduler_type.defaults))
    if unknown:
        takes = ", ".join(scheduler_type.defaults) or "no options"
        raise ValueError(
            f"{unknown[0]}: got {given[unknown[0]]!r}, but scheduler {name!r} does not take it; "
            f"drop it (scheduler {name!r} takes {takes})."
        )
    if scheduler_type.multi_objective:
        if objectives is None:
            raise ValueError(f"scheduler {name!r} ranks on several objectives; pass objectives=Objectives(...).")
        metric, mode = tuple(objectives.names), tuple(objectives.modes)
    elif metric is None:
        if objectives is None:
            raise ValueError(f"scheduler {name!r} promotes on one metric; pass metric= and mode=.")
        metric, mode = objectives.names[0], objectives.modes[0]
    return SchedulerConfig(name, metric, mode, int(max_t), time_attr, {**scheduler_type.defaults, **given})
