"""A simulated cluster that replays Ray Tune searchers and schedulers on a blackbox with an event clock.

Instead of training, each fidelity step of a trial is looked up in a tabular or surrogate
``Blackbox`` (see ``benchmarks/blackboxes/base.py``); the step occupies one of ``num_workers``
simulated workers for ``cost(step) - cost(previous step)`` seconds. Completions arrive
asynchronously in simulated time, so a 10,000-trial study runs in seconds. The searcher and the
scheduler are the very objects a user passes to Tune, driven through the same hooks and in the
same order as ``TuneController`` (scheduler first, then searcher; ``STOP`` hides the result from
``Searcher.on_trial_result``), and no Ray process is started.

Modules: ``benchmarks._sim_events`` (the clock and its event heap), ``benchmarks._sim_trial``
(the trial and controller stand-ins schedulers see, the history table), ``benchmarks._sim_pool``
(pool mode) and this one, the cluster that drives the searcher and the scheduler.

Example: ``python -m benchmarks.bench_simulator_speed`` (10,000 ASHA trials on 64 workers).
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import math
import random
import time
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from ray.tune.experiment.trial import Trial
from ray.tune.schedulers import FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from benchmarks._sim_events import EventQueue
from benchmarks._sim_pool import CANDIDATE_INDEX_KEY, CandidatePool, resolve_pool_mode
from benchmarks._sim_trial import SimulatedController, SimulatedTrial, history_frame
from searchers._fabolas_space import DEFAULT_FIDELITY_KEY

__all__ = ["CANDIDATE_INDEX_KEY", "SimulatedCluster"]

_FIFO_CHOOSE = FIFOScheduler.choose_trial_to_run


@contextlib.contextmanager
def _seeded_global_rngs(seed: int | None) -> Iterator[None]:
    """Seeds NumPy's and Python's global RNGs for the run, restoring them afterwards.

    Ray's ASHA picks brackets with ``np.random.choice`` on the global generator, so a seeded
    simulation must own that state for its duration.
    """
    numpy_state, python_state = np.random.get_state(), random.getstate()
    if seed is not None:
        np.random.seed(seed)
        random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(numpy_state)
        random.setstate(python_state)


class SimulatedCluster:
    """``num_workers`` simulated workers running a Tune searcher (and scheduler) on a blackbox.

    Simulated time: a step of trial ``i`` that starts at ``t`` reports at
    ``t + max(0, cost_i(step) - cost_i(previous step))``; a worker is busy from a trial's
    launch until it completes, is stopped, paused or fails.

    Pool modes (for blackboxes with a finite ``candidates()`` table): ``"native"`` hands the pool
    to ``searcher.set_candidates(candidates, features)`` and expects suggestions carrying
    ``"__candidate_index__"``; ``"nearest"`` maps each suggestion to the nearest not yet
    evaluated candidate in ``candidate_features()`` space; ``"off"`` calls
    ``blackbox.evaluate(config)``; ``"auto"`` picks native, else nearest, else off. In pool mode
    each candidate is evaluated at most once and the run ends when the pool is exhausted.

    A suggestion that names its fidelity, under the blackbox's fidelity name or
    ``"data_fraction"`` (a multi-fidelity searcher such as ``FabolasSearch``), is evaluated once
    at that fidelity (clipped into the blackbox's range) and charged its cost there; other
    suggestions step through ``blackbox.fidelity.steps``.

    ``suggest_s`` lists, after ``run``, the wall time in seconds (``time.perf_counter``) of each
    ``searcher.suggest`` call that returned a config, in call order: one per trial created.

    A trial completes at the first step reaching ``blackbox.full_fidelity(candidate)`` (when the
    blackbox defines it: training that stopped early) or at the last step. Departures from Tune:
    a trial stopped while paused still hands its last result to ``on_trial_complete``, and
    trials a scheduler leaves paused with nothing else to run are stopped (``RuntimeWarning``)
    where Tune would wait forever.

    Args:
        blackbox: A ``benchmarks.blackboxes.Blackbox``.
        searcher: A ``ray.tune.search.Searcher``. ``set_search_properties(metric, mode,
            blackbox.search_space())`` is called only when it has no metric yet.
        scheduler: A ``ray.tune.schedulers.TrialScheduler`` (default ``FIFOScheduler``). One
            without a metric gets the blackbox's first objective.
        num_workers: Number of trials running concurrently.
        max_trials: Number of trials to create.
        pool_mode: One of ``"auto"``, ``"native"``, ``"nearest"``, ``"off"``.
        seed: Seeds NumPy's and Python's global RNGs during ``run`` (``None``: leave them).
        metric: Metric(s) for the searcher; default the blackbox's objective names (a string
            for one objective, else a list).
        mode: Mode(s) matching ``metric``; default the blackbox's objective modes.

    Example:
        >>> from ray.tune.schedulers import ASHAScheduler
        >>> from benchmarks.bench_simulator_speed import SyntheticCurveBlackbox
        >>> from searchers.random_search import RandomSearch
        >>> blackbox = SyntheticCurveBlackbox()
        >>> cluster = SimulatedCluster(
        ...     blackbox, RandomSearch(blackbox.search_space(), seed=0),
        ...     scheduler=ASHAScheduler(max_t=27), num_workers=8, max_trials=50)
        >>> history = cluster.run()  # one row per finished trial, in completion order
        >>> len(history), sorted(set(history["status"]))
        (50, ['completed', 'stopped'])
    """

    def __init__(
        self,
        blackbox: Any,
        searcher: Searcher,
        *,
        scheduler: TrialScheduler | None = None,
        num_workers: int = 4,
        max_trials: int = 200,
        pool_mode: str = "auto",
        seed: int | None = 0,
        metric: str | list[str] | None = None,
        mode: str | list[str] | None = None,
    ) -> None:
        for name, value in (("num_workers", num_workers), ("max_trials", max_trials)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f"seed must be None or an integer >= 0, got {seed!r}.")
        if not callable(getattr(searcher, "suggest", None)):
            raise ValueError(f"searcher must be a ray.tune.search.Searcher, got {searcher!r}.")
        if scheduler is not None and not callable(getattr(scheduler, "on_trial_result", None)):
            raise ValueError(f"scheduler must be a Ray Tune TrialScheduler, got {scheduler!r}.")
        objectives = dict(getattr(blackbox, "objectives", None) or {})
        if not objectives:
            raise ValueError(f"blackbox must define a non-empty `objectives` mapping: {blackbox!r}.")
        self.blackbox = blackbox
        self.searcher = searcher
        self.scheduler = scheduler if scheduler is not None else FIFOScheduler()
        self.num_workers = num_workers
        self.max_trials = max_trials
        self.seed = seed
        self._objectives = objectives
        single = len(objectives) == 1
        self.metric = metric if metric is not None else (
            next(iter(objectives)) if single else list(objectives)
        )
        self.mode = mode if mode is not None else (
            next(iter(objectives.values())) if single else list(objectives.values())
        )
        fidelity = getattr(blackbox, "fidelity", None)
        self._fidelity = fidelity
        self._fidelity_name = fidelity.name if fidelity is not None else None
        self._steps: list[float | None] = list(fidelity.steps) if fidelity is not None else [None]
        if not self._steps:
            raise ValueError(f"blackbox fidelity {fidelity!r} must list at least one step.")
        self._candidates = blackbox.candidates() if callable(getattr(blackbox, "candidates", None)) else None
        self.pool_mode_used = resolve_pool_mode(pool_mode, blackbox, searcher, self._candidates)
        self._ran = False
        self.suggest_s: list[float] = []

    # ------------------------------------------------------------------ run loop
    def run(self) -> pd.DataFrame:
        """Runs the simulation to the end and returns the history.

        Returns:
            One row per trial in completion order: ``trial_order``, ``trial_id``,
            ``candidate_index`` (NaN outside pool mode), ``config/<key>``, the objectives (NaN
            for failed trials), ``fidelity`` reached, ``training_iteration``, ``cost``
            (simulated training seconds), ``start_time``, ``end_time`` and ``status``
            (``"completed"``, ``"stopped"`` or ``"failed"``).
        """
        if self._ran:
            raise RuntimeError("run() was already called; build a new SimulatedCluster to rerun.")
        self._ran = True
        self._prepare()
        with _seeded_global_rngs(self.seed):
            self._configure_components()
            self._fill_workers()
            while True:
                # Steps of trials stopped or paused after they were queued never surface here.
                while (trial := self._events.pop()) is not None:
                    self._on_step_reported(trial)
                    self._fill_workers()
                if not self._num_paused:
                    break
                # Nothing runs but the scheduler keeps trials paused (Ray's HyperBand can leave a
                # bracket waiting on a trial that failed); real Tune would hang here.
                stuck = next(t for t in self._trials if t.status == Trial.PAUSED)
                warnings.warn(f"Stopping {stuck.trial_id}: paused with nothing left to run.", RuntimeWarning)
                self._stop_trial(stuck)
                self._fill_workers()
        return history_frame(self._records, list(self._objectives), self._steps)

    @property
    def timeline(self) -> pd.DataFrame:
        """Contiguous running segments: ``trial_id``, ``worker``, ``start_time``, ``end_time``."""
        return pd.DataFrame(self._segments, columns=["trial_id", "worker", "start_time", "end_time"])

    def _prepare(self) -> None:
        self._events = EventQueue()  # the simulated clock: ``self._events.now``
        self._free_workers = list(range(self.num_workers))
        self._trials: list[SimulatedTrial] = []
        self._live_trials: set[SimulatedTrial] = set()
        self._pending: list[SimulatedTrial] = []  # created, never started, oldest first
        self._num_paused = 0
        self._suggest_calls = 0
        self.suggest_s = []
        self._searcher_finished = False
        self._records: list[tuple] = []
        self._segments: list[tuple[str, int, float, float]] = []
        self._controller = SimulatedController(
            self._trials, self._live_trials, stop_trial=self._stop_trial, pause_trial=self._pause_trial
        )
        self._scheduler_metric: str | None = None
        self._pool: CandidatePool | None = None
        if self.pool_mode_used != "off":
            self._pool = CandidatePool(self._candidates, self.blackbox.candidate_features())

    def _configure_components(self) -> None:
        if getattr(self.searcher, "metric", None) is None:
            self.searcher.set_search_properties(self.metric, self.mode, self.blackbox.search_space())
        if self.pool_mode_used == "native":
            self.searcher.set_candidates(self._candidates, self._pool.features)
        scheduler_metric = getattr(self.scheduler, "metric", None)
        default_metric = next(iter(self._objectives))
        scheduler_mode = self._objectives.get(scheduler_metric or default_metric)
        offered_metric = None if scheduler_metric else default_metric
        # A scheduler built with a mode of its own refuses another one (Ray's schedulers return
        # False and change nothing; checked on ray 2.60), so it then gets the metric alone. Its
        # mode is never read: Ray has no public accessor for it.
        if self.scheduler.set_search_properties(offered_metric, scheduler_mode) is False:
            self.scheduler.set_search_properties(offered_metric, None)
        self._scheduler_metric = getattr(self.scheduler, "metric", None)

    def _fill_workers(self) -> None:
        """One ``TuneController`` step, repeated while it starts trials.

        Like Tune with a ``Searcher`` (``max_pending_trials=1``), one trial is suggested ahead
        and waits as PENDING; HyperBand relies on it to fill brackets. The scheduler's
        ``choose_trial_to_run`` goes first, then the oldest pending trial.
        """
        while True:
            if not self._pending:
                self._create_trial()
            if not self._free_workers:
                return
            trial = self._choose_trial_to_run()
            if trial is None:
                return  # nothing to run: idle until the next event
            self._launch(trial)

    def _choose_trial_to_run(self) -> SimulatedTrial | None:
        if not self._num_paused and not self._pending:
            return None
        # FIFOScheduler's choice (also ASHA's) is the oldest pending trial when none is paused;
        # asking it would scan every trial ever created, quadratic over a long study.
        if self._num_paused or type(self.scheduler).choose_trial_to_run is not _FIFO_CHOOSE:
            chosen = self.scheduler.choose_trial_to_run(self._controller)
            if chosen is not None and chosen.status in (Trial.PENDING, Trial.PAUSED):
                return chosen
        return self._pending[0] if self._pending else None

    def _create_trial(self) -> SimulatedTrial | None:
        if self._searcher_finished or len(self._trials) >= self.max_trials:
            return None
        if self._pool is not None and not self._pool.remaining:
            return None
        trial_id = f"trial_{self._suggest_calls:05d}"
        self._suggest_calls += 1
        started = time.perf_counter()
        suggestion = self.searcher.suggest(trial_id)
        elapsed = time.perf_counter() - started
        if suggestion is None:
            return None
        if isinstance(suggestion, str) and suggestion == Searcher.FINISHED:
            self._searcher_finished = True
            return None
        self.suggest_s.append(elapsed)
        config = dict(suggestion)
        candidate_index = None
        if self._pool is not None:
            candidate_index = self._pool.take(self._pick_candidate(config))
            config = dict(self._pool.configs[candidate_index])
        trial = SimulatedTrial(trial_id, config, candidate_index)
        trial.fixed_fidelity = self._suggested_fidelity(config)
        trial.num_steps = 1 if trial.fixed_fidelity is not None else self._num_steps(candidate_index)
        self._trials.append(trial)
        self._live_trials.add(trial)
        self._pending.append(trial)
        self.scheduler.on_trial_add(self._controller, trial)
        return trial

    def _pick_candidate(self, config: dict[str, Any]) -> int:
        if self.pool_mode_used == "native":
            if CANDIDATE_INDEX_KEY not in config:
                raise ValueError(
                    f"{type(self.searcher).__name__}.suggest returned {config!r} without "
                    f"{CANDIDATE_INDEX_KEY!r}; native pool mode needs a row of the pool."
                )
            return self._pool.check_native(config.pop(CANDIDATE_INDEX_KEY), type(self.searcher).__name__)
        config.pop(CANDIDATE_INDEX_KEY, None)
        return self._pool.nearest(self.blackbox.features_of(config))

    def _suggested_fidelity(self, config: dict[str, Any]) -> float | None:
        """The fidelity a suggestion names (one evaluation there), or ``None`` to step through the steps."""
        if self._fidelity is None:
            return None
        for key in (self._fidelity_name, DEFAULT_FIDELITY_KEY):
            if key in config:
                value = float(config[key])
                if not math.isfinite(value):
                    raise ValueError(f"{type(self.searcher).__name__}.suggest set {key}={config[key]!r}; use a finite fidelity.")
                return self._fidelity.clip(value)
        return None

    def _fidelity_of(self, trial: SimulatedTrial, step: int) -> float | None:
        return trial.fixed_fidelity if trial.fixed_fidelity is not None else self._steps[step]

    def _num_steps(self, candidate_index: int | None) -> int:
        """Steps up to the blackbox's ``full_fidelity``: training that stopped early ends there."""
        full_fidelity = getattr(self.blackbox, "full_fidelity", None)
        if self._steps[0] is None or not callable(full_fidelity):
            return len(self._steps)
        full = full_fidelity(candidate_index)
        if full is None:
            return len(self._steps)
        return min(bisect.bisect_left(self._steps, float(full) - 1e-9) + 1, len(self._steps))

    # ------------------------------------------------------------------ trial lifecycle
    def _launch(self, trial: SimulatedTrial) -> None:
        if trial.status == Trial.PAUSED:
            self._num_paused -= 1
        else:
            self._pending.remove(trial)
        trial.status = Trial.RUNNING
        trial.worker = heapq.heappop(self._free_workers)
        if trial.start_time is None:
            trial.start_time = self._events.now
        trial.segment_start = self._events.now
        self._queue_next_step(trial)

    def _queue_next_step(self, trial: SimulatedTrial) -> None:
        fidelity = self._fidelity_of(trial, trial.steps_done)
        delay = 0.0
        try:
            if trial.candidate_index is not None:
                outcome = self.blackbox.evaluate_candidate(trial.candidate_index, fidelity)
            else:
                outcome = self.blackbox.evaluate(trial.config, fidelity)
            outcome = dict(outcome)
            cost = float(outcome.pop("cost"))
            if math.isfinite(cost):
                delay = max(0.0, cost - trial.last_step_cost)
            # Objectives may be absent at partial fidelities (tables that only record a dev
            # metric per checkpoint); a value that is present must be finite.
            bad = [k for k in self._objectives if k in outcome and not math.isfinite(float(outcome[k]))]
            if bad or not math.isfinite(cost):
                outcome = ValueError(f"non-finite {bad or ['cost']} at fidelity {fidelity}")
            else:
                trial.last_step_cost = cost
        except Exception as error:  # a blackbox failure is a failed trial, as in Tune
            outcome = error
        trial.pending_outcome, trial.pending_increment = outcome, delay
        self._events.push(delay, trial)

    def _on_step_reported(self, trial: SimulatedTrial) -> None:
        trial.cost_so_far += trial.pending_increment
        outcome = trial.pending_outcome
        if isinstance(outcome, BaseException):
            self._fail_trial(trial)
            return
        trial.steps_done += 1
        is_last_step = trial.steps_done == trial.num_steps
        result = self._make_result(trial, outcome, is_last_step)
        if is_last_step and self._scheduler_metric is not None and self._scheduler_metric not in result:
            # Ray's schedulers silently ignore results without their metric; a metric missing
            # even from a full evaluation means the scheduler never decides anything.
            raise ValueError(
                f"scheduler metric {self._scheduler_metric!r} is not among the metrics "
                f"{sorted(outcome)} reported by {self.blackbox!r}; construct the scheduler with one of them."
            )
        decision = self.scheduler.on_trial_result(self._controller, trial, result)
        if decision != TrialScheduler.STOP:
            self.searcher.on_trial_result(trial.trial_id, result)
        trial.last_result = result
        if trial.status != Trial.RUNNING:
            return  # the scheduler already paused or stopped it through the controller
        if decision == TrialScheduler.STOP or is_last_step:
            self._finish_running(trial, "completed" if is_last_step else "stopped")
        elif decision == TrialScheduler.PAUSE:
            self._release_worker(trial, Trial.PAUSED)
        else:
            self._queue_next_step(trial)

    def _make_result(self, trial: SimulatedTrial, metrics: dict, done: bool) -> dict[str, Any]:
        fidelity = self._fidelity_of(trial, trial.steps_done - 1)
        result = dict(metrics)
        if self._fidelity_name is not None:
            result.setdefault(self._fidelity_name, fidelity)
        result.update(
            training_iteration=trial.steps_done,
            time_total_s=trial.cost_so_far,
            time_this_iter_s=trial.pending_increment,
            trial_id=trial.trial_id,
            done=done,
        )
        for key, value in trial.config.items():
            result[f"config/{key}"] = value
        return result

    def _release_worker(self, trial: SimulatedTrial, new_status: str) -> None:
        if trial.status == Trial.RUNNING:
            self._events.cancel(trial)  # its next step, if queued, never reports
            self._segments.append((trial.trial_id, trial.worker, trial.segment_start, self._events.now))
            heapq.heappush(self._free_workers, trial.worker)
            trial.worker = None
        elif trial.status == Trial.PAUSED:
            self._num_paused -= 1
        elif trial.status == Trial.PENDING:
            self._pending.remove(trial)
        if new_status == Trial.PAUSED:
            self._num_paused += 1
        else:
            self._live_trials.discard(trial)
        trial.status = new_status

    def _finish_running(self, trial: SimulatedTrial, status: str) -> None:
        result = trial.last_result
        self.scheduler.on_trial_complete(self._controller, trial, result)
        self.searcher.on_trial_complete(trial.trial_id, result=result, error=False)
        self._release_worker(trial, Trial.TERMINATED)
        self._record(trial, status)

    def _fail_trial(self, trial: SimulatedTrial) -> None:
        try:
            self.scheduler.on_trial_error(self._controller, trial)
        except NotImplementedError:
            self.scheduler.on_trial_remove(self._controller, trial)
        self.searcher.on_trial_complete(trial.trial_id, result=None, error=True)
        self._release_worker(trial, Trial.ERROR)
        self._record(trial, "failed")

    def _stop_trial(self, trial: SimulatedTrial) -> None:
        if trial.status == Trial.RUNNING:
            self._finish_running(trial, "stopped")
        elif trial.status in (Trial.PENDING, Trial.PAUSED):
            # Unlike Tune (which sends no result here), the searcher gets the last result so
            # that it learns from every simulated evaluation.
            self.scheduler.on_trial_remove(self._controller, trial)
            self.searcher.on_trial_complete(
                trial.trial_id, result=trial.last_result or None, error=False
            )
            self._release_worker(trial, Trial.TERMINATED)
            self._record(trial, "stopped")

    def _pause_trial(self, trial: SimulatedTrial) -> None:
        if trial.status == Trial.RUNNING:
            self._release_worker(trial, Trial.PAUSED)

    def _record(self, trial: SimulatedTrial, status: str) -> None:
        self._records.append((trial, status, self._events.now))
