"""Run registered search methods on a benchmark blackbox in the simulated cluster.

One *run* is one method with one seed: a fresh searcher (and the method's own early-stopping
scheduler, if any) from :mod:`orchestrator.methods`, replayed by
:class:`benchmarks.simulator.SimulatedCluster` for ``budget`` trials. Every completed, stopped or
failed trial counts towards the budget; on a finite pool the budget is at most the pool size.
:mod:`benchmarks.summary` aggregates the runs of each method over seeds; runs can execute in
parallel processes (``jobs``) and be kept in a :class:`~benchmarks.run_cache.RunCache`.

Example:
    >>> table, summary = run_benchmark(  # doctest: +SKIP
    ...     "nmthpo", "/work/shared/benchmarks", "zh-en", ["random", "pool-mobo"], budget=100, seeds=3)
    >>> summary["methods"]["random"]["found_at_budget"]  # doctest: +SKIP
    2.33
"""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.blackboxes import make_blackbox
from benchmarks.run_cache import RunCache
from benchmarks.simulator import SimulatedCluster
from benchmarks.summary import check_positive_int, benchmark_summary, effective_budget, summary_table
from multiobjective import Objectives
from orchestrator.methods import SearchProblem, build_searcher, get_method, method_names, resolve_scheduler_name
from schedulers.catalogue import SchedulerConfig, scheduler_config

__all__ = [
    "load_blackbox",
    "parse_methods",
    "run_benchmark",
    "run_method",
    "run_methods",
    "scheduler_for",
    "scheduler_metric",
    "scheduler_objectives",
    "search_problem",
]

Progress = Callable[[str], None]


def parse_methods(methods: str | Iterable[str]) -> list[str]:
    """Method names from ``"a,b"`` or a list, each checked against the registry.

    Raises:
        ValueError: naming the unknown method and listing the registered ones.
    """
    names = [m.strip() for m in methods.split(",")] if isinstance(methods, str) else [str(m).strip() for m in methods]
    names = [name for name in names if name]
    if not names:
        raise ValueError(f"methods={methods!r} is empty; choose from {method_names()}.")
    for name in names:
        get_method(name)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"methods={methods!r} lists {duplicates} more than once.")
    return names


def scheduler_metric(blackbox: Any) -> tuple[str, str]:
    """``(metric, mode)`` an early-stopping scheduler can promote on for this blackbox.

    The blackbox's ``intermediate_metric()`` (a metric reported at every fidelity step) when it
    defines one, else its first objective.

    Raises:
        ValueError: if the blackbox has no fidelity, so nothing can be stopped early.
    """
    if getattr(blackbox, "fidelity", None) is None:
        raise ValueError(f"{blackbox!r} has no fidelity: early-stopping schedulers have nothing to stop.")
    declared = getattr(blackbox, "intermediate_metric", None)
    chosen = declared() if callable(declared) else next(iter(blackbox.objectives.items()))
    if chosen is None:
        raise ValueError(f"{blackbox!r} reports no metric at intermediate fidelities to schedule on.")
    return chosen


def scheduler_for(blackbox: Any, method: str) -> SchedulerConfig | None:
    """The scheduler ``method`` runs with on ``blackbox`` (``None`` if it has none).

    Built from the same catalogues, with the same defaults, as a user's experiment with that
    method: the metric is :func:`scheduler_metric`, ``max_t`` the number of fidelity steps.
    """
    name = resolve_scheduler_name(method, None, scheduler_section=False)
    if name is None:
        return None
    fidelity = getattr(blackbox, "fidelity", None)
    if fidelity is None:
        raise ValueError(
            f"method {method!r} stops trials early and needs a blackbox with a fidelity; "
            f"{blackbox!r} has none. Use a method without a scheduler (e.g. 'random', 'tpe')."
        )
    metric, mode = scheduler_metric(blackbox)
    return scheduler_config(
        name, metric=metric, mode=mode, max_t=len(fidelity.steps), objectives=scheduler_objectives(blackbox)
    )


