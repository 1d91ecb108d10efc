"""Tests for orchestrator.methods: the catalogue of search methods by name."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from ray import tune
from ray.tune.search import Searcher

from multiobjective import Objectives
from orchestrator import methods
from orchestrator.methods import (
    Method,
    SearchProblem,
    build_searcher,
    describe_methods,
    get_method,
    method_names,
    register_method,
    resolve_scheduler_name,
)
from schedulers.catalogue import DEFAULT_SCHEDULER

SPACE = {"lr": tune.loguniform(1e-4, 1e-1), "model": {"depth": tune.randint(1, 4)}, "epochs": 2}
CANDIDATES = [{"lr": lr, "model": {"depth": depth}, "epochs": 2} for lr in (1e-3, 1e-2) for depth in (1, 3)]
OBJECTIVES = {1: Objectives.from_spec({"acc": "max"}), 2: Objectives.from_spec({"acc": "max", "latency": "min"})}


def problem(objectives: int = 2, **fields) -> SearchProblem:
    return SearchProblem(fields.pop("space", SPACE), OBJECTIVES[objectives], **fields)
# Methods that need more than the space to build (a finite pool draws from its candidates).
METHOD_OPTIONS = {"pool-mobo": {"candidates": CANDIDATES}}
# Methods that optimise one objective and refuse several.
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


def test_readme_methods_table_names_every_method():
    """The README's table is where users look a method up: one row (or shared row) per name."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    table = readme.split("## Methods", 1)[1].split("\n\n", 2)[1]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    named = {name for row in rows for name in re.findall(r"`([a-z0-9-]+)`", row.split("|")[1])}
    assert set(method_names()) <= named, sorted(set(method_names()) - named)


@pytest.mark.parametrize("objectives", [1, 2])
@pytest.mark.parametrize("name", method_names())
def test_every_method_builds_a_working_searcher(name, objectives):
    searcher = build_searcher(name, problem(objectives, seed=0, max_concurrent=2), **METHOD_OPTIONS.get(name, {}))
    assert isinstance(searcher, Searcher)
    for i in range(2):
        config = searcher.suggest(f"t{i}")
        assert isinstance(config, dict), (name, config)
        assert_in_space(config)
        searcher.on_trial_complete(
            f"t{i}", {"acc": 0.5 + 0.1 * i, "latency": 3.0 - i, "training_iteration": 1, "time_total_s": 1.0}
        )


@pytest.mark.parametrize("name", method_names())
def test_same_seed_same_first_suggestion(name):
    options = METHOD_OPTIONS.get(name, {})
    first, second = (build_searcher(name, problem(2, seed=3), **options).suggest("t0") for _ in range(2))
    assert first == second


def test_tpe_scalarises_only_several_objectives():
    from ray.tune.search.hyperopt import HyperOptSearch

    from searchers.scalarized import SCALARIZED_METRIC, ScalarizedSearch

    single = build_searcher("tpe", problem(1, seed=0))
    assert isinstance(single, HyperOptSearch) and single.metric == "acc" and single.mode == "max"
    several = build_searcher("tpe", problem(2, seed=0), weights=[3, 1])
    assert isinstance(several, ScalarizedSearch)
    assert several._searcher.metric == SCALARIZED_METRIC and several._searcher.mode == "min"
    assert several._weights.tolist() == [0.75, 0.25]


def test_ax_receives_objectives_and_options():
    searcher = build_searcher("ax-mobo", problem(seed=0, max_concurrent=1), method="random_search")
    assert searcher.metric == ["acc", "latency"] and searcher.mode == ["max", "min"]
    searcher.suggest("t0")
    assert searcher.suggest("t1") is None  # max_concurrent reached the searcher


def test_ax_receives_thresholds_constraints_and_progression_from_the_problem():
    objectives = Objectives.from_spec({"acc": "max", "latency": "min"}, thresholds={"latency": 5.0})
    searcher = build_searcher(
        "ax-mobo",
        SearchProblem(SPACE, objectives, constraints=("size <= 10",), seed=0, max_t=8, time_attr="epoch"),
        method="random_search",
    )
    assert searcher._objective_thresholds == {"latency": 5.0}
    assert searcher._outcome_constraints == ["size <= 10"]
    assert (searcher._max_progression, searcher._progression_attr) == (8, "epoch")


