"""Experiment specifications: what to tune, which metrics make a model Pareto-optimal, the budget.

An :class:`Experiment` is built in Python or read from YAML with :func:`load_experiment`, and is
validated at construction, so a typo fails before Ray starts, with a message that names the field
(``objectives[1].mode``, ``search_space.lr.low``), the bad value and the fix, instead of minutes
later inside a Ray worker. The worked example is ``examples/digits.yaml``.

Example:
    >>> experiment = Experiment(
    ...     name="digits",
    ...     trainable="orchestrator.demo:train_digits",
    ...     search_space={"lr": {"type": "loguniform", "low": 1e-4, "high": 1e-1}, "epochs": 8},
    ...     objectives=[Objective("val_accuracy", "max"), Objective("num_params", "min")],
    ... )
    >>> experiment.objective_set
    Objectives({'val_accuracy': 'max', 'num_params': 'min'})
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from orchestrator._validation import (
    SpecError,
    check_keys,
    check_name,
    check_number,
    check_required,
    check_trainable_signature,
    import_trainable,
    suggest,
    trainable_path,
    within,
)
from multiobjective.objectives import Objectives
from orchestrator.search_space import check_parameter, is_tunable, parameter_to_dict, to_tune_domain
from orchestrator.spec_components import (
    Budget,
    ClusterSpec,
    Constraint,
    Objective,
    Resources,
    SchedulerSpec,
    coerce_component,
    required_fields,
)

if TYPE_CHECKING:
    from orchestrator.methods import SearchProblem
    from schedulers.catalogue import SchedulerConfig

__all__ = [
    "Budget",
    "ClusterSpec",
    "Constraint",
    "Experiment",
    "Objective",
    "Resources",
    "SEED_RANGE",
    "SPEC_FILENAME",
    "SchedulerSpec",
    "SpecError",
    "load_experiment",
    "save_experiment",
]


SPEC_FILENAME = "experiment.yaml"
"""The copy of its spec that a run saves in its experiment directory (``storage_path/name``)."""

SEED_RANGE = (0, 2**32 - 1)
"""Seeds every method takes: hyperopt and Ax seed NumPy's ``RandomState``, which needs this range."""

# Methods that choose among `method_options.candidates` and never sample `search_space`
# (orchestrator.methods builds pool-mobo from the candidates alone). In a Tune run such a method
# without candidates raises at its first suggestion, after Ray has started.
_POOL_METHODS = ("pool-mobo",)


def _check_method(method: Any) -> str:
    # Imported last and lazily: the registry pulls in Ray, so cheaper checks fail before it loads.
    from orchestrator.methods import method_names

    names = list(method_names())
    if method not in names:
        raise SpecError(
            f"unknown method {method!r}{suggest(method, names)}; use one of {', '.join(names)}"
            " (`orchestrator methods` describes them).",
            "method",
        )
    return method


