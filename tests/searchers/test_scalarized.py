"""Tests for searchers.scalarized: ParEGO-style scalarisation around single-objective searchers."""

from __future__ import annotations

import math
import os

import pytest
from ray import tune
from ray.tune.search import Searcher
from ray.tune.search.hyperopt import HyperOptSearch

from searchers.scalarized import SCALARIZED_METRIC, ScalarizedSearch

SPACE = {"x": tune.uniform(0, 1), "n": tune.randint(1, 4), "epochs": 2}


class RecordingSearcher(Searcher):
    """A wrapped searcher that records what the scalarising wrapper tells it."""

    def __init__(self, metric=SCALARIZED_METRIC, mode="min"):
        super().__init__(metric=metric, mode=mode)
        self.results: list[tuple] = []
        self.completions: list[tuple] = []
        self.properties: list[tuple] = []
        self.state = {"count": 0}

    def set_search_properties(self, metric, mode, config, **spec):
        self.properties.append((metric, mode, config))
        return True

    def suggest(self, trial_id):
        self.state["count"] += 1
        return {"x": 0.5}

    def on_trial_result(self, trial_id, result):
        self.results.append((trial_id, result))

    def on_trial_complete(self, trial_id, result=None, error=False):
        self.completions.append((trial_id, result, error))

    def save(self, checkpoint_path):
        with open(checkpoint_path, "w") as handle:
            handle.write(str(self.state["count"]))

    def restore(self, checkpoint_path):
        with open(checkpoint_path) as handle:
            self.state["count"] = int(handle.read())


def scalars(wrapper: ScalarizedSearch, inner: RecordingSearcher, results: list[dict]) -> list[float]:
    for i, result in enumerate(results):
        wrapper.on_trial_complete(f"t{i}", result)
    return [r[SCALARIZED_METRIC] for _, r, _ in inner.completions]


def test_scalarisation_hand_computed_with_max_and_min():
    inner = RecordingSearcher()
    wrapper = ScalarizedSearch(inner, metric=["acc", "latency"], mode=["max", "min"])
    values = scalars(wrapper, inner, [
        {"acc": 0.8, "latency": 10.0},  # first point: both normalised to 0
        {"acc": 0.6, "latency": 20.0},  # worst in both: u = (1, 1) -> 0.5 + 0.05 * 1
        {"acc": 0.7, "latency": 5.0},  # u = (0.5, 0) -> 0.25 + 0.05 * 0.25
    ])
    assert values == pytest.approx([0.0, 0.55, 0.2625])


def test_scalarisation_with_weights_and_rho():
    inner = RecordingSearcher()
    wrapper = ScalarizedSearch(inner, metric=["a", "b"], mode=["min", "max"], weights=[3, 1], rho=0.1)
    values = scalars(wrapper, inner, [
        {"a": 0.0, "b": 4.0},
        {"a": 2.0, "b": 0.0},  # u = (1, 1), w = (0.75, 0.25): 0.75 + 0.1 * 1
        {"a": 1.0, "b": 1.0},  # u = (0.5, 0.75): max(0.375, 0.1875) + 0.1 * 0.5625
    ])
    assert values == pytest.approx([0.0, 0.85, 0.43125])


def test_zero_weight_ignores_that_objective():
    inner = RecordingSearcher()
    wrapper = ScalarizedSearch(inner, metric=["a", "b"], mode=["min", "min"], weights=[1, 0])
    values = scalars(wrapper, inner, [{"a": 0.0, "b": 0.0}, {"a": 1.0, "b": 100.0}, {"a": 1.0, "b": -5.0}])
    assert values == pytest.approx([0.0, 1.05, 1.05])


def test_result_keeps_original_metrics_beside_the_scalar():
    inner = RecordingSearcher()
    wrapper = ScalarizedSearch(inner, metric=["a"], mode=["max"])
    wrapper.on_trial_complete("t1", {"a": 1.0, "other": "kept"})
    assert inner.completions == [("t1", {"a": 1.0, "other": "kept", SCALARIZED_METRIC: 0.0}, False)]


def test_intermediate_results_use_ranges_of_finished_trials_only():
    inner = RecordingSearcher()
    wrapper = ScalarizedSearch(inner, metric=["a", "b"], mode=["min", "min"])
    wrapper.on_trial_result("t0", {"a": 100.0, "b": 100.0})
    assert inner.results[-1][1][SCALARIZED_METRIC] == 0.0  # nothing finished: no range yet
    scalars(wrapper, inner, [{"a": 0.0, "b": 0.0}, {"a": 2.0, "b": 2.0}])
    wrapper.on_trial_result("t9", {"a": 1.0, "b": 0.0})
    assert inner.results[-1][1][SCALARIZED_METRIC] == pytest.approx(0.25 + 0.05 * 0.25)
    wrapper.on_trial_result("t9", {"a": 5.0, "b": 0.0})  # outside the range: not absorbed
    wrapper.on_trial_complete("t10", {"a": 1.0, "b": 0.0})
    assert inner.completions[-1][1][SCALARIZED_METRIC] == pytest.approx(0.2625)


def test_intermediate_result_without_objectives_is_not_forwarded():
    inner = RecordingSearcher()
    wrapper = ScalarizedSearch(inner, metric=["a", "b"], mode=["min", "min"])
    wrapper.on_trial_result("t0", {"a": 1.0})
    wrapper.on_trial_result("t0", {"a": 1.0, "b": math.nan})
    assert inner.results == []


@pytest.mark.parametrize(
    "result, error",
    [
        (None, False),
        ({"a": 1.0, "b": 2.0}, True),
        ({"a": math.nan, "b": 2.0}, False),
        ({"a": 1.0, "b": math.inf}, False),
        ({"a": 1.0}, False),
        ({"a": 1.0, "b": None}, False),
        ({"a": 1.0, "b": "n/a"}, False),
    ],
    ids=["no-result", "error", "nan", "inf", "missing", "none", "string"],
)
def test_failed_or_non_finite_trials_are_forwarded_as_errors(result, error):
    inner = RecordingSearcher()
    wrapper = ScalarizedSearch(inner, metric=["a", "b"], mode=["min", "max"])
    wrapper.on_trial_complete("t1", result, error=error)
    assert inner.completions == [("t1", None, True)]
    # the failed trial must not widen the normalisation ranges
    wrapper.on_trial_complete("t2", {"a": 3.0, "b": 3.0})
    assert inner.completions[-1][1][SCALARIZED_METRIC] == 0.0
    assert wrapper._low.tolist() == [3.0, -3.0]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"metric": ["a", "b"], "mode": ["min"]}, "got 1 modes"),
        ({"metric": [], "mode": []}, "objectives: got none"),
        ({"metric": ["a"], "mode": ["maximize"]}, "got 'maximize'; use 'max'"),
        ({"weights": [1.0]}, "one non-negative value per objective"),
        ({"weights": [1.0, -1.0]}, "non-negative"),
        ({"weights": [0.0, 0.0]}, "not all 0"),
        ({"rho": -0.1}, "rho=-0.1"),
    ],
)
def test_invalid_arguments_raise(kwargs, match):
    arguments = {"metric": ["a", "b"], "mode": ["min", "max"], **kwargs}
    with pytest.raises(ValueError, match=match):
        ScalarizedSearch(RecordingSearcher(), **arguments)


@pytest.mark.parametrize("metric, mode", [("acc", "min"), (SCALARIZED_METRIC, "max")])
def test_wrapped_searcher_with_other_metric_or_mode_raises(metric, mode):
    with pytest.raises(ValueError, match="SCALARIZED_METRIC"):
        ScalarizedSearch(RecordingSearcher(metric=metric, mode=mode), metric=["a"], mode=["min"])


def test_set_search_properties_forwards_the_scalar_metric():
    inner = RecordingSearcher(metric=None, mode=None)
    wrapper = ScalarizedSearch(inner, metric=["a", "b"], mode=["min", "max"])
    assert wrapper.set_search_properties("a", "max", {"x": 1}) is True
    assert inner.properties == [(SCALARIZED_METRIC, "min", {"x": 1})]
    assert wrapper.metric == ["a", "b"] and wrapper.mode == ["min", "max"]


def test_save_restore_through_tune_directory_api(tmp_path):
    inner = RecordingSearcher()
    wrapper = ScalarizedSearch(inner, metric=["a", "b"], mode=["min", "max"])
    wrapper.suggest("t0")
    wrapper.suggest("t1")
    scalars(wrapper, inner, [{"a": 0.0, "b": 1.0}, {"a": 2.0, "b": 0.0}])
    # save_to_dir saves under a temporary name and renames that single file
    wrapper.save_to_dir(str(tmp_path), session_str="s")
    assert os.listdir(tmp_path) == ["searcher-state-s.pkl"]

    restored_inner = RecordingSearcher()
    restored = ScalarizedSearch(restored_inner, metric=["a", "b"], mode=["min", "max"])
    restored.restore_from_dir(str(tmp_path))
    assert restored_inner.state["count"] == 2
    assert restored._low.tolist() == [0.0, -1.0] and restored._high.tolist() == [2.0, 0.0]
    restored.on_trial_complete("t2", {"a": 1.0, "b": 0.5})
    assert restored_inner.completions[-1][1][SCALARIZED_METRIC] == pytest.approx(0.25 + 0.05 * 0.5)


# ----------------------------------------------------------------- with Ray's HyperOptSearch
def hyperopt_wrapper(seed=0, space=SPACE) -> ScalarizedSearch:
    base = HyperOptSearch(space, metric=SCALARIZED_METRIC, mode="min", random_state_seed=seed, n_initial_points=2)
    return ScalarizedSearch(base, metric=["acc", "cost"], mode=["max", "min"])


def objectives(config: dict) -> dict:
    return {"acc": config["x"], "cost": config["n"] + config["x"] ** 2}


def run_cycles(searcher: ScalarizedSearch, count: int, start: int = 0) -> list[dict]:
    configs = []
    for i in range(start, start + count):
        config = searcher.suggest(f"t{i}")
        configs.append(config)
        if i % 3 == 2:
            searcher.on_trial_complete(f"t{i}", error=True)
        else:
            searcher.on_trial_complete(f"t{i}", objectives(config))
    return configs


def test_hyperopt_suggest_complete_cycles():
    searcher = hyperopt_wrapper()
    configs = run_cycles(searcher, 6)
    for config in configs:
        assert 0 <= config["x"] <= 1 and config["n"] in (1, 2, 3) and config["epochs"] == 2
    hyperopt_trials = searcher._searcher._hpopt_trials
    states = [t["state"] for t in hyperopt_trials._dynamic_trials]
    assert states == [2, 2, 3, 2, 2, 3]  # hyperopt's JOB_STATE_DONE and JOB_STATE_ERROR
    trials = hyperopt_trials.trials
    losses = [t["result"]["loss"] for t in trials if t["result"].get("status") == "ok"]
    assert len(losses) == 4 and min(losses) == 0.0  # the first point scalarises to 0


def test_hyperopt_seeded_determinism():
    assert run_cycles(hyperopt_wrapper(seed=4), 5) == run_cycles(hyperopt_wrapper(seed=4), 5)


def test_hyperopt_space_from_set_search_properties():
    base = HyperOptSearch(metric=SCALARIZED_METRIC, mode="min", random_state_seed=0)
    searcher = ScalarizedSearch(base, metric=["acc", "cost"], mode=["max", "min"])
    assert searcher.set_search_properties(None, None, dict(SPACE)) is True
    assert run_cycles(searcher, 2)[0]["epochs"] == 2


def test_hyperopt_save_restore_continues_identically(tmp_path):
    searcher = hyperopt_wrapper(seed=1)
    run_cycles(searcher, 4)
    path = str(tmp_path / "scalarized.pkl")
    searcher.save(path)
    assert os.listdir(tmp_path) == ["scalarized.pkl"]
    restored = hyperopt_wrapper(seed=99)
    restored.restore(path)
    assert restored._low.tolist() == searcher._low.tolist()
    assert run_cycles(restored, 3, start=4) == run_cycles(searcher, 3, start=4)
