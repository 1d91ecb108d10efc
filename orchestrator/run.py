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
import json
import logging
import os
import pickle
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

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
    from ray import tune

    from cluster.connect import ClusterError, connect
    from orchestrator.preflight import check_before_ray, check_cluster

    check_before_ray(experiment, resume=resume, fresh=fresh)
    try:
        connect(experiment.cluster.address, include_dashboard=False, log_to_driver=True)
    except ClusterError as error:
        raise SpecError(error.message, f"cluster.{error.field}") from None
    check_cluster(experiment)  # the cluster an address names is only known once connected

    storage_dir = experiment.storage_dir
    experiment_dir = storage_dir / experiment.name
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
    keep_tuner_state(experiment_dir)

    with tune_environment():
        grid = tuner.fit()
    frame = results_frame(grid, experiment, read_trial_endings(experiment_dir), read_trial_starts(experiment_dir))
    return _finish(experiment, frame, experiment_dir)


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
    (:func:`repair_state_after_kill`).
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
    sessions = _sessions(experiment_dir)
    if sessions and not _all_whole(experiment_dir, _session_files(sessions[-1])[:1]):
        # Killed while Tune copied its state (seen: an empty file): mend it as a resume would.
        repair_state_after_kill(experiment_dir)
        sessions = _sessions(experiment_dir)
    states = [_session_files(session)[0] for session in sessions]
    newest_state = max(((experiment_dir / name).stat().st_mtime for name in states), default=0.0)
    if states and (not results_csv.exists() or newest_state > results_csv.stat().st_mtime):
        frame = trials_from_directory(experiment_dir, experiment)
    else:
        frame = load_results(experiment_dir)
    return _finish(experiment, frame, experiment_dir)


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


# Tune's per-session state files in the experiment directory (checked on Ray 2.60): Tune restores
# from the newest session's files. It writes them first into the driver's staging folder,
# /tmp/ray/session_<id>/artifacts/<time>/<experiment name>/driver_artifacts (the layout
# ray.train's StorageContext documents), then copies them to the experiment directory.
_SESSION_STATE_FILES = (
    "experiment_state-{}.json", "search_gen_state-{}.json", "searcher-state-{}.pkl", "callback-states-{}.pkl",
)
_STAGING_GLOB = "ray/session_*/artifacts/*/{name}/driver_artifacts"


_TUNER_STATE = "tuner.pkl"
_TUNER_STATE_COPY = ".tuner.pkl.whole"


def _copy_atomically(source: Path, target: Path) -> None:
    """Copy ``source`` over ``target`` through a hidden file beside it: a kill leaves either file whole."""
    partial = target.with_name(f".{target.name}.repair")
    shutil.copyfile(source, partial)
    os.replace(partial, target)


def _loads(path: Path) -> bool:
    try:
        pickle.loads(path.read_bytes())
    except Exception:
        return False
    return True


def keep_tuner_state(experiment_dir: Path) -> None:
    """Keep a whole copy of Tune's ``tuner.pkl``, which every ``Tuner`` and ``Tuner.restore`` rewrites.

    Tune truncates and rewrites the file in place when a run starts or resumes (ray 2.60); a
    kill in between leaves it empty and the next resume fails (``EOFError``) before anything
    runs. :func:`repair_tuner_state` puts this copy back.
    """
    source = experiment_dir / _TUNER_STATE
    if source.is_file() and _loads(source):
        _copy_atomically(source, experiment_dir / _TUNER_STATE_COPY)


def repair_tuner_state(experiment_dir: Path) -> bool:
    """Put back the copy :func:`keep_tuner_state` kept when ``tuner.pkl`` does not load; whether it did."""
    state, copy = experiment_dir / _TUNER_STATE, experiment_dir / _TUNER_STATE_COPY
    if not state.is_file() or _loads(state) or not copy.is_file():
        return False
    _copy_atomically(copy, state)
    logger.warning("The driver was killed while Tune rewrote %s; put back the copy kept before.", state)
    return True


