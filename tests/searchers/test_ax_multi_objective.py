"""Tests for searchers.ax_multi_objective, driving the Searcher interface directly (no Ray session)."""

from __future__ import annotations

import json
import logging
import math

import cloudpickle
import pandas as pd
import pytest
from ray import tune

from searchers import AxMultiObjectiveSearch

SPACE = {
    "lr": tune.loguniform(1e-4, 1e-1),
    "width": tune.qrandint(16, 64, 16),
    "model": {"depth": tune.randint(1, 4), "act": tune.choice(["relu", "gelu"])},
    "epochs": 3,
}
METRICS = ["acc", "latency"]
MODES = ["max", "min"]


def make_searcher(space=SPACE, **options) -> AxMultiObjectiveSearch:
    # The reproducible mode: each test scripts the exact order of suggestions and results
    # (background mode has tests of its own in test_ax_background.py).
    options = {"metric": METRICS, "mode": MODES, "seed": 0, "method": "random_search", "background": False, **options}
    return AxMultiObjectiveSearch(space, **options)


def result(acc=0.5, latency=2.0, **extra) -> dict:
    return {"acc": acc, "latency": latency, **extra}


def trial_status(searcher: AxMultiObjectiveSearch, trial_index: int) -> str:
    return searcher.client._experiment.trials[trial_index].status.name


def statuses(searcher: AxMultiObjectiveSearch) -> dict[int, str]:
    return {i: t.status.name for i, t in searcher.client._experiment.trials.items()}


def data_frame(searcher: AxMultiObjectiveSearch) -> pd.DataFrame:
    return searcher.client._experiment.lookup_data().full_df


def assert_in_space(config: dict) -> None:
    assert type(config["lr"]) is float and 1e-4 <= config["lr"] <= 1e-1
    assert type(config["width"]) is int and config["width"] in (16, 32, 48, 64)
    assert type(config["model"]["depth"]) is int and 1 <= config["model"]["depth"] <= 3
    assert config["model"]["act"] in ("relu", "gelu")
    assert config["epochs"] == 3


def flat_params(config: dict) -> tuple:
    return (config["lr"], config["width"], config["model"]["depth"], config["model"]["act"])


def ready_indices(searcher: AxMultiObjectiveSearch) -> list[int]:
    return [item[0] for item in searcher._ready]


# ----------------------------------------------------------------- construction
@pytest.mark.parametrize(
    "options, match",
    [
        # Objective checks are multiobjective.Objectives' (tested there); one of each kind here.
        ({"metric": "acc", "mode": None}, "mode: missing for objective 'acc'"),
        ({"metric": None, "mode": "max"}, "metric: missing beside mode='max'"),
        ({"metric": ["a", "b"], "mode": ["max"]}, r"got 1 modes \['max'\] for 2 objectives"),
        ({"metric": ["a"], "mode": ["max", "min"]}, "got 2 modes"),
        ({"metric": ["a", "b"], "mode": ["max", "maximize"]}, "mode of objective 'b': got 'maximize'"),
        ({"metric": "a", "mode": "minimum"}, "'minimum'"),
        ({"metric": ["a", "a"], "mode": ["max", "max"]}, r"\['a'\] more than once"),
        ({"metric": [], "mode": []}, "objectives: got none"),
        ({"metric": ["a", "b"], "mode": "max"}, "got 1 modes"),
        ({"max_concurrent": 0}, "max_concurrent=0"),
        ({"max_concurrent": -2}, "max_concurrent=-2"),
        ({"max_concurrent": 1.5}, "max_concurrent=1.5"),
        ({"method": "bogus"}, "method='bogus' is not one of"),
        ({"initialization_budget": -1}, "initialization_budget=-1"),
        ({"max_progression": 0}, "max_progression=0"),
        ({"objective_thresholds": {"loss": 1.0}}, "thresholds.loss: not an objective"),
        ({"metric": ["acc", "epochs"], "mode": ["max", "max"]}, r"\['epochs'\] share a name"),
        ({"metric": ["lr"], "mode": "max"}, r"\['lr'\] share a name"),
    ],
)
def test_invalid_arguments_raise_naming_the_value(options, match):
    with pytest.raises(ValueError, match=match):
        make_searcher(**options)


