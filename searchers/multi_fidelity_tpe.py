"""Model-based promotion: multi-objective TPE fitted on the highest rung with enough data (BOHB-like).

BOHB (Falkner et al. 2018) pairs HyperBand with a TPE model fitted, for each new configuration,
on the observations of the *largest budget that has enough of them*: early-stopped trials teach
the model at the budgets they reached instead of being discarded. :class:`MultiFidelityTPESearch`
does the same for several objectives on a maintained library: Optuna's multi-objective TPE
(MOTPE, Ozaki et al. 2022) through its ask-and-tell API, with trials still running told to the
sampler as running (``constant_liar``) so parallel workers get different configurations. It
needs no knowledge of the scheduler: every result a trial reports is an observation at its
``time_attr`` value, and a stopped or paused trial simply has none at higher values. Pair it with
any early-stopping scheduler (the catalogue's ``mo-bohb`` method uses multi-objective ASHA).

Needs ``optuna`` (``pip install 'optuna>=5'``).

Example:
    >>> from ray import tune
    >>> searcher = MultiFidelityTPESearch({"lr": tune.loguniform(1e-4, 1e-1)}, metric=["acc", "ms"],
    ...                                   mode=["max", "min"], seed=0)
    >>> config = searcher.suggest("t1")
    >>> searcher.on_trial_result("t1", {"training_iteration": 1, "acc": 0.5, "ms": 2.0})
    >>> searcher.observations_at(1)
    1
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ray.tune.search import Searcher
from ray.tune.search.sample import Domain
from ray.tune.utils.util import unflatten_dict

from multiobjective import Objectives
from searchers._tune_space import flatten_search_space

__all__ = ["MultiFidelityTPESearch"]

INSTALL_HINT = "pip install 'optuna>=5'"


def _import_optuna() -> Any:
    try:
        import optuna
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError(f"MultiFidelityTPESearch needs optuna: {INSTALL_HINT}.") from error
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


class MultiFidelityTPESearch(Searcher):
    """Multi-objective TPE on the observations of the highest budget that has at least ``min_points``.

    For each suggestion: with probability ``random_fraction``, or while no budget has
    ``min_points`` observations, a uniform draw; otherwise ``b* = max{b : |D_b| >= min_points}``,
    where ``D_b`` holds each trial's objective vector reported at ``time_attr = b``, and Optuna's
    ``TPESampler`` (several objectives: MOTPE) proposes from ``D_b*`` with the running trials as
    pending (``constant_liar``).

    Args:
        space: Tune search space (domains, constants, nested dicts).
        metric: objective name(s) or a ``multiobjective.Objectives``.
        mode: ``"max"``/``"min"`` per objective.
        seed: seed of the draws and of each sampler.
        max_concurrent: most trials suggested and not completed at once (``None``: no limit).
        time_attr: result key of the budget (``training_iteration``: epochs).
        min_points: observations a budget needs before its model is used (default: number of
            parameters + 2, BOHB's rule).
        random_fraction: share of suggestions drawn at random (BOHB's 1/3 keeps exploring).

    Example:
        >>> from ray import tune
        >>> searcher = MultiFidelityTPESearch({"x": tune.uniform(0, 1)}, metric="loss", mode="min", seed=1)
        >>> 0 <= searcher.suggest("a")["x"] <= 1
        True
    """

    def __init__(
        self,
        space: Mapping[str, Any] | None = None,
        metric: str | Sequence[str] | Objectives | None = None,
        mode: str | Sequence[str] | None = None,
        *,
        seed: int | None = None,
        max_concurrent: int | None = None,
        time_attr: str = "training_iteration",
        min_points: int | None = None,
        random_fraction: float = 1 / 3,
    ) -> None:
        super().__init__(metric=None, mode=None)
        if max_concurrent is not None and (isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1):
            raise ValueError(f"max_concurrent: got {max_concurrent!r}; pass an integer >= 1 or None.")
        if min_points is not None and (isinstance(min_points, bool) or not isinstance(min_points, int) or min_points < 1):
            raise ValueError(f"min_points: got {min_points!r}; pass an integer >= 1 or None (parameters + 2).")
        if not isinstance(random_fraction, (int, float)) or not 0 <= random_fraction <= 1:
            raise ValueError(f"random_fraction: got {random_fraction!r}; pass a number in [0, 1].")
        self._optuna = _import_optuna()
        self._objectives: Objectives | None = None
        self._set_objectives(Objectives.optional(metric, mode))
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._max_concurrent = max_concurrent
        self._time_attr = time_attr
        self._min_points = min_points
        self._random_fraction = float(random_fraction)
        self._space: dict[str, Any] | None = None
        self._distributions: dict[str, Any] = {}
        self._live: dict[str, dict[str, Any]] = {}  # trial_id -> flat params of trials not completed
        self._params: dict[str, dict[str, Any]] = {}  # every trial's flat params
        self._levels: dict[float, dict[str, np.ndarray]] = {}  # budget -> {trial_id: objective values}
        if space is not None:
            self._set_space(space)

    # ------------------------------------------------------------------ set-up
    def _set_objectives(self, objectives: Objectives | None) -> None:
        if objectives is not None:
            self._objectives = objectives
            single = len(objectives) == 1
            self._metric = objectives.names[0] if single else list(objectives.names)
            self._mode = objectives.modes[0] if single else list(objectives.modes)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        if self._space is not None and config:
            return False
        if self._objectives is None:
            self._set_objectives(Objectives.optional(metric, mode))
        if self._space is None and config:
            self._set_space(config)
        return True

    def _set_space(self, space: Mapping[str, Any]) -> None:
        from ray.tune.search.optuna import OptunaSearch

        self._space = flatten_search_space(space)
        domains = {name: value for name, value in self._space.items() if isinstance(value, Domain)}
        self._distributions = OptunaSearch.convert_search_space(unflatten_dict(domains, delimiter="/")) if domains else {}

    @property
    def min_points(self) -> int:
        """Observations a budget needs before its model is used."""
        return self._min_points if self._min_points is not None else len(self._distributions) + 2

    def observations_at(self, budget: float) -> int:
        """How many trials reported all objectives at ``time_attr == budget``."""
        return len(self._levels.get(budget, {}))

    # ------------------------------------------------------------------ suggest
    def suggest(self, trial_id: str) -> dict | None:
        if self._space is None or self._objectives is None:
            raise RuntimeError(
                "MultiFidelityTPESearch has no search space or objectives: pass space=, metric= and mode=."
            )
        if self._max_concurrent is not None and len(self._live) >= self._max_concurrent:
            return None
        budget = self._model_budget()
        if budget is None or self._rng.random() < self._random_fraction:
            params = self._draw(self._optuna.samplers.RandomSampler(seed=self._next_seed()), None)
        else:
            sampler = self._optuna.samplers.TPESampler(
                seed=self._next_seed(), multivariate=True, constant_liar=True, n_startup_trials=0
            )
            params = self._draw(sampler, budget)
        self._live[trial_id] = params
        self._params[trial_id] = params
        constants = {name: value for name, value in self._space.items() if not isinstance(value, Domain)}
        return unflatten_dict({**constants, **params}, delimiter="/")

    def _next_seed(self) -> int:
        return int(self._rng.integers(2**31 - 1))

    def _model_budget(self) -> float | None:
        enough = [budget for budget, points in self._levels.items() if len(points) >= self.min_points]
        return max(enough) if enough else None

    def _draw(self, sampler: Any, budget: float | None) -> dict[str, Any]:
        optuna = self._optuna
        directions = ["maximize" if mode == "max" else "minimize" for mode in self._objectives.modes]
        study = optuna.create_study(directions=directions, sampler=sampler)
        if budget is not None:
            for trial_id, values in self._levels[budget].items():
                study.add_trial(optuna.trial.create_trial(
                    params=self._params[trial_id], distributions=self._distributions, values=list(values),
                ))
            for params in self._live.values():
                study.add_trial(optuna.trial.create_trial(
                    params=params, distributions=self._distributions, state=optuna.trial.TrialState.RUNNING,
                ))
        return dict(study.ask(self._distributions).params)

    # ------------------------------------------------------------------ results
    def _record(self, trial_id: str, result: Mapping[str, Any] | None) -> None:
        if not result or trial_id not in self._params or self._time_attr not in result:
            return
        values = []
        for name in self._objectives.names:
            try:
                value = float(result[name])
            except (KeyError, TypeError, ValueError):
                return
            if not math.isfinite(value):
                return
            values.append(value)
        self._levels.setdefault(float(result[self._time_attr]), {})[trial_id] = np.array(values)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._record(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if not error:
            self._record(trial_id, result)
        self._live.pop(trial_id, None)

    # ------------------------------------------------------------------ state
    def save(self, checkpoint_path: str) -> None:
        state = {
            "rng": self._rng.bit_generator.state, "live": self._live, "params": self._params,
            "levels": self._levels,
        }
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(state, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            state = pickle.load(handle)
        self._rng.bit_generator.state = state["rng"]
        self._live, self._params, self._levels = state["live"], state["params"], state["levels"]
