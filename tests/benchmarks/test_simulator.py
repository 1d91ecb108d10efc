"""Tests for benchmarks.simulator: event clock, Tune searcher/scheduler protocol, pool modes.

Blackboxes here are small synthetic stand-ins (duck-typed to ``benchmarks.blackboxes.Blackbox``)
so the simulator is tested independently of the real tables. The parts the cluster is built from
have their own tests: ``test_sim_events.py``, ``test_sim_trial.py``, ``test_sim_pool.py``.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, HyperBandScheduler, TrialScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher

from benchmarks.bench_simulator_speed import SyntheticCurveBlackbox
from benchmarks.simulator import SimulatedCluster

CONTINUE, STOP = TrialScheduler.CONTINUE, TrialScheduler.STOP


# ----------------------------------------------------------------------------- blackboxes
@dataclass
class EpochFidelity:
    max_epochs: int
    name: str = "epoch"
    kind: str = "epoch"
    steps: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.steps = [float(e) for e in range(1, self.max_epochs + 1)]
        self.min, self.max = self.steps[0], self.steps[-1]


class PoolBlackbox:
    """50 candidates on a 10 x 5 grid, two objectives, no fidelity; cost = 1 + index % 5."""

    name, instance = "pool", "grid"
    objectives = {"score": "max", "size": "min"}
    fidelity = None

    def __init__(self, fail_indices: tuple[int, ...] = (), nan_indices: tuple[int, ...] = ()) -> None:
        grid = [(a, b) for a in range(10) for b in range(5)]
        self._table = pd.DataFrame(grid, columns=["a", "b"])
        self.fail_indices, self.nan_indices = set(fail_indices), set(nan_indices)

    def search_space(self) -> dict:
        return {"a": tune.uniform(0, 9), "b": tune.uniform(0, 4)}

    def candidates(self) -> pd.DataFrame:
        return self._table

    def candidate_features(self) -> np.ndarray:
        return self._table.to_numpy(dtype=float) / [9.0, 4.0]

    def features_of(self, config: dict) -> np.ndarray:
        return np.array([config["a"] / 9.0, config["b"] / 4.0])

    def evaluate_candidate(self, index: int, fidelity: float | None = None) -> dict[str, float]:
        if index in self.fail_indices:
            raise RuntimeError(f"candidate {index} crashed")
        a, b = self._table.iloc[index]
        score = math.nan if index in self.nan_indices else float(a + b)
        return {"score": score, "size": float(a * b), "cost": 1.0 + index % 5}

    def evaluate(self, config: dict, fidelity: float | None = None) -> dict[str, float]:
        return {"score": config["a"] + config["b"], "size": config["a"] * config["b"], "cost": 2.0}


class CurveBlackbox:
    """Continuous space with an epoch fidelity: ``accuracy = q(x) * e / (e + 1)``, cost ``(1 + x) * e``."""

    name, instance = "curves", "synthetic"
    objectives = {"accuracy": "max"}

    def __init__(self, max_epochs: int = 9) -> None:
        self.fidelity = EpochFidelity(max_epochs)

    def search_space(self) -> dict:
        return {"x": tune.uniform(0, 1)}

    def candidates(self) -> None:
        return None

    def evaluate(self, config: dict, fidelity: float | None = None) -> dict[str, float]:
        epochs = self.fidelity.max if fidelity is None else fidelity
        quality = 1.0 - (config["x"] - 0.3) ** 2
        return {"accuracy": quality * epochs / (epochs + 1), "cost": (1.0 + config["x"]) * epochs}


# ----------------------------------------------------------------------------- searchers
class RecordingSearcher(Searcher):
    """Seeded uniform sampling of ``{"x"}`` or ``{"a", "b"}`` that records every hook call."""

    def __init__(self, keys=("x",), seed: int = 0, metric=None, mode=None) -> None:
        super().__init__(metric=metric, mode=mode)
        self._keys, self._rng = keys, np.random.default_rng(seed)
        self.calls: list[tuple] = []
        self.properties: list[tuple] = []

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        self.properties.append((metric, mode, config))
        self._metric, self._mode = metric, mode
        return True

    def suggest(self, trial_id):
        self.calls.append(("suggest", trial_id))
        return {key: float(self._rng.uniform(0, 9 if key == "a" else 4 if key == "b" else 1)) for key in self._keys}

    def on_trial_result(self, trial_id, result):
        self.calls.append(("result", trial_id, result))

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.calls.append(("complete", trial_id, result, error))

    def completions(self) -> dict[str, tuple]:
        return {call[1]: (call[2], call[3]) for call in self.calls if call[0] == "complete"}


class ScriptedSearcher(RecordingSearcher):
    """Returns the given configs in order, then ``after`` (None or FINISHED)."""

    def __init__(self, configs, after=None, **kwargs) -> None:
        super().__init__(**kwargs)
        self._configs, self._after = list(configs), after

    def suggest(self, trial_id):
        self.calls.append(("suggest", trial_id))
        return dict(self._configs.pop(0)) if self._configs else self._after


class NativePoolSearcher(RecordingSearcher):
    """Chooses candidates itself, in the order ``order``."""

    def __init__(self, order, **kwargs) -> None:
        super().__init__(**kwargs)
        self._order = list(order)
        self.received = None

    def set_candidates(self, candidates, features) -> None:
        self.received = (candidates, features)

    def suggest(self, trial_id):
        index = self._order.pop(0)
        return {**self.received[0].iloc[index].to_dict(), "__candidate_index__": index}


class RecordingASHA(ASHAScheduler):
    """Ray's ASHA, recording each (trial_id, iteration, result, decision)."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.decisions: list[tuple[str, int, dict, str]] = []

    def on_trial_result(self, tune_controller, trial, result):
        decision = super().on_trial_result(tune_controller, trial, result)
        self.decisions.append((trial.trial_id, result["training_iteration"], dict(result), decision))
        return decision


