"""How each trial of a Tune run ended, as one table: ``status``, values, errors, and warnings.

:func:`results_frame` reads a ``ray.tune.ResultGrid`` through its public ``Result`` objects
(``metrics``, ``config``, ``error``, ``path``) into one row per trial whose ``status`` is one of
:data:`STATUSES`; only :data:`ELIGIBLE_STATUSES` may sit on the Pareto front.

Why a trial ended is not in its ``Result``: a trial stopped by the scheduler, one whose training
function returned, and one cut off by the end of the experiment (``time_budget_s``, Ctrl-C) all
come back ``TERMINATED`` with a last result. So :class:`TrialEndingRecorder`, a Tune
``Callback``, writes each ending as it happens to ``trial_endings.txt`` in the experiment
directory (see :meth:`TrialEndingRecorder.ending` for how it tells them apart), and
:func:`results_frame` reads it back: a trial with no recorded ending did not end by itself or by
the scheduler, so it was ``interrupted``, also after the driver itself was killed.

``budget.trial_timeout_s`` is enforced inside the trial by :func:`with_trial_timeout`: a Tune
``Stopper`` only runs when a trial reports, so it can never end a trial that hangs.
:func:`trial_warnings` names the misconfigurations that leave no other trace (a ``max_t`` the
trainable never reaches, a ``time_attr`` or constraint metric nobody reports).

Example:
    >>> sorted(ELIGIBLE_STATUSES)
    ['completed', 'stopped']
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import math
import os
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from ray.tune import Callback

from orchestrator.export import checkpoint_path
from orchestrator.results import CHECKPOINT_COLUMN, CONFIG_PREFIX
from orchestrator.spec import Experiment

logger = logging.getLogger(__name__)

__all__ = [
    "ELIGIBLE_STATUSES",
    "ENDINGS_FILENAME",
    "STATUSES",
    "TrialEndingRecorder",
    "TrialTimeoutError",
    "error_text",
    "read_trial_endings",
    "read_trial_starts",
    "results_frame",
    "trial_warnings",
    "trials_from_directory",
    "with_trial_timeout",
]

STATUSES = ("completed", "stopped", "interrupted", "timeout", "error", "invalid_objective")
"""``completed``: ended by itself (or at the scheduler's ``max_t``); ``stopped``: stopped early by
the scheduler; ``interrupted``: cut off by the end of the experiment; ``timeout``: ran past
``budget.trial_timeout_s``; ``error``: raised; ``invalid_objective``: its last result has no
finite value for an objective (the ``error`` column says which)."""

ELIGIBLE_STATUSES = ("completed", "stopped")
"""The statuses whose trials may be Pareto-optimal: they ended with a result they meant to give."""

STARTS_FILENAME = "trial_starts.txt"
"""Trial directory names, one a line, in the order the trials first started (append-only)."""

ENDINGS_FILENAME = "trial_endings.txt"
"""Written by :class:`TrialEndingRecorder` into the experiment directory. Not ``.json``: on restore
Tune copies every ``*.json`` and ``*.pkl`` of the experiment directory into its staging folder and
then keeps uploading those copies back, which would overwrite the endings recorded since (seen
with Ray 2.60)."""

_BY_TRAINABLE, _BY_SCHEDULER, _BY_ERROR = "trainable", "scheduler", "error"
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
_ERROR_CHARS = 500


# ----------------------------------------------------------------------------- the table
def results_frame(
    grid: Any, experiment: Experiment, endings: Mapping[str, str], starts: Sequence[str] = ()
) -> pd.DataFrame:
    """One row per trial: ``trial_id``, ``trial_order``, progress, metrics, ``status``, ``error``, ``config/*``.

    Args:
        grid: a ``ResultGrid`` (any iterable of ``Result``).
        experiment: says the objectives, the constraint metrics and the scheduler's ``time_attr``
            (a column of its own) and ``max_t``.
        endings: :func:`read_trial_endings` of the experiment directory.
        starts: :func:`read_trial_starts`: trial directory names in the order the trials first
            started. ``trial_order`` (1-based, rows sorted by it) follows it; trials missing
            from it (never started) come after, in the grid's order. The grid's own order is not
            the creation order once a run was resumed (Tune requeues restored trials).

    A trial that failed before reporting anything has no ``trial_id`` in its metrics and is
    named by its directory, and its config is read from the ``params.json`` there. ``error``
    holds ``Type: message`` of a trial's exception, or the objectives an ``invalid_objective``
    trial lacks (``val_accuracy is NaN``).

    Example:
        >>> from types import SimpleNamespace
        >>> from orchestrator.spec import Objective
        >>> space = {"lr": {"type": "loguniform", "low": 1e-4, "high": 0.1}}
        >>> experiment = Experiment("toy", lambda config: None, space, [Objective("loss", "min")], method="random")
        >>> result = SimpleNamespace(metrics={"loss": float("nan"), "training_iteration": 3},
        ...                          config={"lr": 0.1}, error=None, path="/runs/toy/t1")
        >>> results_frame([result], experiment, {"t1": "trainable"})[["trial_id", "status", "error"]].to_dict("records")
        [{'trial_id': 't1', 'status': 'invalid_objective', 'error': 'loss is NaN'}]
    """
    scheduler = experiment.scheduler_config()
    progress_columns = ["training_iteration", "time_total_s"]
    if scheduler is not None and scheduler.time_attr not in progress_columns:
        progress_columns.append(scheduler.time_attr)
    rows = []
    for order, result in enumerate(grid, start=1):
        metrics = dict(result.metrics or {})
        directory = Path(str(result.path)).name
        row: dict[str, Any] = {"trial_id": metrics.get("trial_id") or directory, "trial_order": order}
        for name, value in _flatten(_trial_config(result)).items():
            row[CONFIG_PREFIX + name] = value
        for key in progress_columns:
            row[key] = metrics.get(key)
        for name in list(experiment.objective_set) + [c.metric for c in experiment.parsed_constraints]:
            row[name] = _as_float(metrics.get(name))
        row["status"], row["error"] = _status(result, endings.get(directory), experiment.objective_set, scheduler)
        row[CHECKPOINT_COLUMN] = checkpoint_path(result)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    first_start = {name: rank for rank, name in enumerate(dict.fromkeys(starts))}
    directories = [Path(str(result.path)).name for result in grid]
    rank = [first_start.get(name, len(first_start) + position) for position, name in enumerate(directories)]
    frame = frame.iloc[sorted(range(len(frame)), key=rank.__getitem__)].reset_index(drop=True)
    frame["trial_order"] = range(1, len(frame) + 1)
    return frame


def _trial_config(result: Any) -> dict[str, Any]:
    # Result.config comes from the last result, so a trial that never reported has none; Tune's
    # JSON logger wrote it to params.json in the trial directory when the trial started. A
    # driver killed while it wrote the file leaves it empty or cut: the config is then unknown,
    # and the report goes on without it.
    if result.config:
        return result.config
    params = Path(str(result.path)) / "params.json"
    try:
        return json.loads(params.read_text()) if params.is_file() else {}
    except json.JSONDecodeError:
        logger.warning("%s is empty or cut (the driver was killed while writing it); config unknown.", params)
        return {}


def _status(result: Any, ending: str | None, objectives: Any, scheduler: Any) -> tuple[str, str]:
    """``(status, error)`` of one trial; the order of the checks is the precedence of the statuses."""
    if result.error or ending == _BY_ERROR:
        text = error_text(result.error) if result.error else ""
        return ("timeout" if text.startswith(TrialTimeoutError.__name__ + ":") else "error"), text
    if ending not in (_BY_TRAINABLE, _BY_SCHEDULER):
        return "interrupted", ""
    metrics = result.metrics or {}
    problems = objectives.problems(metrics)
    if problems:
        return "invalid_objective", "; ".join(f"{name} is {reason}" for name, reason in problems.items())
    # ASHA and HyperBand stop every trial that reaches max_t: that trial had its full budget.
    reached_max_t = scheduler is not None and _as_float(metrics.get(scheduler.time_attr)) >= scheduler.max_t
    if ending == _BY_SCHEDULER and not reached_max_t:
        return "stopped", ""
    return "completed", ""


def error_text(error: Any) -> str:
    """``Type: message`` of the exception a trial raised, on one line, without colour codes.

    ``error`` is what ``Result.error`` holds: a ``RayTaskError`` whose ``cause`` is the user's
    exception, another exception, or the text of the trial's ``error.txt``, whose last traceback
    entry is taken.

    Example:
        >>> text = "\\x1b[36mray::ImplicitFunc.train()\\x1b[39m (pid=7)\\n  File \\"t.py\\", line 3, in f\\n    raise ValueError('lr')\\nValueError: lr"
        >>> error_text(text)
        'ValueError: lr'
    """
    cause = getattr(error, "cause", None)  # RayTaskError.cause: the exception the trainable raised
    if isinstance(cause, BaseException):
        error = cause
    if isinstance(error, BaseException):
        message = _ANSI_ESCAPE.sub("", str(error)).strip()
        text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    else:
        text = _last_exception(_ANSI_ESCAPE.sub("", str(error)))
    text = " ".join(text.split())
    return text if len(text) <= _ERROR_CHARS else text[: _ERROR_CHARS - 1] + "…"


def _last_exception(text: str) -> str:
    """The lines after the last traceback frame (``  File ...`` and its indented source lines)."""
    lines = [line for line in text.splitlines() if not line.startswith("Failure # ")]
    frames = [i for i, line in enumerate(lines) if line.lstrip().startswith('File "')]
    if not frames:
        return "\n".join(lines)
    rest = lines[frames[-1] + 1 :]
    while rest and (not rest[0].strip() or rest[0][0].isspace()):
        rest.pop(0)
    return "\n".join(rest)


# ----------------------------------------------------------------------------- warnings
def trial_warnings(frame: pd.DataFrame, experiment: Experiment) -> list[str]:
    """Messages for settings that silently did nothing, read off a :func:`results_frame` table.

    - the scheduler's ``max_t`` is above the last epoch of every ``completed`` trial, so its
      rungs above that never happen;
    - its ``time_attr`` is in no trial's results, so it never stopped a trial;
    - a constraint's metric is in no trial's results, so every trial is infeasible.

    Trials that reported nothing (no ``training_iteration``) are not evidence either way.

    Example:
        >>> from orchestrator.spec import Objective
        >>> space = {"lr": {"type": "loguniform", "low": 1e-4, "high": 0.1}}
        >>> experiment = Experiment("toy", lambda config: None, space, [Objective("loss", "min")],
        ...                         constraints=["size <= 10"], method="random")
        >>> frame = pd.DataFrame({"training_iteration": [4], "status": ["completed"], "loss": [0.1], "size": [None]})
        >>> print(trial_warnings(frame, experiment)[0])  # doctest: +ELLIPSIS
        constraints: got 'size <= 10', but no trial reported 'size', so every trial is infeasible...
    """
    reported = frame.loc[_numeric(frame, "training_iteration").notna()]
    if reported.empty:
        return []
    messages = []
    scheduler = experiment.scheduler_config()
    if scheduler is not None and scheduler.time_attr in reported:
        attr, max_t = scheduler.time_attr, scheduler.max_t
        progress = _numeric(reported, attr)
        completed = progress[reported["status"] == "completed"]
        if progress.isna().all():
            messages.append(
                f"scheduler.time_attr: got {attr!r}, which no trial reported, so the {scheduler.type} "
                f"scheduler never stopped a trial early; report it (ray.tune.report({{{attr!r}: epoch, ...}})) "
                "or use time_attr 'training_iteration' (one step per ray.tune.report call)."
            )
        elif not completed.empty and completed.notna().all() and completed.max() < max_t:
            last = f"{completed.max():g}"
            messages.append(
                f"scheduler.max_t: got {max_t}, but every completed trial ended by itself at {attr} <= "
                f"{last}, so the {scheduler.type} scheduler plans rungs up to {max_t} that never happen; "
                f"set scheduler.max_t to {last}, the {attr} the trainable runs to."
            )
    for text, constraint in zip(experiment.constraints, experiment.parsed_constraints):
        if _numeric(reported, constraint.metric).isna().all():
            messages.append(
                f"constraints: got {text!r}, but no trial reported {constraint.metric!r}, so every trial "
                f"is infeasible and the Pareto front is empty; report {constraint.metric!r} from the "
                "trainable or fix the metric name."
            )
    return messages


# ----------------------------------------------------------------------------- endings
class TrialEndingRecorder(Callback):
    """A Tune ``Callback`` that writes why each trial ended to ``experiment_dir/trial_endings.txt``.

    Pass it to ``tune.RunConfig(callbacks=[TrialEndingRecorder(experiment_dir)])``. The file maps
    each trial's directory name to ``"trainable"``, ``"scheduler"`` or ``"error"`` and is
    rewritten after every ending, so a killed driver leaves the endings so far. Tune pickles its
    callbacks with the experiment, so the record is (re)read in :meth:`setup`, at the start of
    every ``fit``, and a resumed run adds to the first run's endings.

    Example:
        >>> import tempfile
        >>> recorder = TrialEndingRecorder(tempfile.mkdtemp())
        >>> recorder.ending(status="RUNNING", stop_decided=False)
        'trainable'
    """

    def __init__(self, experiment_dir: str | os.PathLike[str]) -> None:
        self.path = Path(experiment_dir) / ENDINGS_FILENAME
        self.endings: dict[str, str] = {}
        self.started: set[str] = set()
        self.stop_decided: set[str] = set()

    def setup(self, **info: Any) -> None:
        self.endings = read_trial_endings(self.path.parent)
        self.started = set(read_trial_starts(self.path.parent))
        self.stop_decided = set()

    @staticmethod
    def ending(status: str, stop_decided: bool) -> str:
        """Who ended a trial that Tune completes (``on_trial_complete``), from what Tune shows then.

        Tune (2.60, ``TuneController``) calls ``on_trial_complete`` only through ``stop_trial``:
        for a STOP decision on a result (``done=True`` in the result passed to
        ``on_trial_result``: the scheduler, or a ``Stopper``), for a paused or pending trial a
        scheduler drops (HyperBand; the trial is not ``RUNNING``), and for a running trial whose
        function returned (neither). The end of the experiment (``time_budget_s``, Ctrl-C, a
        ``Stopper.stop_all``) stops the remaining trials without any ``on_trial_*`` hook.
        """
        return _BY_SCHEDULER if stop_decided or status != "RUNNING" else _BY_TRAINABLE

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, None)  # a resumed trial has not ended yet
        name = Path(str(trial.path)).name
        if name not in self.started:  # the first start only: the order trials began in
            self.started.add(name)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path.parent / STARTS_FILENAME, "a") as starts:
                starts.write(name + "\n")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if result.get("done"):
            self.stop_decided.add(trial.trial_id)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, self.ending(trial.status, trial.trial_id in self.stop_decided))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record(trial, _BY_ERROR)

    def _record(self, trial: Any, ending: str | None) -> None:
        key = Path(str(trial.path)).name
        if ending is None:
            if self.endings.pop(key, None) is None:
                return
        else:
            self.endings[key] = ending
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.path.with_name(self.path.name + ".tmp")
        staged.write_text(json.dumps(self.endings, indent=1, sort_keys=True))
        os.replace(staged, self.path)  # atomic: a reader never sees half a file


def read_trial_starts(experiment_dir: str | os.PathLike[str]) -> list[str]:
    """Trial directory names in the order the trials first started (:class:`TrialEndingRecorder`).

    Example:
        >>> read_trial_starts("/nonexistent")
        []
    """
    path = Path(experiment_dir) / STARTS_FILENAME
    names = path.read_text().split("\n") if path.is_file() else []
    return list(dict.fromkeys(name for name in names if name))


def read_trial_endings(experiment_dir: str | os.PathLike[str]) -> dict[str, str]:
    """``{trial directory name: ending}`` that :class:`TrialEndingRecorder` wrote; ``{}`` if none.

    Example:
        >>> read_trial_endings("/nonexistent")
        {}
    """
    path = Path(experiment_dir) / ENDINGS_FILENAME
    return json.loads(path.read_text()) if path.is_file() else {}


def trials_from_directory(experiment_dir: str | os.PathLike[str], experiment: Experiment) -> pd.DataFrame:
    """:func:`results_frame` of an experiment directory, from Tune's own files (no Ray session).

    For a run whose driver died before it wrote ``results.csv``: Tune's last saved experiment
    state gives the trials, :func:`read_trial_endings` their endings; trials without one are
    ``interrupted``.

    Example:
        >>> from orchestrator.spec import load_experiment
        >>> experiment = load_experiment("results/digits/experiment.yaml")  # doctest: +SKIP
        >>> frame = trials_from_directory("results/digits", experiment)  # doctest: +SKIP
    """
    from ray.tune import ExperimentAnalysis, ResultGrid

    grid = ResultGrid(ExperimentAnalysis(str(experiment_dir)))
    return results_frame(grid, experiment, read_trial_endings(experiment_dir), read_trial_starts(experiment_dir))


# ----------------------------------------------------------------------------- time limit
class TrialTimeoutError(Exception):
    """A trial ran longer than ``budget.trial_timeout_s``; :func:`results_frame` calls it ``timeout``."""


def with_trial_timeout(trainable: Callable[..., Any], seconds: float | None) -> Callable[..., Any]:
    """``trainable`` ending with :class:`TrialTimeoutError` once it has run ``seconds``; as is for ``None``.

    The training function runs in a thread of its own while the trial's thread waits for it at
    most ``seconds`` and then raises, so a trial that hangs (in ``time.sleep``, a dead data
    loader, a deadlock) ends too; the abandoned thread is a daemon and goes with the trial's
    actor. ``ray.tune.report`` and ``get_checkpoint`` work from that thread (Tune's session is
    per process). The clock starts when the function starts, again after a resume. Wrap before
    ``tune.with_resources``.

    Raises:
        ValueError: for a class or generator trainable (only ``def train(config)`` is wrapped).

    Example:
        >>> import time
        >>> with_trial_timeout(lambda config: config["x"], 5)({"x": 1})
        1
        >>> with_trial_timeout(lambda config: time.sleep(60), 0.1)({})
        Traceback (most recent call last):
        ...
        orchestrator.trials.TrialTimeoutError: budget.trial_timeout_s: got 0.1, and the trial ran longer without finishing; raise it or find where the trainable hangs.
    """
    if seconds is None:
        return trainable
    if inspect.isclass(trainable) or inspect.isgeneratorfunction(trainable):
        raise ValueError(
            f"budget.trial_timeout_s: got {seconds} for {trainable!r}; it applies to function trainables "
            "`def train(config)` that call ray.tune.report, so use one or drop trial_timeout_s."
        )

    @functools.wraps(trainable)
    def timed(config: dict) -> Any:
        return _call_with_timeout(trainable, config, seconds)

    return timed


def _call_with_timeout(function: Callable[..., Any], config: dict, seconds: float) -> Any:
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = function(config)
        except BaseException as error:  # noqa: BLE001 - re-raised below in the trial's own thread
            outcome["error"] = error

    worker = threading.Thread(target=target, name="trainable", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TrialTimeoutError(
            f"budget.trial_timeout_s: got {seconds:g}, and the trial ran longer without finishing; "
            "raise it or find where the trainable hangs."
        )
    if "error" in outcome:
        raise outcome["error"]  # SystemExit(0) too: Tune's own signal that it stopped the trial
    return outcome.get("value")


# ----------------------------------------------------------------------------- helpers
def _flatten(config: dict, prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "/"))
        else:
            flat[name] = value
    return flat


def _numeric(frame: pd.DataFrame, column: str) -> pd.Series:
    """``frame[column]`` as floats (unusable entries NaN); all NaN when the column is absent."""
    if column not in frame:
        return pd.Series(math.nan, index=frame.index)
    return pd.to_numeric(frame[column], errors="coerce")


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan
