"""Run a single-objective Ray Tune searcher (TPE, ...) on several objectives by scalarisation.

Hyperopt's TPE and most Tune searchers take one metric. ``ScalarizedSearch`` wraps such a
searcher and feeds it the augmented Chebyshev scalarisation of ParEGO (Knowles, 2006) over the
objectives, each normalised by the range observed so far, so it can be compared with truly
multi-objective methods on the same problem. It finds one region of the front per weight
vector, not the whole front: use it as a baseline, not as a front-finder.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from typing import Any, Sequence

import numpy as np
from ray.tune.search import Searcher

from multiobjective import ObjectiveError, Objectives

SCALARIZED_METRIC = "_scalarized_objective"


class ScalarizedSearch(Searcher):
    """Single-objective searcher minimising ``s(y) = max_i w_i u_i + rho * sum_i w_i u_i``.

    ``u_i = (y_i - best_i) / (worst_i - best_i)`` is objective ``i`` normalised to [0, 1] over
    the results seen so far (for ``max`` objectives best is the largest value), ``w`` the
    weights (equal by default) and ``rho = 0.05``.

    Example:
        >>> from ray import tune
        >>> from ray.tune.search.hyperopt import HyperOptSearch
        >>> base = HyperOptSearch({"x": tune.uniform(0, 1)}, metric=SCALARIZED_METRIC,
        ...                       mode="min", random_state_seed=0)
        >>> searcher = ScalarizedSearch(base, metric=["acc", "latency"], mode=["max", "min"])

    Args:
        searcher: The wrapped searcher, constructed with ``metric=SCALARIZED_METRIC, mode="min"``.
        metric: Objective names, or a ``multiobjective.Objectives`` (then no ``mode``).
        mode: ``"max"``/``"min"`` per objective.
        weights: Non-negative weight per objective (normalised to sum 1).
        rho: Weight of the linear term that breaks ties between weakly dominated points.
    """

    def __init__(
        self,
        searcher: Searcher,
        metric: Sequence[str] | Objectives,
        mode: Sequence[str] | None = None,
        *,
        weights: Sequence[float] | None = None,
        rho: float = 0.05,
    ) -> None:
        super().__init__(metric=None, mode=None)
        self._objectives = Objectives.from_spec(metric, mode)
        metric = list(self._objectives.names)
        if searcher.metric not in (None, SCALARIZED_METRIC) or searcher.mode not in (None, "min"):
            raise ValueError(
                f"The wrapped searcher optimises {searcher.metric!r} in mode {searcher.mode!r}; "
                f"construct it with metric=SCALARIZED_METRIC ({SCALARIZED_METRIC!r}) and mode='min'."
            )
        weights_array = np.ones(len(metric)) if weights is None else np.asarray(weights, float)
        if weights_array.shape != (len(metric),) or (weights_array < 0).any() or weights_array.sum() <= 0:
            raise ValueError(f"weights {weights} need one non-negative value per objective, not all 0.")
        if rho < 0:
            raise ValueError(f"rho={rho} must be >= 0.")
        self._metric, self._mode = metric, list(self._objectives.modes)
        self._searcher = searcher
        self._weights = weights_array / weights_array.sum()
        self._rho = rho
        self._low = np.full(len(metric), np.inf)  # in minimisation form
        self._high = np.full(len(metric), -np.inf)

    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        return self._searcher.set_search_properties(SCALARIZED_METRIC, "min", config, **spec)

    def suggest(self, trial_id: str) -> dict | None:
        return self._searcher.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        scalar = self._scalarize(result, update_ranges=False)
        if scalar is not None:
            self._searcher.on_trial_result(trial_id, {**result, SCALARIZED_METRIC: scalar})

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        scalar = None if (error or result is None) else self._scalarize(result, update_ranges=True)
        if scalar is None:
            self._searcher.on_trial_complete(trial_id, result=None, error=True)
            return
        self._searcher.on_trial_complete(trial_id, result={**result, SCALARIZED_METRIC: scalar}, error=False)

    def save(self, checkpoint_path: str) -> None:
        # One file only: Tune's save_to_dir saves to a temporary name and renames that file,
        # so state written beside it would be left behind under the temporary name.
        with tempfile.TemporaryDirectory() as scratch:
            wrapped_path = os.path.join(scratch, "wrapped")
            self._searcher.save(wrapped_path)
            with open(wrapped_path, "rb") as handle:
                wrapped = handle.read()
        with open(checkpoint_path, "wb") as handle:
            pickle.dump({"wrapped": wrapped, "low": self._low, "high": self._high}, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            state = pickle.load(handle)
        with tempfile.TemporaryDirectory() as scratch:
            wrapped_path = os.path.join(scratch, "wrapped")
            with open(wrapped_path, "wb") as handle:
                handle.write(state["wrapped"])
            self._searcher.restore(wrapped_path)
        self._low, self._high = state["low"], state["high"]

    def _scalarize(self, result: dict, *, update_ranges: bool) -> float | None:
        try:
            values = self._objectives.validate(result)
        except ObjectiveError:  # missing, NaN or not a number: the trial failed
            return None
        y = -self._objectives.to_maximisation(list(values.values()))  # minimisation form
        if update_ranges:
            self._low = np.minimum(self._low, y)
            self._high = np.maximum(self._high, y)
        span = np.where(self._high > self._low, self._high - self._low, 1.0)
        low = np.where(np.isfinite(self._low), self._low, y)
        u = (y - low) / span
        weighted = self._weights * u
        return float(weighted.max() + self._rho * weighted.sum())
