"""The catalogue of early-stopping schedulers by name, each with its defaults, written once.

A scheduler is named (``"asha"``, ``"hyperband"``, ``"none"``) in the experiment spec, by a
search method that comes with one (the ``asha`` method is random search plus the ``asha``
scheduler) and by the benchmarks; all three build it here, through :func:`scheduler_config`, so a
name means one configuration everywhere. The rule for options is the same for every caller: the
scheduler's defaults below, overridden by each option the caller sets (``None`` means "not set").

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

DEFAULT_SCHEDULER = "asha"
"""The scheduler of a spec whose ``scheduler`` section names no ``type`` (and whose method has none)."""


@dataclass(frozen=True)
class SchedulerType:
    """A named scheduler: how to build it and the default of each option it takes.

    ``build(metric, mode, max_t, time_attr, **options)`` returns a fresh Ray Tune
    ``TrialScheduler``, or ``None`` for "run every trial to the end".
    """

    name: str
    description: str
    build: Callable[..., Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SchedulerConfig:
    """A fully resolved scheduler: its type, the metric it promotes on, its horizon and options.

    Two configs that compare equal build schedulers that take the same decisions.
    """

    type: str
    metric: str
    mode: str
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
))
_register(SchedulerType("none", "no early stopping: every trial runs to the end", _none))


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
    metric: str,
    mode: str,
    max_t: int,
    time_attr: str = "training_iteration",
    **options: Any,
) -> SchedulerConfig:
    """Resolve ``name`` with its defaults, overridden by every option given that is not ``None``.

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
    return SchedulerConfig(name, metric, mode, int(max_t), time_attr, {**scheduler_type.defaults, **given})
