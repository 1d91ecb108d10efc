"""Trial statuses, error text, warnings, the ending recorder and the per-trial time limit.

Most tests feed :func:`results_frame` hand-made ``Result`` stand-ins; the two ``ray`` tests run
real Tune experiments to check what the recorder and the time limit see in Ray itself.
"""

from __future__ import annotations

import json
import math
import threading
import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest
from ray.exceptions import RayTaskError

from orchestrator.spec import Budget, Experiment, Objective, SchedulerSpec
from orchestrator.trials import (
    ELIGIBLE_STATUSES,
    ENDINGS_FILENAME,
    STATUSES,
    TrialEndingRecorder,
    TrialTimeoutError,
    error_text,
    read_trial_endings,
    results_frame,
    trial_warnings,
    trials_from_directory,
    with_trial_timeout,
)


@dataclass
class FakeResult:
    """The public fields of ``ray.tune.Result`` that :func:`results_frame` reads."""

    metrics: dict[str, Any]
    config: dict[str, Any] = field(default_factory=lambda: {"lr": 0.1})
    error: Any = None
    path: str = "/runs/toy/trial_a"
    metrics_dataframe: Any = None


def experiment(**overrides: Any) -> Experiment:
    settings: dict[str, Any] = dict(
        name="toy",
        trainable=lambda config: None,
        search_space={"lr": {"type": "loguniform", "low": 1e-4, "high": 0.1}},
        objectives=[Objective("accuracy", "max"), Objective("size", "min")],
        method="random",
        scheduler=SchedulerSpec("asha", max_t=10, grace_period=1, time_attr="epoch"),
    )
    settings.update(overrides)
    return Experiment(**settings)


GOOD = {"accuracy": 0.9, "size": 3.0, "epoch": 4, "training_iteration": 4, "trial_id": "a"}


def status_of(result: FakeResult, ending: str | None, **overrides: Any) -> tuple[str, str]:
    endings = {} if ending is None else {"trial_a": ending}
    row = results_frame([result], experiment(**overrides), endings).iloc[0]
    return row["status"], row["error"]


def ray_task_error(cause: BaseException) -> RayTaskError:
    """What ``Result.error`` holds for a trial that raised: a RayTaskError with colour codes."""
    traceback_text = (
        "Traceback (most recent call last):\n"
        '  File "/venv/ray/tune/trainable/function_trainable.py", line 249, in _trainable_func\n'
        "    output = fn()\n"
        '  File "/work/train.py", line 6, in train\n'
        f"    raise {type(cause).__name__}(...)\n"
        f"{type(cause).__name__}: {cause}"
    )
    error = RayTaskError(
        "ImplicitFunc.train", traceback_text, cause,
        proctitle="ray::ImplicitFunc.train()", pid=22741, ip="192.0.2.2", actor_repr="train",
    )
    return error.as_instanceof_cause()


# --------------------------------------------------------------------------- statuses
def test_status_vocabulary_and_the_eligible_subset() -> None:
    assert set(ELIGIBLE_STATUSES) == {"completed", "stopped"} < set(STATUSES)
    assert "missing_objective" not in STATUSES


def test_trial_that_ran_all_its_epochs_below_max_t_is_completed_not_stopped() -> None:
    # epoch 4 < scheduler.max_t=10: the old rule called this trial "stopped".
    assert status_of(FakeResult(GOOD), "trainable") == ("completed", "")


def test_trial_the_scheduler_stopped_is_stopped_and_keeps_its_epoch_column() -> None:
    result = FakeResult({**GOOD, "epoch": 2, "training_iteration": 2})
    frame = results_frame([result], experiment(), {"trial_a": "scheduler"})
    assert frame.loc[0, "status"] == "stopped"
    assert frame.loc[0, "epoch"] == 2  # the scheduler's time_attr has a column of its own


def test_trial_the_scheduler_stopped_at_max_t_had_its_full_budget() -> None:
    assert status_of(FakeResult({**GOOD, "epoch": 10}), "scheduler")[0] == "completed"


def test_paused_trial_dropped_by_a_scheduler_without_max_t_is_stopped() -> None:
    assert status_of(FakeResult(GOOD), "scheduler", scheduler=None)[0] == "stopped"


