"""Multi-objective Bayesian optimisation for Ray Tune on Ax's ``Client`` API (ax-platform 1.3).

Ray 2.60's ``AxSearch`` crashes with ax-platform 1.x (``Objective.metric`` is gone), handles a
single objective only and sits on ``AxClient``, which Ax 1.4 removes. ``AxMultiObjectiveSearch``
is its replacement: any number of objectives with directions, objective thresholds, outcome
constraints, intermediate results as Ax progressions, early-stopped and failed trials reported
as such, and ``save``/``restore`` through Ax's JSON file format so ``Tuner.restore`` continues an
interrupted experiment without repeating configurations.

With two or more objectives Ax's default generation strategy (``method="fast"``) runs a Sobol
initialisation followed by BoTorch's qLogNEHVI acquisition over one GP per objective.

Only Ax's public ``Client`` API is used here; the generation strategy is built and adjusted
in ``searchers._ax_adapter``, which documents the Ax internals it depends on.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
from ray.tune.search import Searcher

from multiobjective.objectives import Objectives, finite_or_none
from searchers._ax_adapter import configure_generation_strategy
from searchers._ax_journal import apply_entry, client_from_json, client_to_json, replay_entry
from searchers._background import BackgroundWorker, largest_backlog
from searchers._threads import torch_thread_limit
from searchers._tune_space import AxSpaceCodec, flatten_search_space

logger = logging.getLogger(__name__)

_METHODS = ("fast", "quality", "random_search")
# 4: as 3, and the journal may hold ["fallback", key, parameters] with later entries naming the
# trial by that key (a random suggestion handed out while a model step overran).
# 3: an Ax snapshot plus the journal of calls since (searchers._ax_journal); ready items carry the
# number of results their model had seen. 2: a whole Ax snapshot; ready items are (index, parameters).
_STATE_VERSION = 4
_READABLE_VERSIONS = (2, 3, 4)
# Background mode: the worker re-snapshots the Ax client when idle once the journal is this long.
_SNAPSHOT_AFTER_ENTRIES = 25
# Background mode: a model step is overdue after max(max_wait_s, this many times the median of
# the last _STEP_HISTORY steps).
_OVERDUE_FACTOR = 3.0
_STEP_HISTORY = 10
# Background mode: how many of the latest trial ends are searched for a burst (suggestions wanted
# faster than model steps could make them, see _burst), for which that many are kept ready.
_BURST_HISTORY = 16


class AxMultiObjectiveSearch(Searcher):
    """Ray Tune searcher driving an ``ax.api.Client``; one or many objectives.

    Each objective ``f_i`` is maximised or minimised; with thresholds ``t_i`` Ax only values
    improvements of the hypervolume dominated by the front above ``t`` (below, for ``min``):
    ``HV = vol{y : t <= y <= f(x) for some evaluated x}`` in maximisation form.

    Example:
        >>> from ray import tune
        >>> searcher = AxMultiObjectiveSearch(
        ...     space={"lr": tune.loguniform(1e-4, 1e-1), "width": tune.randint(16, 257)},
        ...     metric=["accuracy", "latency_ms"], mode=["max", "min"],
        ...     objective_thresholds={"latency_ms": 5.0}, seed=0)
        >>> tuner = tune.Tuner(train_fn, tune_config=tune.TuneConfig(  # doctest: +SKIP
        ...     search_alg=searcher, num_samples=30))

        Warm start from earlier results, one column per parameter and per objective:

        >>> import pandas as pd
        >>> earlier = pd.DataFrame({"lr": [0.01, 0.003], "width": [64, 128],
        ...                         "accuracy": [0.91, 0.93], "latency_ms": [3.2, 4.8]})
        >>> warm = AxMultiObjectiveSearch(
        ...     space={"lr": tune.loguniform(1e-4, 1e-1), "width": tune.randint(16, 257)},
        ...     metric=["accuracy", "latency_ms"], mode=["max", "min"], warm_start=earlier, seed=0)
        >>> warm.client.summarize()["trial_status"].tolist()
        ['COMPLETED', 'COMPLETED']

    Args:
        space: Tune search space (``tune.uniform``, ``loguniform``, ``quniform``, ``randint``,
            ``choice``, constants, nested dicts). May instead come from the Tuner's
            ``param_space``.
        metric: Objective name, or a list of names for several objectives.
        mode: ``"max"``/``"min"``, or one per objective.
        points_to_evaluate: Configs to run first (a list of dicts over the space).
        objective_thresholds: ``{objective: bound}``: the worst value still of interest
            (lower bound for ``max``, upper bound for ``min``).
        outcome_constraints: Constraints on other reported metrics, e.g. ``["params <= 1e6"]``.
        seed: Seed of Ax's quasi-random initialisation and model fitting.
        max_concurrent: Most suggestions alive at once; ``suggest`` returns ``None`` beyond it.
        method: Ax's generation method: ``"fast"`` (GP + qLogNEHVI), ``"quality"`` (SAAS GP
            for high-dimensional spaces; needs the ``saas`` extra), or ``"random_search"``.
        initialization_budget: Quasi-random trials before the model takes over (Ax's default
            when ``None``).
        warm_start: Earlier results as a ``pandas.DataFrame`` with one column per tunable
            search-space parameter, named as Ax names it (nested keys joined by ``/``, e.g.
            ``"model/depth"``; constants are not needed), one per objective, and optionally
            one per outcome-constraint metric. Each row with finite objectives is attached
            to Ax as a completed trial; rows with a missing objective are skipped.
        max_progression: The training iteration at which a trial is complete (the scheduler's
            ``max_t``); a trial stopped by the scheduler before it is marked early-stopped.
        progression_attr: Result key used as Ax progression for intermediate results.
        acquisition_options: BoTorch ``optimize_acqf*`` settings for Ax's model step, e.g.
            ``{"num_restarts": 4, "raw_samples": 256}``:
            fewer restarts make each suggestion several times cheaper on small CPUs at a
            small cost in acquisition value (BoTorch's defaults: 20 restarts, 1024 samples).
        torch_threads: PyTorch threads while Ax fits and optimises (restored afterwards).
            GPs over tens of points gain nothing from threads, and beside trials on the
            same cores extra threads make each suggestion 5-10x slower; ``None`` leaves
            PyTorch's setting alone.
        verbose: Keep Ax's INFO logging (off by default: it logs every trial).
        background: Compute suggestions in a background thread (the default), so ``suggest``
            hands out a prepared configuration in milliseconds and Tune's event loop never
            waits on a model fit. One suggestion more than the free slots is kept ready, made
            with the running trials (and the suggestions prepared before it) as pending points;
            when trials end in bursts (the last 16 that ended wanted ``b`` suggestions faster
            than model steps could make them, e.g. ``b`` trials ending together), ``b`` are kept
            ready, so a wave of trials that end together does not wait for one model step after
            another. A prepared suggestion is discarded
            (marked abandoned in Ax) and remade once ``refresh_after + b - 1`` results arrived
            after it was made. Which results a suggestion saw then depends on timing, so seeded runs
            repeat exactly only with ``background=False``: every suggestion is computed in
            ``suggest`` from all results so far (the reproducible mode).
        refresh_after: Results after which a prepared suggestion is remade (background mode),
            beyond those of a burst (see ``background``); ``None``: ``max(2, max_concurrent)``.
        max_wait_s: Background mode: when ``suggest`` finds nothing prepared and the model step
            it waits for has run longer than ``max(max_wait_s, 3 x the median of the last 10
            steps)``, it hands out a uniformly random configuration instead (attached to Ax
            as a trial like any other once the step ends, so the model learns from it and
            counts it as pending). Model steps that are merely slow never trigger it; a step
            that stalls (one ran 60 s instead of 2 s at Ax's first model step, with four
            workers idle) no longer stops the run. ``None``: always wait for the model.
    """

    def __init__(
        self,
        space: Mapping[str, Any] | None = None,
        metric: str | Sequence[str] | Objectives | None = None,
        mode: str | Sequence[str] | None = None,
        *,
        points_to_evaluate: Sequence[Mapping[str, Any]] | None = None,
        objective_thresholds: Mapping[str, float] | None = None,
        outcome_constraints: Sequence[str] | None = None,
        seed: int | None = None,
        max_concurrent: int | None = None,
        method: str = "fast",
        initialization_budget: int | None = None,
        warm_start: pd.DataFrame | None = None,
        max_progression: int | None = None,
        progression_attr: str = "training_iteration",
        acquisition_options: Mapping[str, Any] | None = None,
        torch_threads: int | None = 1,
        verbose: bool = False,
        background: bool = True,
        refresh_after: int | None = None,
        max_wait_s: float | None = 10.0,
    ) -> None:
        super().__init__(metric=None, mode=None)
        self._set_objectives(Objectives.optional(metric, mode))
        if method not in _METHODS:
            raise ValueError(f"method={method!r} is not one of {_METHODS}.")
        if method == "quality":
            _require_saas_dependencies()
        if max_concurrent is not None and (not isinstance(max_concurrent, int) or max_concurrent < 1):
            raise ValueError(f"max_concurrent={max_concurrent!r} must be a positive integer or None.")
        if initialization_budget is not None and initialization_budget < 0:
            raise ValueError(f"initialization_budget={initialization_budget!r} must be >= 0.")
        if max_progression is not None and max_progression < 1:
            raise ValueError(f"max_progression={max_progression!r} must be >= 1 or None.")
        self._objective_thresholds = dict(objective_thresholds or {})
        self._outcome_constraints = list(outcome_constraints or [])
        self._seed = seed
        self._max_concurrent = max_concurrent
        self._method = method
        self._initialization_budget = initialization_budget
        self._points_to_evaluate = [dict(p) for p in points_to_evaluate or []]
        if warm_start is not None and not isinstance(warm_start, pd.DataFrame):
            raise TypeError(
                f"warm_start: got {type(warm_start).__name__}; pass a pandas.DataFrame "
                "(for a CSV file, pandas.read_csv(path))."
            )
        self._warm_start = warm_start
        self._max_progression = max_progression
        self._progression_attr = progression_attr
        self._acquisition_options = dict(acquisition_options or {})
        if torch_threads is not None and (not isinstance(torch_threads, int) or torch_threads < 1):
            raise ValueError(f"torch_threads={torch_threads!r} must be a positive integer or None.")
        self._torch_threads = torch_threads
        self._verbose = verbose
        if refresh_after is not None and (not isinstance(refresh_after, int) or refresh_after < 1):
            raise ValueError(f"refresh_after={refresh_after!r} must be a positive integer or None.")
        if not isinstance(background, bool):
            raise ValueError(f"background={background!r}: expected True or False")
        self._background = background
        self._refresh_after = refresh_after if refresh_after is not None else max(2, max_concurrent or 1)
        if max_wait_s is not None and not (
            isinstance(max_wait_s, (int, float)) and not isinstance(max_wait_s, bool)
            and math.isfinite(max_wait_s) and max_wait_s > 0
        ):
            raise ValueError(f"max_wait_s={max_wait_s!r} must be a number of seconds > 0 or None.")
        self._max_wait_s = None if max_wait_s is None else float(max_wait_s)
        self._step_seconds: deque[float] = deque(maxlen=_STEP_HISTORY)  # the last model steps
        self._step_started: float | None = None  # monotonic start of the model step running now
        self._trial_ends: deque[float] = deque(maxlen=_BURST_HISTORY)  # monotonic times, this process only
        self._fallbacks = 0  # random configurations handed out when a step overran
        self._resolved: dict[str, int] = {}  # fallback key -> Ax trial index, once attached

        self._space: dict[str, Any] | None = dict(space) if space is not None else None
        self._codec: AxSpaceCodec | None = None
        self._client: Any = None
        # (Ax trial index, Ax parameters, results seen when made; None: never stale) not yet handed out
        self._ready: deque[tuple[int, dict[str, Any], int | None]] = deque()
        self._live: dict[str, int] = {}  # Tune trial id -> Ax trial index
        self._last_progression: dict[str, int] = {}
        self._finished: dict[str, int] = {}
        self._results_seen = 0  # completed and early-stopped trials reported so far
        self._saved_state: str | None = None  # serialised state, kept until a hook changes it
        # The Ax client's state = snapshot + journal (applied calls) + inbox (calls not yet applied).
        self._snapshot: str | None = None
        self._journal: list[list[Any]] = []
        self._inbox: list[list[Any]] = []
        self._lock = threading.RLock()
        self._worker = self._new_worker()
        if self._space is not None:
            self._codec = AxSpaceCodec.from_tune(self._space)
            if self._metric is not None:
                self._setup_client()

    # ----------------------------------------------------------------- Tune interface
    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        self._saved_state = None
        if self._client is not None:
            return False
        if self._space is not None and config:
            return False
        if self._metric is None:
            if metric is None:
                return False
            self._set_objectives(Objectives.from_spec(metric, mode))
        if self._space is None:
            if not config:
                return False
            self._space = dict(config)
            self._codec = AxSpaceCodec.from_tune(self._space)
        self._setup_client()
        return True

    def suggest(self, trial_id: str) -> dict | None:
        self._saved_state = None
        if self._client is None:
            raise RuntimeError(
                "AxMultiObjectiveSearch has no search space or metric yet: pass space=, metric= "
                "and mode= to the constructor, or give the Tuner a param_space."
            )
        if self._max_concurrent is not None and len(self._live) >= self._max_concurrent:
            return None
        if self._worker is None:
            if not self._ready:
                self._generate(max(1, self._max_concurrent - len(self._live)) if self._max_concurrent else 1)
            item = self._ready.popleft() if self._ready else None
        else:
            self._worker.raise_error()
            item = self._take_ready()
            if item is None:  # nothing prepared (the start, or a burst of free slots): wait for one
                self._worker.wake()
                item = self._wait_for_ready()
        if item is None:
            return None
        trial_index, parameters, _ = item
        with self._lock:  # a fallback's key may have been resolved by the worker already
            self._live[trial_id] = self._resolved.get(trial_index, trial_index)
        if self._worker is not None:
            self._worker.wake()  # prepare the next one while this trial runs
        return self._codec.to_tune(parameters)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._saved_state = None
        trial_index = self._live.get(trial_id)
        if trial_index is None:
            return
        progression = result.get(self._progression_attr)
        data = self._finite_objectives(result)
        if not data or progression is None:
            return
        self._last_progression[trial_id] = int(progression)
        self._submit(["data", trial_index, data, int(progression)])

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self._saved_state = None
        trial_index = self._live.pop(trial_id, None)
        if trial_index is None:
            return
        with self._lock:
            self._trial_ends.append(time.monotonic())
        last_seen = self._last_progression.pop(trial_id, None)
        self._finished[trial_id] = trial_index
        if error:
            logger.warning("Trial %s (Ax trial %d) raised an error; marked failed.", trial_id, trial_index)
            self._submit(["failed", trial_index, "trial raised an error"])
            return
        if result is None:
            # Tune removed the trial before it ran (experiment ended, pending trial stopped).
            self._submit(["abandoned", trial_index])
            return
        problems = self._objectives.problems(result)
        if problems:
            reason = ", ".join(f"{name} is {problem}" for name, problem in problems.items())
            logger.warning("Trial %s (Ax trial %d) marked failed: %s.", trial_id, trial_index, reason)
            self._submit(["failed", trial_index, f"objective values: {reason}"])
            return
        data = self._metric_values(result)
        progression = result.get(self._progression_attr)
        progression = int(progression) if progression is not None else None
        stopped_by_scheduler = progression is not None and progression != last_seen
        self._results_seen += 1
        if stopped_by_scheduler and (self._max_progression is None or progression < self._max_progression):
            self._submit(["early_stopped", trial_index, data, progression])
        else:
            self._submit(["complete", trial_index, data, progression])

    def add_evaluated_point(
        self,
        parameters: dict,
        value: float | Mapping[str, float],
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list | None = None,
    ) -> None:
        """Attach a finished evaluation (Tune's API for warm starts)."""
        self._saved_state = None
        if not isinstance(value, Mapping):
            if len(self._metric) != 1:
                raise ValueError("value must map each objective to its value for several objectives.")
            value = {self._metric[0]: value}
        outcome = "failed" if error else "early_stopped" if pruned else "complete"
        if not error:
            self._results_seen += 1
        values = {k: float(v) for k, v in value.items()}
        self._submit(["attach", self._codec.to_ax(parameters), outcome, values])

    # ----------------------------------------------------------------- persistence
    def save(self, checkpoint_path: str) -> None:
        """Write the searcher's state (an Ax snapshot, the journal since, our bookkeeping) to one file.

        Tune saves the searcher at every controller step (see ``orchestrator.run``); the
        serialised state is kept until something changes it, so a save in between costs one
        write. Ax's own snapshot costs seconds at a hundred trials, so it is retaken only now and
        then (in the background worker when idle, or here once a suggestion was generated in the
        reproducible mode); the journal of calls since is what a save usually adds.
        """
        with self._lock:
            if self._saved_state is None:
                self._saved_state = self._state_text()
            text = self._saved_state
        Path(checkpoint_path).write_text(text)

    def restore(self, checkpoint_path: str) -> None:
        self._stop_worker()
        self._load_state(json.loads(Path(checkpoint_path).read_text()))
        self._saved_state = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        # Ax objects are saved through Ax's own JSON format, not pickle (Tuner pickles us).
        for name in ("_client", "_codec", "_saved_state", "_snapshot", "_lock", "_worker",
                     "_step_started"):
            state[name] = None
        state["_trial_ends"] = deque(maxlen=_BURST_HISTORY)  # monotonic times mean nothing elsewhere
        state["_journal"], state["_inbox"] = [], []
        state["_pickled_state"] = json.loads(self._state_text()) if self._client is not None else None
        return state

    def __setstate__(self, state: dict) -> None:
        pickled = state.pop("_pickled_state", None)
        state.pop("_fallback_rng", None)  # releases before 2026-12-06 kept one generator for all fallbacks
        # Pickles of releases before background mode lack these (a Tuner pickled then resumed now).
        for name, default in (("_background", False), ("_refresh_after", 2), ("_results_seen", 0),
                              ("_snapshot", None), ("_journal", []), ("_inbox", []), ("_max_wait_s", None),
                              ("_fallbacks", 0), ("_resolved", {}),
                              ("_step_started", None)):
            state.setdefault(name, default)
        state.setdefault("_step_seconds", deque(maxlen=_STEP_HISTORY))
        state.setdefault("_trial_ends", deque(maxlen=_BURST_HISTORY))
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self._worker = self._new_worker()
        if self._space is not None:
            self._codec = AxSpaceCodec.from_tune(self._space)
        if pickled is not None:
            self._load_state(pickled)

    # ----------------------------------------------------------------- introspection
    @property
    def client(self) -> Any:
        """The underlying ``ax.Client`` (for Ax's analyses and ``get_pareto_frontier``).

        In background mode this waits for the worker, marks the suggestions it prepared that no
        trial took as abandoned (so the client shows the trials Tune ran; a later ``suggest``
        prepares anew) and applies every reported result first.
        """
        if self._worker is not None:
            self._worker.wait_idle()
            self._worker.raise_error()
            with self._lock:
                self._inbox.extend(["abandoned", item[0]] for item in self._ready if item[2] is not None)
                self._ready = deque(item for item in self._ready if item[2] is None)
        if self._client is not None:
            self._apply_inbox()
        return self._client

    @property
    def random_fallbacks(self) -> int:
        """How many suggestions so far were uniformly random configurations, not the model's.

        Each was handed out because a model step overran ``max_wait_s`` (see the class
        docstring) while a worker waited; saved and restored with the searcher.
        """
        return self._fallbacks

    @property
    def metric(self) -> list[str] | None:  # type: ignore[override]
        return self._metric

    @property
    def mode(self) -> list[str] | None:  # type: ignore[override]
        return self._mode

    # ----------------------------------------------------------------- model steps
    def _new_worker(self) -> BackgroundWorker | None:
        if not self._background:
            return None
        return BackgroundWorker(self._background_step, name="AxMultiObjectiveSearch-suggest")

    def _stop_worker(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = self._new_worker()

    def _submit(self, entry: list[Any]) -> None:
        """Record a call on the Ax client; the client's owner (worker or this thread) makes it."""
        with self._lock:
            self._inbox.append(entry)
        if self._worker is None:
            self._apply_inbox()
        else:
            self._worker.raise_error()
            self._worker.wake()

    def _apply_inbox(self) -> None:
        # One at a time, moved to the journal only once applied: a save in between still holds it.
        while True:
            with self._lock:
                if not self._inbox:
                    return
                entry = self._inbox[0]
            applied = self._apply(entry, replay=False)
            with self._lock:
                self._inbox.pop(0)
                self._journal.append(applied)
                self._saved_state = None

    def _apply(self, entry: list[Any], *, replay: bool) -> list[Any]:
        """Make the call ``entry`` records; returns it as the journal keeps it (Ax indices only).

        A fallback configuration becomes an attached trial (journaled as ``generated``, which a
        replay re-attaches at the same index); later entries that name it by its key are given
        its index, and so are the Tune trials that ran it.
        """
        if entry[0] == "fallback":
            _, key, parameters = entry
            index = self._client.attach_trial(parameters)
            with self._lock:
                self._resolved[key] = index
                for table in (self._live, self._finished):
                    for trial_id, value in table.items():
                        if value == key:
                            table[trial_id] = index
            return ["generated", index, parameters]
        if len(entry) > 1 and isinstance(entry[1], str) and entry[0] != "attach":
            entry = [entry[0], self._resolved[entry[1]], *entry[2:]]
        (replay_entry if replay else apply_entry)(self._client, entry)
        return list(entry)

    def _take_ready(self) -> tuple[int, dict[str, Any], int | None] | None:
        """The oldest prepared suggestion that is not stale (stale ones are abandoned)."""
        burst = self._burst()
        with self._lock:
            while self._ready and self._is_stale(self._ready[0], burst):
                trial_index = self._ready.popleft()[0]
                self._inbox.append(["abandoned", trial_index])
            return self._ready.popleft() if self._ready else None

    def _wait_for_ready(self) -> tuple[int | str, dict[str, Any], int | None] | None:
        """The first suggestion the worker prepares, or a random one once its step is overdue.

        ``None`` once the worker is idle without one.
        """
        while True:
            busy = self._worker.busy
            self._worker.raise_error()
            item = self._take_ready()
            if item is not None or not busy:
                return item
            if self._step_overdue():
                return self._fallback_item()
            time.sleep(0.01)

    def _step_overdue(self) -> bool:
        """The running model step has taken far longer than ``max_wait_s`` and recent steps."""
        with self._lock:
            started = self._step_started
            recent = list(self._step_seconds)
        if self._max_wait_s is None or started is None:
            return False
        limit = max(self._max_wait_s, _OVERDUE_FACTOR * statistics.median(recent)) if recent else self._max_wait_s
        return time.monotonic() - started > limit

    def _fallback_item(self) -> tuple[str, dict[str, Any], None]:
        """A uniformly random configuration, to be attached to Ax when the running step ends."""
        import numpy as np
        from ray.tune.search.sample import Domain

        # One generator per fallback, seeded by its number, which checkpoints keep: a restored
        # searcher draws the next one, not the first again (seen: a configuration run twice).
        number = self._fallbacks + 1
        rng = np.random.default_rng(None if self._seed is None else [self._seed, 1, number])
        config = {
            name: value.sample(random_state=rng)
            for name, value in flatten_search_space(self._space).items()
            if isinstance(value, Domain)
        }
        parameters = self._codec.to_ax(_python_values(config))
        with self._lock:
            self._fallbacks = number
            key = f"fallback-{number}"
            self._inbox.append(["fallback", key, parameters])
            self._saved_state = None
        logger.warning(
            "The model step has run %.1f s, far longer than usual; handed out a random configuration "
            "instead of keeping a worker waiting (max_wait_s=%s). %d so far.",
            time.monotonic() - (self._step_started or time.monotonic()), self._max_wait_s, self._fallbacks,
        )
        return key, parameters, None

    def _burst(self) -> int:
        """How many suggestions recent trial ends wanted faster than the worker could make them.

        ``largest_backlog`` of the last trial ends, a model step taken as the longest of the
        last ones (the quasi-random steps before the model takes over cost milliseconds). At
        least 1, at most ``max_concurrent``: no more than ``max_concurrent`` suggestions are
        ever wanted at once.
        """
        with self._lock:
            ends, steps = list(self._trial_ends), list(self._step_seconds)
        if not steps or max(steps) <= 0:
            return 1
        burst = max(1, largest_backlog(ends, max(steps)))
        return burst if self._max_concurrent is None else min(burst, self._max_concurrent)

    def _is_stale(self, item: tuple[int, dict[str, Any], int | None], burst: int = 1) -> bool:
        seen = item[2]
        return seen is not None and self._results_seen - seen >= self._refresh_after + burst - 1

    def _background_step(self) -> None:
        """Apply the reported results, drop stale suggestions, prepare up to free slots + 1 (or a burst's worth).

        One suggestion at a time: a waiting ``suggest`` gets the first as soon as it is made,
        and each next one sees the results that arrived meanwhile.
        """
        while True:
            self._apply_inbox()
            burst = self._burst()
            with self._lock:
                kept = [item for item in self._ready if not self._is_stale(item, burst)]
                for item in self._ready:
                    if self._is_stale(item, burst):
                        self._inbox.append(["abandoned", item[0]])
                self._ready = deque(kept)
                free = max(0, self._max_concurrent - len(self._live)) if self._max_concurrent else 0
                wanted = max(free + 1, burst) - len(self._ready)
            self._apply_inbox()
            if wanted <= 0 or self._worker.stopping:
                break
            if not self._generate(1):
                return  # Ax cannot generate now; the next result wakes the worker again
        if len(self._journal) >= _SNAPSHOT_AFTER_ENTRIES:
            self._take_snapshot()

    def _generate(self, wanted: int) -> bool:
        """Ask Ax for up to ``wanted`` trials and queue them; ``False`` if it made none."""
        from ax.exceptions.core import DataRequiredError, OptimizationComplete
        from ax.exceptions.generation_strategy import MaxParallelismReachedException

        with self._lock:
            seen = self._results_seen
            self._step_started = time.monotonic()
        try:
            with torch_thread_limit(self._torch_threads):
                generated = self._client.get_next_trials(max_trials=wanted)
        except (DataRequiredError, MaxParallelismReachedException) as reason:
            logger.debug("Ax cannot generate yet: %s", reason)
            return False
        except OptimizationComplete as reason:
            logger.info("Ax reports the optimisation complete: %s", reason)
            return False
        finally:
            with self._lock:
                self._step_seconds.append(time.monotonic() - self._step_started)
                self._step_started = None
        with self._lock:
            for trial_index, parameters in sorted(generated.items(), key=lambda item: item[0]):
                self._journal.append(["generated", trial_index, parameters])
                self._ready.append((trial_index, parameters, seen))
            self._saved_state = None
        return bool(generated)

    def _take_snapshot(self) -> None:
        """Serialise the Ax client and start a new journal (only its owner calls this)."""
        text = json.dumps(client_to_json(self._client))
        with self._lock:
            # The owner is the only one that applies entries, so the journal is what `text` holds.
            self._snapshot, self._journal = text, []
            self._saved_state = None

    # ----------------------------------------------------------------- internals
    def _set_objectives(self, objectives: Objectives | None) -> None:
        self._objectives = objectives
        self._metric = None if objectives is None else list(objectives.names)
        self._mode = None if objectives is None else list(objectives.modes)

    def _setup_client(self) -> None:
        from ax import Client

        if not self._verbose:
            for name in ("ax", "ax.api.client", "ax.core", "ax.generation_strategy"):
                logging.getLogger(name).setLevel(logging.WARNING)
        self._check_objective_names()
        client = Client(random_seed=self._seed)
        client.configure_experiment(parameters=self._codec.parameters, name="tune_orchestrator")
        objective = ", ".join(m if d == "max" else f"-{m}" for m, d in self._objectives.items())
        thresholds = Objectives.from_spec(self._objectives, thresholds=self._objective_thresholds).threshold_constraints()
        client.configure_optimization(
            objective=objective, outcome_constraints=thresholds + self._outcome_constraints or None
        )
        # Ax's default strategy, but with a scheduler most trials end EARLY_STOPPED: they
        # must count as observed, or Ax would stay quasi-random or stop generating.
        configure_generation_strategy(
            client,
            method=self._method,
            initialization_budget=self._initialization_budget,
            seed=self._seed,
            acquisition_options=self._acquisition_options,
        )
        self._client = client
        for point in self._points_to_evaluate:
            parameters = self._codec.to_ax(point)
            self._ready.append((client.attach_trial(parameters), parameters, None))
        if self._warm_start is not None:
            self._attach_warm_start(self._warm_start)
            self._warm_start = None
        self._snapshot, self._journal = json.dumps(client_to_json(client)), []

    def _check_objective_names(self) -> None:
        parameter_names = set(self._codec.parameter_names) | set(self._codec.constants)
        clash = parameter_names & set(self._metric)
        if clash:
            raise ValueError(f"Objective(s) {sorted(clash)} share a name with search-space parameters.")

    def _attach_warm_start(self, frame: pd.DataFrame) -> None:
        parameter_names = self._codec.parameter_names
        missing = [c for c in parameter_names + self._metric if c not in frame.columns]
        if missing:
            raise ValueError(
                f"warm_start: got a DataFrame without column(s) {missing}; give one column per "
                f"search-space parameter {parameter_names} and per objective {self._metric}."
            )
        attached = skipped = 0
        for row_number, row in frame.iterrows():
            if self._objectives.problems(row):
                skipped += 1
                continue
            values = self._objectives.validate(row)
            config = {name: row[name] for name in parameter_names}
            empty = [name for name, v in config.items() if v is None or (isinstance(v, float) and math.isnan(v))]
            if empty:
                raise ValueError(
                    f"warm_start: got row {row_number} without a value for {empty}; fill every "
                    "search-space parameter or drop the row."
                )
            trial_index = self._client.attach_trial(self._codec.to_ax(_python_values(config)))
            self._client.complete_trial(trial_index, raw_data={**values, **self._constraint_values(row)})
            attached += 1
        logger.info("Warm start: attached %d earlier trials, skipped %d without finite objectives.", attached, skipped)

    def _constraint_metrics(self) -> list[str]:
        names = []
        for constraint in self._outcome_constraints:
            names.append(constraint.replace(">=", "<=").split("<=")[0].strip())
        return names

    def _constraint_values(self, result: Mapping[str, Any]) -> dict[str, float]:
        """The finite values ``result`` holds for outcome-constraint metrics."""
        values = {name: finite_or_none(result.get(name)) for name in self._constraint_metrics()}
        return {name: value for name, value in values.items() if value is not None}

    def _metric_values(self, result: Mapping[str, Any]) -> dict[str, float]:
        return {**self._objectives.validate(result), **self._constraint_values(result)}

    def _finite_objectives(self, result: Mapping[str, Any]) -> dict[str, float]:
        values = {name: finite_or_none(result.get(name)) for name in self._objectives}
        finite = {name: value for name, value in values.items() if value is not None}
        return {**finite, **self._constraint_values(result)}

    def _state_text(self) -> str:
        """The state as JSON text, without re-serialising the Ax snapshot it holds."""
        with self._lock:
            if self._client is not None and self._worker is None and any(e[0] == "generated" for e in self._journal):
                # Reproducible mode: replaying a generated trial could not recreate Ax's record
                # of it (its generator state), so the snapshot is retaken once per suggestion.
                self._take_snapshot()
            bookkeeping = {
                "version": _STATE_VERSION,
                "metric": self._metric,
                "mode": self._mode,
                "journal": self._journal + self._inbox,
                "ready": [list(item) for item in self._ready],
                "live": self._live,
                "finished": self._finished,
                "last_progression": self._last_progression,
                "results_seen": self._results_seen,
                "fallbacks": self._fallbacks,
                "resolved": self._resolved,
            }
            snapshot = self._snapshot if self._client is not None else "null"
        return '{"ax_client": ' + snapshot + ", " + json.dumps(bookkeeping)[1:]

    def _load_state(self, state: dict) -> None:
        version = state.get("version")
        if version not in _READABLE_VERSIONS:
            raise ValueError(
                f"checkpoint version: got {version}; this searcher reads versions "
                f"{list(_READABLE_VERSIONS)}, so restore it with the release that wrote it or start anew."
            )
        self._set_objectives(Objectives.optional(state["metric"], state["mode"]))
        journal = state.get("journal", [])
        # Version 2 ready items are (index, parameters): made from every result, so never stale.
        self._ready = deque((item[0], item[1], item[2] if len(item) > 2 else None) for item in state["ready"])
        self._live = dict(state["live"])
        self._finished = dict(state["finished"])
        self._last_progression = dict(state["last_progression"])
        self._results_seen = int(state.get("results_seen", len(self._finished)))
        self._fallbacks = int(state.get("fallbacks", 0))
        self._resolved = {key: int(index) for key, index in state.get("resolved", {}).items()}
        for table in (self._live, self._finished):
            table.update({trial_id: self._resolved[value] for trial_id, value in table.items() if value in self._resolved})
        if state["ax_client"] is not None:
            self._client = client_from_json(state["ax_client"])
            applied = [self._apply(list(entry), replay=True) for entry in journal]
            self._snapshot, self._journal = json.dumps(state["ax_client"]), applied
        self._inbox = []


def _python_values(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.item() if hasattr(v, "item") else v for k, v in config.items()}


def _require_saas_dependencies() -> None:
    missing = []
    for module in ("jax", "numpyro"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ImportError(
            f"method='quality' uses Ax's SAAS model, which needs {' and '.join(missing)}. "
            "Install them with: pip install 'tune-orchestrator[saas]'"
        )
