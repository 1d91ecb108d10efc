"""Run an :class:`~orchestrator.spec.Experiment` on Ray Tune and collect its Pareto front.

``run`` connects to the Ray cluster named by ``cluster.address`` or ``RAY_ADDRESS`` (as KubeRay
jobs set it) or starts a new local one (:func:`cluster.connect.connect`), checks that the trials
fit on its nodes, builds the searcher from the method catalogue,
the scheduler from the spec, and a plain ``tune.Tuner``; afterwards it writes ``results.csv``,
``pareto_front.csv`` and the plots into the experiment directory. ``run(..., resume=True)``
continues an interrupted experiment from that directory with ``Tuner.restore``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from orchestrator.driver_state import (
    KeepLastCompleteSave,
    driver_lock,
    keep_tuner_state,
    repair_state_after_kill,
    repair_tuner_state,
    running_driver,
    session_tables,
    whole_table,
)
from orchestrator.export import checkpoint_config, export_pareto
from orchestrator.methods import build_searcher, get_method
from orchestrator.results import default_reference_point, finished_mask, pareto_front, save_results
from orchestrator.spec import SPEC_FILENAME, Experiment, SpecError, load_experiment, save_experiment
from orchestrator.trials import (
    ELIGIBLE_STATUSES,
    TrialEndingRecorder,
    read_trial_endings,
    read_trial_starts,
    results_frame,
    trial_warnings,
    trials_from_directory,
    with_trial_timeout,
)

logger = logging.getLogger(__name__)

FAILED_TRIALS_DIRNAME = ".raised"
"""Folder of the experiment directory where trials record the exception they raised, so that a
retry for a lost node does not train a trial that failed on its own
(:func:`cluster.fault_tolerance.retry_only_lost_trials`)."""

# Tune's own settings for this run, applied while it runs (a value the user exported wins):
TUNE_ENVIRONMENT = {
    # Tune ends the whole experiment when a result lacks a metric the searcher names; here a
    # trial that omits an objective is recorded as failed by the searcher instead.
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",
    # Write the experiment state (trial table, searcher, latest checkpoint of each trial) at every
    # controller step instead of at most every 10 s, so a driver killed at any moment loses no
    # finished trial, no checkpoint and no suggestion. Our searchers cache their serialised state,
    # so a write in which nothing changed costs little (benchmarks/bench_state_write.py measures it).
    # Tune copies each write to the storage path in the background; a kill during that copy
    # leaves a truncated file, which repair_state_after_kill mends before a resume.
    "TUNE_GLOBAL_CHECKPOINT_S": "0",
    # The state is written every step anyway; without this Ray warns when checkpoints bounded by
    # num_to_keep force extra state snapshots.
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
}


@dataclass
class ExperimentResult:
    """What an experiment produced: one row per trial, the Pareto rows, the files written."""

    experiment: Experiment
    results: pd.DataFrame
    pareto: pd.DataFrame
    paths: dict[str, Path] = field(default_factory=dict)
    experiment_dir: Path | None = None
    warnings: list[str] = field(default_factory=list)
    unfinished: str | None = None
    """What of the budget is left when the run stopped before it (a stop signal: Ctrl-C,
    SIGTERM), or ``None``; ``resume=True`` continues it (:func:`unfinished_budget`)."""


def run(experiment: Experiment, *, resume: bool = False, fresh: bool = False) -> ExperimentResult:
    """Run ``experiment`` (or continue it with ``resume=True``) and save its results.

    Trials that raise, report NaN/inf or omit an objective are recorded with a ``status`` that
    says so; the experiment goes on without them. The experiment state is written at every
    Tune step (:data:`TUNE_ENVIRONMENT`), so after the driver is killed at any moment,
    ``resume=True`` loses no finished trial, continues each unfinished trial from its latest
    checkpoint and suggests no configuration twice. ``fresh=True`` moves an earlier run of the
    same name aside (to ``<name>.replaced-<time>``) and starts anew.

    Example:
        >>> from orchestrator.demo import demo_experiment  # doctest: +SKIP
        >>> result = run(demo_experiment(num_trials=6))  # doctest: +SKIP
        >>> result.pareto[["val_accuracy", "latency_us", "num_params"]]  # doctest: +SKIP
    """
    from orchestrator.preflight import check_before_ray

    check_before_ray(experiment, resume=resume, fresh=fresh)
    storage_dir = experiment.storage_dir
    experiment_dir = storage_dir / experiment.name
    with driver_lock(experiment_dir):  # before Ray starts: a second driver is refused in seconds
        return _run_locked(experiment, experiment_dir, resume=resume, fresh=fresh)


def _run_locked(experiment: Experiment, experiment_dir: Path, *, resume: bool, fresh: bool) -> ExperimentResult:
    from ray import tune

    from cluster.connect import ClusterError, connect
    from orchestrator.preflight import check_cluster, record_location

    try:
        connect(experiment.cluster.address, include_dashboard=False, log_to_driver=True)
    except ClusterError as error:
        raise SpecError(error.message, f"cluster.{error.field}") from None
    check_cluster(experiment)  # the cluster an address names is only known once connected

    storage_dir = experiment_dir.parent
    trainable = _wrapped_trainable(experiment, experiment_dir)
    if fresh and experiment_dir.exists():
        aside = experiment_dir.with_name(f"{experiment.name}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
        experiment_dir.rename(aside)
        logger.warning("Moved the earlier run of %r aside to %s.", experiment.name, aside)

    if resume:
        repair_tuner_state(experiment_dir)
        repair_state_after_kill(experiment_dir)
    if resume and tune.Tuner.can_restore(str(experiment_dir)):
        logger.info("Resuming experiment from %s", experiment_dir)
        # Unfinished trials continue from their latest checkpoint; a trial that raised stays an
        # error (rerunning it would evaluate its configuration twice).
        tuner = tune.Tuner.restore(
            str(experiment_dir), trainable=trainable, resume_unfinished=True, resume_errored=False
        )
    else:
        if resume:
            logger.warning("Nothing to resume in %s; starting a new experiment.", experiment_dir)
        tuner = _build_tuner(experiment, trainable, storage_dir)
        experiment_dir.mkdir(parents=True, exist_ok=True)
        _try_save_spec(experiment, experiment_dir)  # a resumed run keeps the spec it started with
        record_location(experiment_dir)
    keep_tuner_state(experiment_dir)

    started = time.monotonic()
    with tune_environment(), stop_gracefully_on_sigterm():
        grid = tuner.fit()
    elapsed = time.monotonic() - started
    frame = results_frame(grid, experiment, read_trial_endings(experiment_dir), read_trial_starts(experiment_dir))
    result = _finish(experiment, frame, experiment_dir)
    time_budget = experiment.budget.time_budget_s
    if time_budget is None or elapsed < time_budget:  # else it ended as the spec asked
        result.unfinished = unfinished_budget(frame, experiment)
    return result


def unfinished_budget(frame: pd.DataFrame, experiment: Experiment) -> str | None:
    """What is left of ``budget.num_trials`` in a :func:`results_frame` table, or ``None``.

    A run stopped early has trials ``interrupted`` (cut off by the end of the run); without any,
    it ended by itself, even with fewer trials than planned (a searcher may run out of
    configurations). Every status but ``interrupted`` is an ending.

    Example:
        >>> from orchestrator.spec import Budget, Objective
        >>> experiment = Experiment("toy", lambda config: None, {"x": {"type": "uniform", "low": 0, "high": 1}},
        ...                         [Objective("loss", "min")], method="random", budget=Budget(num_trials=5))
        >>> unfinished_budget(pd.DataFrame({"status": ["completed", "error", "interrupted"]}), experiment)
        '2 of 5 trials ended, 1 interrupted, 2 not started'
        >>> unfinished_budget(pd.DataFrame({"status": ["completed", "error"]}), experiment) is None  # ran out
        True
    """
    planned = experiment.budget.num_trials
    interrupted = int((frame["status"] == "interrupted").sum()) if "status" in frame else 0
    not_started = max(0, planned - len(frame))
    if not interrupted:
        return None
    ended = len(frame) - interrupted
    return f"{ended} of {planned} trials ended, {interrupted} interrupted, {not_started} not started"


@contextlib.contextmanager
def stop_gracefully_on_sigterm() -> Iterator[None]:
    """While Tune runs, SIGTERM stops the run as Ctrl-C does; a second SIGTERM ends it at once.

    Kubernetes, Slurm and ``kill`` send SIGTERM before SIGKILL. Without this, Ray's handler in
    the driver dies on it (a stack dump, nothing saved since the last step); with it, Tune
    saves its state, ends the running trials as ``interrupted``, and ``run`` writes the tables,
    so ``--resume`` continues from there. Only in the main thread (where Python can handle
    signals).
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_sigterm(signum: int, frame: Any) -> None:
        logger.warning("SIGTERM received: stopping the run as Ctrl-C would (a second SIGTERM ends it at once).")
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGINT)  # Tune's handler: save the state, stop the trials

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)


