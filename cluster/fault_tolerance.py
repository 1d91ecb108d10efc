"""Retry the trials whose node or worker was lost, not those whose own code raised.

Tune's ``FailureConfig(max_failures=n)`` restarts a failed trial from its last checkpoint up to
``n`` times, whatever the failure: a node that died, but also a ``ValueError`` in the
training code or a trial that ran past its time limit, which would then run ``n + 1`` times
and fail the same way each time. :func:`retry_only_lost_trials` wraps a function trainable so
that an exception raised by the trainable is recorded (in ``record_dir``, one file per trial)
before it propagates; a retry of that trial re-raises the recorded exception at once instead of
training again. A trial whose node or worker process died never reached that ``except``, so its
retry trains on from the last checkpoint.

A retry still costs Tune a new actor for the trial (seconds). Pass
:class:`StopRetryingRaisedTrials` to ``RunConfig(callbacks=...)`` as well: it reads the records
at every step of Tune's loop and lowers the retry limit of a trial that raised before Tune
handles the failure, so that trial is not retried at all (or, if Tune handles the failure
first, retried once).

``record_dir`` must be reachable from every node, like the checkpoints: a folder in the
experiment's storage.

Example:
    >>> import tempfile
    >>> def train(config):
    ...     raise ValueError("lr: got 3.0; use lr < 1.")
    >>> wrapped = retry_only_lost_trials(train, tempfile.mkdtemp())
    >>> wrapped({})  # outside a Tune trial nothing is recorded, the error passes through
    Traceback (most recent call last):
    ...
    ValueError: lr: got 3.0; use lr < 1.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback

__all__ = ["RECORD_SUFFIX", "StopRetryingRaisedTrials", "recorded_failure", "retry_only_lost_trials"]

RECORD_SUFFIX = ".raised.pkl"
"""Suffix of the file that holds the exception a trial raised, named by its trial id."""

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
# Seconds a trial waits between recording its exception and raising it, so that Tune's loop
# (one step every 0.1 s or so, Ray 2.60) sees the record before the failure.
_HANDOFF_S = 1.0


def _record_path(record_dir: str | os.PathLike[str], trial_id: str) -> Path:
    return Path(record_dir) / (_UNSAFE.sub("_", trial_id) + RECORD_SUFFIX)


def _current_trial_id() -> str | None:
    """The id of the Tune trial this process runs, ``None`` outside one."""
    import warnings

    try:
        from ray import tune

        with warnings.catch_warnings():  # Ray warns, then returns None, outside a trial
            warnings.simplefilter("ignore")
            return tune.get_context().get_trial_id()
    except Exception:  # no Tune session: called directly, or in a plain Ray task
        return None


def recorded_failure(record_dir: str | os.PathLike[str], trial_id: str) -> BaseException | None:
    """The exception trial ``trial_id`` raised, as :func:`retry_only_lost_trials` recorded it.

    Example:
        >>> import tempfile
        >>> recorded_failure(tempfile.mkdtemp(), "a1b2c3") is None
        True
    """
    from ray import cloudpickle

    path = _record_path(record_dir, trial_id)
    if not path.is_file():
        return None
    try:
        return cloudpickle.loads(path.read_bytes())
    except Exception as error:  # a class that no longer imports, a half-written file
        return RuntimeError(f"the trial raised before its retry (its record {path} reads back as {error!r})")


def _record(record_dir: str | os.PathLike[str], trial_id: str, error: BaseException) -> None:
    from ray import cloudpickle

    try:
        data = cloudpickle.dumps(error)
    except Exception:  # an exception holding a lock or a socket: keep its text
        data = cloudpickle.dumps(RuntimeError(f"{type(error).__name__}: {error}"))
    path = _record_path(record_dir, trial_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    staged = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staged.write_bytes(data)
    os.replace(staged, path)  # atomic: a retry never reads half a record


def retry_only_lost_trials(trainable: Callable[..., Any], record_dir: str | os.PathLike[str]) -> Callable[..., Any]:
    """``trainable`` whose retries after its own exception re-raise it instead of training again.

    Wrap the function trainable (after any time limit, before ``tune.with_resources``) and set
    ``FailureConfig(max_failures=n)``: a trial whose node or worker died restarts from its last
    checkpoint up to ``n`` times, a trial that raised ends with the same error after ``n`` quick
    retries. ``SystemExit`` (Tune's own signal that it stopped the trial) and
    ``KeyboardInterrupt`` pass through unrecorded.

    Raises:
        ValueError: for a class or generator trainable (only ``def train(config)`` is wrapped).

    Example:
        >>> import tempfile
        >>> retry_only_lost_trials(lambda config: config["x"], tempfile.mkdtemp())({"x": 2})
        2
    """
    if inspect.isclass(trainable) or inspect.isgeneratorfunction(trainable):
        raise ValueError(
            f"trainable: got {trainable!r}; retry_only_lost_trials wraps function trainables "
            "`def train(config)` that call ray.tune.report, so pass one or retry class trainables with "
            "FailureConfig alone."
        )
    record_dir = os.fspath(record_dir)

    @functools.wraps(trainable)
    def retried(config: dict) -> Any:
        trial_id = _current_trial_id()
        if trial_id is not None:
            earlier = recorded_failure(record_dir, trial_id)
            if earlier is not None:
                raise earlier
        try:
            return trainable(config)
        except Exception as error:
            if trial_id is not None:
                _record(record_dir, trial_id, error)
                time.sleep(_HANDOFF_S)
            raise

    return retried


class StopRetryingRaisedTrials(Callback):
    """A Tune ``Callback`` that lets a trial whose own code raised be retried once, not ``max_failures`` times.

    At the start of each step of Tune's loop, a trial that :func:`retry_only_lost_trials`
    recorded as raised (in ``record_dir``) gets its retry limit lowered to its failures so far
    (Ray 2.60: ``Trial.should_recover`` is ``num_failures <= max_failures``, public attributes
    of ``ray.tune.experiment.Trial``), so the failure on its way ends the trial. Should Tune
    handle the failure first, the same happens when it schedules the retry, and that retry,
    which re-raises at once, ends the trial. Trials that lost their node keep the whole
    ``max_failures``.

    Example:
        >>> import tempfile
        >>> from ray import tune
        >>> record_dir = tempfile.mkdtemp()
        >>> config = tune.RunConfig(callbacks=[StopRetryingRaisedTrials(record_dir)],
        ...                         failure_config=tune.FailureConfig(max_failures=3))
    """

    def __init__(self, record_dir: str | os.PathLike[str]) -> None:
        self.record_dir = os.fspath(record_dir)
        self.records_seen = -1

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        try:
            names = os.listdir(self.record_dir)
        except FileNotFoundError:
            return
        if len(names) == self.records_seen:  # nothing new since the last step
            return
        self.records_seen = len(names)
        raised = {name[: -len(RECORD_SUFFIX)] for name in names if name.endswith(RECORD_SUFFIX)}
        for trial in trials:
            if _UNSAFE.sub("_", trial.trial_id) in raised:
                self._final(trial)

    def on_trial_recover(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if recorded_failure(self.record_dir, trial.trial_id) is not None:
            self._final(trial)

    @staticmethod
    def _final(trial: Any) -> None:
        """The trial's next failure ends it: ``num_failures + 1 > max_failures``."""
        if trial.max_failures < 0 or trial.max_failures > trial.num_failures:
            trial.max_failures = trial.num_failures
