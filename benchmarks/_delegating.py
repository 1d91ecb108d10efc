"""A ``Searcher`` that forwards every Tune hook to the searcher it wraps, for benchmark probes.

The benchmarks wrap real searchers to watch them (time ``suggest``, trace the incumbent, stop at
a cost) without changing what they decide. Forwarding follows Ray's ``ConcurrencyLimiter``
(Ray 2.60): Tune reads ``metric``/``mode`` through the wrapper and checkpoints the wrapped
searcher's state beside the wrapper's own ``get_state``. Subclasses override the hooks they watch.

Example:
    >>> from ray import tune
    >>> from searchers import RandomSearch
    >>> probe = DelegatingSearcher(RandomSearch({"x": tune.uniform(0, 1)}, seed=0))
    >>> sorted(probe.suggest("trial_1"))
    ['x']
"""

from __future__ import annotations

from typing import Any

from ray.tune.search import Searcher


class DelegatingSearcher(Searcher):
    """Forwards every hook to ``searcher``.

    Args:
        searcher: The wrapped ``ray.tune.search.Searcher``.
    """

    def __init__(self, searcher: Searcher) -> None:
        if not isinstance(searcher, Searcher):
            raise TypeError(f"searcher: got {type(searcher).__name__}; pass a ray.tune.search.Searcher.")
        super().__init__()
        self.searcher = searcher

    @property
    def metric(self) -> Any:
        return self.searcher.metric

    @property
    def mode(self) -> Any:
        return self.searcher.mode

    def set_search_properties(self, metric: Any, mode: Any, config: dict, **spec: Any) -> bool:
        return self.searcher.set_search_properties(metric, mode, config, **spec)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        return self.searcher.set_max_concurrency(max_concurrent)

    def suggest(self, trial_id: str) -> dict | str | None:
        return self.searcher.suggest(trial_id)

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.searcher.on_trial_result(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)

    def add_evaluated_point(
        self,
        parameters: dict,
        value: float,
        error: bool = False,
        pruned: bool = False,
        intermediate_values: list[float] | None = None,
    ) -> None:
        return self.searcher.add_evaluated_point(parameters, value, error, pruned, intermediate_values)

    def add_evaluated_trials(self, trials_or_analysis: Any, metric: str) -> None:
        return self.searcher.add_evaluated_trials(trials_or_analysis, metric)

    def save(self, checkpoint_path: str) -> None:
        self.searcher.save(checkpoint_path)

    def restore(self, checkpoint_path: str) -> None:
        self.searcher.restore(checkpoint_path)

    def on_pause(self, trial_id: str) -> None:  # HyperBandForBOHB's hooks, when the searcher has them
        if callable(getattr(self.searcher, "on_pause", None)):
            self.searcher.on_pause(trial_id)

    def on_unpause(self, trial_id: str) -> None:
        if callable(getattr(self.searcher, "on_unpause", None)):
            self.searcher.on_unpause(trial_id)
