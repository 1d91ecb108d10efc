"""The catalogue of search methods by name, shared by the experiment spec, the CLI and the benchmarks.

Every method is built with the same arguments, so swapping algorithms is a one-word change:

    searcher = build_searcher("tpe", space=space, metrics=["acc", "latency"], modes=["max", "min"])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ray.tune.search import Searcher


@dataclass(frozen=True)
class Method:
    """A named way of choosing trials, and optionally of stopping them early.

    ``build(space, metrics, modes, seed, max_concurrent, **options)`` returns a fresh
    ``ray.tune.search.Searcher``; ``scheduler(metric, mode, max_t, time_attr)``, when set,
    returns a fresh ``TrialScheduler`` for the single metric it promotes on.
    """

    name: str
    description: str
    build: Callable[..., Searcher]
    scheduler: Callable[..., Any] | None = None


def _build_ax(space, metrics, modes, seed, max_concurrent, **options) -> Searcher:
    from searchers import AxMultiObjectiveSearch

    return AxMultiObjectiveSearch(
        space, metric=list(metrics), mode=list(modes), seed=seed, max_concurrent=max_concurrent, **options
    )


def _build_tpe(space, metrics, modes, seed, max_concurrent, **options) -> Searcher:
    from ray.tune.search.hyperopt import HyperOptSearch
    from ray.tune.search.variant_generator import parse_spec_vars

    from searchers.scalarized import SCALARIZED_METRIC, ScalarizedSearch

    if space:
        _, domains, _ = parse_spec_vars(space)
        if domains:  # Tune domains: convert them here, as Tuner would, instead of letting hyperopt warn
            space = HyperOptSearch.convert_search_space(space)

    if len(metrics) == 1:
        return HyperOptSearch(space, metric=metrics[0], mode=modes[0], random_state_seed=seed, **options)
    weights = options.pop("weights", None)
    base = HyperOptSearch(space, metric=SCALARIZED_METRIC, mode="min", random_state_seed=seed, **options)
    return ScalarizedSearch(base, metric=list(metrics), mode=list(modes), weights=weights)


def _build_random(space, metrics, modes, seed, max_concurrent, **options) -> Searcher:
    from searchers import RandomSearch

    return RandomSearch(space, metric=list(metrics), mode=list(modes), seed=seed, **options)


def _build_pool(space, metrics, modes, seed, max_concurrent, **options) -> Searcher:
    from searchers.pool_multi_objective import PoolMultiObjectiveSearch

    candidates = options.pop("candidates", None)
    if isinstance(candidates, str):
        import pandas as pd

        candidates = pd.read_csv(candidates)
    return PoolMultiObjectiveSearch(
        candidates, metric=list(metrics), mode=list(modes), seed=seed, max_concurrent=max_concurrent, **options
    )


def _asha(metric: str, mode: str, max_t: int, time_attr: str = "training_iteration") -> Any:
    from ray.tune.schedulers import ASHAScheduler

    return ASHAScheduler(
        time_attr=time_attr, metric=metric, mode=mode, max_t=max_t, grace_period=1, reduction_factor=3
    )


def _hyperband(metric: str, mode: str, max_t: int, time_attr: str = "training_iteration") -> Any:
    from schedulers import SynchronousHyperBand

    return SynchronousHyperBand(time_attr=time_attr, metric=metric, mode=mode, max_t=max_t, reduction_factor=3)


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
))
register_method(Method(
    "tpe",
    "Hyperopt TPE via Ray's HyperOptSearch; several objectives through a ParEGO Chebyshev scalarisation",
    _build_tpe,
))
register_method(Method("random", "Seeded uniform random search over the Tune space: RandomSearch", _build_random))
register_method(Method(
    "pool-mobo",
    "Pool-aware multi-objective BO: qLogNEHVI scores the unevaluated candidates of a finite list "
    "(method_options.candidates: list of configs or a CSV path): PoolMultiObjectiveSearch",
    _build_pool,
))
register_method(Method(
    "asha",
    "Random search with ASHA early stopping (grace period 1, reduction factor 3) on one metric",
    _build_random,
    scheduler=_asha,
))
register_method(Method(
    "hyperband",
    "Random search with synchronous HyperBand (reduction factor 3) on one metric: SynchronousHyperBand",
    _build_random,
    scheduler=_hyperband,
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
        import difflib

        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"Unknown method {name!r}; registered: {method_names()}.{hint}") from None


def build_scheduler(name: str, *, metric: str, mode: str, max_t: int, time_attr: str = "training_iteration") -> Any:
    """The method's own early-stopping scheduler for ``metric``, or ``None`` if it has none."""
    method = get_method(name)
    if method.scheduler is None:
        return None
    return method.scheduler(metric, mode, max_t, time_attr)


def build_searcher(
    name: str,
    *,
    space: Mapping[str, Any],
    metrics: Sequence[str],
    modes: Sequence[str],
    seed: int | None = None,
    max_concurrent: int | None = None,
    **options: Any,
) -> Searcher:
    """A fresh searcher of method ``name`` over ``space`` for the given objectives."""
    if len(metrics) != len(modes) or not metrics:
        raise ValueError(f"metrics {list(metrics)} and modes {list(modes)} must be non-empty and of equal length.")
    return get_method(name).build(space, list(metrics), list(modes), seed, max_concurrent, **options)
