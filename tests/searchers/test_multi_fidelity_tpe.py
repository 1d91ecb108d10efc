"""Tests for searchers.multi_fidelity_tpe.MultiFidelityTPESearch (no Ray session)."""

from __future__ import annotations

import numpy as np
import pytest
from ray import tune

from searchers.multi_fidelity_tpe import MultiFidelityTPESearch

SPACE = {"x": tune.uniform(0, 1), "width": tune.choice([8, 16, 32]), "fixed": {"epochs": 9}}


def _searcher(**kwargs) -> MultiFidelityTPESearch:
    kwargs.setdefault("seed", 0)
    return MultiFidelityTPESearch(SPACE, metric=["acc", "ms"], mode=["max", "min"], **kwargs)


def _feed(searcher, trial_id, t, acc, ms, complete=False):
    result = {"training_iteration": t, "acc": acc, "ms": ms}
    if complete:
        searcher.on_trial_complete(trial_id, result)
    else:
        searcher.on_trial_result(trial_id, result)


def test_suggestions_respect_the_space_and_keep_constants():
    searcher = _searcher()
    for index in range(20):
        config = searcher.suggest(f"t{index}")
        assert 0 <= config["x"] <= 1 and config["width"] in (8, 16, 32) and config["fixed"] == {"epochs": 9}


def test_the_model_budget_is_the_highest_with_enough_observations():
    searcher = _searcher(min_points=3)
    for index in range(5):
        searcher.suggest(f"t{index}")
        _feed(searcher, f"t{index}", 1, 0.1 * index, 1.0)
    assert searcher._model_budget() == 1.0
    for index in range(2):
        _feed(searcher, f"t{index}", 3, 0.5, 1.0)
    assert searcher._model_budget() == 1.0  # 2 < min_points at t = 3
    _feed(searcher, "t2", 3, 0.5, 1.0, complete=True)
    assert searcher._model_budget() == 3.0 and searcher.observations_at(3) == 3


def test_early_stopped_results_steer_the_model_towards_the_good_region():
    # acc peaks at x = 0.8; every trial is "stopped" after one step, as a scheduler would.
    def run(random_fraction):
        searcher = _searcher(min_points=6, random_fraction=random_fraction, seed=3)
        xs = []
        for index in range(40):
            config = searcher.suggest(f"t{index}")
            xs.append(config["x"])
            _feed(searcher, f"t{index}", 1, 1 - abs(config["x"] - 0.8), config["width"], complete=True)
        return np.abs(np.array(xs[20:]) - 0.8).mean()

    assert run(0.0) < 0.6 * run(1.0)  # the model beats uniform draws by a wide margin


def test_running_trials_get_different_suggestions():
    searcher = _searcher(min_points=4, random_fraction=0.0)
    for index in range(8):
        config = searcher.suggest(f"done{index}")
        _feed(searcher, f"done{index}", 1, config["x"], 1.0, complete=True)
    first, second = searcher.suggest("a"), searcher.suggest("b")
    assert first != second


def test_max_concurrent_and_save_restore(tmp_path):
    searcher = _searcher(max_concurrent=2)
    searcher.suggest("a")
    searcher.suggest("b")
    assert searcher.suggest("c") is None
    _feed(searcher, "a", 1, 0.5, 2.0, complete=True)
    searcher.save(str(tmp_path / "state.pkl"))
    restored = _searcher(max_concurrent=2)
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored.observations_at(1) == 1
    assert restored.suggest("c") == searcher.suggest("c")


@pytest.mark.parametrize("kwargs, field", [
    ({"max_concurrent": 0}, "max_concurrent"),
    ({"min_points": 0}, "min_points"),
    ({"random_fraction": 1.5}, "random_fraction"),
])
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        _searcher(**kwargs)


def test_nan_and_missing_objectives_are_not_observations():
    searcher = _searcher()
    searcher.suggest("a")
    _feed(searcher, "a", 1, float("nan"), 1.0)
    searcher.on_trial_result("a", {"training_iteration": 2, "acc": 0.5})
    assert searcher.observations_at(1) == 0 and searcher.observations_at(2) == 0