def test_quality_method_without_jax_names_the_saas_extra():
    try:
        import jax  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("jax is installed, so method='quality' is available")
    with pytest.raises(ImportError, match=r"tune-orchestrator\[saas\]"):
        make_searcher(method="quality")


def test_single_objective_string_metric_is_normalised_to_lists():
    searcher = make_searcher(metric="latency", mode="min")
    assert searcher.metric == ["latency"] and searcher.mode == ["min"]
    assert searcher.client._experiment.optimization_config.objective.expression == "-latency"


def test_one_mode_string_for_several_objectives_is_refused():
    # A forgotten mode must not silently minimise an accuracy: one mode per objective.
    with pytest.raises(ValueError, match="give one 'max' or 'min' per objective"):
        make_searcher(metric=["a", "b"], mode="min")


def test_objectives_value_carries_names_modes_and_thresholds():
    from multiobjective import Objectives

    objectives = Objectives.from_spec({"acc": "max", "latency": "min"})
    searcher = make_searcher(metric=objectives, mode=None)
    assert searcher.metric == ["acc", "latency"] and searcher.mode == ["max", "min"]


def test_objectives_and_thresholds_reach_ax():
    searcher = make_searcher(objective_thresholds={"acc": 0.6, "latency": 5}, outcome_constraints=["params <= 100"])
    config = searcher.client._experiment.optimization_config
    assert config.objective.expression == "acc, -latency"
    thresholds = {tuple(t.metric_names): (t.bound, t.op.name, t.relative) for t in config.objective_thresholds}
    assert thresholds == {("acc",): (0.6, "GEQ", False), ("latency",): (5.0, "LEQ", False)}
    constraints = [(c.metric_names, c.bound, c.op.name) for c in config.outcome_constraints]
    assert constraints == [(["params"], 100.0, "LEQ")]


def test_suggest_without_space_raises():
    searcher = AxMultiObjectiveSearch(metric="acc", mode="max")
    with pytest.raises(RuntimeError, match="no search space"):
        searcher.suggest("t1")


# ----------------------------------------------------------------- set_search_properties
def test_set_search_properties_returns_false_when_already_configured():
    searcher = make_searcher()
    client = searcher.client
    assert searcher.set_search_properties("other", "min", {"x": tune.uniform(0, 1)}) is False
    assert searcher.set_search_properties("other", "min", {}) is False
    assert searcher.client is client and searcher.metric == METRICS


def test_set_search_properties_takes_space_from_config():
    searcher = AxMultiObjectiveSearch(metric=METRICS, mode=MODES, seed=0, method="random_search")
    assert searcher.client is None
    assert searcher.set_search_properties(None, None, {}) is False
    assert searcher.set_search_properties("ignored", "max", dict(SPACE)) is True
    assert searcher.metric == METRICS
    assert_in_space(searcher.suggest("t1"))


def test_set_search_properties_takes_metric_from_tune_config():
    searcher = AxMultiObjectiveSearch(SPACE, seed=0, method="random_search")
    assert searcher.client is None
    assert searcher.set_search_properties("acc", "max", {}) is True
    assert searcher.metric == ["acc"] and searcher.mode == ["max"]


def test_set_search_properties_refuses_a_second_space():
    searcher = AxMultiObjectiveSearch(SPACE, seed=0, method="random_search")
    assert searcher.set_search_properties("acc", "max", {"x": tune.uniform(0, 1)}) is False


def test_set_search_properties_without_any_metric_returns_false():
    searcher = AxMultiObjectiveSearch(method="random_search")
    assert searcher.set_search_properties(None, None, dict(SPACE)) is False


def test_threshold_on_non_objective_raises_at_set_search_properties():
    searcher = AxMultiObjectiveSearch(metric="acc", mode="max", objective_thresholds={"loss": 1.0})
    with pytest.raises(ValueError, match="thresholds.loss: not an objective"):
        searcher.set_search_properties(None, None, dict(SPACE))


# ----------------------------------------------------------------- suggest
def test_suggestions_are_in_space_with_python_types():
    searcher = make_searcher()
    for i in range(8):
        config = searcher.suggest(f"t{i}")
        assert_in_space(config)
        searcher.on_trial_complete(f"t{i}", result())


def test_same_seed_gives_same_suggestions_and_another_seed_others():
    def stream(seed):
        searcher = make_searcher(seed=seed)
        configs = []
        for i in range(4):
            configs.append(searcher.suggest(f"t{i}"))
            searcher.on_trial_complete(f"t{i}", result())
        return configs

    assert stream(0) == stream(0)
    assert stream(0)[1:] != stream(1)[1:]  # the first point is the centre of the space for any seed


def test_max_concurrent_blocks_then_resumes_after_completion():
    searcher = make_searcher(max_concurrent=2)
    assert searcher.suggest("t1") is not None
    assert searcher.suggest("t2") is not None
    assert searcher.suggest("t3") is None
    assert searcher.suggest("t3") is None
    searcher.on_trial_complete("t1", result())
    assert searcher.suggest("t3") is not None
    assert searcher.suggest("t4") is None
    assert len(searcher.client._experiment.trials) == 3


def test_several_generated_trials_are_queued_and_handed_out_in_order():
    searcher = make_searcher(max_concurrent=3)
    searcher.suggest("t1")
    assert len(searcher.client._experiment.trials) == 3  # one Ax call for the free slots
    assert ready_indices(searcher) == [1, 2]
    queued = [searcher.client._experiment.trials[i].arm.parameters for i in (1, 2)]
    assert [item[1] for item in searcher._ready] == queued  # kept beside the index
    searcher.suggest("t2")
    searcher.suggest("t3")
    assert searcher._live == {"t1": 0, "t2": 1, "t3": 2}
    assert len(searcher.client._experiment.trials) == 3


def test_pending_trials_are_running_in_ax():
    searcher = make_searcher(max_concurrent=2)
    searcher.suggest("t1")
    searcher.suggest("t2")
    summary = searcher.client.summarize()
    assert list(summary["trial_status"]) == ["RUNNING", "RUNNING"]
    searcher.on_trial_complete("t2", result())
    assert statuses(searcher) == {0: "RUNNING", 1: "COMPLETED"}


def test_points_to_evaluate_come_first_exactly():
    points = [
        {"lr": 0.05, "width": 48, "model": {"depth": 3, "act": "gelu"}},
        {"lr": 1e-4, "width": 16, "model": {"depth": 1, "act": "relu"}, "epochs": 3},
    ]
    searcher = make_searcher(points_to_evaluate=points)
    first, second = searcher.suggest("t1"), searcher.suggest("t2")
    assert first == {**points[0], "epochs": 3}
    assert second == points[1]
    assert_in_space(searcher.suggest("t3"))
    assert searcher._live == {"t1": 0, "t2": 1, "t3": 2}


def test_points_to_evaluate_outside_the_space_raise():
    with pytest.raises(ValueError, match="'model/act'"):
        make_searcher(points_to_evaluate=[{"lr": 0.05, "width": 48, "model": {"depth": 3, "act": "tanh"}}])
    with pytest.raises(ValueError, match="lacks search-space parameter 'width'"):
        make_searcher(points_to_evaluate=[{"lr": 0.05, "model": {"depth": 3, "act": "relu"}}])


def test_generation_continues_past_the_initialization_budget():
    searcher = make_searcher(initialization_budget=2)
    for i in range(4):
        assert searcher.suggest(f"t{i}") is not None
        searcher.on_trial_complete(f"t{i}", result())


# ----------------------------------------------------------------- completion and failures
def test_error_marks_failed_with_a_warning(caplog):
    searcher = make_searcher()
    searcher.suggest("trial_a")
    with caplog.at_level(logging.WARNING, logger="searchers.ax_multi_objective"):
        searcher.on_trial_complete("trial_a", error=True)
    assert trial_status(searcher, 0) == "FAILED"
    assert "trial_a" in caplog.text
    assert searcher._live == {}


@pytest.mark.parametrize(
    "final, bad_metric",
    [
        ({"acc": math.nan, "latency": 1.0}, "acc"),
        ({"acc": 0.9, "latency": math.inf}, "latency"),
        ({"acc": 0.9}, "latency"),
        ({"acc": "high", "latency": 1.0}, "acc"),
        ({"acc": True, "latency": 1.0}, "acc"),
        ({"acc": None, "latency": 1.0}, "acc"),
    ],
    ids=["nan", "inf", "missing", "string", "bool", "none"],
)
def test_non_finite_or_missing_objective_marks_failed(caplog, final, bad_metric):
    searcher = make_searcher()
    searcher.suggest("trial_b")
    with caplog.at_level(logging.WARNING, logger="searchers.ax_multi_objective"):
        searcher.on_trial_complete("trial_b", final)
    assert trial_status(searcher, 0) == "FAILED"
    assert "trial_b" in caplog.text and bad_metric in caplog.text


def test_result_none_marks_abandoned():
    searcher = make_searcher()
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", None)
    assert trial_status(searcher, 0) == "ABANDONED"


def test_complete_attaches_objectives_and_constraint_metrics():
    searcher = make_searcher(outcome_constraints=["params <= 1000"])
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", result(acc=0.8, latency=3.0, params=500, ignored=7.0))
    assert trial_status(searcher, 0) == "COMPLETED"
    values = data_frame(searcher).set_index("metric_name")["mean"].to_dict()
    assert values == {"acc": 0.8, "latency": 3.0, "params": 500.0}


def test_unknown_trial_ids_are_ignored():
    searcher = make_searcher()
    searcher.on_trial_result("ghost", result(training_iteration=1))
    searcher.on_trial_complete("ghost", result())
    assert len(searcher.client._experiment.trials) == 0


def test_completing_twice_is_ignored():
    searcher = make_searcher()
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", result())
    searcher.on_trial_complete("t1", error=True)
    assert trial_status(searcher, 0) == "COMPLETED"


# ----------------------------------------------------------------- progressions and early stopping
def test_intermediate_results_are_attached_with_progression():
    searcher = make_searcher()
    searcher.suggest("t1")
    for step in (1, 2):
        searcher.on_trial_result("t1", result(acc=0.1 * step, training_iteration=step))
    searcher.on_trial_result("t1", result(acc=math.nan, training_iteration=3))  # only latency kept
    searcher.on_trial_result("t1", {"acc": 0.9})  # no progression: not attached
    frame = data_frame(searcher)
    rows = {(r.metric_name, r.step): r.mean for r in frame.itertuples()}
    assert rows == {("acc", 1.0): 0.1, ("latency", 1.0): 2.0, ("acc", 2.0): 0.2,
                    ("latency", 2.0): 2.0, ("latency", 3.0): 2.0}
    assert trial_status(searcher, 0) == "RUNNING"


def test_custom_progression_attribute():
    searcher = make_searcher(progression_attr="epoch")
    searcher.suggest("t1")
    searcher.on_trial_result("t1", result(epoch=4, training_iteration=1))
    assert set(data_frame(searcher)["step"]) == {4.0}


def report(searcher, trial_id, steps):
    for step in steps:
        searcher.on_trial_result(trial_id, result(acc=0.1 * step, training_iteration=step))


def test_trial_stopped_before_max_progression_is_early_stopped():
    searcher = make_searcher(max_progression=10)
    searcher.suggest("t1")
    report(searcher, "t1", [1, 2])
    searcher.on_trial_complete("t1", result(acc=0.3, training_iteration=3))
    assert trial_status(searcher, 0) == "EARLY_STOPPED"
    frame = data_frame(searcher)
    assert frame.loc[(frame.metric_name == "acc") & (frame.step == 3), "mean"].tolist() == [0.3]


def test_unseen_final_result_at_max_progression_completes():
    searcher = make_searcher(max_progression=3)
    searcher.suggest("t1")
    report(searcher, "t1", [1, 2])
    searcher.on_trial_complete("t1", result(acc=0.3, training_iteration=3))
    assert trial_status(searcher, 0) == "COMPLETED"
    assert 3.0 in set(data_frame(searcher)["step"])


def test_final_result_already_seen_completes():
    searcher = make_searcher(max_progression=10)
    searcher.suggest("t1")
    report(searcher, "t1", [1, 2, 3])
    searcher.on_trial_complete("t1", result(acc=0.3, training_iteration=3))
    assert trial_status(searcher, 0) == "COMPLETED"


def test_unseen_final_result_without_max_progression_is_early_stopped():
    searcher = make_searcher()
    searcher.suggest("t1")
    report(searcher, "t1", [1])
    searcher.on_trial_complete("t1", result(training_iteration=2))
    assert trial_status(searcher, 0) == "EARLY_STOPPED"


def test_final_result_without_progression_completes():
    searcher = make_searcher(max_progression=10)
    searcher.suggest("t1")
    searcher.on_trial_complete("t1", result())
    assert trial_status(searcher, 0) == "COMPLETED"


# ----------------------------------------------------------------- warm start
def warm_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "lr": [0.01, 0.001, 0.02],
        "width": [32, 64, 16],
        "model/depth": [2, 3, 1],
        "model/act": ["relu", "gelu", "relu"],
        "epochs": [3, 3, 3],  # a constant: allowed, not needed
        "acc": [0.7, float("nan"), 0.9],
        "latency": [1.5, 2.0, 3.0],
        "trial_id": ["a", "b", "c"],
    })


def test_warm_start_from_dataframe_attaches_complete_rows():
    searcher = make_searcher(warm_start=warm_frame())
    trials = searcher.client._experiment.trials
    assert statuses(searcher) == {0: "COMPLETED", 1: "COMPLETED"}
    assert trials[0].arm.parameters == {"lr": 0.01, "width": 32, "model/depth": 2, "model/act": "relu"}
    assert trials[1].arm.parameters["lr"] == 0.02
    assert all(type(v) in (int, str) for k, v in trials[0].arm.parameters.items() if k != "lr")
    values = data_frame(searcher).groupby(["trial_index", "metric_name"])["mean"].first().to_dict()
    assert values == {(0, "acc"): 0.7, (0, "latency"): 1.5, (1, "acc"): 0.9, (1, "latency"): 3.0}
    config = searcher.suggest("t_new")
    assert_in_space(config)
    assert searcher._live == {"t_new": 2}


def test_warm_start_without_constant_columns():
    searcher = make_searcher(warm_start=warm_frame().drop(columns=["epochs", "trial_id"]))
    assert statuses(searcher) == {0: "COMPLETED", 1: "COMPLETED"}


@pytest.mark.parametrize("not_a_frame", ["results.csv", [{"lr": 0.01}]], ids=["path", "records"])
def test_warm_start_takes_only_a_dataframe(not_a_frame):
    with pytest.raises(TypeError, match=r"warm_start: got (str|list); pass a pandas.DataFrame"):
        make_searcher(warm_start=not_a_frame)


def test_warm_start_carries_constraint_metrics():
    frame = warm_frame().assign(params=[10.0, 20.0, float("nan")])
    searcher = make_searcher(warm_start=frame, outcome_constraints=["params <= 15"])
    frame = data_frame(searcher)
    assert set(frame.loc[frame.trial_index == 0, "metric_name"]) == {"acc", "latency", "params"}
    assert set(frame.loc[frame.trial_index == 1, "metric_name"]) == {"acc", "latency"}


def test_warm_start_missing_columns_raise_naming_them():
    frame = warm_frame().drop(columns=["model/depth", "latency"])
    missing = r"warm_start: got a DataFrame without column\(s\) \['model/depth', 'latency'\]"
    with pytest.raises(ValueError, match=missing):
        make_searcher(warm_start=frame)


def test_warm_start_orchestrator_column_format_is_not_read():
    parameters = ("lr", "width", "model/depth", "model/act")
    frame = warm_frame().rename(columns={name: f"config/{name}" for name in parameters})
    with pytest.raises(ValueError, match=r"without column\(s\) \['lr', 'width', 'model/depth', 'model/act'\]"):
        make_searcher(warm_start=frame)


def test_warm_start_empty_parameter_value_raises():
    frame = warm_frame()
    frame.loc[2, "width"] = float("nan")
    with pytest.raises(ValueError, match=r"warm_start: got row 2 without a value for \['width'\]"):
        make_searcher(warm_start=frame)


def test_warm_start_value_outside_space_raises():
    frame = warm_frame()
    frame.loc[0, "model/act"] = "tanh"
    with pytest.raises(ValueError, match="'model/act'"):
        make_searcher(warm_start=frame)


def test_warm_start_waits_for_the_metric_from_set_search_properties():
    searcher = AxMultiObjectiveSearch(SPACE, seed=0, method="random_search", warm_start=warm_frame())
    searcher.set_search_properties(METRICS, MODES, {})
    assert len(searcher.client._experiment.trials) == 2


# ----------------------------------------------------------------- add_evaluated_point
def test_add_evaluated_point_variants():
    searcher = make_searcher()
    point = {"lr": 0.01, "width": 32, "model": {"depth": 2, "act": "relu"}}
    searcher.add_evaluated_point(point, {"acc": 0.5, "latency": 1.0})
    searcher.add_evaluated_point(point, {"acc": 0.5, "latency": 1.0}, error=True)
    searcher.add_evaluated_point(point, {"acc": 0.4, "latency": 1.0}, pruned=True)
    assert statuses(searcher) == {0: "COMPLETED", 1: "FAILED", 2: "EARLY_STOPPED"}
    with pytest.raises(ValueError, match="must map each objective"):
        searcher.add_evaluated_point(point, 0.5)


def test_add_evaluated_point_single_objective_scalar():
    searcher = make_searcher(metric="acc", mode="max")
    searcher.add_evaluated_point({"lr": 0.01, "width": 32, "model": {"depth": 2, "act": "relu"}}, 0.75)
    assert data_frame(searcher)[["metric_name", "mean"]].values.tolist() == [["acc", 0.75]]


# ----------------------------------------------------------------- persistence
def run_some(searcher, count, start=0):
    configs = []
    for i in range(start, start + count):
        configs.append(searcher.suggest(f"t{i}"))
        searcher.on_trial_complete(f"t{i}", result(acc=0.1 * i))
    return configs


def test_save_restore_continues_without_repeating_and_keeps_live_trials(tmp_path):
    searcher = make_searcher(max_concurrent=3)
    before = run_some(searcher, 4)
    live_config = searcher.suggest("live")  # generated with 2 queued for later
    before.append(live_config)
    queued = list(searcher._ready)
    assert queued
    path = tmp_path / "searcher.json"
    searcher.save(str(path))
    assert json.loads(path.read_text())["live"] == {"live": 4}

    restored = make_searcher(max_concurrent=3)
    fresh = [restored.suggest(f"f{i}") for i in range(1)]
    assert fresh[0] == before[0]  # a searcher that forgets would repeat the same stream
    restored = make_searcher(max_concurrent=3)
    restored.restore(str(path))
    assert restored._live == {"live": 4} and list(restored._ready) == queued
    after = run_some(restored, 6, start=10)
    assert not {flat_params(c) for c in after} & {flat_params(c) for c in before}
    restored.on_trial_complete("live", result(acc=0.99))
    assert trial_status(restored, 4) == "COMPLETED"
    assert restored.client._experiment.trials[4].arm.parameters["lr"] == live_config["lr"]


def test_restore_into_searcher_configured_by_tune(tmp_path):
    searcher = make_searcher()
    run_some(searcher, 2)
    searcher.save(str(tmp_path / "s.json"))
    # Tune calls set_search_properties on the unpickled searcher before restore
    restored = AxMultiObjectiveSearch(metric=METRICS, mode=MODES, seed=0, method="random_search")
    restored.set_search_properties(None, None, dict(SPACE))
    restored.restore(str(tmp_path / "s.json"))
    assert len(restored.client._experiment.trials) == 2
    assert_in_space(restored.suggest("t9"))
    assert restored._live == {"t9": 2}


def test_save_to_dir_round_trip_as_tune_does(tmp_path):
    searcher = make_searcher(max_concurrent=2)
    run_some(searcher, 2)
    searcher.suggest("live")
    searcher.save_to_dir(str(tmp_path), session_str="s")
    assert [p.name for p in tmp_path.iterdir()] == ["searcher-state-s.pkl"]
    restored = make_searcher(max_concurrent=2)
    restored.restore_from_dir(str(tmp_path))
    assert restored._live == {"live": 2}
    assert statuses(restored) == {0: "COMPLETED", 1: "COMPLETED", 2: "RUNNING", 3: "RUNNING"}
    assert ready_indices(restored) == [3]


def test_restore_rejects_another_version(tmp_path):
    searcher = make_searcher()
    path = tmp_path / "s.json"
    searcher.save(str(path))
    state = json.loads(path.read_text())
    state["version"] = 999
    path.write_text(json.dumps(state))
    with pytest.raises(ValueError, match=r"checkpoint version: got 999; this searcher reads versions \[2, 3, 4\]"):
        make_searcher().restore(str(path))


def test_generated_but_unused_trials_keep_their_parameters_through_save_and_restore(tmp_path):
    searcher = make_searcher(max_concurrent=3)
    searcher.suggest("t0")  # one Ax call generates three trials; two wait in the ready queue
    twin = cloudpickle.loads(cloudpickle.dumps(searcher))
    expected = [twin.suggest("t1"), twin.suggest("t2")]
    path = tmp_path / "searcher.json"
    searcher.save(str(path))
    saved = json.loads(path.read_text())["ready"]
    assert [item[0] for item in saved] == [1, 2]
    assert [item[1] for item in saved] == [
        searcher.client._experiment.trials[i].arm.parameters for i in (1, 2)
    ]

    restored = make_searcher(max_concurrent=3)
    restored.restore(str(path))
    assert [restored.suggest("t1"), restored.suggest("t2")] == expected
    assert restored._live == {"t0": 0, "t1": 1, "t2": 2}
    assert len(restored.client._experiment.trials) == 3  # handed out, not generated again


def test_queued_points_to_evaluate_survive_pickling():
    point = {"lr": 0.05, "width": 48, "model": {"depth": 3, "act": "gelu"}}
    clone = cloudpickle.loads(cloudpickle.dumps(make_searcher(points_to_evaluate=[point])))
    assert clone.suggest("t1") == {**point, "epochs": 3}


def test_cloudpickle_round_trip_keeps_state():
    searcher = make_searcher(max_concurrent=2)
    run_some(searcher, 2)
    live = searcher.suggest("live")
    clone = cloudpickle.loads(cloudpickle.dumps(searcher))
    assert clone.client is not searcher.client
    assert clone._live == {"live": 2}
    assert statuses(clone) == statuses(searcher)
    clone.on_trial_complete("live", result())
    assert trial_status(clone, 2) == "COMPLETED"
    assert trial_status(searcher, 2) == "RUNNING"  # the original is untouched
    following = clone.suggest("next")
    assert_in_space(following)
    assert flat_params(following) != flat_params(live)


def test_cloudpickle_before_configuration():
    searcher = AxMultiObjectiveSearch(metric=METRICS, mode=MODES, method="random_search")
    clone = cloudpickle.loads(cloudpickle.dumps(searcher))
    assert clone.client is None
    assert clone.set_search_properties(None, None, dict(SPACE)) is True
    assert_in_space(clone.suggest("t1"))


# ----------------------------------------------------------------- the model phase
@pytest.mark.slow
def test_model_takes_over_after_initialisation():
    searcher = AxMultiObjectiveSearch(
        {"x": tune.uniform(0, 1), "y": tune.uniform(0, 1)}, metric=["f1", "f2"], mode=["max", "min"],
        seed=0, initialization_budget=6, objective_thresholds={"f2": 2.0},
    )
    for i in range(6):
        config = searcher.suggest(f"t{i}")
        searcher.on_trial_complete(f"t{i}", {"f1": config["x"] + config["y"], "f2": (config["x"] - 0.3) ** 2 + config["y"]})
    config = searcher.suggest("t6")
    assert 0 <= config["x"] <= 1 and 0 <= config["y"] <= 1
    nodes = searcher.client.summarize()["generation_node"].tolist()
    assert nodes[-1] == "MBM"
    assert "MBM" not in nodes[:-1]
