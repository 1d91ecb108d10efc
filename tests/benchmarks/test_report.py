"""Tests for benchmarks.report: a tiny report into tmp_path, its files, tables and settings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from benchmarks.blackboxes import make_blackbox
from benchmarks.cli import main
from benchmarks.report import (
    FOUND_AT,
    InstanceResult,
    _nmt_table,
    _significant,
    _yahpo_table,
    inapplicable_reason,
    plot_pareto_found,
    write_report,
    yahpo_dev_instances,
)
from tests.benchmark_data import NMTHPO_PAIRS, needs_nmthpo, needs_yahpo
from tests.benchmarks.synthetic_tables import Quadratic, write_nmt_tables

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NMT_FILES = {"README.md", "summary.json", "nmthpo_pareto_found.png", "nmthpo_hypervolume_vs_cost.png"}
NMT_HEADER = ("| pair (n, k) | method | seeds | pool mode | found @50 | found @100 | found @200 (or @n) "
              "| trials to find all | s / run | suggest p50 / p90 (ms) |")
YAHPO_HEADER = ("| scenario/instance | objective | method | seeds | best value | total cost "
                "| best at 25% of random's cost | stopped early | simulated wall time | s / run "
                "| suggest p50 / p90 (ms) |")


def _check_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5_000


def test_tiny_report_on_synthetic_tables(tmp_path, capsys):
    data = write_nmt_tables(tmp_path / "data", "pp-rr", rows=25, seed=2)
    write_nmt_tables(tmp_path / "data", "ss-tt", rows=20, seed=3)
    out = tmp_path / "report"
    code = main(["report", "--data", str(data), "--out", str(out), "--sections", "nmthpo", "--methods",
                 "random,pool-mobo", "--seeds", "2", "--seeds-for", "pool-mobo=1", "--budget", "8"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "report total wall time:" in printed
    assert {p.name for p in out.iterdir()} == NMT_FILES
    for name in NMT_FILES - {"README.md", "summary.json"}:
        _check_png(out / name)

    readme = (out / "README.md").read_text()
    for row in ("| pp-rr (25, ", "| ss-tt (20, "):
        assert sum(line.startswith(row) for line in readme.splitlines()) == 3  # random, pool-mobo, expected
    assert "| pp-rr (25, " in readme and "| random | 2 | nearest |" in readme and "| pool-mobo | 1 | native |" in readme
    assert "*random, expected*" in readme and "python -m benchmarks report --data" in readme
    assert "YAHPO" not in readme
    assert NMT_HEADER in readme.splitlines() and "|" + "---|" * 10 in readme.splitlines()
    assert "time one `suggest` call took" in readme and "`background=False`" in readme
    random_row = next(line for line in readme.splitlines() if line.startswith("| pp-rr") and "| random |" in line)
    assert re.search(r"\| [0-9.]+ / [0-9.]+ \|$", random_row)  # suggest p50 / p90 of a fresh run

    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["seeds_for"] == {"pool-mobo": 1}
    assert [r["instance"] for r in summary["results"]] == ["pp-rr", "ss-tt"]
    for result in summary["results"]:
        assert result["methods"]["random"]["seeds"] == 2 and result["methods"]["pool-mobo"]["seeds"] == 1
        assert result["methods"]["pool-mobo"]["pool_mode"] == "native"
        for method in ("random", "pool-mobo"):
            info = result["methods"][method]
            assert 0 < info["suggest_p50_ms"] <= info["suggest_p90_ms"]


def test_a_second_report_reuses_the_cached_runs_and_says_so(tmp_path):
    data = write_nmt_tables(tmp_path / "data", "pp-rr", rows=12, seed=2)
    options = dict(sections=["nmthpo"], methods=["random", "tpe"], seeds=2, budget=12, cache=tmp_path / "cache")
    write_report(data, tmp_path / "first", **options)
    write_report(data, tmp_path / "second", jobs=2, **options)
    first, second = ((tmp_path / name / "summary.json").read_text() for name in ("first", "second"))
    settings = [json.loads(text)["settings"] for text in (first, second)]
    assert [s["runs"] for s in settings] == [4, 4] and [s["runs_from_cache"] for s in settings] == [0, 4]
    assert settings[0]["runs_wall_s"] == pytest.approx(settings[1]["runs_wall_s"])  # the original runs' time
    assert json.loads(first)["results"] == json.loads(second)["results"]
    assert "4 runs took" in (tmp_path / "second" / "README.md").read_text()
    assert "(4 loaded from the run cache)" in (tmp_path / "second" / "README.md").read_text()


def test_found_at_columns_use_the_pool_size_when_smaller(tmp_path):
    data = write_nmt_tables(tmp_path / "data", "pp-rr", rows=25, seed=2)
    write_report(data, tmp_path / "out", sections=["nmthpo"], methods=["random"], seeds=1, budget=200)
    row = next(line for line in (tmp_path / "out" / "README.md").read_text().splitlines()
               if line.startswith("| pp-rr") and "| random |" in line)
    cells = [cell.strip() for cell in row.split("|")]
    assert cells[5].endswith("(@25)") and cells[6] == cells[7] == "-"  # found @50, @100 and @200 all become @25


def test_report_rejects_bad_sections_and_scenarios(tmp_path):
    data = write_nmt_tables(tmp_path / "data", "pp-rr", rows=10)
    with pytest.raises(ValueError, match="sections"):
        write_report(data, tmp_path / "out", sections=["nmt"])
    (data / "yahpo").mkdir()
    (data / "yahpo" / "DEV_INSTANCES.json").write_text(json.dumps({"scen_a": ["7", "8"]}))
    with pytest.raises(ValueError, match=r"\['scen_b'\] are not in the data; available: \['scen_a'\]"):
        write_report(data, tmp_path / "out", sections=["yahpo"], yahpo_scenarios=["scen_b"])


def test_yahpo_dev_instances_takes_the_first_instance_of_each_scenario(tmp_path):
    (tmp_path / "yahpo").mkdir()
    (tmp_path / "yahpo" / "DEV_INSTANCES.json").write_text(json.dumps({"a": ["3", "1"], "b": ["9"], "c": []}))
    assert yahpo_dev_instances(tmp_path) == {"a": "3", "b": "9"}
    assert yahpo_dev_instances(tmp_path / "yahpo") == {"a": "3", "b": "9"}


def test_inapplicable_methods_are_explained(tmp_path):
    no_fidelity = make_blackbox("nmthpo", write_nmt_tables(tmp_path, "pp-rr", rows=10, curves=False), "pp-rr")
    assert "no fidelity" in inapplicable_reason(no_fidelity, "asha")
    assert inapplicable_reason(no_fidelity, "pool-mobo") is None
    assert "surrogate" in inapplicable_reason(Quadratic(), "pool-mobo")
    assert inapplicable_reason(Quadratic(), "hyperband") is None


def test_plots_are_figures_without_pyplot_state(tmp_path):
    import matplotlib.pyplot as plt

    data = write_nmt_tables(tmp_path / "data", "pp-rr", rows=12)
    before = plt.get_fignums()
    from benchmarks.report import _run_instance

    result = _run_instance(make_blackbox("nmthpo", data, "pp-rr"), ["random"], seeds=1, budget=12, workers=2,
                           seeds_for={}, budget_for={}, skipped={}, progress=None)
    figure = plot_pareto_found([result])
    assert isinstance(figure, Figure) and plt.get_fignums() == before


@needs_nmthpo
def test_tiny_report_on_one_shared_pair(data_dir, tmp_path):
    pair = NMTHPO_PAIRS[0]
    paths = write_report(data_dir, tmp_path, sections=["nmthpo"], nmt_instances=[pair],
                         methods=["random", "pool-mobo"], seeds=2, budget=10)
    assert {p.name for p in paths.values()} == NMT_FILES
    readme = (tmp_path / "README.md").read_text()
    assert f"| {pair} (" in readme and "*random, expected*" in readme


@needs_yahpo
def test_tiny_yahpo_section(data_dir, tmp_path):
    pytest.importorskip("yahpo_gym")
    scenario = next(iter(yahpo_dev_instances(data_dir)))
    paths = write_report(data_dir, tmp_path, sections=["yahpo"], yahpo_scenarios=[scenario],
                         methods=["random", "asha", "pool-mobo"], seeds=1, budget=6)
    assert {p.name for p in paths.values()} == {"README.md", "summary.json", "yahpo_best_value_vs_cost.png"}
    _check_png(paths["yahpo_best_value_vs_cost"])
    readme = (tmp_path / "README.md").read_text()
    assert f"| {scenario}/" in readme and "pool-mobo on yahpo:" in readme  # skipped, with the reason


def test_cost_grid_holds_values_and_starts_counts_at_zero():
    import numpy as np
    import pandas as pd

    from benchmarks.report import _on_cost_grid

    curve = pd.DataFrame({"cost": [2.0, 5.0], "hypervolume": [0.2, 0.6], "best_value": [3.0, 1.0]})
    grid = np.array([1.0, 2.0, 4.0, 9.0])
    assert _on_cost_grid([curve], "hypervolume", grid).tolist() == [[0.0, 0.2, 0.2, 0.6]]
    best = _on_cost_grid([curve], "best_value", grid)[0]
    assert np.isnan(best[0]) and best[1:].tolist() == [3.0, 3.0, 1.0]


# ----------------------------------------------------------------------------- tables from known curves
def _method_info(**latency) -> dict:
    return {"seeds": 2, "pool_mode": "native", "iterations_to_all": None, "iterations_to_all_std": None,
            "iterations_to_all_reached": 1, "wall_s": 1.25, "stopped": 0.0, "trials": 150.0, "makespan": 99.0,
            "suggest_p50_ms": None, "suggest_p90_ms": None, **latency}


def _nmt_result() -> InstanceResult:
    steps = np.arange(1, 151)  # n = 150 candidates, k = 10 on the front
    curves = [pd.DataFrame({"pareto_found": np.minimum(steps // d, 10).astype(float)}) for d in (20, 10)]
    summary = {"pool_size": 150, "pareto_size": 10, "random_expected": {"iterations_to_all": 137.3},
               "methods": {"fast": _method_info(suggest_p50_ms=0.234, suggest_p90_ms=0.31),
                           "slow": _method_info(suggest_p50_ms=12.4, suggest_p90_ms=39.6),
                           "old": _method_info()}}
    return InstanceResult(SimpleNamespace(name="nmthpo", instance="aa-bb"), summary,
                          {"fast": curves, "slow": curves, "old": curves})


def _cells(table: str, start: str) -> list[str]:
    row = next(line for line in table.splitlines() if line.startswith(start))
    return [cell.strip() for cell in row.split("|")[1:-1]]


def test_nmt_table_has_found_at_50_and_suggest_latency_columns():
    assert FOUND_AT == (50, 100, 200)
    table = _nmt_table([_nmt_result()])
    assert table.splitlines()[:2] == [NMT_HEADER, "|" + "---|" * 10]
    # Seeds find t // 20 and t // 10 (at most 10): 2 and 5 at t=50, 5 and 10 at 100, 7 and 10 at n=150.
    fast = _cells(table, "| aa-bb (150, 10) | fast |")
    assert fast[4:] == ["3.50 ± 2.12", "7.50 ± 3.54", "8.50 ± 2.12 (@150)", "not in every seed (1/2)", "1.2",
                        "0.23 / 0.31"]
    assert _cells(table, "| aa-bb (150, 10) | slow |")[-1] == "12 / 40"
    assert _cells(table, "| aa-bb (150, 10) | old |")[-1] == "-"  # runs cached before latency was recorded
    expected = _cells(table, "| aa-bb (150, 10) | *random, expected* |")
    assert expected[4:] == ["3.33", "6.67", "10.00 (@150)", "137.3", "-", "-"]


def test_nmt_table_pads_found_columns_when_the_pool_is_small():
    result = _nmt_result()
    result.summary["pool_size"] = 60
    table = _nmt_table([result])
    assert _cells(table, "| aa-bb (60, 10) | fast |")[4:7] == ["3.50 ± 2.12", "4.50 ± 2.12 (@60)", "-"]
    assert _cells(table, "| aa-bb (60, 10) | *random, expected* |")[4:7] == ["8.33", "10.00 (@60)", "-"]


def test_yahpo_table_has_the_suggest_latency_column():
    curve = pd.DataFrame({"cost": [1.0, 3.0], "best_value": [0.5, 0.4]})
    summary = {"objectives": {"val_loss": "min"},
               "methods": {"random": {**_method_info(suggest_p50_ms=0.0412, suggest_p90_ms=1.26), "cost": 3.0},
                           "tpe": {**_method_info(), "cost": 3.0}}}
    result = InstanceResult(SimpleNamespace(name="yahpo:lcbench", instance="3945"), summary,
                            {"random": [curve], "tpe": [curve]})
    table = _yahpo_table([result])
    assert table.splitlines()[:2] == [YAHPO_HEADER, "|" + "---|" * 11]
    assert _cells(table, "| lcbench/3945 | val_loss (min) | random |")[-2:] == ["1.2", "0.041 / 1.3"]
    assert _cells(table, "| lcbench/3945 | val_loss (min) | tpe |")[-1] == "-"


@pytest.mark.parametrize(("value", "text"), [
    (1234.4, "1234"), (39.6, "40"), (12.4, "12"), (10.0, "10"), (9.96, "10"), (1.26, "1.3"), (0.2, "0.2"),
    (0.234, "0.23"), (0.00412, "0.0041"), (0.0, "0"),
])
def test_latency_numbers_keep_two_significant_digits_below_ten(value, text):
    assert _significant(value) == text