def max_overlap(intervals) -> int:
    """Largest number of simultaneously open ``[start, end)`` intervals."""
    intervals = list(intervals)
    events = sorted([(end, -1) for _, end in intervals] + [(start, 1) for start, _ in intervals])
    running = best = 0
    for _, delta in events:
        running += delta
        best = max(best, running)
    return best


# ----------------------------------------------------------------------------- ASHA equivalence
QUALITY = [5, 9, 2, 11, 7, 1, 12, 4, 8, 10, 3, 6]  # trial i's rank; arrival order is 0..11


class ScriptedCurves:
    """Trial ``i`` (config ``{"trial_index": i}``) reports ``QUALITY[i]/12 * s/(s+1)`` at step ``s``
    after ``s * (1 + i/100)`` seconds, so with 12 workers all step-s results arrive, in trial
    order, before any step-(s+1) result."""

    name, instance = "scripted", "asha"
    objectives = {"accuracy": "max"}
    fidelity = EpochFidelity(9)

    def search_space(self) -> dict:
        return {"trial_index": tune.randint(0, 12)}

    def candidates(self) -> None:
        return None

    @staticmethod
    def accuracy(index: int, step: float) -> float:
        return QUALITY[index] / 12 * step / (step + 1)

    def evaluate(self, config: dict, fidelity: float | None = None) -> dict[str, float]:
        index = config["trial_index"]
        return {"accuracy": self.accuracy(index, fidelity), "cost": fidelity * (1 + index / 100)}


def hand_derived_asha_decisions() -> dict[tuple[int, int], str]:
    """Rungs at 1, 3, 9 (grace 1, factor 3, max_t 9); STOP when below the 66.7th percentile of the
    rung so far. Rung 1, in arrival order: t2 (2 < 7.67), t4 (7 < 9), t5 (1 < 8.33), t7 (4 < 9),
    t8 (8 < 8.33), t10 (3 < 9), t11 (6 < 8.67) stop. Rung 3 (t0, t1, t3, t6, t9): t9 (10 < 11)
    stops. t0, t1, t3, t6 run to max_t = 9, where ASHA always says STOP."""
    expected = {}
    for index in (2, 4, 5, 7, 8, 10, 11):
        expected[(index, 1)] = STOP
    expected.update({(9, 1): CONTINUE, (9, 2): CONTINUE, (9, 3): STOP})
    for index in (0, 1, 3, 6):
        expected.update({(index, step): CONTINUE for step in range(1, 9)})
        expected[(index, 9)] = STOP
    return expected