def test_trial_without_a_recorded_ending_was_interrupted() -> None:
    assert status_of(FakeResult(GOOD), None) == ("interrupted", "")
    # Interrupted first: a half-trained trial's NaN is not a verdict on its objective.
    assert status_of(FakeResult({**GOOD, "accuracy": math.nan}), None)[0] == "interrupted"


def test_trial_that_raised_is_error_with_the_users_exception() -> None:
    error = ray_task_error(ValueError("lr: got 3.0; use lr < 1."))
    assert status_of(FakeResult(GOOD, error=error), "error") == ("error", "ValueError: lr: got 3.0; use lr < 1.")


def test_error_wins_even_without_a_recorded_ending() -> None:
    # A trial Tune failed itself (an actor that could not be reused) gets no on_trial_error.
    assert status_of(FakeResult(GOOD, error=ray_task_error(KeyError("x"))), None)[0] == "error"
    assert status_of(FakeResult(GOOD), "error") == ("error", "")


def test_trial_past_its_time_limit_is_timeout() -> None:
    error = ray_task_error(TrialTimeoutError("budget.trial_timeout_s: got 5, and the trial ran longer"))
    status, text = status_of(FakeResult({}, error=error), "error")
    assert status == "timeout"
    assert text.startswith("TrialTimeoutError: budget.trial_timeout_s: got 5")


@pytest.mark.parametrize(
    ("metrics", "detail"),
    [
        ({"accuracy": math.nan, "size": 3.0}, "accuracy is NaN"),
        ({"accuracy": math.inf, "size": 3.0}, "accuracy is infinite"),
        ({"accuracy": "high", "size": 3.0}, "accuracy is not a number ('high')"),
        ({"size": 3.0}, "accuracy is missing"),
        ({}, "accuracy is missing; size is missing"),
    ],
)
def test_unusable_objective_names_the_metric_and_its_value(metrics: dict, detail: str) -> None:
    assert status_of(FakeResult({**metrics, "epoch": 4}), "trainable") == ("invalid_objective", detail)
    assert status_of(FakeResult({**metrics, "epoch": 1}), "scheduler")[0] == "invalid_objective"


def test_frame_columns_order_and_trial_that_never_reported(tmp_path) -> None:
    # Result.config is read from the last result: None for a trial that never reported.
    (tmp_path / "trial_b").mkdir()
    (tmp_path / "trial_b" / "params.json").write_text(json.dumps({"opt": {"lr": 0.5}}))
    grid = [
        FakeResult(GOOD, config={"opt": {"lr": 0.1}}, path=str(tmp_path / "trial_a")),
        FakeResult({}, config=None, error=ray_task_error(OSError("disk")), path=str(tmp_path / "trial_b")),
    ]
    frame = results_frame(grid, experiment(constraints=["latency <= 5"]), {"trial_a": "trainable"})
    assert list(frame["trial_id"]) == ["a", "trial_b"]
    assert list(frame["trial_order"]) == [1, 2]
    assert list(frame["config/opt/lr"]) == [0.1, 0.5]
    assert {"training_iteration", "time_total_s", "epoch", "accuracy", "size", "latency"} <= set(frame)
    assert math.isnan(frame.loc[0, "latency"])
    assert list(frame["status"]) == ["completed", "error"]


@pytest.mark.parametrize("written", ["", '{"opt": {"lr"'])
def test_a_params_file_cut_by_a_killed_driver_leaves_the_config_unknown(tmp_path, written) -> None:
    # SIGKILL while Tune wrote params.json for a trial that never reported (seen in CI): the
    # report after the kill must still come out.
    (tmp_path / "trial_b").mkdir()
    (tmp_path / "trial_b" / "params.json").write_text(written)
    grid = [
        FakeResult(GOOD, config={"opt": {"lr": 0.1}}, path=str(tmp_path / "trial_a")),
        FakeResult({}, config=None, path=str(tmp_path / "trial_b")),
    ]
    frame = results_frame(grid, experiment(), {"trial_a": "trainable"})
    assert list(frame["trial_id"]) == ["a", "trial_b"]
    assert frame.loc[0, "config/opt/lr"] == 0.1 and math.isnan(frame.loc[1, "config/opt/lr"])


# --------------------------------------------------------------------------- error text
def test_error_text_of_ray_task_error_is_the_cause_without_colour_codes() -> None:
    error = ray_task_error(ValueError("bad lr: 3\nsecond line"))
    assert "\x1b[" in str(error) and "ImplicitFunc.train()" in str(error)  # what Tune shows
    assert error_text(error) == "ValueError: bad lr: 3 second line"


