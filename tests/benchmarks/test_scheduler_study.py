"""Tests for benchmarks.scheduler_study on synthetic NMT tables (the real study needs the shared data)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from benchmarks.report import InstanceResult
from benchmarks.scheduler_study import goal_met, instance_rows, mean_ranks, merge_studies, run_study
from tests.benchmarks.synthetic_tables import SYNTHETIC_PAIR


class _Box:
    name, instance = "yahpo:lcbench", "1"


def _curve(costs, hypervolumes):
    return pd.DataFrame({"cost": np.cumsum(costs), "hypervolume": hypervolumes})


def test_rows_compare_at_the_smallest_mean_cost_of_the_stopping_methods():
    curves = {
        "random": [_curve([10, 10, 10], [0.2, 0.5, 0.9])],
        "mo-asha": [_curve([1, 1, 1, 1], [0.3, 0.6, 0.7, 0.95])],
        "mo-bohb": [_curve([2, 2, 2], [0.4, 0.8, 0.9])],
    }
    rows = instance_rows(InstanceResult(_Box(), {}, curves))
    by_method = {row["method"]: row for row in rows}
    assert by_method["mo-asha"]["common_cost"] == 4.0  # min(4, 6) over the stopping methods
    assert by_method["mo-asha"]["hypervolume_at_common_cost"][0] == 0.95
    assert by_method["mo-bohb"]["hypervolume_at_common_cost"][0] == 0.8  # its second trial ends at cost 4
    assert by_method["random"]["hypervolume_at_common_cost"][0] == 0.0  # nothing finished by cost 4
    assert goal_met(rows) is True  # 0.95 >= 0.9 at cost 4 <= 30
    assert mean_ranks(rows, "final_hypervolume") == {"mo-asha": 1.0, "random": 2.5, "mo-bohb": 2.5}


def test_goal_fails_when_more_cost_is_spent():
    rows = [{"method": "random", "final_hypervolume": (0.9, 0), "cost": (10.0, 0)},
            {"method": "mo-asha", "final_hypervolume": (0.95, 0), "cost": (11.0, 0)}]
    assert goal_met(rows) is False and goal_met(rows[:1]) is None


def test_run_study_writes_the_report(tables, tmp_path):
    paths = run_study(tables, tmp_path / "out", seeds=2, budget=12, baseline_budget=6,
                      methods=["random", "mo-asha"], lcbench_instances=[], nmt_pairs=[SYNTHETIC_PAIR])
    summary = json.loads(paths["summary"].read_text())
    assert {row["method"] for row in summary["rows"]} == {"random", "mo-asha"}
    assert [row["trials"] for row in summary["rows"]] == [6, 12]
    assert "MO-ASHA at 12 trials" in paths["readme"].read_text()
    assert paths["nmthpo_plot"].is_file()


def test_merge_joins_parts_run_apart_and_refuses_different_settings(tables, tmp_path):
    common = dict(seeds=1, budget=8, baseline_budget=4, methods=["random", "mo-asha"], lcbench_instances=[],
                  nmt_pairs=[SYNTHETIC_PAIR])
    run_study(tables, tmp_path / "a", **common)
    run_study(tables, tmp_path / "b", **common)
    paths = merge_studies([tmp_path / "a", tmp_path / "b"], tmp_path / "all")
    assert len(json.loads(paths["summary"].read_text())["rows"]) == 4
    assert "a/README.md" in paths["readme"].read_text()
    run_study(tables, tmp_path / "c", **{**common, "budget": 6})
    with pytest.raises(ValueError, match="different settings"):
        merge_studies([tmp_path / "a", tmp_path / "c"], tmp_path / "bad")
