"""End to end: ``orchestrator.run`` on a local Ray session, failures, resume and report."""

from __future__ import annotations

import math

import pandas as pd
import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

from orchestrator.demo import demo_experiment  # noqa: E402
from orchestrator.run import build_scheduler, report, run  # noqa: E402
from orchestrator.spec import Budget, Experiment, Objective  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.usefixtures("ray_session")]  # ray_session: tests/conftest.py


def flaky_trainable(config):
    """Trial behaviour chosen by ``config['kind']``: fine, raises, NaN, or omits an objective."""
    kind = config["kind"]
    if kind == "raise":
        raise RuntimeError("boom")
    if kind == "nan":
        tune.report({"score": math.nan, "size": 1.0})
        return
    if kind == "missing":
        tune.report({"size": 2.0})
        return
    tune.report({"score": config["x"], "size": 10 * config["x"] ** 2 + 1})


def test_reduced_demo_writes_pareto_table_and_plots(tmp_path):
    experiment = demo_experiment(num_trials=4, epochs=2, storage_path=str(tmp_path))
    result = run(experiment)

    assert len(result.results) == 4
    assert set(result.results["status"]) <= {"completed", "stopped"}
    assert result.results["val_accuracy"].between(0, 1).all()
    assert (result.results["num_params"] > 0).all()
    assert not result.pareto.empty
    for key in ("results_csv", "pareto_csv", "pareto_plot", "hypervolume_plot"):
        assert result.paths[key].exists() and result.paths[key].stat().st_size > 0
    assert result.experiment_dir == tmp_path / "digits"

    reported = report(result.experiment_dir)
    assert len(reported.results) == 4
    pd.testing.assert_frame_equal(
        reported.pareto[["val_accuracy", "num_params"]].reset_index(drop=True),
        result.pareto[["val_accuracy", "num_params"]].reset_index(drop=True),
    )


def test_failing_trials_are_recorded_and_the_experiment_goes_on(tmp_path):
    experiment = Experiment(
        name="flaky",
        trainable=flaky_trainable,
        search_space={
            "x": {"type": "uniform", "low": 0.1, "high": 1.0},
            "kind": {"type": "choice", "values": ["ok", "raise", "nan", "missing"]},
        },
        objectives=[Objective("score", "max"), Objective("size", "min")],
        method="random",
        budget=Budget(num_trials=16, max_concurrent=2),
        storage_path=str(tmp_path),
    )
    result = run(experiment)

    frame = result.results
    assert len(frame) == 16
    kinds = frame["config/kind"]
    assert (frame.loc[kinds == "raise", "status"] == "error").all()
    assert (frame.loc[kinds.isin(["nan", "missing"]), "status"] == "invalid_objective").all()
    assert (frame.loc[kinds == "ok", "status"] == "completed").all()
    assert set(kinds) == {"ok", "raise", "nan", "missing"}, "seeded draw should cover every kind"
    assert set(result.pareto["config/kind"]) == {"ok"}


def test_resume_of_a_finished_experiment_runs_nothing_new(tmp_path):
    experiment = demo_experiment(num_trials=2, epochs=1, storage_path=str(tmp_path), method="random")
    first = run(experiment)
    again = run(experiment, resume=True)
    assert sorted(again.results["trial_id"]) == sorted(first.results["trial_id"])


def test_method_with_own_scheduler_needs_scheduler_section(tmp_path):
    experiment = demo_experiment(num_trials=2, epochs=1, storage_path=str(tmp_path), method="asha")
    experiment.scheduler = None
    with pytest.raises(ValueError, match="scheduler"):
        run(experiment)


def test_hyperband_spec_builds_synchronous_hyperband():
    """The stall guard for tight concurrency caps is a pre-flight check (tests/orchestrator/test_preflight.py)."""
    from schedulers import SynchronousHyperBand
    from tests.orchestrator.test_spec import base_spec

    scheduler = {"type": "hyperband", "max_t": 9, "reduction_factor": 3}
    roomy = Experiment.from_dict(base_spec(scheduler=scheduler, budget={"num_trials": 20, "max_concurrent": 9}))
    built = build_scheduler(roomy)
    # Brackets s = 1, 2 take n0 = 5 and 9 trials and pause them at r0 = 3 and 1.
    assert isinstance(built, SynchronousHyperBand) and built.min_concurrent_trials == 9

