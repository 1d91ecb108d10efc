"""Tests for ``python -m benchmarks`` (benchmarks.cli): methods, run, and their error messages.

``run`` is exercised in-process on small synthetic NMT-format tables; one test starts the real
module entry point, and one uses the shared data (skipped when it is absent).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from benchmarks.blackboxes import make_blackbox
from benchmarks.cli import main, parse_overrides
from orchestrator.methods import describe_methods, method_names
from tests.benchmark_data import NMTHPO_PAIRS, needs_nmthpo, needs_yahpo
from tests.benchmarks.synthetic_tables import write_nmt_tables

REPO_ROOT = Path(__file__).resolve().parents[2]
PAIR = "mm-nn"
METHOD_KEYS = {"found_at_budget", "iterations_to_all", "final_hypervolume", "best_value", "cost", "wall_s",
               "pool_mode", "found_at_budget_std", "iterations_to_all_std", "cost_std", "seeds"}


@pytest.fixture(scope="module")
def tables(tmp_path_factory) -> Path:
    # Its own pair and size, in place of the shared `tables` fixture of conftest.py.
    return write_nmt_tables(tmp_path_factory.mktemp("cli"), PAIR, rows=30, seed=1)


def _run(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out.strip().splitlines(), captured.err


def test_methods_lists_every_registered_method_with_its_description(capsys):
    code, lines, _ = _run(capsys, "methods")
    assert code == 0
    assert [line.split()[0] for line in lines] == method_names()
    for line, description in zip(lines, describe_methods().values()):
        assert line.endswith(description)


def test_run_prints_a_table_and_a_json_last_line(capsys, tables):
    code, lines, err = _run(capsys, "run", "--benchmark", "nmthpo", "--data", str(tables), "--instance", PAIR,
                            "--method", "random,asha", "--budget", "8", "--seeds", "2", "--workers", "2")
    assert code == 0
    summary = json.loads(lines[-1])
    assert summary["benchmark"] == "nmthpo" and summary["instance"] == PAIR
    assert summary["budget"] == 8 and summary["seeds"] == 2
    assert set(summary["methods"]) == {"random", "asha"}
    for result in summary["methods"].values():
        assert METHOD_KEYS <= set(result)
        assert result["pool_mode"] == "nearest"
    assert any(line.split()[:1] == ["method"] for line in lines)  # the table header
    assert "random seed 1" in err  # progress goes to stderr, keeping stdout parseable


def test_random_expected_value_is_printed_beside_the_measured_runs(capsys, tables):
    blackbox = make_blackbox("nmthpo", tables, PAIR)
    n, k = len(blackbox.candidates()), len(blackbox.known_pareto_indices())
    code, lines, _ = _run(capsys, "run", "--benchmark", "nmthpo", "--data", str(tables), "--instance", PAIR,
                          "--method", "random", "--budget", "6", "--seeds", "1")
    assert code == 0
    expected = k * (n + 1) / (k + 1)
    line = next(line for line in lines if line.startswith("random search expected"))
    assert f"k*(n+1)/(k+1) = {expected:.2f}" in line and "measured random" in line
    assert any(line.startswith("random (expected)") and f"{expected:.1f}" in line for line in lines)
    assert json.loads(lines[-1])["random_expected"]["iterations_to_all"] == pytest.approx(expected)


def test_iterations_to_all_is_null_until_every_seed_has_found_all(capsys, tables):
    argv = ["run", "--benchmark", "nmthpo", "--data", str(tables), "--instance", PAIR, "--method", "random",
            "--seeds", "2"]
    _, short, _ = _run(capsys, *argv, "--budget", "1")
    result = json.loads(short[-1])["methods"]["random"]
    assert result["iterations_to_all"] is None and result["iterations_to_all_reached"] == 0
    _, whole_pool, _ = _run(capsys, *argv, "--budget", "1000")  # every candidate: the whole front is found
    result = json.loads(whole_pool[-1])["methods"]["random"]
    assert json.loads(whole_pool[-1])["budget"] == 30
    assert result["iterations_to_all_reached"] == 2 and 1 <= result["iterations_to_all"] <= 30


def test_out_writes_every_trial_with_method_and_seed(capsys, tables, tmp_path):
    out = tmp_path / "sub" / "trials.csv"
    code, _, _ = _run(capsys, "run", "--benchmark", "nmthpo", "--data", str(tables), "--instance", PAIR,
                      "--method", "random,tpe", "--budget", "4", "--seeds", "2", "--out", str(out),
                      "--seeds-for", "tpe=1")
    assert code == 0
    trials = pd.read_csv(out)
    assert trials.groupby(["method", "seed"]).size().to_dict() == {("random", 0): 4, ("random", 1): 4, ("tpe", 0): 4}


def test_objectives_flag_changes_the_front(capsys, tables):
    code, lines, _ = _run(capsys, "run", "--benchmark", "nmthpo", "--data", str(tables), "--instance", PAIR,
                          "--method", "random", "--budget", "3", "--seeds", "1", "--objectives", "bleu,params")
    assert code == 0
    assert json.loads(lines[-1])["objectives"] == {"bleu": "max", "params": "min"}


def test_unknown_method_error_lists_the_registered_names(capsys, tables):
    code, lines, err = _run(capsys, "run", "--benchmark", "nmthpo", "--data", str(tables), "--instance", PAIR,
                            "--method", "random,bogus", "--budget", "3", "--seeds", "1")
    assert code == 2 and not lines
    assert "method: got 'bogus'; use one of" in err
    assert all(name in err for name in method_names())


def test_missing_or_wrong_data_dir_names_the_data_flag(capsys, tmp_path):
    base = ["run", "--benchmark", "nmthpo", "--instance", PAIR, "--method", "random"]
    code, _, err = _run(capsys, *base)
    assert code == 2 and "--data" in err
    code, _, err = _run(capsys, *base, "--data", str(tmp_path / "nowhere"))
    assert code == 2 and "--data" in err and "nowhere" in err
    code, _, err = _run(capsys, "report", "--out", str(tmp_path / "r"))
    assert code == 2 and "--data" in err


def test_bad_instance_and_benchmark_are_usage_errors(capsys, tables):
    code, _, err = _run(capsys, "run", "--benchmark", "nmthpo", "--data", str(tables), "--instance", "zz-qq",
                        "--method", "random")
    assert code == 2 and "zz-qq" in err and PAIR in err
    code, _, err = _run(capsys, "run", "--benchmark", "other", "--data", str(tables), "--instance", PAIR,
                        "--method", "random")
    assert code == 2 and "benchmark='other'" in err


def test_scheduler_method_without_fidelity_is_a_usage_error(capsys, tmp_path):
    tables = write_nmt_tables(tmp_path, PAIR, rows=10, curves=False)
    code, _, err = _run(capsys, "run", "--benchmark", "nmthpo", "--data", str(tables), "--instance", PAIR,
                        "--method", "hyperband", "--budget", "3", "--seeds", "1")
    assert code == 2 and "needs a blackbox with a fidelity" in err


def test_parse_overrides():
    assert parse_overrides(["ax-mobo=2", "tpe=5, random=3"], "--seeds-for") == {"ax-mobo": 2, "tpe": 5, "random": 3}
    assert parse_overrides(None, "--seeds-for") == {}
    for bad in ("ax-mobo", "ax-mobo=two", "=3"):
        with pytest.raises(ValueError, match="--seeds-for .* must look like NAME=INTEGER"):
            parse_overrides([bad], "--seeds-for")
    with pytest.raises(ValueError, match="method: got .*; use one of"):
        parse_overrides(["nope=2"], "--budget-for")


def test_module_entry_point_runs():
    completed = subprocess.run([sys.executable, "-m", "benchmarks", "methods"], cwd=REPO_ROOT,
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    assert "pool-mobo" in completed.stdout


@needs_nmthpo
def test_run_on_the_shared_tables(capsys, data_dir):
    pair = NMTHPO_PAIRS[-1]
    code, lines, _ = _run(capsys, "run", "--benchmark", "nmthpo", "--data", str(data_dir), "--instance", pair,
                          "--method", "random", "--budget", "10", "--seeds", "2")
    assert code == 0
    summary = json.loads(lines[-1])
    assert summary["instance"] == pair and summary["methods"]["random"]["seeds"] == 2
    assert summary["random_expected"]["found_at_budget"] == pytest.approx(
        summary["pareto_size"] * 10 / summary["pool_size"])


@needs_yahpo
def test_run_on_a_yahpo_surrogate(capsys, data_dir):
    pytest.importorskip("yahpo_gym")
    from benchmarks.report import yahpo_dev_instances

    scenario, instance = next(iter(yahpo_dev_instances(data_dir).items()))
    code, lines, _ = _run(capsys, "run", "--benchmark", f"yahpo:{scenario}", "--data", str(data_dir),
                          "--instance", instance, "--method", "random,asha", "--budget", "6", "--seeds", "1")
    assert code == 0
    summary = json.loads(lines[-1])
    assert summary["random_expected"] is None and summary["pool_size"] is None
    for result in summary["methods"].values():
        assert result["pool_mode"] == "off" and result["best_value"] is not None
        assert result["found_at_budget"] is None and result["iterations_to_all"] is None
    assert not any(line.startswith("random search expected") for line in lines)


def test_run_with_cache_reuses_runs_and_jobs_must_be_positive(tables, capsys, tmp_path):
    argv = ("run", "--benchmark", "nmthpo", "--data", str(tables), "--instance", PAIR, "--method", "random",
            "--budget", "6", "--seeds", "2", "--cache", str(tmp_path / "cache"))
    code, first, err = _run(capsys, *argv)
    assert code == 0 and "(cached)" not in err and len(list((tmp_path / "cache").rglob("*.pkl"))) == 2
    code, second, err = _run(capsys, *argv, "--jobs", "2")
    assert code == 0 and err.count("(cached)") == 2
    strip = lambda line: {k: v for k, v in json.loads(line)["methods"]["random"].items() if not k.startswith("wall")}  # noqa: E731
    assert strip(first[-1]) == strip(second[-1])
    code, _, err = _run(capsys, *argv[:-2], "--jobs", "0")
    assert code == 2 and "jobs=0 must be an integer >= 1" in err
