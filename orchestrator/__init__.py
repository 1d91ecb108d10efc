"""Compose searchers, schedulers and cluster settings into experiments; run them; report Pareto fronts.

Example:
    >>> from orchestrator import load_experiment  # doctest: +SKIP
    >>> from orchestrator.run import run  # doctest: +SKIP
    >>> result = run(load_experiment("examples/digits.yaml"))  # doctest: +SKIP
    >>> result.pareto  # doctest: +SKIP

Ray is imported only by :mod:`orchestrator.run` (``run``, ``report``), so specs and result
tables work without starting it.
"""

from orchestrator.results import (
    format_pareto_table,
    hypervolume,
    hypervolume_trace,
    load_results,
    pareto_front,
    save_results,
)
from orchestrator.spec import (
    Budget,
    Experiment,
    Objective,
    Resources,
    SchedulerSpec,
    SpecError,
    load_experiment,
    save_experiment,
)


__all__ = [
    "Budget",
    "Experiment",
    "Objective",
    "Resources",
    "SchedulerSpec",
    "SpecError",
    "format_pareto_table",
    "hypervolume",
    "hypervolume_trace",
    "load_experiment",
    "load_results",
    "pareto_front",
    "save_experiment",
    "save_results",
]