def ray_asha_fed_directly() -> dict[tuple[int, int], str]:
    """The same results, in time order, fed to a fresh ASHAScheduler with mock trials."""
    scheduler = ASHAScheduler(metric="accuracy", mode="max", max_t=9, grace_period=1, reduction_factor=3)
    trials = [SimpleNamespace(trial_id=f"mock_{i}") for i in range(12)]
    for trial in trials:
        scheduler.on_trial_add(None, trial)
    arrivals = sorted((step * (1 + i / 100), i, step) for i in range(12) for step in range(1, 10))
    decisions, stopped = {}, set()
    for _, index, step in arrivals:
        if index in stopped:
            continue
        result = {"training_iteration": step, "accuracy": ScriptedCurves.accuracy(index, step)}
        decision = scheduler.on_trial_result(None, trials[index], result)
        decisions[(index, step)] = decision
        if decision == STOP:
            stopped.add(index)
            scheduler.on_trial_complete(None, trials[index], result)
    return decisions


def test_asha_makes_the_same_decisions_as_ray_asha_on_scripted_results():
    scheduler = RecordingASHA(metric="accuracy", mode="max", max_t=9, grace_period=1, reduction_factor=3)
    searcher = ScriptedSearcher([{"trial_index": i} for i in range(12)], after=Searcher.FINISHED)
    cluster = SimulatedCluster(ScriptedCurves(), searcher, scheduler=scheduler, num_workers=12, max_trials=20)
    history = cluster.run()

    index_of = dict(zip(history["trial_id"], history["config/trial_index"]))
    simulated = {(index_of[tid], step): decision for tid, step, _, decision in scheduler.decisions}
    assert len(simulated) == len(scheduler.decisions)  # each (trial, iteration) decided once
    assert simulated == ray_asha_fed_directly()
    assert simulated == hand_derived_asha_decisions()

    # Results carry what schedulers need; STOP is honoured and reported as Tune does.
    _, _, result, _ = scheduler.decisions[0]
    assert {"training_iteration", "time_total_s", "accuracy", "trial_id"} <= set(result)
    rows = history.set_index("config/trial_index")
    assert rows.loc[[2, 4, 5, 7, 8, 10, 11], "status"].eq("stopped").all()
    assert rows.loc[[2, 4, 5, 7, 8, 10, 11], "fidelity"].eq(1.0).all()
    assert (rows.loc[9, "status"], rows.loc[9, "fidelity"]) == ("stopped", 3.0)
    assert rows.loc[[0, 1, 3, 6], "status"].eq("completed").all()
    assert rows.loc[[0, 1, 3, 6], "fidelity"].eq(9.0).all()
    assert rows.loc[6, "accuracy"] == pytest.approx(ScriptedCurves.accuracy(6, 9))
    completions = searcher.completions()
    trial_9 = rows.loc[9, "trial_id"]
    assert completions[trial_9][0]["training_iteration"] == 3 and completions[trial_9][1] is False
    # Tune hides a STOPped result from Searcher.on_trial_result.
    reported = [(c[1], c[2]["training_iteration"]) for c in searcher.calls if c[0] == "result"]
    assert (trial_9, 3) not in reported and (trial_9, 2) in reported


# ----------------------------------------------------------------------------- clock and workers
def test_same_seed_gives_identical_history_and_restores_global_rng():
    def run(seed):
        scheduler = ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3, brackets=3)
        return SimulatedCluster(
            CurveBlackbox(), RecordingSearcher(seed=1), scheduler=scheduler, num_workers=3, max_trials=40, seed=seed
        ).run()

    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    first = run(7)
    assert np.array_equal(np.random.get_state()[1], before)
    pd.testing.assert_frame_equal(first, run(7))
    # The seed reaches ASHA's bracket draw (global NumPy RNG), so another seed changes decisions.
    assert not first["fidelity"].equals(run(8)["fidelity"])


@pytest.mark.parametrize("num_workers", [1, 3, 8])
def test_concurrency_never_exceeds_num_workers(num_workers):
    scheduler = ASHAScheduler(max_t=9, grace_period=1, reduction_factor=3)
    cluster = SimulatedCluster(
        CurveBlackbox(), RecordingSearcher(), scheduler=scheduler, num_workers=num_workers, max_trials=40
    )
    history = cluster.run()
    assert len(history) == 40
    assert max_overlap(zip(history["start_time"], history["end_time"])) == num_workers
    assert set(cluster.timeline["worker"]) == set(range(num_workers))


def test_single_worker_clock_advances_by_costs():
    blackbox = CurveBlackbox(max_epochs=4)
    history = SimulatedCluster(blackbox, RecordingSearcher(seed=3), num_workers=1, max_trials=6).run()
    assert history["status"].eq("completed").all()
    expected_costs = [blackbox.evaluate({"x": x}, 4.0)["cost"] for x in history["config/x"]]
    np.testing.assert_allclose(history["cost"], expected_costs)
    np.testing.assert_allclose(history["end_time"] - history["start_time"], history["cost"])
    np.testing.assert_allclose(history["start_time"].iloc[1:], history["end_time"].iloc[:-1])
    assert history["end_time"].iloc[-1] == pytest.approx(history["cost"].sum())


def test_fifo_reports_every_step_with_cost_increments():
    searcher = RecordingSearcher(seed=0)
    history = SimulatedCluster(CurveBlackbox(max_epochs=3), searcher, num_workers=2, max_trials=2).run()
    results = [call[2] for call in searcher.calls if call[0] == "result"]
    assert len(results) == 6 and history["training_iteration"].eq(3).all()
    for result in results:
        x = result["config/x"]
        assert result["time_this_iter_s"] == pytest.approx(1 + x)  # cost(e) - cost(e - 1)
        assert result["time_total_s"] == pytest.approx((1 + x) * result["training_iteration"])
        assert result["epoch"] == result["training_iteration"]
    assert [r["done"] for r in results if r["trial_id"] == "trial_00000"] == [False, False, True]


def test_one_trial_is_suggested_ahead_like_tune():
    searcher = RecordingSearcher()
    SimulatedCluster(CurveBlackbox(max_epochs=1), searcher, num_workers=1, max_trials=4).run()
    kinds = [(call[0], call[1][-1]) for call in searcher.calls if call[0] != "result"]
    assert kinds == [
        ("suggest", "0"), ("suggest", "1"),  # the second waits as PENDING
        ("complete", "0"), ("suggest", "2"),
        ("complete", "1"), ("suggest", "3"),
        ("complete", "2"), ("complete", "3"),
    ]


def test_searcher_gets_search_properties_only_without_a_metric():
    fresh = RecordingSearcher(keys=("a", "b"))
    SimulatedCluster(PoolBlackbox(), fresh, max_trials=2).run()
    (metric, mode, space), = fresh.properties
    assert (metric, mode) == (["score", "size"], ["max", "min"]) and set(space) == {"a", "b"}

    preset = RecordingSearcher(keys=("a", "b"), metric="score", mode="max")
    SimulatedCluster(PoolBlackbox(), preset, max_trials=2).run()
    assert preset.properties == []


# ----------------------------------------------------------------------------- failures and None
def test_failed_evaluations_are_recorded_and_reported_to_the_searcher():
    blackbox = PoolBlackbox(fail_indices=(0,), nan_indices=(1,))
    searcher = ScriptedSearcher([{"a": 0, "b": 0}, {"a": 0, "b": 1}, {"a": 5, "b": 2}], keys=("a", "b"))
    history = SimulatedCluster(blackbox, searcher, num_workers=1, max_trials=3).run()
    by_index = history.set_index("candidate_index")
    assert list(by_index.loc[[0, 1, 27], "status"]) == ["failed", "failed", "completed"]
    assert by_index.loc[[0, 1], ["score", "size"]].isna().all().all()
    assert by_index.loc[27, "score"] == 7.0
    completions = searcher.completions()
    assert completions[by_index.loc[0, "trial_id"]] == (None, True)
    assert completions[by_index.loc[1, "trial_id"]] == (None, True)
    assert completions[by_index.loc[27, "trial_id"]][1] is False
    # A raising step costs nothing; a NaN step is paid before it is noticed.
    assert list(by_index.loc[[0, 1, 27], "cost"]) == [0.0, 2.0, 3.0]


