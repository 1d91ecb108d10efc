"""Tests for benchmarks.runner: one method on one blackbox, summaries over seeds, whole benchmarks.

Most tests run on small synthetic NMT-format tables (the real ``NMTBlackbox`` code path) and a
synthetic single-objective surrogate; the tests on the shared data skip when it is absent.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import runner
from benchmarks.blackboxes import make_blackbox
from benchmarks.blackboxes.base import Fidelity
from benchmarks.runner import parse_methods, run_benchmark, run_method, run_methods, scheduler_metric
from benchmarks.run_cache import RunCache
from benchmarks.summary import effective_budget, json_ready
from orchestrator.methods import method_names
from tests.benchmark_data import NMTHPO_PAIRS, needs_nmthpo
from tests.benchmarks.synthetic_tables import SYNTHETIC_PAIR, Quadratic, write_nmt_tables

# `tables` and `nmt` (40 synthetic models of SYNTHETIC_PAIR) come from tests/benchmarks/conftest.py.


# ----------------------------------------------------------------------------- run_method
def test_run_method_history_counts_trials_and_records_pool_mode(nmt):
    history = run_method(nmt, "random", budget=15, seed=0, workers=3)
    assert len(history) == 15
    assert history.attrs["pool_mode"] == "nearest"
    assert history.attrs["method"] == "random" and history.attrs["seed"] == 0 and history.attrs["budget"] == 15
    assert history["candidate_index"].nunique() == 15
    assert history.attrs["wall_s"] >= 0
    suggest_s = history.attrs["suggest_s"]  # one suggest call per trial, each timed
    assert len(suggest_s) == 15 and all(isinstance(s, float) and 0 <= s <= history.attrs["wall_s"] for s in suggest_s)


def test_budget_is_capped_at_the_pool_size(nmt):
    assert effective_budget(nmt, 500) == 40
    assert effective_budget(nmt, 7) == 7
    assert effective_budget(Quadratic(), 500) == 500
    history = run_method(nmt, "random", budget=500, seed=1, workers=4)
    assert len(history) == 40 and history.attrs["budget"] == 40


def test_same_seed_same_history_other_seed_differs(nmt):
    first = run_method(nmt, "random", budget=10, seed=3, workers=2)
    again = run_method(nmt, "random", budget=10, seed=3, workers=2)
    other = run_method(nmt, "random", budget=10, seed=4, workers=2)
    assert first["candidate_index"].tolist() == again["candidate_index"].tolist()
    assert first["candidate_index"].tolist() != other["candidate_index"].tolist()


def test_scheduler_methods_stop_trials_early_on_the_intermediate_metric(nmt):
    assert scheduler_metric(nmt) == ("ppl", "min")
    history = run_method(nmt, "asha", budget=30, seed=0, workers=4)
    assert len(history) == 30
    assert (history["status"] == "stopped").any()
    assert history.loc[history["status"] == "stopped", "bleu"].isna().all()  # only ppl before the end


def test_scheduler_metric_defaults_to_the_first_objective_without_a_declaration():
    class Plain:  # duck-typed: no intermediate_metric()
        objectives = {"acc": "max", "size": "min"}
        fidelity = Fidelity("epoch", 1, 3, "epoch", [1.0, 2.0, 3.0])

    assert scheduler_metric(Plain()) == ("acc", "max")
    assert Quadratic().intermediate_metric() == ("loss", "min")  # Blackbox's default
    assert Quadratic(with_fidelity=False).intermediate_metric() is None
    assert scheduler_metric(Quadratic()) == ("loss", "min")
    history = run_method(Quadratic(), "asha", budget=20, seed=0, workers=2)
    assert history.attrs["pool_mode"] == "off" and (history["status"] == "stopped").any()


def test_scheduler_method_without_fidelity_fails_clearly(tmp_path):
    folder = write_nmt_tables(tmp_path, SYNTHETIC_PAIR, rows=12, curves=False)
    blackbox = make_blackbox("nmthpo", folder, SYNTHETIC_PAIR)
    assert blackbox.fidelity is None
    with pytest.raises(ValueError, match="'asha' stops trials early and needs a blackbox with a fidelity"):
        run_method(blackbox, "asha", budget=5, seed=0)
    with pytest.raises(ValueError, match="no fidelity"):
        scheduler_metric(blackbox)


def test_pool_searcher_on_a_surrogate_fails_clearly():
    with pytest.raises(ValueError, match="has no candidate pool"):
        run_method(Quadratic(), "pool-mobo", budget=3, seed=0)


@pytest.mark.parametrize(
    ("argument", "value"),
    [("budget", 0), ("budget", 2.5), ("workers", 0), ("workers", True), ("seed", -1), ("seed", "1")],
)
def test_run_method_rejects_bad_arguments_naming_them(nmt, argument, value):
    arguments = {"budget": 5, "seed": 0, "workers": 2, argument: value}
    with pytest.raises(ValueError, match=f"{argument}="):
        run_method(nmt, "random", **arguments)


def test_unknown_method_error_lists_registered_names(nmt):
    with pytest.raises(ValueError, match="method: got .*; use one of") as error:
        run_method(nmt, "bayes-magic", budget=5, seed=0)
    assert all(name in str(error.value) for name in method_names())


def test_parse_methods_accepts_lists_and_commas_and_rejects_bad_input():
    assert parse_methods("random, tpe") == ["random", "tpe"]
    assert parse_methods(["asha"]) == ["asha"]
    with pytest.raises(ValueError, match="empty"):
        parse_methods(" , ")
    with pytest.raises(ValueError, match="more than once"):
        parse_methods("random,random")
    with pytest.raises(ValueError, match="method: got 'nope'"):
        parse_methods("random,nope")


def test_run_benchmark_table_and_summary(tables):
    table, summary = run_benchmark("nmthpo", tables, SYNTHETIC_PAIR, "random,asha", budget=10, seeds=2, workers=2,
                                   seeds_for={"asha": 1})
    assert table["method"].tolist() == ["random", "asha", "random (expected)"]
    assert summary["benchmark"] == "nmthpo" and summary["instance"] == SYNTHETIC_PAIR and summary["budget"] == 10
    assert summary["methods"]["random"]["seeds"] == 2 and summary["methods"]["asha"]["seeds"] == 1
    assert summary["pool_size"] == 40 and summary["pareto_size"] == len(make_blackbox("nmthpo", tables, SYNTHETIC_PAIR)
                                                                         .known_pareto_indices())
    assert json.loads(json.dumps(json_ready(summary), allow_nan=False))["methods"].keys() == {"random", "asha"}


def test_run_benchmark_rejects_bad_inputs(tables, tmp_path):
    with pytest.raises(FileNotFoundError, match="data_dir="):
        run_benchmark("nmthpo", tmp_path / "absent", SYNTHETIC_PAIR, "random", budget=5, seeds=1)
    with pytest.raises(ValueError, match="method: got .*; use one of"):
        run_benchmark("nmthpo", tables, SYNTHETIC_PAIR, "random,unknown", budget=5, seeds=1)
    with pytest.raises(ValueError, match="seeds=0"):
        run_benchmark("nmthpo", tables, SYNTHETIC_PAIR, "random", budget=5, seeds=0)
    with pytest.raises(ValueError, match=r"seeds_for\['tpe'\]"):
        run_benchmark("nmthpo", tables, SYNTHETIC_PAIR, "random", budget=5, seeds=1, seeds_for={"tpe": 0})


def _copy_pair(source: Path, pair: str, target: Path, new_pair: str) -> Path:
    """Copies one pair's tables (and its learning curves) under another pair name."""
    folder = target / "nmthpo"
    folder.mkdir(parents=True)
    for suffix in (".hyps", ".hyps_scaled", ".evals", ".fronts"):
        shutil.copy(source / "nmthpo" / f"{pair}{suffix}", folder / f"{new_pair}{suffix}")
    records = json.loads((source / "nmthpo" / "learning_curves.json").read_text())
    renamed = [dict(r, dataset_name=f"renamed-{new_pair}") for r in records
               if str(r["dataset_name"]).endswith("-" + pair)]
    (folder / "learning_curves.json").write_text(json.dumps(renamed))
    return target


