"""Tests for schedulers.mo_asha on scripted rung results (no Ray session)."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from ray.tune.schedulers import ASHAScheduler, TrialScheduler

from benchmarks._sim_trial import SimulatedTrial
from schedulers.mo_asha import MultiObjectiveASHA, MultiObjectivePromotionASHA, rung_milestones

CONTINUE, STOP, PAUSE = TrialScheduler.CONTINUE, TrialScheduler.STOP, TrialScheduler.PAUSE


class _Controller:
    """The calls the schedulers make on a ``TuneController``."""

    def __init__(self, trials=()) -> None:
        self.trials = list(trials)
        self.stopped: list[str] = []

    def get_trials(self):
        return self.trials

    def stop_trial(self, trial) -> None:
        self.stopped.append(trial.trial_id)
        trial.status = "TERMINATED"


def _trial(name: str, status: str = "RUNNING") -> SimulatedTrial:
    trial = SimulatedTrial(name, {})
    trial.status = status
    return trial


def _two_objectives(**kwargs) -> MultiObjectiveASHA:
    kwargs.setdefault("max_t", 9)
    kwargs.setdefault("reduction_factor", 2)
    return MultiObjectiveASHA(metric=["acc", "ms"], mode=["max", "min"], **kwargs)


def _report(scheduler, trial, t, **values):
    return scheduler.on_trial_result(_Controller(), trial, {"training_iteration": t, **values})


@pytest.mark.parametrize("mode", ["max", "min"])
@pytest.mark.parametrize("grace_period, reduction_factor, max_t", [(1, 3, 27), (2, 2, 20), (1, 4, 50)])
@pytest.mark.parametrize("seed", range(2))
def test_one_objective_decides_exactly_like_rays_asha(mode, grace_period, reduction_factor, max_t, seed):
    rng = np.random.default_rng(seed)
    ours = MultiObjectiveASHA(metric=["loss"], mode=[mode], max_t=max_t, grace_period=grace_period,
                              reduction_factor=reduction_factor)
    ray = ASHAScheduler(metric="loss", mode=mode, max_t=max_t, grace_period=grace_period,
                        reduction_factor=reduction_factor)
    controller = _Controller()
    trials = [_trial(f"t{i}") for i in range(40)]
    for trial in trials:
        ours.on_trial_add(controller, trial)
        ray.on_trial_add(controller, trial)
    progress = {trial.trial_id: 0 for trial in trials}
    alive = list(trials)
    decisions = 0
    while alive:  # results arrive interleaved, sometimes skipping iterations
        trial = alive[rng.integers(len(alive))]
        progress[trial.trial_id] += int(rng.integers(1, 3))
        result = {"training_iteration": progress[trial.trial_id], "loss": float(rng.normal())}
        expected = ray.on_trial_result(controller, trial, result)
        assert ours.on_trial_result(controller, trial, dict(result)) == expected
        decisions += 1
        if expected != CONTINUE:
            alive.remove(trial)
    assert decisions > 40


def test_a_dominated_newcomer_stops_and_a_non_dominated_one_continues():
    scheduler = _two_objectives()  # eta = 2: top half, rung at t = 1
    assert _report(scheduler, _trial("a"), 1, acc=0.5, ms=5.0) == CONTINUE  # first at the rung
    assert _report(scheduler, _trial("b"), 1, acc=0.9, ms=1.0) == CONTINUE  # dominates a
    assert _report(scheduler, _trial("c"), 1, acc=0.1, ms=9.0) == STOP  # dominated by both
    assert _report(scheduler, _trial("d"), 1, acc=0.95, ms=3.0) == CONTINUE  # on the front with b


def test_the_continued_fraction_is_the_non_dominated_top_when_trials_arrive_worst_first():
    # Arriving from the worst front to the best, every newcomer is better than all before it.
    scheduler = _two_objectives(reduction_factor=3)
    decisions = [_report(scheduler, _trial(f"t{k}"), 1, acc=k / 10, ms=10.0 - k) for k in range(9)]
    assert decisions == [CONTINUE] * 9
    # Arriving best first, only those inside the top third of what the rung has seen go on.
    scheduler = _two_objectives(reduction_factor=3)
    decisions = [_report(scheduler, _trial(f"t{k}"), 1, acc=1 - k / 10, ms=float(k)) for k in range(6)]
    assert decisions == [CONTINUE, STOP, STOP, STOP, STOP, STOP]


def test_ties_on_the_front_are_broken_by_hypervolume_contribution():
    scheduler = _two_objectives()
    for name, acc, ms in [("x", 1.0, 9.0), ("y", 0.0, 0.0)]:  # the two extremes
        _report(scheduler, _trial(name), 1, acc=acc, ms=ms)
    # Both newcomers are non-dominated; (0.5, 4.5) sits between the extremes and adds volume,
    # (0.01, 0.01) hugs an extreme and adds almost none, so only the first is in the top half.
    assert _report(scheduler, _trial("middle"), 1, acc=0.5, ms=4.5) == CONTINUE
    assert _report(scheduler, _trial("crowded"), 1, acc=0.01, ms=0.01) == STOP


def test_identical_vectors_get_identical_decisions():
    scheduler = _two_objectives()
    _report(scheduler, _trial("a"), 1, acc=0.9, ms=1.0)
    _report(scheduler, _trial("b"), 1, acc=0.1, ms=9.0)
    first = _report(scheduler, _trial("c"), 1, acc=0.9, ms=1.0)
    second = _report(scheduler, _trial("d"), 1, acc=0.9, ms=1.0)
    assert first == second == CONTINUE


def test_nan_objective_stops_and_missing_objective_is_not_ranked():
    scheduler = _two_objectives()
    assert _report(scheduler, _trial("nan"), 1, acc=math.nan, ms=1.0) == STOP
    missing = _trial("missing")
    assert _report(scheduler, missing, 1, acc=0.9) == CONTINUE
    assert all("missing" not in rung for rung in scheduler._rungs)
    assert _report(scheduler, _trial("later"), 1, acc=0.2, ms=3.0) == CONTINUE  # the rung still has no finite record


def test_objective_threshold_stops_a_trial_past_its_bound():
    scheduler = _two_objectives(objective_thresholds={"ms": 5.0})
    assert _report(scheduler, _trial("slow"), 1, acc=0.99, ms=6.0) == STOP
    assert _report(scheduler, _trial("fast"), 1, acc=0.2, ms=4.0) == CONTINUE


def test_max_t_stops_and_bad_arguments_are_named():
    scheduler = _two_objectives()
    assert _report(scheduler, _trial("done"), 9, acc=0.1, ms=1.0) == STOP
    with pytest.raises(ValueError, match="reduction_factor"):
        MultiObjectiveASHA(metric="acc", mode="max", reduction_factor=1)
    with pytest.raises(ValueError, match="grace_period"):
        MultiObjectiveASHA(metric="acc", mode="max", max_t=3, grace_period=5)
    with pytest.raises(ValueError, match="objective_thresholds"):
        MultiObjectiveASHA(metric="acc", mode="max", objective_thresholds={"ms": 1.0})
    with pytest.raises(ValueError, match="metric"):
        MultiObjectiveASHA().on_trial_add(_Controller(), _trial("t"))


def test_milestones_follow_rays_formula():
    assert rung_milestones(1, 52, 3) == [1, 3, 9, 27]
    assert rung_milestones(2, 16, 2) == [2, 4, 8, 16]


def test_save_restore_keeps_the_rungs(tmp_path):
    scheduler = _two_objectives()
    _report(scheduler, _trial("a"), 1, acc=0.9, ms=1.0)
    scheduler.save(str(tmp_path / "state.pkl"))
    restored = _two_objectives()
    restored.restore(str(tmp_path / "state.pkl"))
    assert _report(restored, _trial("b"), 1, acc=0.1, ms=9.0) == STOP
    pickle.dumps(restored)


# ----------------------------------------------------------------------------- promotion
def test_promotion_pauses_then_resumes_the_trial_that_enters_the_top_fraction():
    scheduler = MultiObjectivePromotionASHA(metric=["acc", "ms"], mode=["max", "min"], max_t=9, reduction_factor=2)
    trials = {name: _trial(name) for name in "abcd"}
    controller = _Controller(trials.values())
    for name in "abcd":
        scheduler.on_trial_add(controller, trials[name])
    # a arrives alone: floor(1/2) = 0 promotable, so it waits.
    assert scheduler.on_trial_result(controller, trials["a"], {"training_iteration": 1, "acc": 0.9, "ms": 1.0}) == PAUSE
    trials["a"].status = "PAUSED"
    # b is worse; with 2 recorded the top 1 is a, so b waits and a becomes promotable.
    assert scheduler.on_trial_result(controller, trials["b"], {"training_iteration": 1, "acc": 0.1, "ms": 9.0}) == PAUSE
    trials["b"].status = "PAUSED"
    trials["c"].status, trials["d"].status = "PENDING", "PENDING"
    assert scheduler.choose_trial_to_run(controller) is trials["a"]  # promoted before new trials
    trials["a"].status = "PENDING"
    assert scheduler.choose_trial_to_run(controller) is trials["a"]  # idempotent until it starts
    trials["a"].status = "RUNNING"
    assert scheduler.choose_trial_to_run(controller) is trials["c"]  # b is not promotable
    # c dominates a and b: with 3 recorded the top floor(3/2) = 1 is c itself, so it goes on at once.
    assert scheduler.on_trial_result(controller, trials["c"], {"training_iteration": 1, "acc": 0.95, "ms": 0.5}) == CONTINUE


def test_promotion_stops_the_worst_paused_trial_when_nothing_else_can_run():
    scheduler = MultiObjectivePromotionASHA(metric=["acc", "ms"], mode=["max", "min"], max_t=9, reduction_factor=3)
    trials = {name: _trial(name) for name in "ab"}
    controller = _Controller(trials.values())
    for name, acc in (("a", 0.9), ("b", 0.1)):
        scheduler.on_trial_add(controller, trials[name])
        assert scheduler.on_trial_result(
            controller, trials[name], {"training_iteration": 1, "acc": acc, "ms": 1.0}) == PAUSE
        trials[name].status = "PAUSED"
    assert scheduler.choose_trial_to_run(controller) is None
    assert controller.stopped == ["b"]  # floor(2/3) = 0: nobody promotable, the worst goes
    assert scheduler.choose_trial_to_run(controller) is None
    assert controller.stopped == ["b", "a"]
