"""Tests for orchestrator/cli.py and orchestrator/__main__.py; `run`, `report` and the demo are stubbed,
so no Ray session starts here."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from cluster.resources import InsufficientResourcesError
from multiobjective.objectives import ObjectiveError
from orchestrator.cli import main
from orchestrator.spec import Experiment, Objective, SpecError, save_experiment

REPO = Path(__file__).resolve().parents[2]
OBJECTIVES = [Objective("val_accuracy", "max"), Objective("latency_us", "min")]


def toy_trainable(config: dict[str, Any]) -> None:
    """A stand-in trainable; the spec only imports it."""


def toy_spec(**overrides: Any) -> dict[str, Any]:
    spec = {
        "name": "toy",
        "trainable": f"{__name__}:toy_trainable",
        "search_space": {"lr": {"type": "loguniform", "low": 1.0e-4, "high": 0.1}},
        "objectives": [{"name": "val_accuracy", "mode": "max"}, {"name": "latency_us", "mode": "min"}],
        "method": "random",
    }
    spec.update(overrides)
    return spec


def fake_result(directory: Path, experiment: Any, unfinished: str | None = None) -> types.SimpleNamespace:
    """Shaped like orchestrator.run.ExperimentResult."""
    results = pd.DataFrame(
        {
            "trial_id": ["a", "b", "c"],
            "val_accuracy": [0.90, 0.95, 0.80],
            "latency_us": [10.0, 30.0, 40.0],
            "config/lr": [0.01, 0.001, 0.05],
            "status": ["TERMINATED"] * 3,
            "trial_order": [0, 1, 2],
        }
    )
    return types.SimpleNamespace(
        results=results,
        pareto=results.iloc[:2],
        paths={"results": directory / "results.csv", "pareto_plot": directory / "pareto_front.png"},
        experiment_dir=directory,
        experiment=experiment,
        unfinished=unfinished,
    )


@pytest.fixture(autouse=True)
def method_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real catalogue (it loads no Ray), with short descriptions for the listing test."""
    from orchestrator import methods
    from schedulers import catalogue

    monkeypatch.setattr(methods, "describe_methods", lambda: {
        "ax-mobo": "Ax multi-objective Bayesian optimisation",
        "random": "uniform random sampling",
    })
    monkeypatch.setattr(catalogue, "describe_schedulers", lambda: {"asha": "successive halving (defaults: x=1)"})


@pytest.fixture
def run_calls(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[str, Any, dict[str, Any]]]:
    """Replace orchestrator.run with a recorder; each call is (function, argument, keywords)."""
    calls: list[tuple[str, Any, dict[str, Any]]] = []
    module = types.ModuleType("orchestrator.run")

    def run(experiment: Experiment, **keywords: Any) -> types.SimpleNamespace:
        calls.append(("run", experiment, keywords))
        return fake_result(tmp_path / "toy", experiment)

    def report(directory: Path) -> types.SimpleNamespace:
        calls.append(("report", directory, {}))
        if not (directory / "experiment.yaml").exists():
            raise FileNotFoundError(f"{directory} has no experiment.yaml")
        return fake_result(Path(directory), types.SimpleNamespace(objectives=OBJECTIVES))

    module.run, module.report = run, report
    monkeypatch.setitem(sys.modules, "orchestrator.run", module)
    return calls


def write_spec(directory: Path, **overrides: Any) -> Path:
    path = directory / "toy.yaml"
    path.write_text(yaml.safe_dump(toy_spec(**overrides)))
    return path


# --------------------------------------------------------------------------- help and usage
def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("run", "report", "demo", "methods"):
        assert command in out


def test_missing_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["run", "x.yaml", "--num-trials", "0"], ["demo", "--epochs", "two"]])
def test_non_positive_counts_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    assert "use an integer >= 1" in capsys.readouterr().err


