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
import tempfile
from collections import deque
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
from ray.tune.search import Searcher

from multiobjective.objectives import Objectives, finite_or_none
from searchers._ax_adapter import configure_generation_strategy
from searchers._threads import torch_thread_limit
from searchers._tune_space import AxSpaceCodec

logger = logging.getLogger(__name__)

_METHODS = ("fast", "quality", "random_search")
# 2: the ready queue holds (Ax trial index, Ax parameters); the Ax state is Client.save_to_json_file's.
_STATE_VERSION = 2


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
            ``{"num_restarts": 4, "raw_samples": 256, "options": {"maxiter_alternating": 8}}``:
            fewer restarts make each suggestion several times cheaper on small CPUs at a
            small cost in acquisition value (BoTorch's defaults: 20 restarts, 1024 samples).
        torch_threads: PyTorch threads while Ax fits and optimises (restored afterwards).
            GPs over tens of points gain nothing from threads, and beside trials on the
            same cores extra threads make each suggestion 5-10x slower; ``None`` leaves
            PyTorch's setting alone.
        verbose: Keep Ax's INFO logging (off by default: it logs every trial).
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

        self._space: dict[str, Any] | None = dict(space) if space is not None else None
        self._codec: AxSpaceCodec | None = None
        self._client: Any = None
        # (Ax trial index, Ax parameters) generated or attached but not yet handed out
        self._ready: deque[tuple[int, dict[str, Any]]] = deque()
        self._live: dict[str, int] = {}  # Tune trial id -> Ax trial index
        self._last_progression: dict[str, int] = {}
        self._finished: dict[str, int] = {}
        self._saved_state: str | None = None  # serialised state, kept until a hook changes it
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
        if not self._ready:
            self._generate()
        if not self._ready:
            return None
        trial_index, parameters = self._ready.popleft()
        self._live[trial_id] = trial_index
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
        self._client.attach_data(trial_index, data, progression=int(progression))

    def on_trial_complete(
        self, trial_id: str, result: dict | None = None, error: bool = False
    ) -> None:
        self._saved_state = None
        trial_index = self._live.pop(trial_id, None)
        if trial_index is None:
            return
        last_seen = self._last_progression.pop(trial_id, None)
        self._finished[trial_id] = trial_index
        if error:
            logger.warning("Trial %s (Ax trial %d) raised an error; marked failed.", trial_id, trial_index)
            self._client.mark_trial_failed(trial_index, failed_reason="trial raised an error")
            return
        if result is None:
            # Tune removed the trial before it ran (experiment ended, pending trial stopped).
            self._client.mark_trial_abandoned(trial_index)
            return
        problems = self._objectives.problems(result)
        if problems:
            reason = ", ".join(f"{name} is {problem}" for name, problem in problems.items())
            logger.warning("Trial %s (Ax trial %d) marked failed: %s.", trial_id, trial_index, reason)
            self._client.mark_trial_failed(trial_index, failed_reason=f"objective values: {reason}")
            return
        data = self._metric_values(result)
        progression = result.get(self._progression_attr)
        progression = int(progression) if progression is not None else None
        stopped_by_scheduler = progression is not None and progression != last_seen
        if stopped_by_scheduler and (self._max_progression is None or progression < self._max_progression):
            self._client.attach_data(trial_index, data, progression=progression)
            self._client.mark_trial_early_stopped(trial_index)
        else:
            self._client.complete_trial(trial_index, raw_data=data, progression=progression)

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
        trial_index = self._client.attach_trial(self._codec.to_ax(parameters))
        if error:
            self._client.mark_trial_failed(trial_index, failed_reason="reported as failed")
        elif pruned:
            self._client.attach_data(trial_index, {k: float(v) for k, v in value.items()})
            self._client.mark_trial_early_stopped(trial_index)
        else:
            self._client.complete_trial(trial_index, raw_data={k: float(v) for k, v in value.items()})

    # ----------------------------------------------------------------- persistence
    def save(self, checkpoint_path: str) -> None:
        """Write the searcher's state (Ax's JSON snapshot and our bookkeeping) to one file.

        Tune saves the searcher at every controller step (see ``orchestrator.run``); the
        serialised state is kept until a hook changes it, so a save in between costs one write.
        """
        if self._saved_state is None:
            self._saved_state = json.dumps(self._state())
        Path(checkpoint_path).write_text(self._saved_state)

    def restore(self, checkpoint_path: str) -> None:
        self._load_state(json.loads(Path(checkpoint_path).read_text()))
        self._saved_state = None

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        # Ax objects are saved through Ax's own JSON format, not pickle (Tuner pickles us).
        state["_client"] = None
        state["_codec"] = None
        state["_saved_state"] = None
        state["_pickled_state"] = self._state() if self._client is not None else None
        return state

    def __setstate__(self, state: dict) -> None:
        pickled = state.pop("_pickled_state", None)
        self.__dict__.update(state)
        if self._space is not None:
            self._codec = AxSpaceCodec.from_tune(self._space)
        if pickled is not None:
            self._load_state(pickled)

    # ----------------------------------------------------------------- introspection
    @property
    def client(self) -> Any:
        """The underlying ``ax.Client`` (for Ax's analyses and ``get_pareto_frontier``)."""
        return self._client

    @property
    def metric(self) -> list[str] | None:  # type: ignore[override]
        return self._metric

    @property
    def mode(self) -> list[str] | None:  # type: ignore[override]
        return self._mode

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
            self._ready.append((client.attach_trial(parameters), parameters))
        if self._warm_start is not None:
            self._attach_warm_start(self._warm_start)
            self._warm_start = None

    def _check_objective_names(self) -> None:
        parameter_names = set(self._codec.parameter_names) | set(self._codec.constants)
        clash = parameter_names & set(self._metric)
        if clash:
            raise ValueError(f"Objective(s) {sorted(clash)} share a name with search-space parameters.")

    def _generate(self) -> None:
        from ax.exceptions.core import DataRequiredError, OptimizationComplete
        from ax.exceptions.generation_strategy import MaxParallelismReachedException

        wanted = 1
        if self._max_concurrent is not None:
            wanted = max(1, self._max_concurrent - len(self._live))
        try:
            with torch_thread_limit(self._torch_threads):
                generated = self._client.get_next_trials(max_trials=wanted)
        except (DataRequiredError, MaxParallelismReachedException) as reason:
            logger.debug("Ax cannot generate yet: %s", reason)
            return
        except OptimizationComplete as reason:
            logger.info("Ax reports the optimisation complete: %s", reason)
            return
        self._ready.extend(sorted(generated.items(), key=lambda item: item[0]))

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

    def _state(self) -> dict:
        return {
            "version": _STATE_VERSION,
            "ax_client": _client_to_json(self._client) if self._client is not None else None,
            "metric": self._metric,
            "mode": self._mode,
            "ready": [[trial_index, parameters] for trial_index, parameters in self._ready],
            "live": self._live,
            "finished": self._finished,
            "last_progression": self._last_progression,
        }

    def _load_state(self, state: dict) -> None:
        if state.get("version") != _STATE_VERSION:
            raise ValueError(
                f"checkpoint version: got {state.get('version')}; this searcher reads version "
                f"{_STATE_VERSION} only, so restore it with the release that wrote it or start anew."
            )
        self._set_objectives(Objectives.optional(state["metric"], state["mode"]))
        if state["ax_client"] is not None:
            self._client = _client_from_json(state["ax_client"])
        self._ready = deque((trial_index, parameters) for trial_index, parameters in state["ready"])
        self._live = dict(state["live"])
        self._finished = dict(state["finished"])
        self._last_progression = dict(state["last_progression"])


def _python_values(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.item() if hasattr(v, "item") else v for k, v in config.items()}


def _client_to_json(client: Any) -> dict:
    """``client`` as the JSON object ``Client.save_to_json_file`` writes (kept in our one file)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ax_client.json"
        client.save_to_json_file(str(path))
        return json.loads(path.read_text())


def _client_from_json(snapshot: Mapping[str, Any]) -> Any:
    """The ``ax.Client`` that ``Client.load_from_json_file`` restores from ``snapshot``."""
    from ax import Client

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ax_client.json"
        path.write_text(json.dumps(snapshot))
        return Client.load_from_json_file(str(path))


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
