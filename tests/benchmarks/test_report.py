"""Tests for benchmarks.report: a tiny report into tmp_path, its files, tables and settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from matplotlib.figure import Figure

from benchmarks.blackboxes import make_blackbox
from benchmarks.cli import main
from benchmarks.report import inapplicable_reason, plot_pareto_found, write_report, yahpo_dev_instances
from tests.benchmark_data import NMTHPO_PAIRS, needs_nmthpo, needs_yahpo
from tests.benchmarks.synthetic_tables import Quadratic, write_nmt_tables

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NMT_FILES = {"README.md", "summary.json", "nmthpo_pareto_found.png", "nmthpo_hypervolume_vs_cost.png"}


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

    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["seeds_for"] == {"pool-mobo": 1}
    assert [r["instance"] for r in summary["results"]] == ["pp-rr", "ss-tt"]
    for result in summary["results"]:
        assert result["methods"]["random"]["seeds"] == 2 and result["methods"]["pool-mobo"]["seeds"] == 1
        assert result["methods"]["pool-mobo"]["pool_mode"] == "native"


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
    assert cells[5].endswith("(@25)") and cells[6] == "-"  # found @100 and @200 both become @25


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