def _wrapped_trainable(experiment: Experiment, experiment_dir: Path) -> Any:
    """The spec's trainable with its time limit, retries only for lost trials, and resources.

    The time limit wraps the function itself; the retry guard goes around it, so a trial that
    timed out or raised is not trained again by ``cluster.max_failures``
    (:class:`cluster.fault_tolerance.StopRetryingRaisedTrials` ends it; should Tune retry it
    first, the retry re-raises at once); ``with_resources`` goes outside both. A class
    trainable is retried by Tune after any failure.
    """
    import inspect

    from ray import tune

    from cluster.fault_tolerance import retry_only_lost_trials

    trainable = with_trial_timeout(experiment.resolve_trainable(), experiment.budget.trial_timeout_s)
    if experiment.cluster.max_failures != 0 and not inspect.isclass(trainable):
        trainable = retry_only_lost_trials(trainable, experiment_dir / FAILED_TRIALS_DIRNAME)
    return tune.with_resources(trainable, experiment.resources.trial_resources().to_tune())


def report(experiment_dir: str | Path) -> ExperimentResult:
    """Rebuild tables and plots of a finished, interrupted or killed experiment directory.

    When Tune's experiment state is newer than ``results.csv`` (or there is none: the driver
    was killed), the trial table is read again from that state, without running anything. A
    state the kill left truncated is first mended as ``--resume`` would
    (:func:`repair_state_after_kill`), unless a driver runs the experiment now
    (:func:`running_driver`): then the tables show the state as Tune last copied it.
    """
    from orchestrator.results import RESULTS_FILENAME, load_results

    experiment_dir = Path(experiment_dir)
    spec_path = experiment_dir / SPEC_FILENAME
    if not spec_path.exists():
        raise FileNotFoundError(
            f"{experiment_dir} has no {SPEC_FILENAME}; point `orchestrator report` at the directory "
            "that `orchestrator run` printed (storage_path/name)."
        )
    experiment = load_experiment(spec_path)
    results_csv = experiment_dir / RESULTS_FILENAME
    tables = session_tables(experiment_dir)
    if tables and not whole_table(tables[-1]) and running_driver(experiment_dir) is None:
        # Killed while Tune copied its state (seen: an empty file): mend it as a resume would.
        repair_state_after_kill(experiment_dir)
        tables = session_tables(experiment_dir)
    newest_state = max((table.stat().st_mtime for table in tables), default=0.0)
    if tables and (not results_csv.exists() or newest_state > results_csv.stat().st_mtime):
        frame = trials_from_directory(experiment_dir, experiment)
    else:
        frame = load_results(experiment_dir)
    result = _finish(experiment, frame, experiment_dir)
    if experiment.budget.time_budget_s is None:  # else it may have ended as the spec asked
        result.unfinished = unfinished_budget(frame, experiment)
    return result


