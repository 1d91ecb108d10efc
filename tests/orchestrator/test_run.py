"""End to end: ``orchestrator.run`` on a local Ray session, failures, resume and report."""

from __future__ import annotations

import json
import math
import pickle
import tempfile
from pathlib import Path

import pandas as pd
import pytest

ray = pytest.importorskip("ray")
from ray import tune  # noqa: E402

from orchestrator.demo import demo_experiment  # noqa: E402
from orchestrator.run import build_scheduler, report, run, stop_gracefully_on_sigterm  # noqa: E402
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

    # The driver kept a whole copy of Tune's last complete save, for a kill during the next one.
    newest = sorted(result.experiment_dir.glob("experiment_state-*.json"))[-1]
    kept = pickle.loads((result.experiment_dir / f".last-complete-save-{newest.stem.split('-', 1)[1]}.whole").read_bytes())
    assert len(json.loads(kept[newest.name])["trial_data"]) == 4

    # Seen in the crash test: a driver killed while Tune copied its state leaves it empty.
    newest.write_text("")
    assert len(report(result.experiment_dir).results) == 4
    # Killed while Tune wrote both copies: the kept copy of the last complete save is what is left.
    staging = sorted(Path(tempfile.gettempdir()).glob(f"ray/session_*/artifacts/*/digits/driver_artifacts/{newest.name}"))[-1]
    staging.write_text('{"trial_da')
    newest.write_text("")
    assert len(report(result.experiment_dir).results) == 4
    assert json.loads(newest.read_text()) == json.loads(kept[newest.name])


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



# --------------------------------------------------------------------------- cluster.max_failures, resources on the cluster
def dying_trainable(config):
    """Checkpoints each epoch; the first time it reaches ``die_at`` its worker process dies (a lost
    node, as Tune sees it); a config with ``raise`` raises in its own code instead. Every call is
    logged as ``start:<epoch it resumed from>``."""
    import json
    import os
    import tempfile
    from pathlib import Path

    start = 0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            start = json.loads((Path(folder) / "state.json").read_text())["epoch"]
    with open(config["log_path"], "a") as log:
        log.write(f"{config['kind']} start:{start}\n")
    if config["kind"] == "raise":
        raise ValueError("lr: got 3.0; use lr < 1.")
    if config["kind"] == "hang":
        import threading

        threading.Event().wait()
    for epoch in range(start + 1, 5):
        died = Path(config["log_path"] + ".died")
        if epoch == config["die_at"] and not died.exists():
            died.touch()
            os._exit(1)
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "state.json").write_text(json.dumps({"epoch": epoch}))
            tune.report({"score": float(epoch), "size": 1.0}, checkpoint=tune.Checkpoint.from_directory(folder))


def dying_experiment(tmp_path, kind: str, max_failures: int, **budget) -> Experiment:
    return Experiment(
        name=f"{kind}-{max_failures}",
        trainable=dying_trainable,
        search_space={"x": {"type": "uniform", "low": 0, "high": 1}},
        objectives=[Objective("score", "max"), Objective("size", "min")],
        method="random",
        budget=Budget(num_trials=1, max_concurrent=1, **budget),
        cluster={"max_failures": max_failures},
        storage_path=str(tmp_path),
        config={"kind": kind, "die_at": 3, "log_path": str(tmp_path / f"{kind}-{max_failures}.log")},
    )


def test_a_trial_whose_worker_died_resumes_from_its_last_checkpoint(tmp_path):
    result = run(dying_experiment(tmp_path, "die", max_failures=3))
    assert result.results["status"].tolist() == ["completed"] and result.results["score"].tolist() == [4.0]
    # Died in epoch 3, after the checkpoint of epoch 2: the retry resumed from epoch 2.
    assert (tmp_path / "die-3.log").read_text().splitlines() == ["die start:0", "die start:2"]


def test_max_failures_0_leaves_a_trial_whose_worker_died_failed(tmp_path):
    result = run(dying_experiment(tmp_path, "die", max_failures=0))
    assert result.results["status"].tolist() == ["error"]
    assert (tmp_path / "die-0.log").read_text().splitlines() == ["die start:0"]


def test_a_trial_that_raises_is_not_trained_again_by_the_retries(tmp_path):
    result = run(dying_experiment(tmp_path, "raise", max_failures=3))
    assert result.results["status"].tolist() == ["error"]
    assert result.results["error"].tolist() == ["ValueError: lr: got 3.0; use lr < 1."]
    assert (tmp_path / "raise-3.log").read_text().splitlines() == ["raise start:0"], "its code ran once"
    (error_file,) = (tmp_path / "raise-3").glob("*/error.txt")
    # StopRetryingRaisedTrials ends the trial at its first failure when Tune's loop sees the record
    # within the hand-off; on a loaded machine a loop step can take longer, and then the one retry
    # it allows re-raises the recorded error at once (its code did not run again: the log above).
    failures = error_file.read_text().count("Failure #")
    assert failures in (1, 2), f"{failures} failures: retried more than once, max_failures=3 was not lowered"


def test_a_trial_past_its_time_limit_ends_as_timeout_and_is_not_retried(tmp_path):
    result = run(dying_experiment(tmp_path, "hang", max_failures=3, trial_timeout_s=2))
    assert result.results["status"].tolist() == ["timeout"]
    assert (tmp_path / "hang-3.log").read_text().splitlines() == ["hang start:0"], "not restarted by the retries"


def test_gpus_on_a_cpu_only_cluster_fail_in_seconds_and_say_how_to_train_on_cpu(tmp_path):
    import time

    from orchestrator.spec import SpecError

    experiment = dying_experiment(tmp_path, "die", max_failures=3)
    experiment.resources = experiment.resources.__class__(cpu=1, gpu=1)
    started = time.monotonic()
    with pytest.raises(SpecError) as raised:
        run(experiment)  # ray_session: a local 2-CPU Ray without GPUs
    assert time.monotonic() - started < 5
    assert str(raised.value).startswith("resources.gpu: got 1 per trial, but the cluster has 2 CPU and 0 GPU")
    assert "lower it to at most 0 (0 trains on CPU)" in str(raised.value)
    assert not (tmp_path / "die-3").exists(), "no trial started"


def test_sigterm_during_a_run_reaches_tunes_ctrl_c_handler_once():
    import os
    import signal

    seen = []
    previous_int = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    before = signal.getsignal(signal.SIGTERM)
    try:
        with stop_gracefully_on_sigterm():
            os.kill(os.getpid(), signal.SIGTERM)
            assert seen == [signal.SIGINT]
            assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # a second one ends the run at once
        assert signal.getsignal(signal.SIGTERM) == before
    finally:
        signal.signal(signal.SIGINT, previous_int)