def scheduler_objectives(blackbox: Any) -> Objectives:
    """What a multi-objective scheduler ranks on: the objectives reported at every fidelity step.

    The blackbox's objectives when it reports them all at intermediate fidelities (surrogates
    do), else its intermediate metric alone (NMT tables record only dev perplexity per checkpoint).
    """
    declared = getattr(blackbox, "intermediate_objectives", None)
    if callable(declared):
        return Objectives.from_spec(declared())
    return Objectives.from_spec(blackbox.objectives)


def search_problem(blackbox: Any, *, seed: int | None, workers: int | None, max_t: int | None = None) -> SearchProblem:
    """The :class:`~orchestrator.methods.SearchProblem` of ``blackbox``: its space and objectives."""
    return SearchProblem(
        blackbox.search_space(), Objectives.from_spec(blackbox.objectives),
        seed=seed, max_concurrent=workers, max_t=max_t,
    )


def run_method(
    blackbox: Any,
    method: str,
    *,
    budget: int,
    seed: int,
    workers: int = 4,
    **options: Any,
) -> pd.DataFrame:
    """One simulated study of ``method`` on ``blackbox``: its history, one row per finished trial.

    Args:
        blackbox: A :class:`benchmarks.blackboxes.Blackbox` (or a duck-typed stand-in).
        method: A registered method name (see ``orchestrator.methods.method_names()``).
        budget: Trials to finish; capped at the pool size for finite pools.
        seed: Seeds the searcher and the simulation.
        workers: Trials running concurrently.
        **options: Passed to the method's searcher.

    Returns:
        The simulator's history; ``history.attrs`` holds ``method``, ``seed``, ``budget``,
        ``pool_mode`` (``"native"``, ``"nearest"`` or ``"off"``), ``wall_s`` and ``suggest_s``
        (seconds of each ``suggest`` call that returned a config, see ``SimulatedCluster.suggest_s``).
    """
    workers = check_positive_int("workers", workers)
    budget = effective_budget(blackbox, budget)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed={seed!r} must be an integer >= 0.")
    started = time.perf_counter()
    scheduler = scheduler_for(blackbox, method)
    problem = search_problem(
        blackbox, seed=int(seed), workers=workers, max_t=None if scheduler is None else scheduler.max_t
    )
    # Simulated time: a model step must see the same results however long it takes here.
    searcher = build_searcher(method, problem, **{**get_method(method).reproducible_options, **options})
    cluster = SimulatedCluster(
        blackbox, searcher, scheduler=None if scheduler is None else scheduler.build(),
        num_workers=workers, max_trials=budget, seed=int(seed),
    )
    history = cluster.run()
    history.attrs.update(
        method=method, seed=int(seed), budget=budget, pool_mode=cluster.pool_mode_used,
        wall_s=time.perf_counter() - started, suggest_s=[float(s) for s in cluster.suggest_s],
    )
    return history


def _run_job(blackbox: Any, method: str, budget: int, seed: int, workers: int) -> pd.DataFrame:
    return run_method(blackbox, method, budget=budget, seed=seed, workers=workers)