def test_searcher_returning_none_idles_workers():
    searcher = ConcurrencyLimiter(RecordingSearcher(seed=0), max_concurrent=2)
    history = SimulatedCluster(CurveBlackbox(), searcher, num_workers=4, max_trials=10).run()
    assert len(history) == 10
    assert max_overlap(zip(history["start_time"], history["end_time"])) == 2


def test_searcher_returning_none_with_nothing_running_ends_the_run():
    searcher = ScriptedSearcher([{"x": 0.1}], after=None)
    cluster = SimulatedCluster(CurveBlackbox(), searcher, num_workers=2, max_trials=10)
    history = cluster.run()
    assert list(history["config/x"]) == [0.1]
    assert list(SimulatedCluster(CurveBlackbox(), ScriptedSearcher([]), max_trials=5).run().columns[:3]) == [
        "trial_order", "trial_id", "candidate_index"
    ]


def test_searcher_finished_stops_new_trials():
    searcher = ScriptedSearcher([{"x": 0.1}, {"x": 0.2}, {"x": 0.3}], after=Searcher.FINISHED)
    history = SimulatedCluster(CurveBlackbox(), searcher, num_workers=2, max_trials=10).run()
    assert sorted(history["config/x"]) == [0.1, 0.2, 0.3]
    assert sum(call[0] == "suggest" for call in searcher.calls) == 4  # no retry after FINISHED


# ----------------------------------------------------------------------------- suggest latency
class SleepingSearcher(ScriptedSearcher):
    """A ``ScriptedSearcher`` whose suggestions take ``seconds`` each; ``None``/FINISHED answers are instant."""

    def __init__(self, configs, seconds: float, **kwargs) -> None:
        super().__init__(configs, **kwargs)
        self.seconds = seconds

    def suggest(self, trial_id):
        if self._configs:
            time.sleep(self.seconds)
        return super().suggest(trial_id)


def test_suggest_time_is_recorded_once_per_suggested_trial():
    searcher = SleepingSearcher([{"x": 0.1}, {"x": 0.2}, {"x": 0.3}], seconds=0.02, after=Searcher.FINISHED)
    cluster = SimulatedCluster(CurveBlackbox(), searcher, num_workers=2, max_trials=10)
    assert cluster.suggest_s == []
    history = cluster.run()
    assert sum(call[0] == "suggest" for call in searcher.calls) == 4  # the FINISHED answer is not timed
    assert len(cluster.suggest_s) == len(history) == 3
    assert all(0.02 <= seconds < 1.0 for seconds in cluster.suggest_s)


def test_suggest_calls_answered_none_are_not_timed():
    inner = RecordingSearcher(seed=0)
    cluster = SimulatedCluster(CurveBlackbox(), ConcurrencyLimiter(inner, max_concurrent=2), num_workers=4,
                               max_trials=10)
    history = cluster.run()
    assert len(cluster.suggest_s) == len(history) == 10 == sum(call[0] == "suggest" for call in inner.calls)
    assert cluster._suggest_calls > 10  # the limiter answered None in between
    assert all(isinstance(seconds, float) and seconds >= 0 for seconds in cluster.suggest_s)


# ----------------------------------------------------------------------------- pool modes
def test_nearest_pool_mode_never_repeats_and_ends_when_exhausted():
    cluster = SimulatedCluster(PoolBlackbox(), RecordingSearcher(keys=("a", "b")), num_workers=4, max_trials=200)
    assert cluster.pool_mode_used == "nearest"
    history = cluster.run()
    assert sorted(history["candidate_index"]) == list(range(50))
    assert history["status"].eq("completed").all()
    table = PoolBlackbox().candidates()
    for _, row in history.iterrows():
        assert (row["config/a"], row["config/b"]) == tuple(table.iloc[int(row["candidate_index"])])


def test_nearest_pool_mode_picks_the_closest_unevaluated_candidate():
    searcher = ScriptedSearcher([{"a": 2.2, "b": 3.9}] * 3, keys=("a", "b"))
    history = SimulatedCluster(PoolBlackbox(), searcher, num_workers=1, max_trials=3).run()
    # Features are (a / 9, b / 4): (2, 4) is closest, then (3, 4) and (1, 4), all before (2, 3).
    assert list(history["candidate_index"]) == [14, 19, 9]


def test_native_pool_mode_uses_the_searchers_choice():
    searcher = NativePoolSearcher([7, 3, 42], keys=("a", "b"))
    cluster = SimulatedCluster(PoolBlackbox(), searcher, num_workers=1, max_trials=3)
    assert cluster.pool_mode_used == "native"
    history = cluster.run()
    assert list(history["candidate_index"]) == [7, 3, 42]
    assert searcher.received[1].shape == (50, 2)
    assert "config/__candidate_index__" not in history.columns
    assert list(history["config/a"]) == [1, 0, 8]


def test_native_pool_mode_rejects_a_repeated_candidate():
    cluster = SimulatedCluster(PoolBlackbox(), NativePoolSearcher([7, 7], keys=("a", "b")), max_trials=2)
    with pytest.raises(ValueError, match="candidate 7.*already evaluated"):
        cluster.run()


def test_off_pool_mode_evaluates_configs_directly():
    history = SimulatedCluster(
        PoolBlackbox(), RecordingSearcher(keys=("a", "b")), pool_mode="off", max_trials=3
    ).run()
    assert history["candidate_index"].isna().all() and history["cost"].eq(2.0).all()


def test_full_fidelity_ends_trials_that_stopped_training_early():
    class EarlyStopping(CurveBlackbox):
        def full_fidelity(self, index=None):
            return 3.5

    history = SimulatedCluster(EarlyStopping(), RecordingSearcher(), max_trials=2).run()
    assert history["fidelity"].eq(4.0).all() and history["status"].eq("completed").all()


# ----------------------------------------------------------------------------- HyperBand
def test_hyperband_pauses_and_resumes_without_deadlock():
    scheduler = HyperBandScheduler(metric="accuracy", mode="max", max_t=9, reduction_factor=3)
    cluster = SimulatedCluster(CurveBlackbox(), RecordingSearcher(seed=2), scheduler=scheduler, num_workers=3,
                               max_trials=30)
    history = cluster.run()
    assert len(history) == 30 and history["trial_id"].is_unique
    assert set(history["status"]) == {"completed", "stopped"}
    timeline = cluster.timeline
    assert len(timeline) > len(history)  # some trials were paused and resumed
    assert max_overlap(zip(timeline["start_time"], timeline["end_time"])) <= 3
    for _, segments in timeline.groupby("trial_id"):
        assert max_overlap(zip(segments["start_time"], segments["end_time"])) == 1


def test_stopped_paused_trials_give_the_searcher_their_last_result():
    scheduler = HyperBandScheduler(metric="accuracy", mode="max", max_t=9, reduction_factor=3)
    searcher = RecordingSearcher(seed=2)
    history = SimulatedCluster(CurveBlackbox(), searcher, scheduler=scheduler, num_workers=3, max_trials=30).run()
    completions = searcher.completions()
    for _, row in history.iterrows():
        result, error = completions[row["trial_id"]]
        assert error is False and result["training_iteration"] == row["training_iteration"]


class PauseForever(FIFOScheduler):
    """Pauses every trial after its first result and never chooses a paused one again."""

    def on_trial_result(self, tune_controller, trial, result):
        return TrialScheduler.PAUSE

    def choose_trial_to_run(self, tune_controller):
        return None


def test_trials_left_paused_forever_are_stopped_with_a_warning():
    searcher = RecordingSearcher()
    with pytest.warns(RuntimeWarning, match="paused with nothing left to run"):
        history = SimulatedCluster(CurveBlackbox(), searcher, scheduler=PauseForever(), num_workers=2,
                                   max_trials=3).run()
    assert history["status"].eq("stopped").all() and history["training_iteration"].eq(1).all()
    assert all(result["training_iteration"] == 1 for result, _ in searcher.completions().values())


class FlakyCurves(CurveBlackbox):
    """Fails (raises) at epoch 1 for ``x > 0.85`` and at epoch 2 for ``0.7 < x <= 0.85``."""

    def evaluate(self, config, fidelity=None):
        if config["x"] > 0.7 and fidelity == (1.0 if config["x"] > 0.85 else 2.0):
            raise RuntimeError("diverged")
        return super().evaluate(config, fidelity)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("make_scheduler", [
    lambda: HyperBandScheduler(metric="accuracy", mode="max", max_t=9, reduction_factor=3),
    lambda: ASHAScheduler(metric="accuracy", mode="max", max_t=9, grace_period=1, reduction_factor=3),
])
def test_schedulers_survive_failed_trials(make_scheduler):
    searcher = RecordingSearcher(seed=4)
    history = SimulatedCluster(FlakyCurves(), searcher, scheduler=make_scheduler(), num_workers=3,
                               max_trials=30).run()
    assert len(history) == 30
    failed = history[history["status"] == "failed"]
    assert len(failed) > 0 and (failed["config/x"] > 0.7).all()
    assert (failed["training_iteration"] == np.where(failed["config/x"] > 0.85, 0, 1)).all()
    assert all(searcher.completions()[tid] == (None, True) for tid in failed["trial_id"])


class DevMetricOnlyCurves(CurveBlackbox):
    """Like the NMT tables: partial fidelities report only ``ppl``; objectives at the last step."""

    def evaluate(self, config, fidelity=None):
        full = super().evaluate(config, fidelity)
        ppl = 10.0 - 5.0 * full["accuracy"]
        if fidelity is not None and fidelity < self.fidelity.max:
            return {"ppl": ppl, "cost": full["cost"]}
        return {**full, "ppl": ppl}


def test_objectives_missing_at_partial_fidelities_are_not_failures():
    scheduler = ASHAScheduler(metric="ppl", mode="min", max_t=9, grace_period=1, reduction_factor=3)
    history = SimulatedCluster(DevMetricOnlyCurves(), RecordingSearcher(), scheduler=scheduler, num_workers=3,
                               max_trials=20).run()
    assert set(history["status"]) == {"completed", "stopped"}
    assert history.loc[history["status"] == "stopped", "accuracy"].isna().all()
    assert history.loc[history["status"] == "completed", "accuracy"].notna().all()