def test_python_dash_m_help_imports_neither_ray_nor_torch() -> None:
    probe = (
        "import sys, runpy; sys.argv = ['orchestrator', '--help']\n"
        "try:\n    runpy.run_module('orchestrator', run_name='__main__')\n"
        "except SystemExit as done:\n    code = done.code\n"
        "print('EXIT', code, 'ray' in sys.modules, 'torch' in sys.modules)\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert "usage: orchestrator" in completed.stdout
    assert completed.stdout.strip().endswith("EXIT 0 False False")


# --------------------------------------------------------------------------- run
def test_run_loads_applies_overrides_and_prints(
    tmp_path: Path, run_calls: list, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = write_spec(tmp_path)
    argv = ["run", str(spec), "--resume", "--num-trials", "7", "--max-concurrent", "3"]
    argv += ["--storage-path", "elsewhere"]
    assert main(argv) == 0
    [(function, experiment, keywords)] = run_calls
    assert function == "run" and keywords == {"resume": True, "fresh": False}
    assert (experiment.budget.num_trials, experiment.budget.max_concurrent) == (7, 3)
    assert experiment.storage_path == "elsewhere"
    assert experiment.metric_names == ["val_accuracy", "latency_us"]
    out = capsys.readouterr().out
    assert "Pareto front: 2 of 3 trials" in out
    assert "val_accuracy" in out and "0.95" in out and "0.8 " not in out
    assert str(tmp_path / "toy" / "results.csv") in out
    assert str(tmp_path / "toy" / "pareto_front.png") in out


def test_run_without_options_keeps_the_file_values(tmp_path: Path, run_calls: list) -> None:
    spec = write_spec(tmp_path, budget={"num_trials": 4, "max_concurrent": 1}, storage_path="mine")
    assert main(["run", str(spec)]) == 0
    [(_, experiment, keywords)] = run_calls
    assert keywords == {"resume": False, "fresh": False}
    assert (experiment.budget.num_trials, experiment.budget.max_concurrent) == (4, 1)
    assert experiment.storage_path == "mine"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"objectives": [{"name": "val_accuracy", "mode": "maximize"}]}, "objectives[0].mode: got 'maximize'"),
        ({"method": "ax_mobo"}, "did you mean 'ax-mobo'"),
        ({"trainable": "no_such_module_for_cli_tests:train"}, "cannot import module"),
    ],
)
def test_run_with_a_bad_spec_exits_2_with_the_message_on_stderr(
    tmp_path: Path,
    run_calls: list,
    capsys: pytest.CaptureFixture[str],
    overrides: dict[str, Any],
    fragment: str,
) -> None:
    spec = write_spec(tmp_path, **overrides)
    assert main(["run", str(spec)]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {spec}: ")
    assert fragment in captured.err and "Traceback" not in captured.err
    assert captured.out == "" and run_calls == []


@pytest.mark.parametrize(
    ("argv", "keywords"),
    [([], {"resume": False, "fresh": False}), (["--fresh"], {"resume": False, "fresh": True})],
)
def test_run_passes_resume_and_fresh_on(tmp_path: Path, run_calls: list, argv: list[str], keywords: dict) -> None:
    assert main(["run", str(write_spec(tmp_path)), *argv]) == 0
    assert run_calls[0][2] == keywords


def test_resume_and_fresh_together_are_a_usage_error(
    tmp_path: Path, run_calls: list, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(write_spec(tmp_path)), "--resume", "--fresh"]) == 2
    assert "not allowed with argument" in capsys.readouterr().err and run_calls == []


@pytest.fixture
def failing_run(monkeypatch: pytest.MonkeyPatch, run_calls: list) -> list[Exception]:
    """``orchestrator.run.run`` raises the error put in the returned list, as run's checks do."""
    errors: list[Exception] = []

    def run(experiment: Experiment, **keywords: Any) -> None:
        raise errors[0]

    monkeypatch.setattr(sys.modules["orchestrator.run"], "run", run)
    return errors


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (
            SpecError("got 'runs', but runs is a file; choose another storage_path.", "storage_path"),
            "storage_path: got 'runs', but runs is a file; choose another storage_path.",
        ),
        (ObjectiveError("got 'up'; use 'max' or 'min'."), "got 'up'; use 'max' or 'min'."),
        (
            InsufficientResourcesError("got 1 per trial, but the cluster has 0 GPU; lower it.", "gpu"),
            "resources.gpu: got 1 per trial, but the cluster has 0 GPU; lower it.",
        ),
    ],
)
def test_errors_of_the_run_checks_print_one_line_with_the_file_and_exit_2(
    tmp_path: Path, failing_run: list, capsys: pytest.CaptureFixture[str], error: Exception, line: str
) -> None:
    spec = write_spec(tmp_path)
    failing_run.append(error)
    assert main(["run", str(spec)]) == 2
    captured = capsys.readouterr()
    assert captured.err == f"error: {spec}: {line}\n" and captured.out == ""


def test_debug_shows_the_traceback_instead(tmp_path: Path, failing_run: list) -> None:
    failing_run.append(SpecError("got 'runs', but runs is a file; choose another storage_path.", "storage_path"))
    with pytest.raises(SpecError, match="runs is a file"):
        main(["run", str(write_spec(tmp_path)), "--debug"])
    with pytest.raises(SpecError, match="budget.num_trials: got 0"):
        main(["run", str(write_spec(tmp_path, budget={"num_trials": 0})), "--debug"])


