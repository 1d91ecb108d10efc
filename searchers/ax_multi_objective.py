"""Multi-objective Bayesian optimisation for Ray Tune on Ax's ``Client`` API (ax-platform 1.3).

Ray 2.60's ``AxSearch`` crashes with ax-platform 1.x (``Objective.metric`` is gone), handles a
single objective only and sits on ``AxClient``, which Ax 1.4 removes. ``AxMultiObjectiveSearch``
is its replacement: any number of objectives with directions, objective thresholds, outcome
constraints, intermediate results as Ax progressions, early-stopped and failed trials reported
as such, and ``save``/``restore`` through Ax's JSON snapshot so ``Tuner.restore`` continues an
interrupted experiment without repeating configurations.

With two or more objectives Ax's default generation strategy (``method="fast"``) runs a Sobol
initialisation followed by BoTorch's qLogNEHVI acquisition over one GP per objective.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections import deque
from pathlib import Path
from typing import Any, Mapping, Sequence

import pandas as pd
from ray.tune.search import Searcher

from searchers._threads import torch_thread_limit
from searchers._tune_space import AxSpaceCodec

logger = logging.getLogger(__name__)

_METHODS = ("fast", "quality", "random_search")
_STATE_VERSION = 1


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
        warm_start: Earlier results, a ``pandas.DataFrame`` or the path of a results CSV
            written by this project (``config/<name>`` or plain parameter columns plus the
            metric columns); each complete row is attached to Ax as a finished trial.
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
        metric: str | Sequence[str] | None = None,
        mode: str | Sequence[str] | None = None,
        *,
        points_to_evaluate: Sequence[Mapping[str, Any]] | None = None,
        objective_thresholds: Mapping[str, float] | None = None,
        outcome_constraints: Sequence[str] | None = None,
        seed: int | None = None,
        max_concurrent: int | None = None,
        method: str = "fast",
        initialization_budget: int | None = None,
        warm_start: pd.DataFrame | str | os.PathLike | None = None,
        max_progression: int | None = None,
        progression_attr: str = "training_iteration",
        acquisition_options: Mapping[str, Any] | None = None,
        torch_threads: int | None = 1,
        verbose: bool = False,
    ) -> None:
        super().__init__(metric=None, mode=None)
        self._metric, self._mode = _normalise_objectives(metric, mode)
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
        self._ready: deque[int] = deque()  # Ax trial indices generated but not yet handed out
        self._live: dict[str, int] = {}  # Tune trial id -> Ax trial index
        self._last_progression: dict[str, int] = {}
        self._finished: dict[str, int] = {}
        if self._space is not None:
            self._codec = AxSpaceCodec.from_tune(self._space)
            if self._metric is not None:
                self._setup_client()

    # ----------------------------------------------------------------- Tune interface
    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        if self._client is not None:
            return False
        if self._space is not None and config:
            return False
        if self._metric is None:
            if metric is None:
                return False
            self._metric, self._mode = _normalise_objectives(metric, mode)
        if self._space is None:
            if not config:
                return False
            self._space = dict(config)
            self._codec = AxSpaceCodec.from_tune(self._space)
        self._setup_client()
        return True

    def suggest(self, trial_id: str) -> dict | None:
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
        trial_index = self._ready.popleft()
        self._live[trial_id] = trial_index
        parameters = self._client._experiment.trials[trial_index].arm.parameters
        return self._codec.to_tune(parameters)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
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
        missing = [m for m in self._metric if not _is_finite_number(result.get(m))]
        if missing:
            values = {m: result.get(m) for m in missing}
            logger.warning(
                "Trial %s (Ax trial %d) reported no finite value for objective(s) %s; marked failed.",
                trial_id, trial_index, values,
            )
            self._client.mark_trial_failed(
                trial_index, failed_reason=f"non-finite or missing objective values {values}"
            )
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
        Path(checkpoint_path).write_text(json.dumps(self._state()))

    def restore(self, checkpoint_path: str) -> None:
        self._load_state(json.loads(Path(checkpoint_path).read_text()))

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        # Ax objects are saved through Ax's own JSON encoder, not pickle (Tuner pickles us).
        state["_client"] = None
        state["_codec"] = None
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
    def _setup_client(self) -> None:
        from ax import Client

        if not self._verbose:
            for name in ("ax", "ax.api.client", "ax.core", "ax.generation_strategy"):
                logging.getLogger(name).setLevel(logging.WARNING)
        self._check_objective_names()
        client = Client(random_seed=self._seed)
        client.configure_experiment(parameters=self._codec.parameters, name="tune_orchestrator")
        objective = ", ".join(m if d == "max" else f"-{m}" for m, d in zip(self._metric, self._mode))
        thresholds = [
            f"{m} {'>=' if self._mode[self._metric.index(m)] == 'max' else '<='} {float(v)!r}"
            for m, v in self._objective_thresholds.items()
        ]
        client.configure_optimization(
            objective=objective, outcome_constraints=thresholds + self._outcome_constraints or None
        )
        client.configure_generation_strategy(
            method=self._method,
            initialization_budget=self._initialization_budget,
            initialization_random_seed=self._seed,
            # With a scheduler most trials end EARLY_STOPPED, which Ax's initialisation does
            # not count as observed; without this Ax would stop generating and Tune would wait.
            allow_exceeding_initialization_budget=True,
        )
        _count_early_stopped_as_observed(client)
        if self._acquisition_options:
            _set_acquisition_options(client, self._acquisition_options)
        self._client = client
        for point in self._points_to_evaluate:
            self._ready.append(client.attach_trial(self._codec.to_ax(point)))
        if self._warm_start is not None:
            self._attach_warm_start(self._warm_start)
            self._warm_start = None

    def _check_objective_names(self) -> None:
        for name in self._objective_thresholds:
            if name not in self._metric:
                raise ValueError(
                    f"objective_thresholds names {name!r}, which is not an objective "
                    f"({self._metric}); put bounds on other metrics in outcome_constraints."
                )
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
        self._ready.extend(sorted(generated))

    def _attach_warm_start(self, warm_start: pd.DataFrame | str | os.PathLike) -> None:
        frame = pd.read_csv(warm_start) if not isinstance(warm_start, pd.DataFrame) else warm_start
        missing = [m for m in self._metric if m not in frame.columns]
        if missing:
            raise ValueError(
                f"warm_start lacks objective column(s) {missing}; it has {list(frame.columns)}."
            )
        attached = skipped = 0
        for row_number, row in frame.iterrows():
            values = {m: row[m] for m in self._metric}
            if not all(_is_finite_number(v) for v in values.values()):
                skipped += 1
                continue
            config = {
                name: row[f"config/{name}"] if f"config/{name}" in row else row.get(name)
                for name in self._codec.parameter_names
            }
            if any(v is None or (isinstance(v, float) and math.isnan(v)) for v in config.values()):
                raise ValueError(
                    f"warm_start row {row_number} lacks a value for a search-space parameter "
                    f"({config}); columns must be 'config/<name>' or '<name>'."
                )
            extra = {k: float(row[k]) for k in self._constraint_metrics() if _is_finite_number(row.get(k))}
            trial_index = self._client.attach_trial(self._codec.to_ax(_python_values(config)))
            self._client.complete_trial(trial_index, raw_data={**{k: float(v) for k, v in values.items()}, **extra})
            attached += 1
        logger.info("Warm start: attached %d earlier trials, skipped %d without finite objectives.", attached, skipped)

    def _constraint_metrics(self) -> list[str]:
        names = []
        for constraint in self._outcome_constraints:
            names.append(constraint.replace(">=", "<=").split("<=")[0].strip())
        return names

    def _metric_values(self, result: Mapping[str, Any]) -> dict[str, float]:
        data = {m: float(result[m]) for m in self._metric}
        for name in self._constraint_metrics():
            if _is_finite_number(result.get(name)):
                data[name] = float(result[name])
        return data

    def _finite_objectives(self, result: Mapping[str, Any]) -> dict[str, float]:
        names = list(self._metric) + self._constraint_metrics()
        return {m: float(result[m]) for m in names if _is_finite_number(result.get(m))}

    def _state(self) -> dict:
        return {
            "version": _STATE_VERSION,
            "ax_snapshot": self._client._to_json_snapshot() if self._client is not None else None,
            "metric": self._metric,
            "mode": self._mode,
            "ready": list(self._ready),
            "live": self._live,
            "finished": self._finished,
            "last_progression": self._last_progression,
        }

    def _load_state(self, state: dict) -> None:
        from ax import Client

        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"Searcher checkpoint version {state.get('version')} is not {_STATE_VERSION}.")
        self._metric, self._mode = state["metric"], state["mode"]
        if state["ax_snapshot"] is not None:
            self._client = Client._from_json_snapshot(snapshot=state["ax_snapshot"])
        self._ready = deque(state["ready"])
        self._live = dict(state["live"])
        self._finished = dict(state["finished"])
        self._last_progression = dict(state["last_progression"])


def _normalise_objectives(
    metric: str | Sequence[str] | None, mode: str | Sequence[str] | None
) -> tuple[list[str] | None, list[str] | None]:
    if metric is None:
        if mode is not None:
            raise ValueError("mode was given without metric; give both or neither.")
        return None, None
    metrics = [metric] if isinstance(metric, str) else list(metric)
    if mode is None:
        raise ValueError(f"metric={metrics} needs mode= ('max' or 'min' per objective).")
    modes = [mode] * len(metrics) if isinstance(mode, str) else list(mode)
    if not metrics:
        raise ValueError("metric=[] names no objective; give at least one.")
    if len(modes) != len(metrics):
        raise ValueError(f"metric has {len(metrics)} names but mode has {len(modes)} entries: {modes}.")
    for name, direction in zip(metrics, modes):
        if direction not in ("max", "min"):
            raise ValueError(f"mode {direction!r} for objective {name!r} must be 'max' or 'min'.")
    duplicates = sorted({m for m in metrics if metrics.count(m) > 1})
    if duplicates:
        raise ValueError(f"metric names {duplicates} more than once; each objective must be unique.")
    return metrics, modes


def _is_finite_number(value: Any) -> bool:
    try:
        return value is not None and not isinstance(value, bool) and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _python_values(config: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v.item() if hasattr(v, "item") else v for k, v in config.items()}


def _count_early_stopped_as_observed(client: Any) -> None:
    """Let trials cut by a scheduler count towards Ax's "observed initialisation trials".

    Ax 1.3 moves from Sobol to the model only after ``min_observed_initialization_trials``
    COMPLETED trials; under ASHA most trials end EARLY_STOPPED with data attached, so Ax would
    stay quasi-random for the whole experiment. Their data is used by the model either way.
    """
    from ax.core.trial_status import TrialStatus

    for node in client._generation_strategy._nodes:
        for criterion in node.transition_criteria or []:
            statuses = getattr(criterion, "only_in_statuses", None)
            if statuses == [TrialStatus.COMPLETED]:
                criterion.only_in_statuses = [TrialStatus.COMPLETED, TrialStatus.EARLY_STOPPED]


def _set_acquisition_options(client: Any, optimizer_kwargs: Mapping[str, Any]) -> None:
    """Pass ``optimizer_kwargs`` to the acquisition optimiser of every model-based node."""
    for node in client._generation_strategy._nodes:
        for spec in node.generator_specs:
            if spec.generator_enum.name == "BOTORCH_MODULAR":
                options = spec.generator_gen_kwargs.setdefault("model_gen_options", {})
                options["optimizer_kwargs"] = dict(optimizer_kwargs)


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
