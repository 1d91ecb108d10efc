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
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from orchestrator.methods import build_searcher
from orchestrator.results import default_reference_point, pareto_front, save_results
from orchestrator.spec import Experiment, load_experiment, save_experiment

logger = logging.getLogger(__name__)

SPEC_FILENAME = "experiment.yaml"
CONFIG_PREFIX = "config/"
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


def _build_tuner(experiment: Experiment, trainable: Any, storage_dir: Path) -> Any:
    from ray import tune

    space = experiment.tune_search_space(include_config=True)
    options = dict(experiment.method_options)
    if experiment.method == "ax-mobo":
        options.setdefault("objective_thresholds", dict(experiment.thresholds) or None)
        options.setdefault("outcome_constraints", list(experiment.constraints) or None)
        if experiment.scheduler is not None and experiment.scheduler.type != "none":
            options.setdefault("max_progression", experiment.scheduler.max_t)
            options.setdefault("progression_attr", experiment.scheduler.time_attr)
    elif experiment.thresholds or experiment.constraints:
        logger.warning(
            "Method %r ignores thresholds and constraints while searching; they are still applied "
            "to the reported Pareto front.", experiment.method,
        )
    searcher = build_searcher(
        experiment.method,
        space=space,
        metrics=experiment.metric_names,
        modes=experiment.modes,
        seed=experiment.seed,
        max_concurrent=experiment.budget.max_concurrent,
        **options,
    )
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
    """Ray's ASHA or our ``SynchronousHyperBand`` for the spec's single scheduler metric, or ``None``.

    The spec's ``scheduler`` section wins; methods that come with a scheduler of their own
    (``asha``, ``hyperband``) need that section for ``max_t``.
    """
    from orchestrator.methods import get_method

    spec = experiment.scheduler
    if spec is None and get_method(experiment.method).scheduler is not None:
        raise ValueError(
            f"Method {experiment.method!r} stops trials early and needs to know when a trial is "
            "complete: add a `scheduler:` section with `type` and `max_t` (in training iterations)."
        )
    if spec is None or spec.type == "none":
        return None
    from ray.tune.schedulers import ASHAScheduler

    from schedulers import SynchronousHyperBand

    if spec.type == "asha":
        return ASHAScheduler(
            time_attr=spec.time_attr, metric=spec.metric, mode=spec.mode, max_t=spec.max_t,
            grace_period=spec.grace_period, reduction_factor=spec.reduction_factor,
        )
    scheduler = SynchronousHyperBand(
        time_attr=spec.time_attr, metric=spec.metric, mode=spec.mode, max_t=spec.max_t,
        reduction_factor=spec.reduction_factor,
    )
    needed, allowed = scheduler.min_concurrent_trials, experiment.budget.max_concurrent
    if allowed is not None and allowed < needed:
        raise ValueError(
            f"scheduler.type='hyperband' with max_t={spec.max_t} and reduction_factor={spec.reduction_factor} "
            f"pauses up to {needed} trials at a milestone until all reach it, but budget.max_concurrent={allowed} "
            f"stops new trials before that, so the experiment would stall. Set budget.max_concurrent >= {needed}, "
            "lower max_t or raise reduction_factor, or use scheduler.type='asha' (asynchronous, never waits)."
        )
    return scheduler


def results_frame(grid: Any, experiment: Experiment) -> pd.DataFrame:
    """One row per trial: ``trial_id``, ``trial_order``, ``status``, objectives, ``config/*``."""
    rows = []
    for result in grid:
        metrics = dict(result.metrics or {})
        trial_id = metrics.get("trial_id") or _trial_id_from_path(result.path)
        row: dict[str, Any] = {"trial_id": trial_id}
        for name, value in _flatten(result.config or {}).items():
            row[CONFIG_PREFIX + name] = value
        for key in ("training_iteration", "time_total_s"):
            row[key] = metrics.get(key)
        for name in experiment.metric_names + [c.metric for c in experiment.parsed_constraints]:
            row[name] = _as_float(metrics.get(name))
        row["status"] = _status(result, row, experiment)
        row["error"] = str(result.error).splitlines()[0][:200] if result.error else ""
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["trial_order"] = frame["trial_id"].map(_creation_rank(frame["trial_id"]))
    return frame.sort_values("trial_order").reset_index(drop=True)


def _finish(experiment: Experiment, frame: pd.DataFrame, experiment_dir: Path) -> ExperimentResult:
    objectives = dict(zip(experiment.metric_names, experiment.modes))
    if frame.empty or "status" not in frame:
        raise RuntimeError(f"Experiment {experiment.name!r} produced no trials; see the Ray Tune log above.")
    eligible = frame[frame["status"].isin(["completed", "stopped"]) & _feasible(frame, experiment)]
    reference = _reference_point(experiment, eligible, objectives)
    paths = save_results(frame, objectives, experiment_dir, reference_point=reference)
    front = pareto_front(eligible, objectives) if not eligible.empty else eligible
    front.to_csv(paths["pareto_csv"], index=False)
    return ExperimentResult(experiment, frame, front, paths, experiment_dir)


def _feasible(frame: pd.DataFrame, experiment: Experiment) -> pd.Series:
    mask = pd.Series(True, index=frame.index)
    for constraint in experiment.parsed_constraints + experiment.threshold_constraints:
        values = pd.to_numeric(frame.get(constraint.metric), errors="coerce")
        mask &= values.map(lambda v: bool(v == v) and constraint.is_satisfied(float(v)))
    return mask


def _reference_point(experiment: Experiment, eligible: pd.DataFrame, objectives: dict[str, str]) -> dict | None:
    if eligible.empty:
        return None
    reference = default_reference_point(eligible, objectives)
    reference.update({name: float(bound) for name, bound in experiment.thresholds.items()})
    return reference


def _status(result: Any, row: dict, experiment: Experiment) -> str:
    if result.error:
        return "error"
    if any(not _is_finite(row.get(name)) for name in experiment.metric_names):
        return "missing_objective"
    spec = experiment.scheduler
    if spec is not None and spec.type != "none":
        progress = (result.metrics or {}).get(spec.time_attr)
        if progress is not None and progress < spec.max_t:
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


def _creation_rank(trial_ids: pd.Series) -> dict[str, int]:
    # Tune numbers trials in creation order in the id suffix ("3f2a1_00007").
    def key(trial_id: str) -> tuple[int, str]:
        match = re.search(r"_(\d+)$", str(trial_id))
        return (int(match.group(1)) if match else 10**9, str(trial_id))

    ordered = sorted(trial_ids, key=key)
    return {trial_id: rank + 1 for rank, trial_id in enumerate(ordered)}


def _trial_id_from_path(path: str | None) -> str:
    match = re.search(r"_([0-9a-f]+_\d+)_", str(path or ""))
    return match.group(1) if match else str(path)


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _is_finite(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)
