"""The catalogue of search methods by name, for the experiment spec, the CLI and the benchmarks.

A method is a searcher with its default options and, for some, the early-stopping scheduler it
comes with (a name in :mod:`schedulers.catalogue`). Everything that runs a method by name builds
it here, so a name means one configuration everywhere. Options follow one rule for every caller:
the method's defaults, overridden by the options the caller passes (the spec's
``method_options``); scheduler options follow the same rule in :func:`schedulers.scheduler_config`.

Every method is built from the same :class:`SearchProblem`, so swapping algorithms is a
one-word change:

Example:
    >>> from ray import tune
    >>> from multiobjective import Objectives
    >>> problem = SearchProblem({"x": tune.uniform(0, 1)}, Objectives.from_spec({"acc": "max", "ms": "min"}), seed=0)
    >>> type(build_searcher("random", problem)).__name__
    'RandomSearch'
    >>> get_method("mo-asha").scheduler
    'mo-asha'
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from multiobjective import Objectives
from schedulers.catalogue import DEFAULT_SCHEDULER, describe_schedulers

__all__ = [
    "Method",
    "SearchProblem",
    "build_searcher",
    "describe_methods",
    "get_method",
    "method_names",
    "register_method",
    "resolve_scheduler_name",
]


@dataclass(frozen=True)
class SearchProblem:
    """What every searcher is built from: the space, the objectives and how trials run.

    Attributes:
        space: Ray Tune search space (domains, constants, nested dicts).
        objectives: names, directions and thresholds.
        constraints: outcome constraints on other metrics, e.g. ``("num_params <= 100000",)``.
        seed: seed of the searcher.
        max_concurrent: most trials running at once.
        max_t: value of ``time_attr`` at which a trial is complete when a scheduler may stop
            trials earlier (``None`` without a scheduler).
        time_attr: the result key that counts training progress.
    """

    space: Mapping[str, Any]
    objectives: Objectives
    constraints: tuple[str, ...] = ()
    seed: int | None = None
    max_concurrent: int | None = None
    max_t: int | None = None
    time_attr: str = "training_iteration"


@dataclass(frozen=True)
class Method:
    """A named way of choosing trials, and optionally of stopping them early.

    ``build(problem, **options)`` returns a fresh ``ray.tune.search.Searcher``; ``defaults`` are
    its options unless the caller overrides them; ``scheduler`` names the scheduler the method
    comes with (``None``: whatever the spec asks for, by default none); ``searches_feasible``
    says whether the searcher itself steers by thresholds and constraints (all methods apply
    them to the reported front); ``cheap_options`` trade a little search quality for much
    cheaper suggestions on small CPUs (the demo uses them; the spec's ``method_options`` can);
    ``reproducible_options`` make the searcher's choices independent of timing, as the benchmark
    simulator needs (model steps in a background thread see whichever results arrived first).
    """

    name: str
    description: str
    build: Callable[..., Any]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    scheduler: str | None = None
    searches_feasible: bool = False
    cheap_options: Mapping[str, Any] = field(default_factory=dict)
    reproducible_options: Mapping[str, Any] = field(default_factory=dict)


def _build_ax(problem: SearchProblem, **options: Any) -> Any:
    from searchers import AxMultiObjectiveSearch

    warm_start = options.get("warm_start")
    if isinstance(warm_start, (str, os.PathLike)):  # a results.csv of an earlier experiment
        import pandas as pd

        from orchestrator.results import as_search_results

        options["warm_start"] = as_search_results(pd.read_csv(warm_start), problem.objectives)
    if problem.max_t is not None:
        options.setdefault("max_progression", problem.max_t)
        options.setdefault("progression_attr", problem.time_attr)
    return AxMultiObjectiveSearch(
        problem.space,
        metric=list(problem.objectives.names),
        mode=list(problem.objectives.modes),
        objective_thresholds=dict(problem.objectives.thresholds) or None,
        outcome_constraints=list(problem.constraints) or None,
        seed=problem.seed,
        max_concurrent=problem.max_concurrent,
        **options,
    )


def _build_tpe(problem: SearchProblem, **options: Any) -> Any:
    from ray.tune.search.hyperopt import HyperOptSearch
    from ray.tune.search.variant_generator import parse_spec_vars

    from searchers.scalarized import SCALARIZED_METRIC, ScalarizedSearch

    space = dict(problem.space)
    if space:
        _, domains, _ = parse_spec_vars(space)
        if domains:  # Tune domains: convert them here, as Tuner would, instead of letting hyperopt warn
            space = HyperOptSearch.convert_search_space(space)
    objectives = problem.objectives
    if len(objectives) == 1:
        return HyperOptSearch(
            space, metric=objectives.names[0], mode=objectives.modes[0], random_state_seed=problem.seed, **options
        )
    weights = options.pop("weights", None)
    base = HyperOptSearch(space, metric=SCALARIZED_METRIC, mode="min", random_state_seed=problem.seed, **options)
    return ScalarizedSearch(base, objectives, weights=weights)


def _build_random(problem: SearchProblem, **options: Any) -> Any:
    from searchers import RandomSearch

    return RandomSearch(problem.space, problem.objectives, seed=problem.seed, **options)


def _build_pool(problem: SearchProblem, **options: Any) -> Any:
    from searchers.pool_multi_objective import PoolMultiObjectiveSearch

    candidates = options.pop("candidates", None)
    if isinstance(candidates, (str, os.PathLike)):
        import pandas as pd

        candidates = pd.read_csv(candidates)
    return PoolMultiObjectiveSearch(
        candidates, metric=problem.objectives, seed=problem.seed, max_concurrent=problem.max_concurrent, **options
    )


_REGISTRY: dict[str, Method] = {}


def register_method(method: Method) -> None:
    """Add a method to the catalogue (later searchers and plug-ins register here)."""
    if method.name in _REGISTRY:
        raise ValueError(f"A method named {method.name!r} is already registered.")
    _REGISTRY[method.name] = method


register_method(Method(
    "ax-mobo",
    "Ax Client multi-objective BO (Sobol start, GP per objective, qLogNEHVI): AxMultiObjectiveSearch",
    _build_ax,
    searches_feasible=True,
    # Fewer acquisition restarts: at 100 results (2 objectives, 6 parameters, 2 cores) a model
    # step takes 1.5 s instead of 2.4 s (BoTorch's defaults: 20 restarts, 1024 raw samples;
    # python -m benchmarks.bench_ax_suggest). Capping "maxiter_alternating" as well made Ax's
    # optimiser return already-evaluated corners on ZDT1, and Ax then fell back to Sobol points.
    cheap_options={"acquisition_options": {"num_restarts": 4, "raw_samples": 256}},
    reproducible_options={"background": False},
))
register_method(Method(
    "tpe",
    "Hyperopt TPE via Ray's HyperOptSearch; several objectives through a ParEGO Chebyshev scalarisation",
    _build_tpe,
))
register_method(Method("random", "Seeded uniform random search over the Tune space: RandomSearch", _build_random))
register_method(Method(
    "pool-mobo",
    "Pool-aware multi-objective BO: the unevaluated candidate of a finite list most likely to be "
    "Pareto-optimal (or qLogNEHVI with acquisition: hypervolume) "
    "(method_options.candidates: list of configs or a CSV path): PoolMultiObjectiveSearch",
    _build_pool,
    reproducible_options={"background": False},
))
for _scheduler in ("mo-asha", "mo-asha-promotion", "mo-hyperband", "asha", "hyperband", "median"):
    register_method(Method(
        _scheduler,
        f"Random search with the {_scheduler!r} scheduler: {describe_schedulers()[_scheduler]}",
        _build_random,
        scheduler=_scheduler,
    ))


def _build_multi_fidelity_tpe(problem: SearchProblem, **options: Any) -> Any:
    from searchers.multi_fidelity_tpe import MultiFidelityTPESearch

    return MultiFidelityTPESearch(
        problem.space, problem.objectives, seed=problem.seed, max_concurrent=problem.max_concurrent,
        time_attr=problem.time_attr, **options,
    )


register_method(Method(
    "mo-bohb",
    "Model-based multi-objective promotion, BOHB-like: Optuna's multi-objective TPE fitted on the "
    "highest rung with enough results (early-stopped trials included), with the 'mo-asha' scheduler: "
    "MultiFidelityTPESearch",
    _build_multi_fidelity_tpe,
    scheduler="mo-asha",
))


def _build_fabolas(problem: SearchProblem, **options: Any) -> Any:
    from searchers.fabolas import FabolasSearch

    return FabolasSearch(
        problem.space, problem.objectives, seed=problem.seed, max_concurrent=problem.max_concurrent, **options
    )


register_method(Method(
    "fabolas",
    "Fabolas: cost-aware multi-fidelity GP BO over the config and the training-set fraction "
    "(config key data_fraction; one objective, or the full-data Pareto front of two): FabolasSearch",
    _build_fabolas,
))
register_method(Method(
    "gp-bo",
    "Full-fidelity GP BO (every trial at data_fraction=1; max-value entropy search for one objective, "
    "hypervolume knowledge gradient for two): "
    "FabolasSearch(min_fidelity=1)",
    _build_fabolas,
    defaults={"min_fidelity": 1.0},
))


def _build_optuna(problem: SearchProblem, sampler: str, **options: Any) -> Any:
    from searchers.optuna_peers import OptunaPeerSearch

    return OptunaPeerSearch(problem.space, problem.objectives, sampler=sampler, seed=problem.seed, **options)


for _sampler, _what in (("gp", "GPSampler (GP, LogEHVI for several objectives)"),
                        ("tpe", "TPESampler (multi-objective TPE, Optuna's default)"),
                        ("nsga2", "NSGAIISampler")):
    register_method(Method(
        f"optuna-{_sampler}",
        f"Peer: Ray's OptunaSearch with Optuna's {_what}, list metric/mode: OptunaPeerSearch",
        lambda problem, _name=_sampler, **options: _build_optuna(problem, _name, **options),
    ))


def method_names() -> list[str]:
    """Registered method names, in registration order."""
    return list(_REGISTRY)


def describe_methods() -> dict[str, str]:
    """``{name: one-line description}`` of every registered method."""
    return {name: method.description for name, method in _REGISTRY.items()}


def get_method(name: str) -> Method:
    """The method called ``name``; the error lists the registered names."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(str(name), _REGISTRY, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"method: got {name!r}{hint}; use one of {', '.join(_REGISTRY)} "
            "(`orchestrator methods` describes them)."
        ) from None


def resolve_scheduler_name(method: str, requested: str | None, scheduler_section: bool = True) -> str | None:
    """The scheduler a run of ``method`` uses, given the type the spec asks for (``None``: unset).

    A method that comes with a scheduler uses it (asking for another is an error); otherwise
    the requested type, :data:`schedulers.catalogue.DEFAULT_SCHEDULER` when a scheduler
    section names none, and no scheduler (``None``) without a section.

    Example:
        >>> resolve_scheduler_name("asha", None), resolve_scheduler_name("random", "hyperband")
        ('asha', 'hyperband')
    """
    own = get_method(method).scheduler
    if own is not None:
        if requested not in (None, own):
            raise ValueError(
                f"scheduler.type: got {requested!r}, but method {method!r} comes with the {own!r} scheduler; "
                f"drop scheduler.type, or use method 'random' with scheduler.type {requested!r}."
            )
        return own
    if requested is not None:
        return requested
    return DEFAULT_SCHEDULER if scheduler_section else None


def build_searcher(name: str, problem: SearchProblem, **options: Any) -> Any:
    """A fresh searcher of method ``name`` for ``problem``; ``options`` override the method's defaults."""
    method = get_method(name)
    return method.build(problem, **{**method.defaults, **options})
