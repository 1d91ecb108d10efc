"""benchmarks._delegating: every Tune hook reaches the wrapped searcher unchanged."""

from __future__ import annotations

import pytest
from ray.tune.search import Searcher

from benchmarks._delegating import DelegatingSearcher


class Recorder(Searcher):
    def __init__(self) -> None:
        super().__init__(metric=["a", "b"], mode=["max", "min"])
        self.hooks: list[tuple] = []

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        self.hooks.append(("properties", metric, mode, tuple(config)))
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.hooks.append(("concurrency", max_concurrent))
        return True

    def suggest(self, trial_id: str):
        self.hooks.append(("suggest", trial_id))
        return {"x": 1}

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.hooks.append(("result", trial_id))

    def on_trial_complete(self, trial_id: str, result=None, error=False) -> None:
        self.hooks.append(("complete", trial_id, error))

    def add_evaluated_point(self, parameters, value, error=False, pruned=False, intermediate_values=None) -> None:
        self.hooks.append(("point", value, pruned))

    def save(self, checkpoint_path: str) -> None:
        self.hooks.append(("save", checkpoint_path))

    def restore(self, checkpoint_path: str) -> None:
        self.hooks.append(("restore", checkpoint_path))

    def on_pause(self, trial_id: str) -> None:
        self.hooks.append(("pause", trial_id))

    def on_unpause(self, trial_id: str) -> None:
        self.hooks.append(("unpause", trial_id))


def test_every_hook_is_forwarded_in_order():
    inner = Recorder()
    probe = DelegatingSearcher(inner)
    assert (probe.metric, probe.mode) == (["a", "b"], ["max", "min"])
    assert probe.set_search_properties("a", "max", {"x": 1}) is True
    assert probe.set_max_concurrency(2) is True
    assert probe.suggest("t0") == {"x": 1}
    probe.on_trial_result("t0", {"a": 1.0})
    probe.on_trial_complete("t0", {"a": 1.0}, error=True)
    probe.add_evaluated_point({"x": 1}, 0.5, pruned=True)
    probe.save("p")
    probe.restore("p")
    probe.on_pause("t0")
    probe.on_unpause("t0")
    assert inner.hooks == [
        ("properties", "a", "max", ("x",)), ("concurrency", 2), ("suggest", "t0"), ("result", "t0"),
        ("complete", "t0", True), ("point", 0.5, True), ("save", "p"), ("restore", "p"),
        ("pause", "t0"), ("unpause", "t0"),
    ]


def test_pause_hooks_are_skipped_for_searchers_without_them():
    probe = DelegatingSearcher(Searcher())
    probe.on_pause("t0")
    probe.on_unpause("t0")


def test_only_searchers_are_wrapped():
    with pytest.raises(TypeError, match="searcher: got list"):
        DelegatingSearcher([])