def _build_tuner(experiment: Experiment, trainable: Any, storage_dir: Path) -> Any:
    from ray import tune

    from cluster.fault_tolerance import StopRetryingRaisedTrials
    from schedulers.state import SchedulerStateCallback, keeps_state

    if (experiment.thresholds or experiment.constraints) and not get_method(experiment.method).searches_feasible:
        logger.warning(
            "Method %r ignores thresholds and constraints while searching; they are still applied "
            "to the reported Pareto front.", experiment.method,
        )
    searcher = build_searcher(experiment.method, experiment.search_problem(), **experiment.method_options)
    scheduler = build_scheduler(experiment)
    tune_config = tune.TuneConfig(
        search_alg=searcher,
        scheduler=scheduler,
        num_samples=experiment.budget.num_trials,
        max_concurrent_trials=experiment.budget.max_concurrent,
        time_budget_s=experiment.budget.time_budget_s,
        reuse_actors=True,
    )
    run_config = tune.RunConfig(
        name=experiment.name,
        storage_path=str(storage_dir),
        # A trial whose node or worker died restarts from its last checkpoint (_wrapped_trainable
        # keeps trials whose own code raised from being retried).
        failure_config=tune.FailureConfig(max_failures=experiment.cluster.max_failures, fail_fast=False),
        checkpoint_config=checkpoint_config(),
        callbacks=[
            TrialEndingRecorder(storage_dir / experiment.name),
            KeepLastCompleteSave(),
            StopRetryingRaisedTrials(storage_dir / experiment.name / FAILED_TRIALS_DIRNAME),
            # Last: Tune matches callback states by position. Tune does not checkpoint schedulers;
            # this keeps ASHA's rung records across --resume.
            *([SchedulerStateCallback(scheduler)] if keeps_state(scheduler) else []),
        ],
        verbose=1,
    )
    return tune.Tuner(trainable, tune_config=tune_config, run_config=run_config)