def test_cheap_options_build_and_only_ax_has_them():
    assert [name for name in method_names() if get_method(name).cheap_options] == ["ax-mobo"]
    build_searcher("ax-mobo", problem(seed=0), **get_method("ax-mobo").cheap_options)


def test_pool_reads_candidates_from_csv(tmp_path):
    path = tmp_path / "candidates.csv"
    pd.DataFrame([{"lr": c["lr"], "depth": c["model"]["depth"]} for c in CANDIDATES]).to_csv(path, index=False)
    searcher = build_searcher("pool-mobo", problem(1, space={}, seed=0), candidates=str(path))
    config = searcher.suggest("t0")
    assert (config["lr"], config["depth"]) in {(c["lr"], c["model"]["depth"]) for c in CANDIDATES}


def test_unknown_options_are_rejected_by_the_searcher():
    with pytest.raises(TypeError):
        build_searcher("random", problem(1), no_such_option=1)


@pytest.mark.parametrize("typo, suggestion", [("tpee", "tpe"), ("ax_mobo", "ax-mobo"), ("randon", "random")])
def test_unknown_name_suggests_the_close_name(typo, suggestion):
    with pytest.raises(ValueError, match=rf"method: got '{typo}' \(did you mean '{suggestion}'\?\)"):
        build_searcher(typo, problem(1))


def test_unknown_name_lists_registered_names_without_a_guess():
    with pytest.raises(ValueError) as raised:
        get_method("zzzzzz")
    assert "did you mean" not in str(raised.value)
    for name in method_names():
        assert name in str(raised.value)


def test_register_duplicate_raises():
    with pytest.raises(ValueError, match="'random' is already registered"):
        register_method(Method("random", "again", lambda *args, **kwargs: None))


def test_register_new_method_is_built_by_name(monkeypatch):
    monkeypatch.setattr(methods, "_REGISTRY", dict(methods._REGISTRY))
    calls = []

    def build(problem, **options):
        calls.append((problem, options))
        return "searcher"

    register_method(Method("custom", "A custom method for the test", build, defaults={"k": 0, "j": 2}))
    assert method_names()[-1] == "custom"
    assert describe_methods()["custom"] == "A custom method for the test"
    given = problem(1, seed=4, max_concurrent=2)
    assert build_searcher("custom", given, k=1) == "searcher"
    # The one rule: the method's defaults, overridden by the caller's options.
    assert calls == [(given, {"k": 1, "j": 2})]
    assert resolve_scheduler_name("custom", None, scheduler_section=False) is None


def test_scheduler_of_each_method():
    for name in method_names():
        own = get_method(name).scheduler
        assert resolve_scheduler_name(name, None, scheduler_section=False) == own
        assert resolve_scheduler_name(name, None, scheduler_section=True) == (own or DEFAULT_SCHEDULER)
    assert resolve_scheduler_name("random", "hyperband") == "hyperband"
    assert resolve_scheduler_name("asha", "asha") == "asha"
    with pytest.raises(ValueError, match="scheduler.type: got 'hyperband', but method 'asha' comes with the 'asha'"):
        resolve_scheduler_name("asha", "hyperband")


def test_ax_warm_starts_from_an_earlier_results_csv(tmp_path):
    """The orchestrator reads its own results.csv (config/ columns) and hands Ax a plain frame."""
    path = tmp_path / "results.csv"
    pd.DataFrame({
        "trial_id": ["a", "b", "c"],
        "config/lr": [1e-3, 1e-2, 5e-2],
        "config/model/depth": [1, 2, 3],
        "config/epochs": [2, 2, 2],
        "acc": [0.5, 0.7, float("nan")],  # a failed trial is skipped
        "latency": [3.0, 2.0, 1.0],
        "status": ["completed", "completed", "error"],
    }).to_csv(path, index=False)
    searcher = build_searcher("ax-mobo", problem(seed=0), method="random_search", warm_start=str(path))
    attached = searcher.client.summarize()
    assert len(attached) == 2 and set(attached["trial_status"]) == {"COMPLETED"}
    assert sorted(attached["acc"]) == [0.5, 0.7]
