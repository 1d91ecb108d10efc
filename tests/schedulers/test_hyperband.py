"""Tests for schedulers.hyperband: brackets take ``n0`` trials even when trials are created one by one."""

from __future__ import annotations

import pytest
from ray.tune.schedulers import HyperBandScheduler, TrialScheduler

from benchmarks._sim_trial import SimulatedTrial
from benchmarks.simulator import SimulatedCluster
from searchers import RandomSearch
from schedulers import SynchronousHyperBand
from tests.benchmarks.synthetic_tables import Quadratic


class _Controller:
    """The two calls Ray's HyperBand makes on a ``TuneController`` in these scenarios."""

    def __init__(self) -> None:
        self.stopped: list[str] = []

    def stop_trial(self, trial) -> None:
        self.stopped.append(trial.trial_id)
        trial.status = "TERMINATED"

    def pause_trial(self, trial, should_checkpoint: bool = True) -> None:
        trial.status = "PAUSED"


def _run_to_completion_one_at_a_time(scheduler, count: int, max_t: int) -> list[int]:
    """Adds ``count`` trials, each started, run to ``max_t`` and completed before the next one.

    Returns the bracket index (``s``) each trial joined.
    """
    controller, joined = _Controller(), []
    for index in range(count):
        trial = SimulatedTrial(f"t{index}", {})
        scheduler.on_trial_add(controller, trial)
        bracket = scheduler._trial_info[trial][0]
        joined.append(bracket._halves)
        trial.status = "RUNNING"
        for step in range(1, max_t + 1):
            result = {"training_iteration": step, "acc": 0.5}
            decision = scheduler.on_trial_result(controller, trial, result)
            if decision != TrialScheduler.CONTINUE:
                break
        scheduler.on_trial_complete(controller, trial, result)
        trial.status = "TERMINATED"
    return joined


def test_ray_hyperband_keeps_every_sequential_trial_in_its_first_bracket():
    # The defect this module fixes: a finished trial leaves the bracket, which never fills.
    ray_scheduler = HyperBandScheduler(metric="acc", mode="max", max_t=9, reduction_factor=3)
    assert _run_to_completion_one_at_a_time(ray_scheduler, 8, max_t=9) == [0] * 8


def test_brackets_take_n0_trials_each_in_order():
    scheduler = SynchronousHyperBand(metric="acc", mode="max", max_t=9, reduction_factor=3)
    n0 = [scheduler._get_n0(s) for s in range(3)]
    assert n0 == [3, 5, 9] and [scheduler._get_r0(s) for s in range(3)] == [9, 3, 1]
    assert scheduler.min_concurrent_trials == 9  # bracket s=2 pauses 9 trials at r0=1
    assert SynchronousHyperBand(metric="acc", mode="max", max_t=2, reduction_factor=3).min_concurrent_trials == 1
    joined = _run_to_completion_one_at_a_time(scheduler, n0[0] + 1, max_t=9)
    assert joined == [0] * n0[0] + [1]


def _simulate(scheduler_class, workers: int):
    blackbox = Quadratic()
    scheduler = scheduler_class(metric="loss", mode="min", max_t=9, reduction_factor=3)
    searcher = RandomSearch(blackbox.search_space(), metric="loss", mode="min", seed=0)
    return SimulatedCluster(blackbox, searcher, scheduler=scheduler, num_workers=workers, max_trials=34, seed=0).run()


def test_in_the_simulated_cluster_ray_hyperband_stops_nothing_on_one_worker():
    assert (_simulate(HyperBandScheduler, workers=1)["status"] == "stopped").sum() == 0


@pytest.mark.parametrize("workers", [1, 4])
def test_in_the_simulated_cluster_later_brackets_stop_trials(workers):
    ours = _simulate(SynchronousHyperBand, workers)
    # One band of 3 + 5 + 9 trials: 6 of the 5-trial bracket and 8 of the 9-trial one are cut.
    assert (ours["status"] == "stopped").sum() >= 10
    full = ours[ours["status"] == "completed"]
    assert (full["training_iteration"] == 9).all()
    stopped = ours[ours["status"] == "stopped"]
    assert set(stopped["training_iteration"]) <= {1, 3}


def test_the_ray_internals_this_adapter_relies_on_still_exist():
    """Checked on ray 2.60.0; a failure here names what a new Ray renamed."""
    import inspect

    from ray.tune.schedulers import hyperband

    assert hasattr(hyperband, "_Bracket"), "ray.tune.schedulers.hyperband._Bracket is gone"
    bracket = hyperband._Bracket(time_attr="training_iteration", max_trials=3, init_t_attr=1, max_t_attr=9,
                                 eta=3, s=1)
    for name in ("_all_trials", "_n0", "filled"):
        assert hasattr(bracket, name), f"_Bracket.{name} is gone"
    source = inspect.getsource(hyperband.HyperBandScheduler)
    assert "self._create_bracket(" in source, "HyperBandScheduler no longer builds brackets with _create_bracket"
    for name in ("_get_n0", "_get_r0", "_s_max_1"):
        assert hasattr(SynchronousHyperBand(max_t=9), name), f"HyperBandScheduler.{name} is gone"


# ----------------------------------------------------------------------------- multi-objective
def test_pareto_order_puts_front_first_and_incomplete_results_last():
    from multiobjective import Objectives
    from schedulers.hyperband import pareto_order

    objectives = Objectives.from_spec(["acc", "ms"], ["max", "min"])
    results = [{"acc": 0.5, "ms": 5}, {"acc": 0.9, "ms": 1}, {"acc": 0.1}, {"acc": 0.95, "ms": 3},
               {"acc": float("nan"), "ms": 0}]
    order = pareto_order(objectives, results, keep=2)
    assert set(order[:2]) == {1, 3} and order[2] == 0 and set(order[3:]) == {2, 4}


def test_multi_objective_hyperband_keeps_the_pareto_best_at_a_milestone():
    from schedulers import MultiObjectiveHyperBand

    scheduler = MultiObjectiveHyperBand(metric=["acc", "ms"], mode=["max", "min"], max_t=9, reduction_factor=3)
    controller = _Controller()
    # Bracket s=0 takes the first 3 trials (run to max_t); bracket s=1 the next 5, keeping
    # ceil(5/3) = 2 of them at r0 = 3.
    for index in range(3):
        scheduler.on_trial_add(controller, SimulatedTrial(f"s0-{index}", {}))
    trials = [SimulatedTrial(f"t{i}", {}) for i in range(5)]
    for trial in trials:
        scheduler.on_trial_add(controller, trial)
        trial.status = "RUNNING"
    # t0 and t1 trade accuracy for latency (non-dominated); t2..t4 are dominated by t0.
    values = [(0.9, 5.0), (0.5, 1.0), (0.4, 6.0), (0.3, 6.0), (0.2, 6.0)]
    decisions = {}
    for trial, (acc, ms) in zip(trials, values):
        decisions[trial.trial_id] = scheduler.on_trial_result(
            controller, trial, {"training_iteration": 3, "acc": acc, "ms": ms})
        if decisions[trial.trial_id] == TrialScheduler.PAUSE:
            trial.status = "PAUSED"
    assert sorted(controller.stopped) == ["t2", "t3"]
    assert decisions["t4"] == TrialScheduler.STOP  # the last reporter is stopped by its own decision
    assert trials[0].status == "PAUSED" and trials[1].status == "PAUSED"  # resumed by Tune next
