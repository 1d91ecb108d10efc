"""Seeded random search as a Ray Tune ``Searcher``: the baseline every other method must beat.

Ray's default ``BasicVariantGenerator`` is a ``SearchAlgorithm``, not a ``Searcher``, so it cannot
be driven through ``suggest``/``on_trial_complete`` by the benchmark simulator, wrapped in a
``ConcurrencyLimiter`` or seeded independently of the global NumPy state. This one can.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from ray.tune.search import Searcher
from ray.tune.search.sample import Domain
from ray.tune.search.variant_generator import parse_spec_vars
from ray.tune.utils.util import unflatten_dict

from multiobjective import Objectives
from searchers._tune_space import flatten_search_space


class RandomSearch(Searcher):
    """Independent draws from each domain of a Tune search space.

    ``x_t ~ prod_j p_j`` where ``p_j`` is the sampler of domain ``j`` (uniform, log-uniform,
    quantised, categorical); draws do not depend on results.

    Example:
        >>> from ray import tune
        >>> searcher = RandomSearch({"lr": tune.loguniform(1e-4, 1e-1), "epochs": 5}, seed=0)
        >>> sorted(searcher.suggest("trial_1"))
        ['epochs', 'lr']

    Args:
        space: Tune search space (domains, constants, nested dicts). May come from the Tuner.
        metric: Objective name(s) or a ``multiobjective.Objectives``; kept for interface
            uniformity (checked, then ignored by the search).
        mode: ``"max"``/``"min"`` per objective.
        seed: Seed of the private random generator.
        max_trials: After this many suggestions ``suggest`` returns ``Searcher.FINISHED``.
    """

    def __init__(
        self,
        space: Mapping[str, Any] | None = None,
        metric: str | Sequence[str] | Objectives | None = None,
        mode: str | Sequence[str] | None = None,
        *,
        seed: int | None = None,
        max_trials: int | None = None,
    ) -> None:
        super().__init__(metric=None, mode=None)
        self._set_objectives(Objectives.optional(metric, mode))
        if max_trials is not None and max_trials < 1:
            raise ValueError(f"max_trials={max_trials!r} must be a positive integer or None.")
        self._rng = np.random.default_rng(seed)
        self._max_trials = max_trials
        self._suggested = 0
        self._space: dict[str, Any] | None = None
        if space is not None:
            self._set_space(space)

    def set_search_properties(
        self, metric: str | None, mode: str | None, config: dict, **spec: Any
    ) -> bool:
        if self._space is not None and config:
            return False
        if self._metric is None:
            self._set_objectives(Objectives.optional(metric, mode))
        if self._space is None and config:
            self._set_space(config)
        return True

    def _set_objectives(self, objectives: Objectives | None) -> None:
        if objectives is not None:
            single = len(objectives) == 1
            self._metric = objectives.names[0] if single else list(objectives.names)
            self._mode = objectives.modes[0] if single else list(objectives.modes)

    def suggest(self, trial_id: str) -> dict | None:
        if self._space is None:
            raise RuntimeError("RandomSearch has no search space: pass space= or a Tuner param_space.")
        if self._max_trials is not None and self._suggested >= self._max_trials:
            return Searcher.FINISHED
        self._suggested += 1
        flat = {
            name: _python_value(value.sample(random_state=self._rng)) if isinstance(value, Domain) else value
            for name, value in self._space.items()
        }
        return unflatten_dict(flat, delimiter="/")

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Random search learns nothing from results."""

    def save(self, checkpoint_path: str) -> None:
        import pickle

        with open(checkpoint_path, "wb") as handle:
            pickle.dump({"rng": self._rng.bit_generator.state, "suggested": self._suggested}, handle)

    def restore(self, checkpoint_path: str) -> None:
        import pickle

        with open(checkpoint_path, "rb") as handle:
            state = pickle.load(handle)
        self._rng.bit_generator.state = state["rng"]
        self._suggested = state["suggested"]

    def _set_space(self, space: Mapping[str, Any]) -> None:
        _, _, grid_vars = parse_spec_vars(dict(space))
        if grid_vars:
            raise ValueError(
                "RandomSearch cannot expand tune.grid_search; use tune.choice, or Ray's default "
                "search algorithm for grids."
            )
        self._space = flatten_search_space(space)


def _python_value(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
