"""Tests for benchmarks.blackboxes.yahpo on the shared YAHPO Gym surrogates."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

pytest.importorskip("yahpo_gym", reason="needs the 'bench' extra: pip install yahpo-gym onnxruntime")
pytest.importorskip("onnxruntime", reason="needs the 'bench' extra: pip install yahpo-gym onnxruntime")

from benchmarks.blackboxes import YahpoBlackbox, make_blackbox  # noqa: E402
from benchmarks.blackboxes.yahpo import _benchmark_set, _yahpo_dir, available_instances  # noqa: E402
from tests.benchmark_data import DATA_DIR, YAHPO_DIR, YAHPO_SCENARIOS, needs_yahpo  # noqa: E402

pytestmark = needs_yahpo

# scenario -> (fidelity kind, default objective and mode, cost target)
SCENARIOS = {
    "lcbench": ("epoch", {"val_accuracy": "max"}),
    "rbv2_xgboost": ("fraction", {"acc": "max"}),
    "rbv2_rpart": ("fraction", {"acc": "max"}),
    "iaml_glmnet": ("fraction", {"mmce": "min"}),
}
SCENARIOS = {name: spec for name, spec in SCENARIOS.items() if name in YAHPO_SCENARIOS}
each_scenario = pytest.mark.parametrize("scenario", sorted(SCENARIOS))


def _instance(scenario: str) -> str:
    dev = YAHPO_DIR / "DEV_INSTANCES.json"
    if dev.is_file():
        return json.loads(dev.read_text())[scenario][0]
    return available_instances(DATA_DIR, scenario)[0]


def _config(box: YahpoBlackbox, seed: int = 0) -> dict:
    # Tune domains sample from numpy's global generator; fix it so the configs are reproducible.
    np.random.seed(seed)
    return {name: domain.sample() for name, domain in box.search_space().items()}


@each_scenario
def test_evaluate_returns_finite_objectives_and_cost(data_dir, scenario):
    kind, objectives = SCENARIOS[scenario]
    box = make_blackbox(f"yahpo:{scenario}", data_dir, _instance(scenario))
    assert isinstance(box, YahpoBlackbox) and box.name == f"yahpo:{scenario}"
    assert box.objectives == objectives and box.fidelity.kind == kind
    result = box.evaluate(_config(box))
    assert set(result) == {*objectives, "cost"}
    assert all(math.isfinite(v) for v in result.values()) and result["cost"] >= 0


@each_scenario
def test_fidelity_changes_the_cost(data_dir, scenario):
    box = YahpoBlackbox(data_dir, scenario, _instance(scenario))
    config = _config(box, seed=1)
    low, high = box.evaluate(config, box.fidelity.min), box.evaluate(config, box.fidelity.max)
    assert low["cost"] != high["cost"]
    assert box.evaluate(config) == high
    steps = box.fidelity.steps
    assert steps[0] >= box.fidelity.min and steps[-1] == box.fidelity.max
    with pytest.raises(ValueError, match="fidelity="):
        box.evaluate(config, box.fidelity.max * 2)


def test_lcbench_cost_is_cumulative_training_time(data_dir):
    if "lcbench" not in SCENARIOS:
        pytest.skip("lcbench absent")
    box = YahpoBlackbox(data_dir, "lcbench", _instance("lcbench"))
    config = _config(box, seed=2)
    costs = [box.evaluate(config, epoch)["cost"] for epoch in (1, 10, 52)]
    assert costs == sorted(costs) and costs[0] < costs[-1]
    assert box.fidelity.steps == [float(t) for t in range(1, 53)]
    with pytest.raises(ValueError, match="whole number"):
        box.evaluate(config, 2.5)


@each_scenario
def test_search_space_covers_every_hyperparameter(data_dir, scenario):
    box = YahpoBlackbox(data_dir, scenario, _instance(scenario))
    bench = _benchmark_set(_yahpo_dir(data_dir), scenario)
    excluded = {bench.config.instance_names, *bench.config.fidelity_params}
    space_params = {hp.name: hp for hp in bench.config_space.get_hyperparameters() if hp.name not in excluded}
    space = box.search_space()
    assert set(space) == set(space_params)
    for name, domain in space.items():
        hp = space_params[name]
        sampler = type(domain.get_sampler()).__name__
        if hasattr(hp, "choices"):
            assert domain.categories == list(hp.choices)
        else:
            upper = hp.upper + 1 if "Integer" in type(hp).__name__ else hp.upper
            assert (domain.lower, domain.upper) == (hp.lower, upper)
            assert ("LogUniform" in sampler) == bool(hp.log), name
    features = box.features_of(_config(box))
    assert features.shape == (len(space),) and features.min() >= 0 and features.max() <= 1


@each_scenario
def test_features_of_maps_bounds_and_defaults(data_dir, scenario):
    box = YahpoBlackbox(data_dir, scenario, _instance(scenario))
    bench = _benchmark_set(_yahpo_dir(data_dir), scenario)
    params = [bench.config_space.get_hyperparameter(name) for name in box.search_space()]
    lowest = {hp.name: hp.choices[0] if hasattr(hp, "choices") else hp.lower for hp in params}
    highest = {hp.name: hp.choices[-1] if hasattr(hp, "choices") else hp.upper for hp in params}
    np.testing.assert_allclose(box.features_of(lowest), 0.0, atol=1e-9)
    np.testing.assert_allclose(box.features_of(highest), [1.0 if len(getattr(hp, "choices", "ab")) > 1 else 0.0
                                                          for hp in params], atol=1e-9)
    defaults = {hp.name: hp.default_value for hp in params}
    np.testing.assert_array_equal(box.features_of({}), box.features_of(defaults))


def test_inactive_hyperparameters_are_dropped_before_querying(data_dir):
    if "rbv2_xgboost" not in SCENARIOS:
        pytest.skip("rbv2_xgboost absent")
    box = YahpoBlackbox(data_dir, "rbv2_xgboost", _instance("rbv2_xgboost"))
    config = dict(_config(box, seed=3), booster="gblinear")
    only_active = {k: v for k, v in config.items() if k not in
                   ("eta", "gamma", "max_depth", "min_child_weight", "colsample_bylevel", "colsample_bytree",
                    "rate_drop", "skip_drop")}
    assert box.evaluate(config) == box.evaluate(only_active)
    tree = dict(config, booster="gbtree")
    assert box.evaluate(tree) != box.evaluate(dict(tree, eta=tree["eta"] / 10))


@each_scenario
def test_several_objectives_by_name_and_batch_evaluation(data_dir, scenario):
    bench = _benchmark_set(_yahpo_dir(data_dir), scenario)
    targets = [t for t in bench.config.y_names if t != bench.config.runtime_name][:2]
    box = YahpoBlackbox(data_dir, scenario, _instance(scenario), ",".join(targets))
    assert list(box.objectives) == targets
    configs = [_config(box, seed) for seed in range(3)]
    assert box.evaluate_many(configs, box.fidelity.min) == [box.evaluate(c, box.fidelity.min) for c in configs]
    bounds = box.objective_bounds()
    assert set(bounds) == set(targets) and all(low < high for low, high in bounds.values())


def test_explicit_modes_and_target_modes(data_dir):
    scenario = sorted(SCENARIOS)[0]
    box = YahpoBlackbox(data_dir, scenario, _instance(scenario), {"val_accuracy": "max", "time": "min"}
                        if scenario == "lcbench" else {"timepredict": "min"})
    assert all(mode in ("max", "min") for mode in box.objectives.values())
    if "rbv2_rpart" in SCENARIOS:
        modes = YahpoBlackbox(data_dir, "rbv2_rpart", _instance("rbv2_rpart"), "acc,timepredict,logloss").objectives
        assert modes == {"acc": "max", "timepredict": "min", "logloss": "min"}


@each_scenario
def test_surrogates_have_no_pool(data_dir, scenario):
    box = YahpoBlackbox(data_dir, scenario, _instance(scenario))
    assert box.candidates() is None and box.candidate_features() is None
    assert box.known_pareto_indices() is None and box.learning_curve(0) is None
    assert box.full_fidelity() == box.fidelity.max
    with pytest.raises(ValueError, match="no candidate pool"):
        box.evaluate_candidate(0)


def test_available_instances_and_bad_arguments(data_dir):
    scenario = sorted(SCENARIOS)[0]
    instances = available_instances(data_dir, scenario)
    assert _instance(scenario) in instances and available_instances(data_dir / "yahpo", scenario) == instances
    with pytest.raises(ValueError, match="instance='no-such-dataset' is not in scenario"):
        YahpoBlackbox(data_dir, scenario, "no-such-dataset")
    with pytest.raises(ValueError, match="scenario='nb301' has no folder"):
        YahpoBlackbox(data_dir, "nb301", "CIFAR10")
    with pytest.raises(ValueError, match="objective 'accuracy' is not available"):
        YahpoBlackbox(data_dir, scenario, _instance(scenario), "accuracy")