@dataclass
class Experiment:
    """A multi-objective tuning experiment: a trainable, its search space, objectives and budget.

    A trial is Pareto-optimal when no other trial is at least as good on every objective and
    strictly better on one. ``thresholds`` bound objectives (``val_accuracy: 0.9`` means
    ``val_accuracy >= 0.9`` for a ``max`` objective, ``<=`` for ``min``); ``constraints`` bound
    other reported metrics (``"num_params <= 100000"``). ``config`` holds constants merged into
    every trial's config. A relative ``storage_path`` resolves against the current working
    directory at run time (not against a YAML file's directory); see :attr:`storage_dir`.

    ``search_space`` values are Ray Tune domains (``tune.uniform(0, 1)``), mappings
    ``{type, low, high, q, values, base}`` with ``type`` one of uniform, loguniform, quniform,
    qloguniform, randint, qrandint, lograndint, qlograndint, choice (``randint``'s ``high``
    is exclusive, as in ``tune.randint``), or constants (str, int, float, bool, list); at least
    one must be tunable, except for ``pool-mobo``, which chooses among
    ``method_options.candidates`` (required) instead. ``trainable`` is called with one argument,
    the trial's config. ``seed`` is an integer in :data:`SEED_RANGE` or ``None``.

    What depends on the spec alone and needs neither Ray nor the searchers is checked here; what
    depends on the machine or the files, or needs the scheduler or searcher built (HyperBand's
    concurrency, ``method_options``), is checked by
    :func:`orchestrator.preflight.check_before_ray`, still before Ray starts.

    Example:
        >>> Experiment(
        ...     name="toy",
        ...     trainable=lambda config: None,
        ...     search_space={"x": {"type": "uniform", "low": 0, "high": 1}},
        ...     objectives=[Objective("loss", "min")],
        ...     method="random",
        ... ).budget.num_trials
        20
    """

    name: str
    trainable: str | Callable[..., Any]
    search_space: dict[str, Any]
    objectives: list[Objective]
    thresholds: dict[str, float] = field(default_factory=dict)
    constraints: list[str] = field(default_factory=list)
    method: str = "ax-mobo"
    method_options: dict[str, Any] = field(default_factory=dict)
    scheduler: SchedulerSpec | None = None
    budget: Budget = field(default_factory=Budget)
    resources: Resources = field(default_factory=Resources)
    cluster: ClusterSpec = field(default_factory=ClusterSpec)
    storage_path: str = "./results"
    seed: int | None = 0
    config: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = check_name(self.name, "name")
        if "/" in name or "\\" in name:
            raise SpecError(
                f"got {name!r}; the name becomes a directory, so drop '/' and '\\'.", "name"
            )
        self.name = name
        self.objectives = self._checked_objectives(self.objectives)
        self.search_space = self._checked_search_space(self.search_space)
        self.config = self._checked_mapping(self.config, "config")
        for key in self.config:
            if key in self.search_space:
                raise SpecError(
                    f"{key!r} is also in search_space; keep it in one place "
                    "(search_space to tune it, config to fix it).",
                    f"config.{key}",
                )
        self.thresholds = self._checked_thresholds(self.thresholds)
        self.constraints = self._checked_constraints(self.constraints)
        self.method_options = self._checked_mapping(self.method_options, "method_options")
        self.scheduler = self._checked_scheduler(self.scheduler)
        self.budget = coerce_component(Budget, self.budget, "budget")
        self.resources = coerce_component(Resources, self.resources, "resources")
        self.cluster = coerce_component(ClusterSpec, self.cluster, "cluster")
        if isinstance(self.storage_path, os.PathLike):
            self.storage_path = os.fspath(self.storage_path)
        self.storage_path = check_name(self.storage_path, "storage_path")
        seed_is_int = isinstance(self.seed, int) and not isinstance(self.seed, bool)
        low, high = SEED_RANGE
        if self.seed is not None and not (seed_is_int and low <= self.seed <= high):
            raise SpecError(f"got {self.seed!r}; use an integer from {low} to {high}, or null.", "seed")
        self.method = _check_method(self.method)
        self._check_something_to_search()
        self.scheduler_config()  # a scheduler that contradicts the method fails here, before Ray
        if callable(self.trainable):
            check_trainable_signature(self.trainable, getattr(self.trainable, "__qualname__", repr(self.trainable)))
        else:
            if not isinstance(self.trainable, str):
                raise SpecError(
                    f"got {self.trainable!r}; use 'module:function' or a callable.", "trainable"
                )
            self.trainable = self.trainable.strip()
            check_trainable_signature(import_trainable(self.trainable), repr(self.trainable))

    # ----------------------------------------------------------------- validation helpers
    @staticmethod
    def _checked_mapping(value: Any, field_name: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, Mapping):
            raise SpecError(f"got {value!r}; use a mapping of names to values.", field_name)
        for key in value:
            if not isinstance(key, str) or not key:
                raise SpecError(f"key {key!r} is not a non-empty string.", field_name)
        return dict(value)

    @staticmethod
    def _checked_objectives(value: Any) -> list[Objective]:
        if isinstance(value, (str, Mapping)) or not isinstance(value, (list, tuple)):
            raise SpecError(
                f"got {value!r}; use a list like [{{name: val_accuracy, mode: max}}].", "objectives"
            )
        if not value:
            raise SpecError("is empty; give at least one {name, mode} objective.", "objectives")
        objectives = [
            coerce_component(Objective, item, f"objectives[{index}]")
            for index, item in enumerate(value)
        ]
        seen: set[str] = set()
        for index, objective in enumerate(objectives):
            if objective.name in seen:
                raise SpecError(
                    f"duplicate objective {objective.name!r}; each metric may appear once.",
                    f"objectives[{index}].name",
                )
            seen.add(objective.name)
        return objectives

    @staticmethod
    def _checked_search_space(value: Any) -> dict[str, Any]:
        space = Experiment._checked_mapping(value, "search_space")
        if not space:
            raise SpecError("is empty; give at least one parameter.", "search_space")
        checked = {}
        for name, parameter in space.items():
            with within(f"search_space.{name}"):
                checked[name] = check_parameter(parameter)
        return checked

    def _check_something_to_search(self) -> None:
        from orchestrator.methods import get_method

        if self.method in _POOL_METHODS:
            if "candidates" not in {**get_method(self.method).defaults, **self.method_options}:
                raise SpecError(
                    f"missing; method {self.method!r} chooses among a finite list of candidates: "
                    "give a list of configs (e.g. [{width: 64}, {width: 128}]) or the path of a CSV "
                    "file with one column per parameter.",
                    "method_options.candidates",
                )
        elif not any(is_tunable(value) for value in self.search_space.values()):
            raise SpecError(
                f"got only constants ({', '.join(self.search_space)}), so there is nothing to tune; "
                "give at least one parameter a range or choices, e.g. "
                "lr: {type: loguniform, low: 1.0e-4, high: 0.1}, and move the constants to config.",
                "search_space",
            )

    def _unknown_objective(self, metric: str, field_name: str, alternative: str) -> SpecError:
        return SpecError(
            f"{metric!r} is not an objective{suggest(metric, self.metric_names)}; "
            f"objectives are {', '.join(self.metric_names)}. {alternative}",
            field_name,
        )

    def _checked_thresholds(self, value: Any) -> dict[str, float]:
        thresholds = self._checked_mapping(value, "thresholds")
        for metric, bound in thresholds.items():
            if metric not in self.metric_names:
                raise self._unknown_objective(
                    metric,
                    f"thresholds.{metric}",
                    "Bound other metrics with constraints, e.g. 'num_params <= 100000'.",
                )
            thresholds[metric] = check_number(bound, f"thresholds.{metric}")
        return thresholds

    def _checked_constraints(self, value: Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise SpecError(
                f"got {value!r}; use a list like ['num_params <= 100000'].", "constraints"
            )
        constraints = []
        for index, text in enumerate(value):
            text = str(text) if isinstance(text, Constraint) else text
            with within(f"constraints[{index}]"):
                constraint = Constraint.parse(text)
            if constraint.metric in self.metric_names:
                raise SpecError(
                    f"{constraint.metric!r} is an objective; bound objectives with thresholds, "
                    f"e.g. thresholds: {{{constraint.metric}: {constraint.bound!r}}}.",
                    f"constraints[{index}]",
                )
            constraints.append(text.strip())
        return constraints

    def _checked_scheduler(self, value: Any) -> SchedulerSpec | None:
        if value is None:
            return None
        scheduler = coerce_component(SchedulerSpec, value, "scheduler")
        metric = scheduler.metric or self.metric_names[0]
        if metric not in self.metric_names:
            raise self._unknown_objective(
                metric, "scheduler.metric", "The scheduler stops trials on one objective."
            )
        for name in scheduler.objective_thresholds or {}:
            if name not in self.metric_names:
                raise self._unknown_objective(
                    name, "scheduler.objective_thresholds", "The scheduler stops trials past bounds on objectives."
                )
        objective_mode = Objectives.from_spec(self.objectives)[metric]
        if scheduler.mode is not None and scheduler.mode != objective_mode:
            raise SpecError(
                f"got {scheduler.mode!r}, but objective {metric!r} has mode {objective_mode!r}; "
                "drop scheduler.mode to use the objective's.",
                "scheduler.mode",
            )
        return dataclasses.replace(scheduler, metric=metric, mode=objective_mode)

    # ----------------------------------------------------------------- public API
    @property
    def objective_set(self) -> Objectives:
        """The objectives with their thresholds, as searchers, results and plots take them."""
        return Objectives.from_spec(self.objectives, thresholds=self.thresholds)

    def scheduler_config(self) -> SchedulerConfig | None:
        """The early-stopping scheduler of this experiment, resolved through the catalogues.

        The method's own scheduler (``mo-asha``, ``asha``, ...) or ``scheduler.type``, with the
        catalogue's defaults overridden by the options set in ``scheduler``; ``None`` when trials
        run to the end. The benchmarks resolve a method's scheduler the same way.

        Raises:
            SpecError: when the method and ``scheduler`` disagree, or a method that stops
                trials early has no ``scheduler`` section to say when a trial is complete.
        """
        from orchestrator.methods import resolve_scheduler_name
        from schedulers.catalogue import scheduler_config

        spec = self.scheduler
        try:
            name = resolve_scheduler_name(self.method, spec.type if spec else None, spec is not None)
        except ValueError as error:
            raise SpecError(str(error)) from None
        if name is None or name == "none":
            return None
        if spec is None:
            raise SpecError(
                f"method {self.method!r} stops trials early and needs to know when a trial is complete: "
                "add a `scheduler:` section with `max_t` (in training iterations).",
                "scheduler",
            )
        try:
            return scheduler_config(
                name, metric=spec.metric, mode=spec.mode, max_t=spec.max_t, time_attr=spec.time_attr,
                objectives=Objectives.from_spec(self.objectives), **spec.options,
            )
        except ValueError as error:
            raise SpecError(str(error), "scheduler") from None

    def search_problem(self) -> SearchProblem:
        """What this experiment's searcher is built from, as the benchmarks build theirs.

        The space holds ``search_space`` as Tune domains with the ``config`` constants merged in;
        ``max_t`` and ``time_attr`` come from the scheduler (``None`` without one). Imports Ray
        (Tune's domain classes) but starts nothing.

        Example:
            >>> problem = Experiment(
            ...     name="toy",
            ...     trainable=lambda config: None,
            ...     search_space={"x": {"type": "uniform", "low": 0, "high": 1}},
            ...     objectives=[Objective("loss", "min")],
            ...     method="random",
            ...     seed=3,
            ... ).search_problem()
            >>> problem.seed, problem.max_concurrent, problem.max_t, type(problem.space["x"]).__name__
            (3, 2, None, 'Float')
        """
        from orchestrator.methods import SearchProblem

        scheduler = self.scheduler_config()
        return SearchProblem(
            space=self.tune_search_space(include_config=True),
            objectives=self.objective_set,
            constraints=tuple(self.constraints),
            seed=self.seed,
            max_concurrent=self.budget.max_concurrent,
            max_t=None if scheduler is None else scheduler.max_t,
            time_attr="training_iteration" if scheduler is None else scheduler.time_attr,
        )

    @property
    def metric_names(self) -> list[str]:
        """Objective names, in order (``list(objective_set)``, before thresholds are checked)."""
        return [objective.name for objective in self.objectives]

    @property
    def parsed_constraints(self) -> list[Constraint]:
        """``constraints`` as :class:`Constraint` objects."""
        return [Constraint.parse(text) for text in self.constraints]

    @property
    def threshold_constraints(self) -> list[Constraint]:
        """``thresholds`` as constraints (:meth:`multiobjective.Objectives.threshold_constraints`)."""
        return [Constraint.parse(text) for text in self.objective_set.threshold_constraints()]

    @property
    def storage_dir(self) -> Path:
        """``storage_path`` made absolute against the current working directory."""
        return Path(self.storage_path).expanduser().resolve()

    def resolve_trainable(self) -> Callable[..., Any]:
        """The trainable callable, importing ``module:function`` paths."""
        if callable(self.trainable):
            return self.trainable
        return import_trainable(self.trainable)

    def tune_search_space(self, include_config: bool = False) -> dict[str, Any]:
        """``search_space`` as a Ray Tune ``param_space``: mappings become Tune domains.

        Args:
            include_config: also merge the ``config`` constants in (search-space names win).

        Example:
            >>> experiment = Experiment(
            ...     name="toy",
            ...     trainable=lambda config: None,
            ...     search_space={"lr": {"type": "loguniform", "low": 1e-4, "high": 0.1}, "epochs": 8},
            ...     objectives=[Objective("loss", "min")],
            ...     method="random",
            ... )
            >>> space = experiment.tune_search_space()
            >>> type(space["lr"]).__name__, space["epochs"]
            ('Float', 8)
        """
        space = {name: to_tune_domain(value) for name, value in self.search_space.items()}
        return {**self.config, **space} if include_config else space

    def to_dict(self) -> dict[str, Any]:
        """Plain data that :meth:`from_dict` accepts; Tune domains become ``{type, ...}`` mappings.

        Domains without a mapping form (``tune.sample_from``, ``tune.randn``) and non-importable
        callables (lambdas, local functions) are kept as objects, so the result is not YAML then.
        """
        return {
            "name": self.name,
            "trainable": trainable_path(self.trainable),
            "search_space": {
                name: parameter_to_dict(value) for name, value in self.search_space.items()
            },
            "objectives": [dataclasses.asdict(objective) for objective in self.objectives],
            "thresholds": dict(self.thresholds),
            "constraints": list(self.constraints),
            "method": self.method,
            "method_options": dict(self.method_options),
            "scheduler": dataclasses.asdict(self.scheduler) if self.scheduler else None,
            "budget": dataclasses.asdict(self.budget),
            "resources": dataclasses.asdict(self.resources),
            "cluster": dataclasses.asdict(self.cluster),
            "storage_path": self.storage_path,
            "seed": self.seed,
            "config": dict(self.config),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Experiment:
        """Build and validate an experiment from plain data (as read from YAML).

        Raises:
            SpecError: on an unknown or missing key, or any invalid value.
        """
        if not isinstance(data, Mapping):
            raise SpecError(
                f"got {type(data).__name__}; an experiment is a mapping of keys to values."
            )
        check_keys(data, [f.name for f in dataclasses.fields(cls)])
        check_required(data, required_fields(cls))
        return cls(**data)


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects repeated keys, which plain YAML silently resolves to the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}; keep one", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_experiment(path: str | os.PathLike[str]) -> Experiment:
    """Read and validate an experiment from a YAML file; ``name`` defaults to the file's stem.

    Raises:
        SpecError: when the file is missing, empty, not YAML, not a mapping, or invalid; the
            message starts with the file path.

    Example:
        >>> experiment = load_experiment("examples/digits.yaml")  # doctest: +SKIP
    """
    source = os.fspath(path)
    try:
        text = Path(source).read_text()
    except OSError as error:
        reason = error.strerror or error
        raise SpecError(f"cannot read the file: {reason}.", source=source) from error
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as error:
        raise SpecError(f"not valid YAML: {error}", source=source) from error
    if data is None:
        raise SpecError(
            "the file is empty; it needs trainable, search_space and objectives.", source=source
        )
    if not isinstance(data, Mapping):
        raise SpecError(
            f"the top level is a {type(data).__name__}; use a mapping with keys "
            "name, trainable, search_space, objectives, ...",
            source=source,
        )
    data = {"name": Path(source).stem, **data}
    try:
        return Experiment.from_dict(data)
    except SpecError as error:
        raise error.located(source) from error


def save_experiment(experiment: Experiment, path: str | os.PathLike[str]) -> Path:
    """Write ``experiment.to_dict()`` as YAML that :func:`load_experiment` reads back."""
    try:
        text = yaml.safe_dump(experiment.to_dict(), sort_keys=False)
    except yaml.representer.RepresenterError as error:
        raise SpecError(
            f"cannot be written as YAML ({error.args[-1]!r}); use a 'module:function' trainable "
            "and search-space mappings instead of objects."
        ) from error
    path = Path(path)
    path.write_text(text)
    return path