def test_run_with_a_missing_file_exits_2(
    tmp_path: Path, run_calls: list, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", str(tmp_path / "absent.yaml")]) == 2
    assert "absent.yaml" in capsys.readouterr().err and run_calls == []


def test_python_dash_m_reports_a_bad_spec_without_traceback(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, budget={"num_trials": 0})
    completed = subprocess.run(
        [sys.executable, "-m", "orchestrator", "run", str(spec)], cwd=REPO, capture_output=True, text=True
    )
    assert completed.returncode == 2
    assert "budget.num_trials: got 0" in completed.stderr and "Traceback" not in completed.stderr


@pytest.mark.parametrize(
    ("storage", "earlier_run", "fragments"),
    [
        ("occupied", False, ["storage_path: got", "occupied is a file"]),
        ("results", True, ["name: got 'toy'", "already holds a run", "--resume", "--fresh", "new name"]),
    ],
)
def test_python_dash_m_run_reports_what_fails_before_ray_in_one_line(
    tmp_path: Path, storage: str, earlier_run: bool, fragments: list[str]
) -> None:
    (tmp_path / "occupied").write_text("a file where the results should go")
    spec = write_spec(tmp_path, storage_path=str(tmp_path / storage))
    if earlier_run:
        (tmp_path / "results" / "toy").mkdir(parents=True)
        save_experiment(Experiment.from_dict(toy_spec()), tmp_path / "results" / "toy" / "experiment.yaml")
    probe = (
        "import sys, ray\n"
        "def refuse(*args, **kwargs):\n    raise RuntimeError('Ray started')\n"
        "ray.init = refuse\n"
        "from orchestrator.cli import main\n"
        f"sys.exit(main(['run', {str(spec)!r}]))\n"
    )
    completed = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True)
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.startswith(f"error: {spec}: ") and completed.stderr.count("\n") == 1
    for fragment in fragments:
        assert fragment in completed.stderr
    assert "Traceback" not in completed.stderr and "Ray started" not in completed.stderr


def test_a_run_stopped_before_its_budget_says_how_to_continue_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Seen: after Ctrl-C the run printed a front of the trials so far and exited 0, and Tune's
    own hint named ``Tuner.restore``, not the command that continues the run."""
    spec = write_spec(tmp_path)
    left = "1 of 3 trials ended, 1 interrupted, 1 not started"
    module = types.ModuleType("orchestrator.run")
    module.run = lambda experiment, **keywords: fake_result(tmp_path / "toy", experiment, unfinished=left)
    monkeypatch.setitem(sys.modules, "orchestrator.run", module)
    assert main(["run", str(spec), "--storage-path", "elsewhere"]) == 130
    captured = capsys.readouterr()
    assert "Pareto front: 2 of 3 trials" in captured.out
    assert captured.err == f"interrupted: {left}; continue with: orchestrator run {spec} --resume --storage-path elsewhere\n"


# --------------------------------------------------------------------------- report
def test_report_prints_the_saved_experiment(
    tmp_path: Path, run_calls: list, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "experiment.yaml").write_text("name: toy\n")
    assert main(["report", str(tmp_path)]) == 0
    assert run_calls == [("report", tmp_path, {})]
    out = capsys.readouterr().out
    assert "Pareto front: 2 of 3 trials" in out and str(tmp_path / "results.csv") in out


def test_report_of_a_missing_directory_exits_2(
    tmp_path: Path, run_calls: list, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "nothing")]) == 2
    assert "no such experiment directory" in capsys.readouterr().err and run_calls == []


def test_report_of_a_directory_without_a_saved_spec_exits_2(
    tmp_path: Path, run_calls: list, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert "has no experiment.yaml" in captured.err and "Traceback" not in captured.err
    with pytest.raises(FileNotFoundError):
        main(["report", str(tmp_path), "--debug"])


def test_report_of_a_run_without_results_says_how_to_get_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ray")
    save_experiment(Experiment.from_dict(toy_spec()), tmp_path / "experiment.yaml")  # the real report, no Tune state
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no results.csv in") and "`orchestrator run <experiment.yaml>`" in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- demo and methods
@pytest.fixture
def demo_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []
    module = types.ModuleType("orchestrator.demo")

    def demo_experiment(**keywords: Any) -> Experiment:
        calls.append(keywords)
        if keywords.get("method") == "bogus":
            raise SpecError("unknown method 'bogus'", "method")
        return Experiment.from_dict(toy_spec())

    module.demo_experiment = demo_experiment
    monkeypatch.setitem(sys.modules, "orchestrator.demo", module)
    return calls


def test_demo_passes_only_the_given_options(
    demo_calls: list, run_calls: list, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo"]) == 0
    argv = ["demo", "--num-trials", "6", "--epochs", "3", "--storage-path", "out", "--method", "tpe", "--fresh"]
    assert main(argv) == 0
    assert demo_calls == [{}, {"num_trials": 6, "epochs": 3, "storage_path": "out", "method": "tpe"}]
    assert [(call[0], call[2]) for call in run_calls] == [
        ("run", {"resume": False, "fresh": False}),
        ("run", {"resume": False, "fresh": True}),
    ]
    assert capsys.readouterr().out.count("Pareto front: 2 of 3 trials") == 2


def test_demo_spec_error_exits_2(
    demo_calls: list, run_calls: list, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--method", "bogus"]) == 2
    assert "method: unknown method 'bogus'" in capsys.readouterr().err and run_calls == []


def test_methods_lists_names_and_descriptions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["methods"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "ax-mobo  Ax multi-objective Bayesian optimisation",
        "random   uniform random sampling",
        "",
        "Schedulers (scheduler.type; options left out take these defaults):",
        "asha     successive halving (defaults: x=1)",
    ]