def _comparable(summary: dict) -> dict:
    methods = {name: {k: v for k, v in result.items() if not k.startswith(("wall_s", "suggest_"))}
               for name, result in summary["methods"].items()}
    return {**{k: v for k, v in summary.items() if k not in ("instance", "methods")}, "methods": methods}


def test_results_do_not_depend_on_the_instance_name(tables, tmp_path):
    renamed = _copy_pair(tables, SYNTHETIC_PAIR, tmp_path, "ab-cd")
    _, original = run_benchmark("nmthpo", tables, SYNTHETIC_PAIR, "random,asha", budget=12, seeds=2)
    _, copy = run_benchmark("nmthpo", renamed, "ab-cd", "random,asha", budget=12, seeds=2)
    assert copy["instance"] == "ab-cd"
    assert _comparable(copy) == _comparable(original)


@needs_nmthpo
def test_real_pair_runs_and_matches_a_renamed_copy(data_dir, tmp_path):
    pair = NMTHPO_PAIRS[0]
    _, original = run_benchmark("nmthpo", data_dir, pair, "random,asha", budget=20, seeds=2)
    assert original["methods"]["random"]["pool_mode"] == "nearest"
    assert 0 < original["known_hypervolume"] <= 1
    assert math.isclose(original["random_expected"]["found_at_budget"],
                        original["pareto_size"] * 20 / original["pool_size"])
    _, copy = run_benchmark("nmthpo", _copy_pair(data_dir, pair, tmp_path, "xx-yy"), "xx-yy",
                            "random,asha", budget=20, seeds=2)
    assert _comparable(copy) == _comparable(original)


# ----------------------------------------------------------------------------- jobs and cache
def _without_wall_time(history: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    return history, {k: v for k, v in history.attrs.items() if k not in ("wall_s", "suggest_s")}


def test_parallel_jobs_give_the_same_histories_as_one_process(nmt):
    serial = run_methods(nmt, "random,tpe", budget=10, seeds=2, workers=2)
    parallel = run_methods(nmt, "random,tpe", budget=10, seeds=2, workers=2, jobs=2)
    assert list(parallel) == ["random", "tpe"]
    for name in serial:
        for one, other in zip(serial[name], parallel[name]):
            pd.testing.assert_frame_equal(one, other)
            assert _without_wall_time(one)[1] == _without_wall_time(other)[1]


def test_cache_reuses_finished_runs_and_runs_only_missing_ones(nmt, tmp_path, monkeypatch):
    messages: list[str] = []
    first = run_methods(nmt, "random", budget=8, seeds=2, workers=2, cache=tmp_path, progress=messages.append)
    assert len(list(tmp_path.rglob("*.pkl"))) == 2 and not any("cached" in m for m in messages)

    calls: list[tuple] = []
    original = runner.run_method
    monkeypatch.setattr(runner, "run_method", lambda *a, **k: calls.append((a, k)) or original(*a, **k))
    messages.clear()
    again = run_methods(nmt, "random", budget=8, seeds=3, workers=2, cache=RunCache(tmp_path), progress=messages.append)
    assert [k["seed"] for _, k in calls] == [2]  # seeds 0 and 1 came from the cache
    assert sum("(cached)" in m for m in messages) == 2
    for one, other in zip(first["random"], again["random"]):
        pd.testing.assert_frame_equal(one, other)
        assert {**one.attrs, "from_cache": True} == other.attrs


def test_jobs_must_be_a_positive_integer(nmt):
    with pytest.raises(ValueError, match="jobs=0"):
        run_methods(nmt, "random", budget=5, seeds=1, jobs=0)



@pytest.mark.parametrize("method", ["asha", "hyperband"])
def test_the_benchmark_runs_the_same_scheduler_a_user_gets_for_the_method(method):
    """One catalogue: a method's scheduler in a benchmark equals the one a user's spec builds."""
    from orchestrator.spec import Experiment, Objective, SchedulerSpec

    blackbox = Quadratic()
    benchmark = runner.scheduler_for(blackbox, method)
    user = Experiment(
        name="same",
        trainable=lambda config: None,
        search_space={"x": {"type": "uniform", "low": 0, "high": 1}},
        objectives=[Objective(name, mode) for name, mode in blackbox.objectives.items()],
        method=method,
        scheduler=SchedulerSpec(max_t=len(blackbox.fidelity.steps)),
    ).scheduler_config()
    assert benchmark == user
    assert benchmark.options == {"asha": {"grace_period": 1, "reduction_factor": 3},
                                 "hyperband": {"reduction_factor": 3}}[method]
    built = benchmark.build()
    factor = built._reduction_factor if method == "asha" else built._eta  # Ray 2.60's attribute names
    assert built.metric == "loss" and factor == 3
