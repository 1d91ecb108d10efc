"""Lightweight stand-ins for Ray Tune's ``Trial`` and ``TuneController`` in the simulated cluster.

Ray's schedulers (``FIFOScheduler``, ``ASHAScheduler``, ``HyperBandScheduler``, median stopping)
only touch a handful of attributes: ``trial.trial_id``, ``trial.status``, ``trial.config``,
``trial.last_result``, ``trial.is_saving``, ``trial.is_finished()`` and
``tune_controller.get_trials()``, ``get_live_trials()``, ``stop_trial()``, ``pause_trial()``.
These classes implement exactly those, so a scheduler runs without a Ray session.
``history_frame`` turns finished trials into the simulator's history table.

This module knows nothing of the cluster: the controller is handed the cluster's trial
collections and its stop/pause callables, so the import graph stays a tree.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pandas as pd
from ray.tune.experiment.trial import Trial

__all__ = ["SimulatedController", "SimulatedTrial", "history_frame"]


class SimulatedTrial:
    """A trial of the simulated cluster, shaped like ``ray.tune.experiment.Trial`` for schedulers.

    Hashing is by identity (HyperBand keys its brackets by trial object), like Ray's ``Trial``.

    Example:
        >>> trial = SimulatedTrial("trial_00000", {"lr": 0.1})
        >>> trial.status
        'PENDING'
    """

    __slots__ = (
        "trial_id",
        "config",
        "candidate_index",
        "status",
        "last_result",
        "steps_done",
        "num_steps",
        "cost_so_far",
        "last_step_cost",
        "start_time",
        "segment_start",
        "worker",
        "pending_outcome",
        "pending_increment",
        "fixed_fidelity",
    )

    is_saving = False  # the simulator checkpoints instantly, so a trial is never mid-save

    def __init__(
        self, trial_id: str, config: dict[str, Any], candidate_index: int | None = None
    ) -> None:
        self.trial_id = trial_id
        self.config = config
        self.candidate_index = candidate_index
        self.status = Trial.PENDING
        self.last_result: dict[str, Any] = {}
        self.steps_done = 0  # fidelity steps reported so far
        self.num_steps = 1  # steps until the trial completes naturally
        self.cost_so_far = 0.0  # simulated seconds of training spent on this trial
        self.last_step_cost = 0.0  # blackbox cost (from scratch) at the last reported step
        self.start_time: float | None = None
        self.segment_start = 0.0
        self.worker: int | None = None
        self.pending_outcome: dict[str, float] | BaseException | None = None
        self.pending_increment = 0.0
        self.fixed_fidelity: float | None = None  # set when the suggestion named its fidelity

    def is_finished(self) -> bool:
        """Whether the trial reached a terminal status (``TERMINATED`` or ``ERROR``)."""
        return self.status in (Trial.TERMINATED, Trial.ERROR)

    def __repr__(self) -> str:
        return f"SimulatedTrial({self.trial_id}, {self.status})"


class SimulatedController:
    """The ``tune_controller`` argument handed to scheduler hooks.

    ``trials`` and ``live_trials`` are the cluster's own collections (kept up to date by it, read
    here); ``stop_trial`` and ``pause_trial`` are the cluster's transitions.

    Example:
        >>> trials, stopped = [SimulatedTrial("trial_00000", {})], []
        >>> controller = SimulatedController(trials, set(trials), stop_trial=stopped.append,
        ...                                  pause_trial=lambda trial: None)
        >>> controller.stop_trial(trials[0])
        >>> controller.get_trials() == stopped
        True
    """

    __slots__ = ("_trials", "_live_trials", "_stop_trial", "_pause_trial")

    def __init__(
        self,
        trials: list[SimulatedTrial],
        live_trials: set[SimulatedTrial],
        *,
        stop_trial: Callable[[SimulatedTrial], None],
        pause_trial: Callable[[SimulatedTrial], None],
    ) -> None:
        self._trials = trials
        self._live_trials = live_trials
        self._stop_trial = stop_trial
        self._pause_trial = pause_trial

    def get_trials(self) -> list[SimulatedTrial]:
        """All trials ever added, in creation order (like ``TuneController.get_trials``)."""
        return self._trials

    def get_live_trials(self) -> set[SimulatedTrial]:
        """Trials not yet terminated or errored."""
        return self._live_trials

    def stop_trial(self, trial: SimulatedTrial) -> None:
        """Stops a pending, paused or running trial, as ``TuneController.stop_trial`` does."""
        self._stop_trial(trial)

    def pause_trial(self, trial: SimulatedTrial, should_checkpoint: bool = True) -> None:
        """Pauses a running trial and frees its worker; resuming continues from the next step."""
        self._pause_trial(trial)


_TRAILING_COLUMNS = ["fidelity", "training_iteration", "cost", "start_time", "end_time", "status"]


def history_frame(
    records: list[tuple[SimulatedTrial, str, float]], objectives: list[str], steps: list[float | None]
) -> pd.DataFrame:
    """One row per finished trial, in the order of ``records`` (``(trial, status, end_time)``).

    Columns: ``trial_order``, ``trial_id``, ``candidate_index``, ``config/<key>``, the
    ``objectives`` (from the last result; NaN when not reported or the trial failed),
    ``fidelity`` (the last step reported, NaN without fidelity), ``training_iteration``,
    ``cost``, ``start_time``, ``end_time``, ``status``.
    """
    config_keys: dict[str, None] = {}
    for trial, _, _ in records:
        config_keys.update(dict.fromkeys(trial.config))
    columns = ["trial_order", "trial_id", "candidate_index"]
    columns += [f"config/{key}" for key in config_keys] + list(objectives) + _TRAILING_COLUMNS
    rows = []
    for order, (trial, status, end_time) in enumerate(records):
        reported = {} if status == "failed" else trial.last_result
        row = {
            "trial_order": order,
            "trial_id": trial.trial_id,
            "candidate_index": math.nan if trial.candidate_index is None else trial.candidate_index,
            "fidelity": (trial.fixed_fidelity if trial.fixed_fidelity is not None else steps[trial.steps_done - 1])
            if trial.steps_done else None,
            "training_iteration": trial.steps_done,
            "cost": trial.cost_so_far,
            "start_time": end_time if trial.start_time is None else trial.start_time,
            "end_time": end_time,
            "status": status,
        }
        if row["fidelity"] is None:
            row["fidelity"] = math.nan
        row.update({f"config/{key}": value for key, value in trial.config.items()})
        row.update({name: reported.get(name, math.nan) for name in objectives})
        rows.append(row)
    return pd.DataFrame(rows, columns=columns)
