"""Tests for benchmarks.summary: per-trial curves, summaries over seeds, the random expectation, JSON."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.blackboxes import NMTBlackbox
from benchmarks.runner import run_benchmark, run_method
from benchmarks.summary import (
    benchmark_summary,
    history_curves,
    json_ready,
    random_expectation,
    suggest_latency_ms,
    summarize,
    summary_table,
)
from tests.benchmarks.synthetic_tables import SYNTHETIC_PAIR, Quadratic

# `tables` and `nmt` (40 synthetic models of SYNTHETIC_PAIR) come from tests/benchmarks/conftest.py.


def _history(indices: list[int], blackbox: NMTBlackbox, seed: int) -> pd.DataFrame:
    """A hand-made history evaluating ``indices`` fully, in that order."""
    values = blackbox.candidate_objectives().iloc[indices].reset_index(drop=True)
    history = values.assign(candidate_index=indices, cost=1.0, end_time=np.arange(1.0, len(indices) + 1),
                            status="completed")
    history.attrs.update(seed=seed, budget=len(indices), pool_mode="nearest", wall_s=0.5)
    return history


def test_iterations_to_all_is_null_unless_every_seed_found_the_whole_front(nmt):
    pareto = nmt.known_pareto_indices()
    others = [i for i in range(40) if i not in pareto]
    found_all = _history(others[:3] + pareto + others[3:5], nmt, seed=0)  # all found at 3 + k
    found_one = _history(others[:6] + pareto[:1], nmt, seed=1)
    k = len(pareto)

    both = summarize([found_all, found_one], nmt)
    assert both["iterations_to_all"] is None and both["iterations_to_all_std"] is None
    assert both["iterations_to_all_reached"] == 1
    assert both["found_at_budget"] == pytest.approx((k + 1) / 2)
    assert both["seeds"] == 2 and both["seed_values"] == [0, 1] and both["pool_mode"] == "nearest"

    alone = summarize([found_all, found_all], nmt)
    assert alone["iterations_to_all"] == 3 + k and alone["iterations_to_all_std"] == 0.0
    assert alone["found_at_budget"] == k and alone["found_at_budget_std"] == 0.0
    assert alone["cost"] == len(found_all) and alone["best_value"] is None  # two objectives
    assert alone["final_hypervolume"] == pytest.approx(benchmark_summary(nmt, {}, budget=5, workers=1)
                                                       ["known_hypervolume"])


def test_suggest_percentiles_pool_every_call_of_every_seed(nmt):
    runs = [_history([0, 1, 2], nmt, seed=0), _history([3, 4], nmt, seed=1), _history([5], nmt, seed=2)]
    runs[0].attrs["suggest_s"] = [0.010, 0.001, 0.002]
    runs[1].attrs["suggest_s"] = [0.004, 0.003]
    runs[2].attrs["suggest_s"] = [0.005, 0.006, 0.007, 0.008, 0.009]  # 1..10 ms in all
    summary = summarize(runs, nmt)
    # np.percentile (linear): the median of 1..10 is 5.5, the 90th percentile 1 + 0.9 * 9 = 9.1.
    assert summary["suggest_p50_ms"] == pytest.approx(5.5) and summary["suggest_p90_ms"] == pytest.approx(9.1)
    assert "suggest_s" not in summary and "suggest_p50_ms_std" not in summary
    assert suggest_latency_ms([runs[1]]) == (pytest.approx(3.5), pytest.approx(3.9))

    older = _history([6, 7], nmt, seed=3)  # cached before suggest calls were timed: unknown
    assert summarize([older], nmt)["suggest_p50_ms"] is None and summarize([older], nmt)["suggest_p90_ms"] is None
    assert suggest_latency_ms([older, runs[1]]) == suggest_latency_ms([runs[1]])  # known runs only
    assert json.loads(json.dumps(json_ready(summarize([older], nmt))))["suggest_p90_ms"] is None


def test_summarize_needs_histories(nmt):
    with pytest.raises(ValueError, match="histories is empty"):
        summarize([], nmt)


def test_single_objective_summary_reports_best_value_and_hypervolume():
    blackbox = Quadratic(with_fidelity=False)
    histories = [run_method(blackbox, "random", budget=12, seed=s, workers=2) for s in range(2)]
    summary = summarize(histories, blackbox)
    best = [h["loss"].min() for h in histories]
    assert summary["best_value"] == pytest.approx(np.mean(best))
    assert summary["best_value_std"] == pytest.approx(np.std(best, ddof=1))
    low, high = blackbox.objective_bounds()["loss"]
    assert summary["final_hypervolume"] == pytest.approx(np.mean([(high - b) / (high - low) for b in best]))
    assert summary["found_at_budget"] is None and summary["iterations_to_all"] is None
    assert summary["pool_mode"] == "off" and summary["cost"] == pytest.approx(12 * 18.0)


def test_history_curves_are_cumulative(nmt):
    history = run_method(nmt, "random", budget=12, seed=0, workers=2)
    curves = history_curves(history, nmt)
    assert list(curves.columns) == ["iteration", "cost", "pareto_found", "best_value", "hypervolume"]
    assert curves["iteration"].tolist() == list(range(1, 13))
    for column in ("cost", "pareto_found", "hypervolume", "best_value"):
        assert curves[column].is_monotonic_increasing
    assert curves["cost"].iloc[-1] == pytest.approx(history["cost"].sum())


def test_random_expectation_matches_the_closed_forms(nmt):
    n, k = 40, len(nmt.known_pareto_indices())
    expected = random_expectation(nmt, 10)
    assert expected == {"found_at_budget": pytest.approx(k * 10 / n),
                        "iterations_to_all": pytest.approx(k * (n + 1) / (k + 1))}
    assert random_expectation(nmt, 1000)["found_at_budget"] == pytest.approx(k)
    assert random_expectation(Quadratic(), 10) is None  # no pool, no known front


def test_json_ready_makes_strict_json():
    value = {"a": float("nan"), "b": [np.float64(1.5), np.int64(2), float("inf")], 3: None}
    assert json.dumps(json_ready(value), allow_nan=False) == '{"a": null, "b": [1.5, 2, null], "3": null}'


# ----------------------------------------------------------------------------- run_benchmark
def test_summary_table_says_when_not_every_seed_found_all(tables):
    table, summary = run_benchmark("nmthpo", tables, SYNTHETIC_PAIR, "random", budget=2, seeds=2)
    assert summary["methods"]["random"]["iterations_to_all"] is None
    assert table.loc[0, "iterations_to_all"].startswith("all found in ")
    assert summary_table({**summary, "random_expected": None})["method"].tolist() == ["random"]