def test_error_text_of_error_txt_takes_the_last_traceback_entry() -> None:
    text = (
        "Failure # 1 (occurred at 2026-11-28_07-07-37)\n"
        "\x1b[36mray::ImplicitFunc.train()\x1b[39m (pid=22741, ip=192.0.2.2, repr=f)\n"
        '  File "/venv/ray/tune/trainable/trainable.py", line 329, in train\n'
        "    raise skipped from exception_cause(skipped)\n"
        "           ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n"
        '  File "/work/train.py", line 6, in f\n'
        '    raise ValueError("bad lr: 3")\n'
        "ValueError: bad lr: 3\n"
    )
    assert error_text(text) == "ValueError: bad lr: 3"


def test_error_text_of_other_errors_and_long_messages() -> None:
    assert error_text("Failure # 1 (occurred at now)\nThe actor died unexpectedly.") == "The actor died unexpectedly."
    assert error_text(RuntimeError()) == "RuntimeError"
    long_text = error_text(ValueError("x" * 2000))
    assert len(long_text) == 500 and long_text.endswith("…")


# --------------------------------------------------------------------------- warnings
def frame_of(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([{"training_iteration": 1, "accuracy": 0.9, "size": 1.0, **row} for row in rows])


def test_warns_when_every_completed_trial_stops_below_max_t() -> None:
    frame = frame_of([{"status": "completed", "epoch": 4}, {"status": "stopped", "epoch": 1}])
    (message,) = trial_warnings(frame, experiment())
    assert message.startswith("scheduler.max_t: got 10, but every completed trial ended by itself at epoch <= 4")
    assert message.endswith("set scheduler.max_t to 4, the epoch the trainable runs to.")


def test_no_max_t_warning_once_a_trial_reaches_max_t() -> None:
    frame = frame_of([{"status": "completed", "epoch": 4}, {"status": "completed", "epoch": 10}])
    assert trial_warnings(frame, experiment()) == []


def test_warns_when_time_attr_is_never_reported() -> None:
    frame = frame_of([{"status": "completed", "epoch": None}, {"status": "error", "epoch": None}])
    (message,) = trial_warnings(frame, experiment())
    assert message.startswith("scheduler.time_attr: got 'epoch', which no trial reported, so the asha scheduler")


def test_warns_when_a_constraint_metric_is_never_reported() -> None:
    frame = frame_of([{"status": "completed", "epoch": 10, "latency": None, "memory": 2.0}])
    (message,) = trial_warnings(frame, experiment(constraints=["latency <= 5", "memory <= 4"]))
    assert message.startswith("constraints: got 'latency <= 5', but no trial reported 'latency', so every trial")


def test_no_warnings_when_no_trial_reported_anything() -> None:
    frame = pd.DataFrame({"training_iteration": [None], "status": ["error"], "epoch": [None]})
    assert trial_warnings(frame, experiment(constraints=["latency <= 5"])) == []


# --------------------------------------------------------------------------- ending recorder
def fake_trial(name: str, status: str = "RUNNING") -> SimpleNamespace:
    return SimpleNamespace(trial_id=name, status=status, path=f"/runs/toy/{name}_dir")


def test_recorder_tells_trainable_scheduler_and_error_endings_apart(tmp_path) -> None:
    recorder = TrialEndingRecorder(tmp_path)
    recorder.setup()
    returned, stopped, dropped, failed = (fake_trial(n) for n in ("returned", "stopped", "dropped", "failed"))
    for trial in (returned, stopped, dropped, failed):
        recorder.on_trial_start(0, [], trial)
    recorder.on_trial_result(0, [], returned, {"done": False})
    recorder.on_trial_complete(0, [], returned)
    recorder.on_trial_result(0, [], stopped, {"done": True})  # Tune marks the result of a STOP decision
    recorder.on_trial_complete(0, [], stopped)
    dropped.status = "PAUSED"  # HyperBand stops paused trials through stop_trial
    recorder.on_trial_complete(0, [], dropped)
    recorder.on_trial_error(0, [], failed)
    expected = {"returned_dir": "trainable", "stopped_dir": "scheduler", "dropped_dir": "scheduler", "failed_dir": "error"}
    assert json.loads((tmp_path / ENDINGS_FILENAME).read_text()) == expected
    assert read_trial_endings(tmp_path) == expected


def test_recorder_keeps_earlier_endings_on_resume_and_clears_a_restarted_trial(tmp_path) -> None:
    (tmp_path / ENDINGS_FILENAME).write_text(json.dumps({"old_dir": "trainable", "again_dir": "error"}))
    recorder = TrialEndingRecorder(tmp_path)  # Tune unpickles it on resume; setup reads the file
    recorder.setup()
    recorder.on_trial_start(0, [], fake_trial("again"))
    assert read_trial_endings(tmp_path) == {"old_dir": "trainable"}


def test_read_trial_endings_of_a_run_without_a_recorder_is_empty(tmp_path) -> None:
    assert read_trial_endings(tmp_path) == {}


# --------------------------------------------------------------------------- time limit
def hang_forever(config: dict) -> None:
    threading.Event().wait()


def test_with_trial_timeout_none_is_the_trainable_itself() -> None:
    assert with_trial_timeout(hang_forever, None) is hang_forever


def test_with_trial_timeout_ends_a_hung_function() -> None:
    started = time.monotonic()
    with pytest.raises(TrialTimeoutError, match=r"budget.trial_timeout_s: got 0.2, and the trial ran longer"):
        with_trial_timeout(hang_forever, 0.2)({})
    assert time.monotonic() - started < 5


def test_with_trial_timeout_passes_value_and_exceptions_through() -> None:
    def train(config: dict) -> int:
        if config["fail"]:
            raise ValueError("lr")
        return 7

    timed = with_trial_timeout(train, 5)
    assert timed.__name__ == "train"  # Tune names trials after it
    assert timed({"fail": False}) == 7
    with pytest.raises(ValueError, match="lr"):
        timed({"fail": True})


def test_with_trial_timeout_lets_tunes_stop_signal_through() -> None:
    def stopped_by_tune(config: dict) -> None:
        raise SystemExit(0)  # what ray.tune.report raises when Tune stops the trial

    with pytest.raises(SystemExit):
        with_trial_timeout(stopped_by_tune, 5)({})


def test_with_trial_timeout_refuses_class_and_generator_trainables() -> None:
    def generator(config: dict):
        yield {"score": 1}

    for trainable in (generator, FakeResult):
        with pytest.raises(ValueError, match=r"budget.trial_timeout_s: got 5 for .*function trainables"):
            with_trial_timeout(trainable, 5)


# --------------------------------------------------------------------------- real Tune
EPOCHS, TRIAL_TIMEOUT_S = 3, 5
SCORES = {"good": 1.0, "weak": 0.0, "nan": math.nan, "hang_after_report": 1.0}


def kinds_trainable(config: dict) -> None:
    """One behaviour per ``config['kind']``; ``weak`` reports after ``good``, so ASHA stops it."""
    from ray import tune

    kind = config["kind"]
    if kind == "raise":
        raise ValueError("lr: got 3.0; use lr < 1.")
    if kind == "hang_before_report":
        threading.Event().wait()
    if kind == "weak":
        time.sleep(2)
    for epoch in range(1, EPOCHS + 1):
        tune.report({"score": SCORES[kind], "epoch": epoch})
        if kind == "hang_after_report":
            threading.Event().wait()


def slow_trainable(config: dict) -> None:
    from ray import tune

    for epoch in range(1, 1000):
        time.sleep(0.2)
        tune.report({"score": 1.0, "epoch": epoch})


def fit(experiment: Experiment, tmp_path, param_space: dict) -> tuple[Any, float]:
    """``experiment`` on a plain Tuner with the recorder and the time limit, one trial per grid point."""
    from ray import tune

    trainable = with_trial_timeout(experiment.resolve_trainable(), experiment.budget.trial_timeout_s)
    config = experiment.scheduler_config()
    tuner = tune.Tuner(
        tune.with_resources(trainable, {"cpu": 1}),
        param_space=param_space,
        tune_config=tune.TuneConfig(
            scheduler=None if config is None else config.build(),
            max_concurrent_trials=experiment.budget.max_concurrent,
            time_budget_s=experiment.budget.time_budget_s,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=experiment.name,
            storage_path=str(tmp_path),
            callbacks=[TrialEndingRecorder(tmp_path / experiment.name)],
            failure_config=tune.FailureConfig(max_failures=0),
            verbose=0,
        ),
    )
    started = time.monotonic()
    grid = tuner.fit()
    return grid, time.monotonic() - started


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_real_tune_run_records_every_status(tmp_path) -> None:
    from ray import tune

    kinds = ["good", "weak", "nan", "raise", "hang_after_report", "hang_before_report"]
    spec = Experiment(
        name="kinds",
        trainable=kinds_trainable,
        search_space={"kind": {"type": "choice", "values": kinds}},
        objectives=[Objective("score", "max")],
        method="random",
        scheduler=SchedulerSpec("asha", max_t=10, grace_period=1, reduction_factor=2, time_attr="epoch"),
        budget=Budget(num_trials=1, max_concurrent=2, trial_timeout_s=TRIAL_TIMEOUT_S),
    )
    grid, seconds = fit(spec, tmp_path, {"kind": tune.grid_search(kinds)})
    frame = results_frame(grid, spec, read_trial_endings(tmp_path / "kinds")).set_index("config/kind")

    assert frame["status"].to_dict() == {
        "good": "completed",  # all 3 epochs, below max_t=10
        "weak": "stopped",
        "nan": "invalid_objective",
        "raise": "error",
        "hang_after_report": "timeout",
        "hang_before_report": "timeout",
    }
    assert frame.loc["weak", "epoch"] == 1
    assert frame.loc["nan", "error"] == "score is NaN"
    assert frame.loc["raise", "error"] == "ValueError: lr: got 3.0; use lr < 1."
    assert frame.loc["hang_before_report", "error"].startswith("TrialTimeoutError: budget.trial_timeout_s: got 5,")
    # Both hung trials ended at the limit (two at a time), not whenever Ray gave up on them.
    assert seconds < 120, f"fit took {seconds:.0f} s"
    assert any(m.startswith("scheduler.max_t: got 10") for m in trial_warnings(frame.reset_index(), spec))
    # The same table from the directory alone, as `orchestrator report` of a killed run reads it.
    again = trials_from_directory(tmp_path / "kinds", spec).set_index("config/kind")
    assert again["status"].to_dict() == frame["status"].to_dict()


@pytest.mark.ray
@pytest.mark.usefixtures("ray_session")
def test_real_tune_run_cut_off_by_time_budget_is_interrupted(tmp_path) -> None:
    spec = Experiment(
        name="budget",
        trainable=slow_trainable,
        search_space={"x": {"type": "choice", "values": [1]}},
        objectives=[Objective("score", "max")],
        method="random",
        # The actor alone may take 5 s to start, and over 10 s on 2 loaded cores (seen: cut off before it reported).
        budget=Budget(num_trials=1, max_concurrent=1, time_budget_s=20),
    )
    grid, _ = fit(spec, tmp_path, {"x": 1})
    frame = results_frame(grid, spec, read_trial_endings(tmp_path / "budget"))
    assert frame.loc[0, "training_iteration"] >= 1  # it ran and reported, then the budget ran out
    assert frame.loc[0, "status"] == "interrupted"


def test_trial_order_follows_first_starts_not_the_grid_order(tmp_path):
    """After a resume Tune's grid lists restored trials in another order; trial_order must not change."""
    from types import SimpleNamespace

    from orchestrator.spec import Experiment, Objective
    from orchestrator.trials import STARTS_FILENAME, read_trial_starts

    experiment = Experiment("toy", lambda config: None, {"x": {"type": "uniform", "low": 0, "high": 1}},
                            [Objective("loss", "min")], method="random")
    grid = [SimpleNamespace(metrics={"trial_id": name, "loss": 1.0}, config={"x": 0.5}, error=None,
                            path=f"/runs/toy/dir_{name}") for name in ("c", "a", "d", "b")]
    (tmp_path / STARTS_FILENAME).write_text("dir_a\ndir_b\ndir_a\ndir_c\n")  # a restarted trial appears twice
    starts = read_trial_starts(tmp_path)
    assert starts == ["dir_a", "dir_b", "dir_c"]
    frame = results_frame(grid, experiment, {}, starts)
    assert list(frame["trial_id"]) == ["a", "b", "c", "d"]  # d never started: after the others
    assert list(frame["trial_order"]) == [1, 2, 3, 4]
