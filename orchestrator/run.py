"""Run an :class:`~orchestrator.spec.Experiment` on Ray Tune and collect its Pareto front.

``run`` connects to the Ray cluster named by ``RAY_ADDRESS`` (as ``ray submit`` and KubeRay jobs
set it) or starts a local one with ``ray.init()``, builds the searcher from the method catalogue,
the scheduler from the spec, and a plain ``tune.Tuner``; afterwards it writes ``results.csv``,
``pareto_front.csv`` and the plots into the experiment directory. ``run(..., resume=True)``
continues an interrupted experiment from that directory with ``Tuner.restore``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from orchestrator.methods import SearchProblem, build_searcher, get_method
from orchestrator.results import CONFIG_PREFIX, default_reference_point, finished_mask, pareto_front, save_results
from orchestrator.spec import Experiment, load_experiment, save_experiment

logger = logging.getLogger(__name__)

SPEC_FILENAME = "experiment.yaml"
_STRICT_METRIC_ENV = "TUNE_DISABLE_STRICT_METRIC_CHECKING"


@dataclass
class ExperimentResult:
    """What an experiment produced: one row per trial, the Pareto rows, the files written."""

    experiment: Experiment
    results: pd.DataFrame
    pareto: pd.DataFrame
    paths: dict[str, Path] = field(default_factory=dict)
    experiment_dir: Path | None = None


def run(experiment: Experiment, *, resume: bool = False) -> ExperimentResult:
    """Run ``experiment`` (or continue it with ``resume=True``) and save its results.

    Trials that raise, report NaN/inf or omit an objective are recorded with a ``status`` that
    says so; the experiment goes on without them.

    Example:
        >>> from orchestrator.demo import demo_experiment  # doctest: +SKIP
        >>> result = run(demo_experiment(num_trials=6))  # doctest: +SKIP
        >>> result.pareto[["val_accuracy", "latency_us", "num_params"]]  # doctest: +SKIP
    """
    import ray
    from ray import tune

    from cluster.resources import TrialResources, check_cluster_can_place

    if not ray.is_initialized():
        ray.init(include_dashboard=False, log_to_driver=True)
    resources = TrialResources(cpu=experiment.resources.cpu, gpu=experiment.resources.gpu)
    check_cluster_can_place(resources)

    storage_dir = experiment.storage_dir
    experiment_dir = storage_dir / experiment.name
    trainable = tune.with_resources(experiment.resolve_trainable(), resources.to_tune())

    if resume and tune.Tuner.can_restore(str(experiment_dir)):
        logger.info("Resuming experiment from %s", experiment_dir)
        tuner = tune.Tuner.restore(
            str(experiment_dir), trainable=trainable, resume_unfinished=True, resume_errored=True
        )
    else:
        if resume:
            logger.warning("Nothing to resume in %s; starting a new experiment.", experiment_dir)
        tuner = _build_tuner(experiment, trainable, storage_dir)
    experiment_dir.mkdir(parents=True, exist_ok=True)
    _try_save_spec(experiment, experiment_dir)

    with _lenient_metric_checking():
        grid = tuner.fit()
    frame = results_frame(grid, experiment)
    return _finish(experiment, frame, experiment_dir)


def report(experiment_dir: str | Path) -> ExperimentResult:
    """Rebuild tables and plots of a finished (or interrupted) experiment directory."""
    from orchestrator.results import load_results

    experiment_dir = Path(experiment_dir)
    spec_path = experiment_dir / SPEC_FILENAME
    if not spec_path.exists():
        raise FileNotFoundError(
            f"{experiment_dir} has no {SPEC_FILENAME}; point `orchestrator report` at the directory "
            "that `orchestrator run` printed (storage_path/name)."
        )
    experiment = load_experiment(spec_path)
    return _finish(experiment, load_results(experiment_dir), experiment_dir)


def search_problem(experiment: Experiment) -> SearchProblem:
    """What the experiment's searcher is built from (the same type the benchmarks build from)."""
    scheduler = experiment.scheduler_config()
    return SearchProblem(
        space=experiment.tune_search_space(include_config=True),
        objectives=experiment.objective_set,
        constraints=tuple(experiment.constraints),
        seed=experiment.seed,
        max_concurrent=experiment.budget.max_concurrent,
        max_t=None if scheduler is None else scheduler.max_t,
        time_attr="training_iteration" if scheduler is None else scheduler.time_attr,
    )


def _build_tuner(experiment: Experiment, trainable: Any, storage_dir: Path) -> Any:
    from ray import tune

    if (experiment.thresholds or experiment.constraints) and not get_method(experiment.method).searches_feasible:
        logger.warning(
            "Method %r ignores thresholds and constraints while searching; they are still applied "
            "to the reported Pareto front.", experiment.method,
        )
    searcher = build_searcher(experiment.method, search_problem(experiment), **experiment.method_options)
    tune_config = tune.TuneConfig(
        search_alg=searcher,
        scheduler=build_scheduler(experiment),
        num_samples=experiment.budget.num_trials,
        max_concurrent_trials=experiment.budget.max_concurrent,
        time_budget_s=experiment.budget.time_budget_s,
        reuse_actors=True,
    )
    run_config = tune.RunConfig(
        name=experiment.name,
        storage_path=str(storage_dir),
        failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        verbose=1,
    )
    return tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)


