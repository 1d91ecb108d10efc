"""Tests for searchers.optuna_peers.OptunaPeerSearch (no Ray session)."""

from __future__ import annotations

import pytest
from ray import tune

from searchers.optuna_peers import SAMPLERS, OptunaPeerSearch

SPACE = {"x": tune.uniform(0, 1), "net": {"width": tune.choice([8, 16])}, "epochs": 3}


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_suggestions_keep_constants_and_learn_from_two_objectives(sampler):
    searcher = OptunaPeerSearch(SPACE, ["acc", "ms"], ["max", "min"], sampler=sampler, seed=0)
    for index in range(6):
        config = searcher.suggest(f"t{index}")
        assert config["epochs"] == 3 and config["net"]["width"] in (8, 16) and 0 <= config["x"] <= 1
        searcher.on_trial_complete(f"t{index}", {"acc": config["x"], "ms": config["net"]["width"]})
    assert len(searcher._ot_study.trials) == 6
    assert all(len(trial.values) == 2 for trial in searcher._ot_study.trials)


def test_same_seed_same_suggestions_and_unknown_sampler_is_named():
    first = OptunaPeerSearch(SPACE, ["acc", "ms"], ["max", "min"], sampler="tpe", seed=3).suggest("a")
    second = OptunaPeerSearch(SPACE, ["acc", "ms"], ["max", "min"], sampler="tpe", seed=3).suggest("a")
    assert first == second
    with pytest.raises(ValueError, match="sampler"):
        OptunaPeerSearch(SPACE, ["acc"], ["max"], sampler="cmaes")