def repair_state_after_kill(experiment_dir: Path, temp_dir: str | None = None) -> str:
    """Bring the experiment directory's state files up to what the killed driver last wrote.

    Tune writes its state (trial table, search-generator state, searcher state, callback states
    such as the scheduler's rungs) into the driver's staging folder at every step, under names
    that carry the session (each resume starts a new one, and first copies the older sessions'
    files into its own staging folder), then copies the folder to the experiment directory in
    the background, skipping a copy while the last one still runs. A kill can therefore leave
    the experiment directory's copy

    - without the killed session's files at all (killed before Tune's first copy of them): Tune
      would resume from the session before, and trials since then would start again;
    - truncated or empty (killed during the copy): Tune would fail to restore and start over;
    - whole but a step or more behind (killed before the copy): a trial whose newest checkpoint
      is missing from that copy restarts from an older one, or from scratch.

    The killed driver's staging copy is taken (atomically) when it is whole and, if the
    experiment directory's copy is whole too, when it is newer and consistent: Tune writes the
    trial table first and the other files after it, so they must be at least as new as the table
    (a kill between the two leaves a table ahead of its searcher, which could suggest a
    configuration again). When neither copy is whole, the last whole copy of the session in an
    earlier staging folder is taken. Without any, truncated files are set aside (suffix
    ``.truncated``) and Tune resumes from the session before, whose files are whole.

    Returns:
        ``"whole"`` (nothing to mend), ``"from staging"`` or ``"set aside"``.
    """
    copies = _staging_copies(experiment_dir, Path(temp_dir or tempfile.gettempdir()))
    sessions = _sessions(experiment_dir)
    if copies:
        unsynced = [session for session in _sessions(copies[0]) if session > max(sessions, default="")]
        if unsynced:
            names = _session_files(unsynced[-1])
            if _all_whole(copies[0], names) and _written_in_order(copies[0], names):
                _take(copies[0], experiment_dir, names)
                logger.warning(
                    "The driver was killed before Tune first copied %s; took the copy it last wrote from %s.",
                    names[0], copies[0],
                )
                return "from staging"
            logger.warning(
                "The driver was killed while Tune first wrote %s; resuming from the session before it "
                "(trials of the killed session run again from their checkpoints).", names[0],
            )
    if not sessions:
        return "whole"
    names = _session_files(sessions[-1])
    whole = _all_whole(experiment_dir, names)
    holding = [copy for copy in copies if (copy / names[0]).is_file()]
    newest = holding[0] if holding and _all_whole(holding[0], names) else None
    if newest is not None and (
        not whole or (_written_in_order(newest, names) and not _same_files(newest, experiment_dir, names))
    ):
        _take(newest, experiment_dir, names)
        logger.warning(
            "The driver was killed %s %s; took the whole copy it last wrote from %s.",
            "before Tune copied its newest" if whole else "while Tune copied", names[0], newest,
        )
        return "from staging"
    if whole:
        if holding and (newest is None or not _written_in_order(newest, names)):
            logger.warning(
                "The driver was killed while Tune wrote %s into %s; resuming from the experiment "
                "directory's copy, which may be a step behind.", names[0], holding[0],
            )
        return "whole"
    # Killed while writing both copies: the last whole copy in an earlier staging folder (a
    # later driver's holds the session's files as it found them when it started).
    older = next((copy for copy in holding[1:] if _all_whole(copy, names)), None)
    if older is not None:
        _take(older, experiment_dir, names)
        logger.warning(
            "The driver was killed while Tune wrote %s and its staging copy; took the last whole copy, "
            "from %s; trials since then run again from their checkpoints.", names[0], older,
        )
        return "from staging"
    for name in names:
        path = experiment_dir / name
        if path.exists():
            path.rename(path.with_name(name + ".truncated"))
    logger.warning(
        "The driver was killed while Tune wrote %s and no whole copy is left; resuming from the session "
        "before it (trials of the killed session since that state run again).", names[0],
    )
    return "set aside"


def _sessions(folder: Path) -> list[str]:
    """The sessions whose trial table is in ``folder``, oldest first (their names are times)."""
    prefix, suffix = _SESSION_STATE_FILES[0].split("{}")
    return sorted(path.name[len(prefix):-len(suffix)] for path in folder.glob(_SESSION_STATE_FILES[0].format("*")))


def _session_files(session: str) -> list[str]:
    return [template.format(session) for template in _SESSION_STATE_FILES]


def _take(staging: Path, experiment_dir: Path, names: list[str]) -> None:
    for name in names:
        if (staging / name).is_file():
            _copy_atomically(staging / name, experiment_dir / name)


def _staging_copies(experiment_dir: Path, root: Path) -> list[Path]:
    """This experiment's driver staging folders, newest first.

    The same name may have staged another experiment: a folder is this one's when the trial
    folders staged in it are this experiment's, or, before any, when it holds a trial table
    this experiment directory holds too (a resumed driver copies them there first).
    """
    ours = set(_sessions(experiment_dir)) if experiment_dir.is_dir() else set()
    copies = []
    for staging in sorted(root.glob(_STAGING_GLOB.format(name=experiment_dir.name)), reverse=True):
        trial_dirs = [path.name for path in staging.iterdir() if path.is_dir()]
        if trial_dirs:
            if any((experiment_dir / name).is_dir() for name in trial_dirs):
                copies.append(staging)
        elif ours & set(_sessions(staging)):
            copies.append(staging)
    return copies


def _written_in_order(folder: Path, names: list[str]) -> bool:
    """Whether every other session file is at least as new as the trial table (one complete save)."""
    table = (folder / names[0]).stat().st_mtime_ns
    return all((folder / name).stat().st_mtime_ns >= table for name in names[1:] if (folder / name).is_file())


def _same_files(first: Path, second: Path, names: list[str]) -> bool:
    def content(path: Path) -> bytes | None:
        return path.read_bytes() if path.is_file() else None

    return all(content(first / name) == content(second / name) for name in names)


def _all_whole(folder: Path, names: list[str]) -> bool:
    """Whether the trial table parses and the other files of the session, where present, load."""
    for index, name in enumerate(names):
        path = folder / name
        if not path.is_file():
            if index == 0:
                return False
            continue
        data = path.read_bytes()
        try:
            json.loads(data)
        except ValueError:
            if index == 0:
                return False
            try:  # Tune pickles the search-generator state; searchers save JSON or pickle
                pickle.loads(data)
            except Exception:
                return False
    return True


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