def run_methods(
    blackbox: Any,
    methods: str | Iterable[str],
    *,
    budget: int,
    seeds: int,
    workers: int = 4,
    seeds_for: Mapping[str, int] | None = None,
    budget_for: Mapping[str, int] | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
    cache: RunCache | str | Path | None = None,
) -> dict[str, list[pd.DataFrame]]:
    """Histories ``{method: [one per seed]}``; seeds are ``0..n-1`` (``seeds_for`` overrides ``n``).

    Args:
        jobs: runs executed at once, each in its own process (``1``: in this process). Runs are
            seeded, so the histories do not depend on ``jobs``.
        cache: a :class:`~benchmarks.run_cache.RunCache` or its folder: stored runs are loaded
            instead of rerun, and new runs are stored as each finishes.
    """
    names = parse_methods(methods)
    seeds_for, budget_for = dict(seeds_for or {}), dict(budget_for or {})
    for flag, overrides in (("seeds_for", seeds_for), ("budget_for", budget_for)):
        for name, value in overrides.items():
            get_method(name)
            check_positive_int(f"{flag}[{name!r}]", value)
    check_positive_int("seeds", seeds)
    jobs = check_positive_int("jobs", jobs)
    workers = check_positive_int("workers", workers)
    if cache is not None and not isinstance(cache, RunCache):
        cache = RunCache(cache)
    runs = [(name, seed, effective_budget(blackbox, budget_for.get(name, budget)))
            for name in names for seed in range(seeds_for.get(name, seeds))]
    finished: dict[tuple[str, int], pd.DataFrame] = {}

    def record(name: str, seed: int, run_budget: int, history: pd.DataFrame, source: str) -> None:
        finished[name, seed] = history
        if cache is not None and source == "ran":
            cache.store(blackbox, history, method=name, seed=seed, budget=run_budget, workers=workers)
        if progress is not None:
            progress(f"{blackbox.name}/{blackbox.instance} {name} seed {seed}: {len(history)} trials "
                     f"in {history.attrs.get('wall_s', float('nan')):.1f} s{' (cached)' if source == 'cache' else ''}")

    to_run = []
    for name, seed, run_budget in runs:
        stored = None if cache is None else cache.load(blackbox, name, seed=seed, budget=run_budget, workers=workers)
        if stored is None:
            to_run.append((name, seed, run_budget))
        else:
            record(name, seed, run_budget, stored, "cache")
    if jobs == 1 or len(to_run) <= 1:
        for name, seed, run_budget in to_run:
            record(name, seed, run_budget, _run_job(blackbox, name, run_budget, seed, workers), "ran")
    else:
        # spawn, not fork: a forked child would inherit PyTorch's and Ray's threads mid-flight.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=min(jobs, len(to_run)), mp_context=context) as pool:
            futures = {pool.submit(_run_job, blackbox, name, run_budget, seed, workers): (name, seed, run_budget)
                       for name, seed, run_budget in to_run}
            for future in as_completed(futures):
                name, seed, run_budget = futures[future]
                record(name, seed, run_budget, future.result(), "ran")
    return {name: [finished[name, seed] for seed in range(seeds_for.get(name, seeds))] for name in names}


def run_benchmark(
    benchmark: str,
    data_dir: str | Path,
    instance: str,
    methods: str | Iterable[str],
    budget: int,
    seeds: int,
    workers: int = 4,
    objectives: str | Sequence[str] | None = None,
    *,
    seeds_for: Mapping[str, int] | None = None,
    budget_for: Mapping[str, int] | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
    cache: RunCache | str | Path | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Run every method for ``seeds`` seeds on one benchmark instance; ``(table, summary)``.

    Raises:
        FileNotFoundError: if ``data_dir`` does not exist.
        ValueError: for an unknown method or benchmark, or a bad budget/seed count.
    """
    names = parse_methods(methods)
    blackbox = load_blackbox(benchmark, data_dir, instance, objectives)
    histories = run_methods(
        blackbox, names, budget=budget, seeds=seeds, workers=workers,
        seeds_for=seeds_for, budget_for=budget_for, progress=progress, jobs=jobs, cache=cache,
    )
    summary = benchmark_summary(blackbox, histories, budget=budget, workers=workers)
    return summary_table(summary), summary


def load_blackbox(
    benchmark: str, data_dir: str | Path, instance: str, objectives: str | Sequence[str] | None = None
) -> Any:
    """:func:`benchmarks.blackboxes.make_blackbox` after checking that ``data_dir`` exists."""
    if not Path(data_dir).is_dir():
        raise FileNotFoundError(f"data_dir={str(data_dir)!r} is not a directory; point it at the benchmark data.")
    return make_blackbox(benchmark, data_dir, instance, objectives)
