"""Tests for benchmarks.speedup and the simulator's evaluation at a suggested fraction."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
from ray import tune
from ray.tune.search import Searcher

from benchmarks import cli
from benchmarks.blackboxes.base import Fidelity
from benchmarks.simulator import SimulatedCluster
from benchmarks.speedup import cost_to_target, plot_speedup, run_traced, speedup_rows, speedup_study, speedup_table


class FractionBlackbox:
    """``loss(x, s) = (x - 0.3)^2 + 0.2 (1 - s)``, ``cost(s) = 0.1 + 10 s``: training-set fraction as fidelity."""

    name = "synthetic-fraction"
    instance = "default"
    objectives = {"loss": "min"}

    def __init__(self) -> None:
        self.fidelity = Fidelity("trainsize", 0.05, 1.0, "fraction", [0.125, 0.25, 0.5, 1.0])
        self.calls: list[float] = []

    def search_space(self) -> dict:
        return {"x": tune.uniform(0.0, 1.0)}

    def evaluate(self, config: dict, fidelity: float | None = None) -> dict[str, float]:
        s = self.fidelity.max if fidelity is None else fidelity
        self.calls.append(s)
        return {"loss": (config["x"] - 0.3) ** 2 + 0.2 * (1 - s), "cost": 0.1 + 10.0 * s}

    def features_of(self, config: dict):
        return [config["x"]]


class Scripted(Searcher):
    """Suggests the configs given, in order."""

    def __init__(self, configs: list[dict]) -> None:
        super().__init__(metric="loss", mode="min")
        self.configs = list(configs)
        self.results: list[dict] = []

    def suggest(self, trial_id: str):
        return self.configs.pop(0) if self.configs else Searcher.FINISHED

    def on_trial_complete(self, trial_id: str, result=None, error=False) -> None:
        self.results.append(result)


@pytest.mark.parametrize("key", ["data_fraction", "trainsize"])
def test_simulator_evaluates_once_at_the_fraction_a_suggestion_names(key):
    blackbox = FractionBlackbox()
    searcher = Scripted([{"x": 0.3, key: 0.25}, {"x": 0.5}, {"x": 0.3, key: 0.01}])
    history = SimulatedCluster(blackbox, searcher, num_workers=1, max_trials=3).run()
    assert history["fidelity"].tolist() == [0.25, 1.0, 0.05]  # 0.01 clipped to the smallest fraction
    assert history["training_iteration"].tolist() == [1, 4, 1]
    assert history["cost"].tolist() == pytest.approx([2.6, 10.1, 0.6])
    assert searcher.results[0]["time_total_s"] == pytest.approx(2.6)
    assert searcher.results[0]["loss"] == pytest.approx(0.15)


def test_cost_to_target_in_both_directions():
    trace = pd.DataFrame({"cumulative_cost": [1.0, 2.0, 4.0], "value": [math.nan, 0.5, 0.2]})
    assert cost_to_target(trace, 0.5, "min") == 2.0
    assert cost_to_target(trace, 0.1, "min") is None
    assert cost_to_target(trace, 0.2, "max") == 2.0


def test_speedup_table_counts_unreached_seeds_as_zero():
    table = pd.DataFrame({
        "method": ["a", "a", "b"], "speedup": [3.0, 0.0, 0.0],
        "cost_to_target": [1.0, None, None], "final_value": [0.1, 0.2, 0.3],
    })
    summary = speedup_table(table)
    assert summary["a"]["speedup"] == 1.5 and summary["a"]["reached"] == 0.5
    assert summary["b"]["speedup"] is None and summary["b"]["reached"] == 0.0


def test_traced_random_run_values_the_best_full_fidelity_evaluation():
    blackbox = FractionBlackbox()
    trace = run_traced(blackbox, "random", seed=0, budget=5)
    assert len(trace) == 5
    assert trace["cumulative_cost"].is_monotonic_increasing
    assert trace["value"].tolist() == pytest.approx(trace["observed"].cummin().tolist())


def test_speedup_study_compares_a_method_with_the_baseline(tmp_path):
    blackbox = FractionBlackbox()
    table, traces = speedup_study(blackbox, ["random"], "gp-bo", seeds=1, budget=30, baseline_budget=3)
    row = table.iloc[0]
    assert row["target"] == pytest.approx(traces["gp-bo"][0]["observed"].min())
    assert row["total_cost"] <= row["baseline_total_cost"] + 10.1  # stops once it spent the baseline's cost
    if row["cost_to_target"] is not None and not math.isnan(row["cost_to_target"]):
        assert row["speedup"] == pytest.approx(row["baseline_cost_to_target"] / row["cost_to_target"])
    assert plot_speedup(traces, tmp_path / "plot.png").stat().st_size > 0


def test_fabolas_incumbent_is_traced_and_charged_only_its_evaluations():
    blackbox = FractionBlackbox()
    trace = run_traced(blackbox, "fabolas", seed=0, budget=6)
    assert trace["fidelity"].iloc[0] < 0.1  # the initial design is cheap
    assert trace["cost"].tolist() == pytest.approx([0.1 + 10 * s for s in trace["fidelity"]])
    assert trace["value"].notna().all()


def test_cli_speedup_rejects_a_benchmark_without_a_fraction(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "load_blackbox", lambda *args, **kwargs: type("B", (), {"fidelity": None})())
    code = cli.main(["speedup", "--benchmark", "nmthpo", "--data", str(tmp_path), "--instance", "x",
                     "--method", "fabolas", "--seeds", "1"])
    assert code == 2
    assert "training-set fraction" in capsys.readouterr().err


def test_cli_speedup_prints_the_json_summary_last(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "load_blackbox", lambda *args, **kwargs: FractionBlackbox())
    code = cli.main(["speedup", "--benchmark", "synthetic", "--data", str(tmp_path), "--instance", "x",
                     "--method", "random", "--baseline", "gp-bo", "--seeds", "1", "--baseline-budget", "3", "--budget", "20",
                     "--out", str(tmp_path / "out")])
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(summary) >= {"speedup", "reached", "methods"} and summary["method"] == "random"
    assert 0.0 <= summary["reached"] <= 1.0
    assert sorted(p.suffix for p in (tmp_path / "out").iterdir()) == [".csv", ".csv", ".png"]


def test_a_tolerance_counts_values_within_it_as_reaching_the_target():
    trace = pd.DataFrame({"cumulative_cost": [1.0, 3.0, 6.0], "value": [2.0, 1.02, 1.0005]})
    assert cost_to_target(trace, 1.0, "min") is None
    assert cost_to_target(trace, 1.0, "min", tolerance=0.001) == 6.0
    assert cost_to_target(trace, 1.0, "min", tolerance=0.05) == 3.0
    with pytest.raises(ValueError, match=r"tolerance: got -0.1; use a relative tolerance in \[0, 1\)"):
        speedup_rows({"b": [trace]}, "b", "min", tolerance=-0.1)


def test_cli_speedup_recomputes_the_table_from_written_traces(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(cli, "load_blackbox", lambda *args, **kwargs: FractionBlackbox())
    common = ["speedup", "--benchmark", "synthetic", "--data", str(tmp_path), "--instance", "x",
              "--method", "random", "--baseline", "gp-bo", "--baseline-budget", "3", "--budget", "20"]
    assert cli.main([*common, "--seeds", "2", "--out", str(tmp_path / "out")]) == 0
    ran = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    traces = next((tmp_path / "out").glob("*_traces.csv"))
    assert cli.main([*common, "--traces", str(traces)]) == 0
    again = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert again["seeds"] == 2 and again["speedups"] == ran["speedups"] and again["reached"] == ran["reached"]
    assert again["methods"]["random"]["median_final_value"] == pytest.approx(ran["methods"]["random"]["median_final_value"])
    assert cli.main([*common, "--traces", str(traces), "--tolerance", "0.5"]) == 0
    loose = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert loose["tolerance"] == 0.5 and loose["reached"] >= ran["reached"]
    assert cli.main([*common, "--traces", str(traces), "--baseline", "fabolas"]) == 2
    assert "holds no run of the baseline 'fabolas'" in capsys.readouterr().err
    assert cli.main([*common, "--seeds", "1", "--method", "gp-bo"]) == 2
    assert "'gp-bo' is also the baseline" in capsys.readouterr().err


class TwoObjectiveFractionBlackbox(FractionBlackbox):
    """``loss`` as above and ``size = 1 - x``, both minimised: the front is ``x`` in [0.3, 1]."""

    objectives = {"loss": "min", "size": "min"}

    def evaluate(self, config: dict, fidelity: float | None = None) -> dict[str, float]:
        return {**super().evaluate(config, fidelity), "size": 1.0 - config["x"]}

    def objective_bounds(self) -> dict[str, tuple[float, float]]:
        return {"loss": (0.0, 0.7), "size": (0.0, 1.0)}


def test_two_objective_trace_is_the_hypervolume_of_the_best_front_at_the_top_fraction(monkeypatch):
    from benchmarks import speedup
    from multiobjective import hypervolume

    blackbox = TwoObjectiveFractionBlackbox()
    configs = [{"x": 0.3, "data_fraction": 0.25}, {"x": 0.1}, {"x": 0.3}, {"x": 0.9}, {"x": 0.2}]
    monkeypatch.setattr(speedup, "build_searcher", lambda method, problem: Scripted(list(configs)))
    trace = run_traced(blackbox, "random", seed=0, budget=5)  # "random" only names it: Scripted runs
    assert trace.attrs["objective"] == "hypervolume" and trace.attrs["mode"] == "max"

    def normalised_volume(xs):  # true full-data values, 1 = best, reference at the worst corner
        points = [[1 - (x - 0.3) ** 2 / 0.7, x] for x in xs]  # (1 - loss / 0.7, 1 - size)
        return hypervolume(pd.DataFrame(points).to_numpy(), [0.0, 0.0])

    # After trial 1 only a quarter-data result exists: its configuration's true full-data values count.
    # From trial 2 on only the full-data trials set the front; x = 0.3 dominates x = 0.1 and 0.2.
    expected = [normalised_volume([0.3]), normalised_volume([0.1]), normalised_volume([0.3]),
                normalised_volume([0.3, 0.9]), normalised_volume([0.3, 0.9])]
    assert expected[3] > expected[2] > expected[1]
    assert trace["value"].tolist() == pytest.approx(expected)


def test_two_objective_fabolas_run_traces_the_hypervolume_of_its_pareto_set():
    blackbox = TwoObjectiveFractionBlackbox()
    trace = run_traced(blackbox, "fabolas", seed=0, budget=6)
    assert len(trace) == 6 and (trace["fidelity"] < 1).any()
    values = trace["value"].to_numpy()
    assert ((values > 0) & (values <= 1)).all()
    table, traces = speedup_study(blackbox, ["fabolas"], "gp-bo", seeds=1, budget=5, baseline_budget=4)
    assert traces["gp-bo"][0]["fidelity"].eq(1.0).all()
    assert table["target"].iloc[0] == pytest.approx(traces["gp-bo"][0]["value"].iloc[-1])


def test_cli_speedup_with_two_objectives_passes_them_on_and_rejects_three(tmp_path, monkeypatch, capsys):
    asked = []

    def load(benchmark, data_dir, instance, objectives=None):
        asked.append(objectives)
        blackbox = TwoObjectiveFractionBlackbox()
        if objectives and len(objectives.split(",")) == 3:
            blackbox.objectives = {"loss": "min", "size": "min", "cost": "min"}
        return blackbox

    monkeypatch.setattr(cli, "load_blackbox", load)
    common = ["speedup", "--benchmark", "synthetic", "--data", str(tmp_path), "--instance", "x", "--method", "random",
              "--baseline", "gp-bo", "--seeds", "1", "--baseline-budget", "3", "--budget", "6"]
    assert cli.main([*common, "--objectives", "loss,size"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert asked == ["loss,size"] and 0.0 <= summary["reached"] <= 1.0
    assert cli.main([*common, "--objectives", "loss,size,cost"]) == 2
    assert "--objectives: got ['loss', 'size', 'cost']; speedup compares one objective" in capsys.readouterr().err