def build_scheduler(experiment: Experiment) -> Any:
    """The experiment's scheduler (:meth:`Experiment.scheduler_config`, built), or ``None``."""
    config = experiment.scheduler_config()
    return None if config is None else config.build()


def _finish(experiment: Experiment, frame: pd.DataFrame, experiment_dir: Path) -> ExperimentResult:
    objectives = experiment.objective_set
    if frame.empty or "status" not in frame:
        raise RuntimeError(f"Experiment {experiment.name!r} produced no trials; see the Ray Tune log above.")
    warnings = trial_warnings(frame, experiment)
    for message in warnings:
        logger.warning(message)
    eligible = frame["status"].isin(ELIGIBLE_STATUSES) & _feasible(frame, experiment)
    reference = _reference_point(frame.loc[eligible], objectives)
    paths = save_results(frame, objectives, experiment_dir, reference_point=reference, eligible=eligible)
    paths["pareto_models"] = export_pareto(experiment_dir)
    front = pareto_front(frame.loc[eligible], objectives)
    return ExperimentResult(experiment, frame, front, paths, experiment_dir, warnings)


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


@contextlib.contextmanager
def tune_environment() -> Iterator[None]:
    """Apply :data:`TUNE_ENVIRONMENT` for the duration of a run (values already set win)."""
    added = [name for name in TUNE_ENVIRONMENT if name not in os.environ]
    os.environ.update({name: TUNE_ENVIRONMENT[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


def _try_save_spec(experiment: Experiment, experiment_dir: Path) -> None:
    try:
        save_experiment(experiment, experiment_dir / SPEC_FILENAME)
    except Exception as reason:  # a lambda trainable or a sample_from domain has no YAML form
        logger.warning("Could not write %s (%s); `orchestrator report` needs it.", SPEC_FILENAME, reason)
