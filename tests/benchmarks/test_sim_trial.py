"""Tests for benchmarks._sim_trial: the trial and controller stand-ins, and the history table."""

from __future__ import annotations

import math

from ray.tune.experiment.trial import Trial

from benchmarks._sim_trial import SimulatedController, SimulatedTrial, history_frame


def test_controller_reads_the_given_collections_and_calls_the_given_transitions():
    trials, live, calls = [], set(), []
    controller = SimulatedController(
        trials, live, stop_trial=lambda t: calls.append(("stop", t)), pause_trial=lambda t: calls.append(("pause", t))
    )
    trial = SimulatedTrial("trial_00000", {"x": 1.0})
    trials.append(trial)
    live.add(trial)  # the cluster updates its collections; the controller sees them live
    assert controller.get_trials() == [trial] and controller.get_live_trials() == {trial}
    controller.pause_trial(trial, should_checkpoint=False)
    controller.stop_trial(trial)
    assert calls == [("pause", trial), ("stop", trial)]


def test_trial_hashes_by_identity_and_finishes_on_terminal_statuses():
    first, second = SimulatedTrial("t", {}), SimulatedTrial("t", {})
    assert len({first, second}) == 2
    assert not first.is_finished()
    for status in (Trial.TERMINATED, Trial.ERROR):
        first.status = status
        assert first.is_finished()


def test_history_frame_rows_follow_the_records():
    done, failed = SimulatedTrial("t0", {"x": 0.5}, candidate_index=3), SimulatedTrial("t1", {"x": 0.7})
    done.steps_done, done.cost_so_far, done.start_time = 2, 4.0, 1.0
    done.last_result = {"acc": 0.9}
    failed.last_result = {"acc": 0.1}
    frame = history_frame([(failed, "failed", 2.0), (done, "completed", 5.0)], ["acc"], [1.0, 2.0])
    assert list(frame.columns) == [
        "trial_order", "trial_id", "candidate_index", "config/x", "acc",
        "fidelity", "training_iteration", "cost", "start_time", "end_time", "status",
    ]
    assert list(frame["trial_id"]) == ["t1", "t0"]
    assert math.isnan(frame.loc[0, "acc"]) and math.isnan(frame.loc[0, "fidelity"])
    assert frame.loc[0, "start_time"] == 2.0  # never started: starts when it ends
    assert frame.loc[1, ["acc", "fidelity", "candidate_index", "cost"]].tolist() == [0.9, 2.0, 3, 4.0]
