"""Tests for schedulers.state: rung records survive Tune's callback-state round trip."""

from __future__ import annotations

import pickle

import pytest
from ray.tune.callback import CallbackList
from ray.tune.schedulers import ASHAScheduler, HyperBandScheduler, TrialScheduler

from benchmarks._sim_trial import SimulatedTrial
from schedulers.mo_asha import MultiObjectiveASHA, MultiObjectivePromotionASHA
from schedulers.state import SchedulerStateCallback, keeps_state


def _scheduler() -> MultiObjectiveASHA:
    return MultiObjectiveASHA(metric=["acc", "ms"], mode=["max", "min"], max_t=9, reduction_factor=2)


def _report(scheduler, name, acc, ms):
    trial = SimulatedTrial(name, {})
    return scheduler.on_trial_result(None, trial, {"training_iteration": 1, "acc": acc, "ms": ms})


def test_a_restored_experiment_keeps_the_rungs(tmp_path):
    before = _scheduler()
    _report(before, "best", 0.9, 1.0)
    callbacks = CallbackList([SchedulerStateCallback(before)])
    callbacks.save_to_dir(str(tmp_path), session_str="s1")  # what Tune does at each checkpoint

    fresh = _scheduler()
    restored = CallbackList([SchedulerStateCallback(fresh)])
    restored.restore_from_dir(str(tmp_path))  # what Tuner.restore does
    assert _report(fresh, "worse", 0.1, 9.0) == TrialScheduler.STOP  # compared with the saved record
    assert _report(_scheduler(), "worse", 0.1, 9.0) == TrialScheduler.CONTINUE  # without it: an empty rung


def test_rays_asha_and_promotion_state_are_kept_hyperband_is_refused():
    assert keeps_state(ASHAScheduler(metric="a", mode="max")) and keeps_state(
        MultiObjectivePromotionASHA(metric="a", mode="max"))
    with pytest.raises(ValueError, match="Trial objects"):
        SchedulerStateCallback(HyperBandScheduler(metric="a", mode="max"))


def test_state_of_another_scheduler_type_is_ignored():
    promotion = MultiObjectivePromotionASHA(metric=["acc", "ms"], mode=["max", "min"], max_t=9)
    state = SchedulerStateCallback(promotion).get_state()
    pickle.dumps(state)
    stopping = _scheduler()
    SchedulerStateCallback(stopping).set_state(state)
    assert all(not rung for rung in stopping._rungs)
