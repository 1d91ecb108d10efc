"""Tests for orchestrator.methods: the catalogue of search methods by name."""

from __future__ import annotations

import pandas as pd
import pytest
from ray import tune
from ray.tune.search import Searcher

from orchestrator import methods
from orchestrator.methods import (
    Method,
    build_scheduler,
    build_searcher,
    describe_methods,
    get_method,
    method_names,
    register_method,
)

SPACE = {"lr": tune.loguniform(1e-4, 1e-1), "model": {"depth": tune.randint(1, 4)}, "epochs": 2}
CANDIDATES = [{"lr": lr, "model": {"depth": depth}, "epochs": 2} for lr in (1e-3, 1e-2) for depth in (1, 3)]
OBJECTIVES = {1: (["acc"], ["max"]), 2: (["acc", "latency"], ["max", "min"])}
# Methods that need more than the space to build (a finite pool draws from its candidates).
METHOD_OPTIONS = {"pool-mobo": {"candidates": CANDIDATES}}


def assert_in_space(config: dict) -> None:
    assert 1e-4 <= config["lr"] <= 1e-1
    assert config["model"]["depth"] in (1, 2, 3)
    assert config["epochs"] == 2


def test_contract_names_are_registered_first():
    assert method_names()[:3] == ["ax-mobo", "tpe", "random"]
    assert len(set(method_names())) == len(method_names())


def test_descriptions_cover_every_method():
    descriptions = describe_methods()
    assert list(descriptions) == method_names()
    for name, text in descriptions.items():
        assert isinstance(text, str) and len(text) > 20, name
        assert "\n" not in text, name
    assert "AxMultiObjectiveSearch" in descriptions["ax-mobo"]


@pytest.mark.parametrize("objectives", [1, 2])
@pytest.mark.parametrize("name", method_names())
def test_every_method_builds_a_working_searcher(name, objectives):
    metrics, modes = OBJECTIVES[objectives]
    searcher = build_searcher(
        name, space=SPACE, metrics=metrics, modes=modes, seed=0, max_concurrent=2,
        **METHOD_OPTIONS.get(name, {}),
    )
    assert isinstance(searcher, Searcher)
    for i in range(2):
        config = searcher.suggest(f"t{i}")
        assert isinstance(config, dict), (name, config)
        assert_in_space(config)
        searcher.on_trial_complete(f"t{i}", {"acc": 0.5 + 0.1 * i, "latency": 3.0 - i, "training_iteration": 1})


@pytest.mark.parametrize("name", method_names())
def test_same_seed_same_first_suggestion(name):
    metrics, modes = OBJECTIVES[2]
    options = METHOD_OPTIONS.get(name, {})
    first, second = (
        build_searcher(name, space=SPACE, metrics=metrics, modes=modes, seed=3, **options).suggest("t0")
        for _ in range(2)
    )
    assert first == second


def test_tpe_scalarises_only_several_objectives():
    from ray.tune.search.hyperopt import HyperOptSearch

    from searchers.scalarized import SCALARIZED_METRIC, ScalarizedSearch

    single = build_searcher("tpe", space=SPACE, metrics=["acc"], modes=["max"], seed=0)
    assert isinstance(single, HyperOptSearch) and single.metric == "acc" and single.mode == "max"
    several = build_searcher("tpe", space=SPACE, metrics=["acc", "latency"], modes=["max", "min"],
                             seed=0, weights=[3, 1])
    assert isinstance(several, ScalarizedSearch)
    assert several._searcher.metric == SCALARIZED_METRIC and several._searcher.mode == "min"
    assert several._weights.tolist() == [0.75, 0.25]


def test_ax_receives_objectives_and_options():
    searcher = build_searcher("ax-mobo", space=SPACE, metrics=["acc", "latency"], modes=["max", "min"],
                              seed=0, max_concurrent=1, method="random_search")
    assert searcher.metric == ["acc", "latency"] and searcher.mode == ["max", "min"]
    searcher.suggest("t0")
    assert searcher.suggest("t1") is None  # max_concurrent reached the searcher


def test_pool_reads_candidates_from_csv(tmp_path):
    path = tmp_path / "candidates.csv"
    pd.DataFrame([{"lr": c["lr"], "depth": c["model"]["depth"]} for c in CANDIDATES]).to_csv(path, index=False)
    searcher = build_searcher("pool-mobo", space={}, metrics=["acc"], modes=["max"], seed=0, candidates=str(path))
    config = searcher.suggest("t0")
    assert (config["lr"], config["depth"]) in {(c["lr"], c["model"]["depth"]) for c in CANDIDATES}


def test_unknown_options_are_rejected_by_the_searcher():
    with pytest.raises(TypeError):
        build_searcher("random", space=SPACE, metrics=["acc"], modes=["max"], no_such_option=1)


@pytest.mark.parametrize(
    "metrics, modes",
    [(["acc"], ["max", "min"]), (["acc", "latency"], ["max"]), ([], [])],
)
def test_objective_lengths_are_validated(metrics, modes):
    with pytest.raises(ValueError, match="non-empty and of equal length"):
        build_searcher("random", space=SPACE, metrics=metrics, modes=modes)


@pytest.mark.parametrize("typo, suggestion", [("tpee", "tpe"), ("ax_mobo", "ax-mobo"), ("randon", "random")])
def test_unknown_name_suggests_the_close_name(typo, suggestion):
    with pytest.raises(ValueError, match=rf"Unknown method '{typo}'.*Did you mean '{suggestion}'\?"):
        build_searcher(typo, space=SPACE, metrics=["acc"], modes=["max"])


def test_unknown_name_lists_registered_names_without_a_guess():
    with pytest.raises(ValueError) as raised:
        get_method("zzzzzz")
    assert "Did you mean" not in str(raised.value)
    for name in method_names():
        assert repr(name) in str(raised.value)


def test_register_duplicate_raises():
    with pytest.raises(ValueError, match="'random' is already registered"):
        register_method(Method("random", "again", lambda *args, **kwargs: None))


def test_register_new_method_is_built_by_name(monkeypatch):
    monkeypatch.setattr(methods, "_REGISTRY", dict(methods._REGISTRY))
    calls = []

    def build(space, metrics, modes, seed, max_concurrent, **options):
        calls.append((metrics, modes, seed, max_concurrent, options))
        return "searcher"

    register_method(Method("custom", "A custom method for the test", build))
    assert method_names()[-1] == "custom"
    assert describe_methods()["custom"] == "A custom method for the test"
    assert build_searcher("custom", space=SPACE, metrics=("a",), modes=("min",), seed=4, max_concurrent=2, k=1) == "searcher"
    assert calls == [(["a"], ["min"], 4, 2, {"k": 1})]
    assert build_scheduler("custom", metric="a", mode="min", max_t=3) is None


def test_schedulers_of_early_stopping_methods():
    from ray.tune.schedulers import ASHAScheduler

    from schedulers import SynchronousHyperBand

    expected = {"asha": ASHAScheduler, "hyperband": SynchronousHyperBand}
    for name in method_names():
        scheduler = build_scheduler(name, metric="acc", mode="max", max_t=9)
        if name in expected:
            assert isinstance(scheduler, expected[name])
            assert scheduler.metric == "acc"
        else:
            assert scheduler is None, name