def build_scheduler(experiment: Experiment) -> Any:
    """The experiment's scheduler (:meth:`Experiment.scheduler_config`, built), or ``None``.

    Raises:
        ValueError: for synchronous HyperBand under a concurrency cap that would stall it.
    """
    config = experiment.scheduler_config()
    scheduler = None if config is None else config.build()
    needed = getattr(scheduler, "min_concurrent_trials", 1)
    allowed = experiment.budget.max_concurrent
    if allowed is not None and allowed < needed:
        raise ValueError(
            f"scheduler.type='hyperband' with max_t={config.max_t} and "
            f"reduction_factor={config.options['reduction_factor']} pauses up to {needed} trials at a milestone "
            f"until all reach it, but budget.max_concurrent={allowed} stops new trials before that, so the "
            f"experiment would stall. Set budget.max_concurrent >= {needed}, lower max_t or raise "
            "reduction_factor, or use scheduler.type='asha' (asynchronous, never waits)."
        )
    return scheduler


def results_frame(grid: Any, experiment: Experiment) -> pd.DataFrame:
    """One row per trial of a ``ResultGrid``: ``trial_id``, ``trial_order``, ``status``, objectives, ``config/*``.

    Read through the public ``Result`` objects (``metrics``, ``config``, ``error``, ``path``);
    ``trial_order`` is the grid's order, which is the order Tune created the trials in. A trial
    that failed before reporting anything has no ``trial_id`` in its metrics and is named by its
    directory.
    """
    objectives = experiment.objective_set
    rows = []
    for order, result in enumerate(grid, start=1):
        metrics = dict(result.metrics or {})
        row: dict[str, Any] = {"trial_id": metrics.get("trial_id") or Path(str(result.path)).name}
        row["trial_order"] = order
        for name, value in _flatten(result.config or {}).items():
            row[CONFIG_PREFIX + name] = value
        for key in ("training_iteration", "time_total_s"):
            row[key] = metrics.get(key)
        for name in list(objectives) + [c.metric for c in experiment.parsed_constraints]:
            row[name] = _as_float(metrics.get(name))
        row["status"] = _status(result, objectives, experiment)
        row["error"] = str(result.error).splitlines()[0][:200] if result.error else ""
        rows.append(row)
    return pd.DataFrame(rows)


def _finish(experiment: Experiment, frame: pd.DataFrame, experiment_dir: Path) -> ExperimentResult:
    objectives = experiment.objective_set
    if frame.empty or "status" not in frame:
        raise RuntimeError(f"Experiment {experiment.name!r} produced no trials; see the Ray Tune log above.")
    eligible = frame["status"].isin(["completed", "stopped"]) & _feasible(frame, experiment)
    reference = _reference_point(frame.loc[eligible], objectives)
    paths = save_results(frame, objectives, experiment_dir, reference_point=reference, eligible=eligible)
    return ExperimentResult(experiment, frame, pareto_front(frame.loc[eligible], objectives), paths, experiment_dir)


def _feasible(frame: pd.DataFrame, experiment: Experiment) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for constraint in experiment.parsed_constraints + experiment.threshold_constraints:
        values = pd.to_numeric(frame.get(constraint.metric), errors="coerce")
        mask &= values.map(lambda v: bool(v == v) and constraint.is_satisfied(float(v)))
    return mask


def _reference_point(eligible: pd.DataFrame, objectives: Any) -> dict | None:
    """The default reference point, moved to each objective's threshold where it has one."""
    if not finished_mask(eligible, objectives).any():
        return None
    return {**default_reference_point(eligible, objectives), **objectives.thresholds}


def _status(result: Any, objectives: Any, experiment: Experiment) -> str:
    if result.error:
        return "error"
    if objectives.problems(result.metrics or {}):
        return "missing_objective"
    scheduler = experiment.scheduler_config()
    if scheduler is not None:
        progress = (result.metrics or {}).get(scheduler.time_attr)
        if progress is not None and progress < scheduler.max_t:
            return "stopped"
    return "completed"


@contextlib.contextmanager
def _lenient_metric_checking() -> Iterator[None]:
    # Tune ends the whole experiment when a result lacks a metric the searcher names; here a
    # trial that omits an objective is recorded as failed by the searcher instead.
    previous = os.environ.get(_STRICT_METRIC_ENV)
    os.environ[_STRICT_METRIC_ENV] = "1"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(_STRICT_METRIC_ENV, None)
        else:
            os.environ[_STRICT_METRIC_ENV] = previous


def _try_save_spec(experiment: Experiment, experiment_dir: Path) -> None:
    try:
        save_experiment(experiment, experiment_dir / SPEC_FILENAME)
    except Exception as reason:  # a lambda trainable or a sample_from domain has no YAML form
        logger.warning("Could not write %s (%s); `orchestrator report` needs it.", SPEC_FILENAME, reason)


def _flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "/"))
        else:
            flat[name] = value
    return flat


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan

