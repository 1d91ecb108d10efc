"""Tests for searchers.random_search: seeded independent draws from a Tune space."""

from __future__ import annotations

import os

import cloudpickle
import pytest
from ray import tune
from ray.tune.search import Searcher

from searchers import RandomSearch

SPACE = {
    "lr": tune.loguniform(1e-4, 1e-1),
    "width": tune.qrandint(16, 64, 16),
    "optim": {"name": tune.choice(["adam", "sgd"]), "momentum": tune.uniform(0.0, 0.9), "eps": 1e-8,
              "extra": {}},
    "act": tune.choice([None, ["gelu", 0.1]]),
    "flag": tune.choice([True, False]),
    "depth": tune.randint(1, 4),
    "epochs": 5,
}


def draw(searcher: RandomSearch, count: int, start: int = 0) -> list[dict]:
    return [searcher.suggest(f"t{i}") for i in range(start, start + count)]


def test_suggestions_are_inside_the_space_with_python_types():
    for config in draw(RandomSearch(SPACE, seed=0), 50):
        assert type(config["lr"]) is float and 1e-4 <= config["lr"] <= 1e-1
        assert type(config["width"]) is int and config["width"] in (16, 32, 48, 64)
        assert config["optim"]["name"] in ("adam", "sgd")
        assert type(config["optim"]["momentum"]) is float and 0.0 <= config["optim"]["momentum"] <= 0.9
        assert config["optim"]["eps"] == 1e-8 and config["optim"]["extra"] == {}
        assert config["act"] in (None, ["gelu", 0.1])
        assert type(config["flag"]) is bool
        assert type(config["depth"]) is int and 1 <= config["depth"] <= 3
        assert config["epochs"] == 5
        assert set(config) == set(SPACE) and set(config["optim"]) == set(SPACE["optim"])


def test_draws_cover_every_category():
    configs = draw(RandomSearch(SPACE, seed=0), 60)
    assert {c["depth"] for c in configs} == {1, 2, 3}
    assert {c["width"] for c in configs} == {16, 32, 48, 64}
    assert {c["flag"] for c in configs} == {True, False}


def test_same_seed_same_stream_other_seed_other_stream():
    first, second, other = (draw(RandomSearch(SPACE, seed=s), 10) for s in (7, 7, 8))
    assert first == second
    assert first != other
    assert len({c["lr"] for c in first}) == 10  # draws differ from one another


def test_stream_ignores_results_and_global_numpy_state():
    import numpy as np

    reference = draw(RandomSearch(SPACE, seed=3), 5)
    searcher = RandomSearch(SPACE, seed=3)
    stream = []
    for i in range(5):
        np.random.seed(i)
        stream.append(searcher.suggest(f"t{i}"))
        searcher.on_trial_result(f"t{i}", {"acc": 1.0})
        searcher.on_trial_complete(f"t{i}", {"acc": float(i)}, error=i == 2)
    assert stream == reference


def test_finished_after_max_trials():
    searcher = RandomSearch(SPACE, seed=0, max_trials=3)
    assert all(isinstance(c, dict) for c in draw(searcher, 3))
    assert searcher.suggest("t3") == Searcher.FINISHED
    assert searcher.suggest("t4") == Searcher.FINISHED


@pytest.mark.parametrize("max_trials", [0, -1])
def test_invalid_max_trials_raises(max_trials):
    with pytest.raises(ValueError, match=f"max_trials={max_trials}"):
        RandomSearch(SPACE, max_trials=max_trials)


def test_grid_search_raises():
    with pytest.raises(ValueError, match="grid_search"):
        RandomSearch({"a": {"b": tune.grid_search([1, 2])}})


def test_domain_inside_a_list_raises():
    with pytest.raises(ValueError, match="list or tuple"):
        RandomSearch({"layers": [tune.randint(1, 3)]})


def test_suggest_without_space_raises():
    with pytest.raises(RuntimeError, match="no search space"):
        RandomSearch(seed=0).suggest("t1")


def test_set_search_properties_takes_space_and_metric_from_tune():
    searcher = RandomSearch(seed=1)
    assert searcher.set_search_properties("acc", "max", dict(SPACE)) is True
    assert searcher.metric == "acc" and searcher.mode == "max"
    assert draw(searcher, 3) == draw(RandomSearch(SPACE, seed=1), 3)


def test_set_search_properties_keeps_constructor_metric_and_refuses_a_second_space():
    searcher = RandomSearch(SPACE, metric=["acc", "cost"], mode=["max", "min"], seed=0)
    assert searcher.set_search_properties("other", "min", {"x": tune.uniform(0, 1)}) is False
    assert searcher.set_search_properties("other", "min", {}) is True
    assert searcher.metric == ["acc", "cost"]


def test_save_restore_continues_the_same_stream(tmp_path):
    reference = draw(RandomSearch(SPACE, seed=5, max_trials=8), 8)
    searcher = RandomSearch(SPACE, seed=5, max_trials=8)
    before = draw(searcher, 3)
    path = tmp_path / "random.pkl"
    searcher.save(str(path))
    restored = RandomSearch(SPACE, seed=999, max_trials=8)
    restored.restore(str(path))
    after = draw(restored, 5, start=3)
    assert before + after == reference
    assert restored.suggest("t8") == Searcher.FINISHED  # the count survives too


def test_save_to_dir_round_trip_as_tune_does(tmp_path):
    searcher = RandomSearch(SPACE, seed=5)
    draw(searcher, 2)
    searcher.save_to_dir(str(tmp_path), session_str="s")
    assert os.listdir(tmp_path) == ["searcher-state-s.pkl"]
    restored = RandomSearch(SPACE, seed=0)
    restored.restore_from_dir(str(tmp_path))
    assert draw(restored, 2, start=2) == draw(searcher, 2, start=2)


def test_cloudpickle_round_trip_continues_the_stream():
    searcher = RandomSearch(SPACE, seed=2)
    draw(searcher, 2)
    clone = cloudpickle.loads(cloudpickle.dumps(searcher))
    assert draw(clone, 3, start=2) == draw(searcher, 3, start=2)