# ----------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_workers": 0}, "num_workers must be an integer >= 1, got 0"),
        ({"max_trials": 2.5}, "max_trials must be an integer >= 1"),
        ({"pool_mode": "bogus"}, "pool_mode must be one of"),
        ({"seed": -1}, "seed must be None or an integer >= 0"),
        ({"scheduler": object()}, "scheduler must be a Ray Tune TrialScheduler"),
    ],
)
def test_invalid_arguments_are_rejected(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SimulatedCluster(CurveBlackbox(), RecordingSearcher(), **kwargs)


def test_pool_mode_requirements_are_checked():
    with pytest.raises(ValueError, match="pool_mode='nearest' needs a blackbox with candidates"):
        SimulatedCluster(CurveBlackbox(), RecordingSearcher(), pool_mode="nearest")
    with pytest.raises(ValueError, match="needs a searcher with set_candidates"):
        SimulatedCluster(PoolBlackbox(), RecordingSearcher(), pool_mode="native")
    with pytest.raises(ValueError, match="has no candidate pool"):
        SimulatedCluster(CurveBlackbox(), NativePoolSearcher([0]))
    with pytest.raises(ValueError, match="searcher must be"):
        SimulatedCluster(CurveBlackbox(), object())
    with pytest.raises(ValueError, match="objectives"):
        SimulatedCluster(SimpleNamespace(objectives={}), RecordingSearcher())


def test_scheduler_metric_must_be_reported():
    scheduler = ASHAScheduler(metric="loss", mode="min", max_t=9)
    with pytest.raises(ValueError, match="scheduler metric 'loss'"):
        SimulatedCluster(CurveBlackbox(), RecordingSearcher(), scheduler=scheduler, max_trials=2).run()


def test_scheduler_without_metric_gets_the_first_objective():
    scheduler = FIFOScheduler()
    SimulatedCluster(PoolBlackbox(), RecordingSearcher(keys=("a", "b")), scheduler=scheduler, max_trials=1).run()
    assert scheduler.metric == "score"


class PropertiesRecordingASHA(ASHAScheduler):
    """Ray's ASHA, recording each ``set_search_properties(metric, mode)`` call and its answer."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.properties: list[tuple] = []

    def set_search_properties(self, metric, mode, **spec) -> bool:
        accepted = super().set_search_properties(metric, mode, **spec)
        self.properties.append((metric, mode, accepted))
        return accepted


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, [("accuracy", "max", True)]),
        ({"metric": "accuracy"}, [(None, "max", True)]),
        ({"mode": "min"}, [("accuracy", "max", False), ("accuracy", None, True)]),
        ({"metric": "accuracy", "mode": "min"}, [(None, "max", False), (None, None, True)]),
    ],
)
def test_scheduler_keeps_its_own_metric_and_mode(kwargs, expected):
    scheduler = PropertiesRecordingASHA(max_t=9, **kwargs)
    SimulatedCluster(CurveBlackbox(), RecordingSearcher(), scheduler=scheduler, max_trials=1).run()
    assert scheduler.properties == expected and scheduler.metric == "accuracy"


def test_run_twice_is_an_error():
    cluster = SimulatedCluster(CurveBlackbox(), RecordingSearcher(), max_trials=1)
    cluster.run()
    with pytest.raises(RuntimeError, match="already called"):
        cluster.run()


# ----------------------------------------------------------------------------- pinned histories
class SeededCurveSearcher(Searcher):
    """Seeded ``lr`` (log-uniform) and ``width`` draws for ``SyntheticCurveBlackbox``, no learning."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self._rng = np.random.default_rng(seed)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        self._metric, self._mode = metric, mode
        return True

    def suggest(self, trial_id):
        return {"lr": float(10 ** self._rng.uniform(-4, 0)), "width": int(self._rng.integers(8, 512))}

    def on_trial_complete(self, trial_id, result=None, error=False):
        pass


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of the frame as CSV with every float written exactly (17 significant digits)."""
    return hashlib.sha256(frame.to_csv(index=False, float_format="%.17g").encode()).hexdigest()


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize(
    ("make_scheduler", "seed", "history_digest", "timeline_digest", "statuses", "end"),
    [
        (
            lambda: ASHAScheduler(max_t=27, grace_period=1, reduction_factor=3), 0,
            "911421542383bf398c5bfb1f713ec26623380cf3f4bf9fbe3e9e93a85b0ed023",
            "2925a0b94d3c2b350c2f23767f0b7fdb9e607cf62dd6107e86190379779d041d",
            {"stopped": 23, "completed": 7}, 155.16015625,
        ),
        (
            lambda: HyperBandScheduler(mode="max", max_t=27, reduction_factor=3), 1,
            "ef9e8453eee2fc3ad1019c4b6f1615f9afa90b72050963eab85e276c7233a021",
            "3fa9e91a17c01e5076269db2a3ea223d42cc0b77577b51a2ae5e1d63e5d433ac",
            {"stopped": 21, "completed": 9}, 212.05859375,
        ),
    ],
    ids=["asha", "hyperband"],
)
def test_seeded_run_reproduces_the_pinned_history(make_scheduler, seed, history_digest, timeline_digest, statuses,
                                                  end):
    # Digests recorded before the simulator was split into _sim_events / _sim_trial / _sim_pool /
    # simulator: a refactor must not change a single bit of a history. HyperBand pauses, resumes
    # and stops trials through the controller, so stale events are exercised too.
    cluster = SimulatedCluster(SyntheticCurveBlackbox(), SeededCurveSearcher(seed), scheduler=make_scheduler(),
                               num_workers=4, max_trials=30, seed=seed)
    history = cluster.run()
    assert history["status"].value_counts().to_dict() == statuses
    assert history["end_time"].max() == end
    assert frame_digest(history) == history_digest
    assert frame_digest(cluster.timeline) == timeline_digest
