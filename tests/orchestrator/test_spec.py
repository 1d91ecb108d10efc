"""Tests for orchestrator/spec.py (and the modules it is split into: search_space, spec_components)."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest
import yaml

from orchestrator.spec import (
    Budget,
    Constraint,
    Experiment,
    Objective,
    Resources,
    SchedulerSpec,
    SpecError,
    load_experiment,
    save_experiment,
)
from orchestrator.search_space import parameter_to_dict

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
TRAINABLE = f"{__name__}:toy_trainable"
NOT_CALLABLE = 42


def toy_trainable(config: dict[str, Any]) -> None:
    """A stand-in trainable; the spec only imports it."""


@pytest.fixture(autouse=True)
def method_registry(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The real catalogue (importing it loads no Ray) with one more method, ``custom``."""
    from orchestrator import methods

    monkeypatch.setattr(methods, "_REGISTRY", dict(methods._REGISTRY))
    methods.register_method(methods.Method("custom", "a method for the tests", lambda problem, **options: None))
    return methods


def base_spec(**overrides: Any) -> dict[str, Any]:
    spec = {
        "name": "toy",
        "trainable": TRAINABLE,
        "search_space": {
            "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-1},
            "width": {"type": "randint", "low": 16, "high": 257},
            "epochs": 3,
        },
        "objectives": [{"name": "val_accuracy", "mode": "max"}, {"name": "latency_us", "mode": "min"}],
    }
    spec.update(overrides)
    return spec


def spec_error(**overrides: Any) -> str:
    with pytest.raises(SpecError) as info:
        Experiment.from_dict(base_spec(**overrides))
    return str(info.value)


def assert_mentions(message: str, *fragments: str) -> None:
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# --------------------------------------------------------------------------- valid specs
def test_valid_spec_fills_defaults() -> None:
    experiment = Experiment.from_dict(base_spec())
    assert experiment.metric_names == ["val_accuracy", "latency_us"]
    assert list(experiment.objective_set.modes) == ["max", "min"]
    assert experiment.objectives == [Objective("val_accuracy", "max"), Objective("latency_us", "min")]
    assert experiment.budget == Budget(num_trials=20, max_concurrent=2)
    assert experiment.resources == Resources(cpu=1, gpu=0)
    assert (experiment.method, experiment.scheduler, experiment.seed) == ("ax-mobo", None, 0)
    assert experiment.resolve_trainable() is toy_trainable


def test_to_dict_round_trips_through_from_dict() -> None:
    spec = base_spec(
        thresholds={"val_accuracy": 0.9},
        constraints=["num_params <= 100000"],
        method="tpe",
        method_options={"n_startup": 4},
        scheduler={"type": "asha", "max_t": 8, "grace_period": 2},
        budget={"num_trials": 5, "max_concurrent": 1, "time_budget_s": 60},
        resources={"cpu": 2, "gpu": 0.5},
        storage_path="out",
        seed=None,
        config={"data": "digits"},
    )
    experiment = Experiment.from_dict(spec)
    assert Experiment.from_dict(experiment.to_dict()) == experiment
    assert yaml.safe_load(yaml.safe_dump(experiment.to_dict())) == experiment.to_dict()


def test_objective_mode_is_case_insensitive() -> None:
    assert Objective(" val_accuracy ", "MAX") == Objective("val_accuracy", "max")


def test_callable_trainable_is_accepted_and_written_as_its_import_path() -> None:
    experiment = Experiment.from_dict(base_spec(trainable=toy_trainable))
    assert experiment.resolve_trainable() is toy_trainable
    assert experiment.to_dict()["trainable"] == TRAINABLE


def test_lambda_trainable_stays_a_callable_in_to_dict() -> None:
    trainable = lambda config: None  # noqa: E731
    experiment = Experiment.from_dict(base_spec(trainable=trainable))
    assert experiment.to_dict()["trainable"] is trainable


def test_method_is_checked_against_the_registry(
    method_registry: types.ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Experiment.from_dict(base_spec(method="custom")).method == "custom"
    monkeypatch.setattr(method_registry, "_REGISTRY", {"random": method_registry.get_method("random")})
    assert_mentions(spec_error(method="custom"), "method", "'custom'", "random")


def test_every_method_of_the_registry_is_accepted(method_registry: types.ModuleType) -> None:
    assert "ax-mobo" in method_registry.method_names()
    for method in method_registry.method_names():
        scheduler = {"max_t": 8} if method_registry.get_method(method).scheduler else None
        options = {"candidates": [{"width": 16}, {"width": 32}]} if method == "pool-mobo" else {}
        experiment = Experiment.from_dict(base_spec(method=method, scheduler=scheduler, method_options=options))
        assert experiment.method == method
    assert_mentions(spec_error(method="ax_mobo"), "did you mean 'ax-mobo'")


def test_spec_validation_imports_neither_ray_nor_the_searchers() -> None:
    import subprocess

    code = (
        "import sys\n"
        "from orchestrator.spec import Experiment, SpecError, load_experiment\n"
        "experiment = load_experiment('examples/digits.yaml')\n"
        "data = experiment.to_dict()\n"
        "bad = [{'seed': -1}, {'resources': {'cpu': 0}}, {'search_space': {'epochs': 3}},\n"
        "       {'method': 'pool-mobo'}, {'search_space': {'x': {'type': 'grid', 'values': [1]}}},\n"
        "       {'trainable': 'orchestrator.spec:save_experiment'}]\n"
        "for overrides in bad:\n"
        "    try:\n"
        "        Experiment.from_dict({**data, **overrides})\n"
        "    except SpecError:\n"
        "        pass\n"
        "    else:\n"
        "        raise AssertionError(overrides)\n"
        "assert not {'ray', 'ax', 'botorch', 'searchers'} & set(sys.modules), sorted(sys.modules)\n"
    )
    root = Path(__file__).resolve().parents[2]
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True, capture_output=True)


def test_storage_dir_resolves_against_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    experiment = Experiment.from_dict(base_spec(storage_path="runs/here"))
    assert experiment.storage_path == "runs/here"
    assert experiment.storage_dir == tmp_path.resolve() / "runs" / "here"


def test_search_space_mappings_are_normalised() -> None:
    space = {
        "lr": {"type": "LogUniform", "low": "1e-4", "high": 0.1},  # YAML 1.1 reads 1e-4 as text
        "layers": (1, 2),
        "act": "relu",
        "use_bias": True,
        "steps": {"type": "qrandint", "low": 8.0, "high": 64, "q": 8},
    }
    experiment = Experiment.from_dict(base_spec(search_space=space))
    assert experiment.search_space == {
        "lr": {"type": "loguniform", "low": 1e-4, "high": 0.1},
        "layers": [1, 2],
        "act": "relu",
        "use_bias": True,
        "steps": {"type": "qrandint", "low": 8, "high": 64, "q": 8},
    }


def test_integral_float_budget_becomes_int() -> None:
    assert Budget(num_trials=20.0).num_trials == 20


def test_trial_timeout_is_optional_and_read_from_yaml_text() -> None:
    assert Budget().trial_timeout_s is None
    # PyYAML reads `1e3` (no dot) as a string; the budget takes it as the number it means.
    assert Experiment.from_dict(base_spec(budget={"trial_timeout_s": "1e3"})).budget.trial_timeout_s == 1000.0


# --------------------------------------------------------------------------- objectives
def test_scheduler_objective_thresholds_reach_the_multi_objective_scheduler() -> None:
    names = Experiment.from_dict(base_spec()).metric_names
    experiment = Experiment.from_dict(base_spec(scheduler={
        "type": "mo-asha", "max_t": 8, "objective_thresholds": {names[-1]: 5.0}}))
    assert experiment.scheduler_config().build().objectives.thresholds == {names[-1]: 5.0}
    error = spec_error(scheduler={"type": "mo-asha", "max_t": 8, "objective_thresholds": {"nope": 1.0}})
    assert_mentions(error, "scheduler.objective_thresholds", "nope")


@pytest.mark.parametrize(
    ("objectives", "fragments"),
    [
        (
            [{"name": "a", "mode": "max"}, {"name": "b", "mode": "maximize"}],
            ["objectives[1].mode", "'maximize'", "'max'", "'min'"],
        ),
        ([{"name": "a", "mode": "max"}, {"name": "a", "mode": "min"}], ["objectives[1].name", "duplicate", "'a'"]),
        ([], ["objectives", "at least one"]),
        ("val_accuracy", ["objectives", "use a list"]),
        ({"name": "a", "mode": "max"}, ["objectives", "use a list"]),
        ([{"name": "a"}], ["objectives[0]", "missing", "mode"]),
        ([{"name": "a", "modes": "max"}], ["objectives[0].modes", "did you mean 'mode'"]),
        ([{"name": "", "mode": "max"}], ["objectives[0].name", "non-empty"]),
        (["a"], ["objectives[0]", "'a'", "mapping"]),
    ],
)
def test_invalid_objectives(objectives: Any, fragments: list[str]) -> None:
    assert_mentions(spec_error(objectives=objectives), *fragments)


# --------------------------------------------------------------------------- thresholds, constraints
def test_threshold_direction_follows_the_objective_mode() -> None:
    experiment = Experiment.from_dict(base_spec(thresholds={"val_accuracy": 0.9, "latency_us": "2e3"}))
    assert experiment.thresholds == {"val_accuracy": 0.9, "latency_us": 2000.0}
    assert experiment.threshold_constraints == [
        Constraint("val_accuracy", ">=", 0.9),
        Constraint("latency_us", "<=", 2000.0),
    ]
    assert [str(c) for c in experiment.threshold_constraints] == [
        "val_accuracy >= 0.9",
        "latency_us <= 2000.0",
    ]


def test_threshold_on_a_non_objective_suggests_the_objective_and_constraints() -> None:
    message = spec_error(thresholds={"val_acc": 0.9})
    assert_mentions(message, "thresholds.val_acc", "did you mean 'val_accuracy'", "constraints")


@pytest.mark.parametrize("thresholds", [{"val_accuracy": "high"}, {"val_accuracy": True}, [0.9]])
def test_invalid_threshold_values(thresholds: Any) -> None:
    assert_mentions(spec_error(thresholds=thresholds), "thresholds")


def test_constraints_parse() -> None:
    experiment = Experiment.from_dict(base_spec(constraints=[" num_params<=1e5 ", "val/loss >= -2"]))
    assert experiment.constraints == ["num_params<=1e5", "val/loss >= -2"]
    assert experiment.parsed_constraints == [
        Constraint("num_params", "<=", 1e5),
        Constraint("val/loss", ">=", -2.0),
    ]
    assert experiment.parsed_constraints[0].is_satisfied(1e5)
    assert not experiment.parsed_constraints[0].is_satisfied(1e5 + 1)
    assert experiment.parsed_constraints[1].is_satisfied(-2)
    assert not experiment.parsed_constraints[1].is_satisfied(-2.5)


@pytest.mark.parametrize(
    ("arguments", "fragment"),
    [(("a", "<", 1), "operator"), (("", "<=", 1), "metric"), (("a", ">=", "x"), "bound")],
)
def test_constraint_checks_its_fields(arguments: tuple[Any, ...], fragment: str) -> None:
    with pytest.raises(SpecError, match=fragment):
        Constraint(*arguments)


@pytest.mark.parametrize("text", ["num_params < 5", "num_params == 5", "num_params <= many", "<= 5", "", 5])
def test_unparseable_constraint(text: Any) -> None:
    assert_mentions(spec_error(constraints=["a >= 1", text]), "constraints[1]", "'metric <= number'")


def test_constraint_on_an_objective_points_to_thresholds() -> None:
    assert_mentions(spec_error(constraints=["latency_us <= 10"]), "constraints[0]", "objective", "thresholds")


def test_constraints_must_be_a_list() -> None:
    assert_mentions(spec_error(constraints="num_params <= 5"), "constraints", "list")


# --------------------------------------------------------------------------- search space
@pytest.mark.parametrize(
    ("parameter", "fragments"),
    [
        ({"type": "uniform", "low": 1, "high": 0}, ["search_space.x:", "low=1", "high=0", "swap"]),
        ({"type": "randint", "low": 3, "high": 3}, ["search_space.x:", "exclusive"]),
        ({"type": "loguniform", "low": 0, "high": 1}, ["search_space.x.low", "low > 0", "'uniform'"]),
        ({"type": "qlograndint", "low": -4, "high": 8, "q": 2}, ["search_space.x.low", "'qrandint'"]),
        ({"type": "quniform", "low": 0, "high": 1, "q": 0}, ["search_space.x.q", "> 0"]),
        ({"type": "qrandint", "low": 0, "high": 10, "q": 0}, ["search_space.x.q", ">= 1"]),
        ({"type": "qrandint", "low": 0, "high": 10, "q": 0.5}, ["search_space.x.q", "integer"]),
        ({"type": "choice", "values": []}, ["search_space.x.values", "empty"]),
        ({"type": "choice", "values": "abc"}, ["search_space.x.values", "list"]),
        ({"type": "unifrom", "low": 0, "high": 1}, ["search_space.x.type", "did you mean 'uniform'"]),
        ({"type": "uniform", "low": 0, "hihg": 1}, ["search_space.x.hihg", "did you mean 'high'"]),
        ({"type": "uniform", "low": 0, "high": 1, "q": 0.1}, ["search_space.x.q", "'quniform'"]),
        ({"type": "choice", "values": [1], "low": 0}, ["search_space.x.low", "range type"]),
        ({"type": "uniform", "values": [1]}, ["search_space.x.values", "'choice'"]),
        ({"type": "uniform", "low": 0}, ["search_space.x.high", "missing"]),
        ({"low": 0, "high": 1}, ["search_space.x:", "missing 'type'", "config"]),
        ({"type": "randint", "low": 0.5, "high": 3}, ["search_space.x.low", "integer"]),
        ({"type": "uniform", "low": "zero", "high": 1}, ["search_space.x.low", "'zero'", "number"]),
        ({"type": "loguniform", "low": 1e-3, "high": 1, "base": 1}, ["search_space.x.base", "not 1"]),
        (object(), ["search_space.x:", "unsupported", "object"]),
    ],
)
def test_invalid_search_space_parameter(parameter: Any, fragments: list[str]) -> None:
    assert_mentions(spec_error(search_space={"x": parameter}), *fragments)


@pytest.mark.parametrize("space", [{}, None, ["lr"]])
def test_search_space_must_be_a_non_empty_mapping(space: Any) -> None:
    assert_mentions(spec_error(search_space=space), "search_space")


def test_config_may_not_repeat_a_search_space_name() -> None:
    assert_mentions(spec_error(config={"lr": 0.1}), "config.lr", "search_space")


# --------------------------------------------------------------------------- scheduler
def test_scheduler_defaults_to_the_first_objective() -> None:
    experiment = Experiment.from_dict(base_spec(scheduler={"type": "ASHA", "max_t": 8}))
    assert experiment.scheduler == SchedulerSpec("asha", "val_accuracy", "max", 8, None, None, "training_iteration")
    config = experiment.scheduler_config()
    assert (config.type, config.metric, config.mode, config.max_t) == ("asha", "val_accuracy", "max", 8)
    assert config.options == {"grace_period": 1, "reduction_factor": 3}  # the catalogue's defaults


def test_scheduler_options_override_the_catalogue_defaults_one_by_one() -> None:
    experiment = Experiment.from_dict(base_spec(scheduler={"max_t": 8, "reduction_factor": 2}))
    config = experiment.scheduler_config()
    assert config.type == "mo-asha"  # the default: multi-objective ASHA on every objective
    assert config.options == {"grace_period": 1, "reduction_factor": 2, "objective_thresholds": None}
    assert config.metric == tuple(experiment.metric_names)
    hyperband = Experiment.from_dict(base_spec(method="hyperband", scheduler={"max_t": 9}))
    assert hyperband.scheduler_config().type == "hyperband"
    assert Experiment.from_dict(base_spec(scheduler={"type": "none"})).scheduler_config() is None
    assert Experiment.from_dict(base_spec()).scheduler_config() is None


@pytest.mark.parametrize(
    "spec, fragments",
    [
        ({"method": "asha"}, ["scheduler", "method 'asha' stops trials early", "max_t"]),
        ({"method": "asha", "scheduler": {"type": "hyperband", "max_t": 9}},
         ["scheduler.type: got 'hyperband'", "comes with the 'asha' scheduler", "method 'random'"]),
        ({"method": "hyperband", "scheduler": {"max_t": 9, "grace_period": 2}},
         ["scheduler: grace_period: got 2", "'hyperband' does not take it", "reduction_factor"]),
    ],
)
def test_scheduler_that_contradicts_the_method_is_rejected_before_ray(spec: dict, fragments: list) -> None:
    assert_mentions(spec_error(**spec), *fragments)


def test_scheduler_takes_the_mode_of_its_metric() -> None:
    experiment = Experiment.from_dict(base_spec(scheduler={"type": "hyperband", "metric": "latency_us"}))
    assert (experiment.scheduler.metric, experiment.scheduler.mode) == ("latency_us", "min")


@pytest.mark.parametrize(
    ("scheduler", "fragments"),
    [
        ({"type": "ashaa"}, ["scheduler.type", "did you mean 'asha'", "hyperband"]),
        ({"metric": "val_acc"}, ["scheduler.metric", "did you mean 'val_accuracy'"]),
        ({"mode": "min"}, ["scheduler.mode", "'min'", "'max'"]),
        ({"mode": "up"}, ["scheduler.mode", "'up'"]),
        ({"grace_periods": 2}, ["scheduler.grace_periods", "did you mean 'grace_period'"]),
        ({"max_t": 4, "grace_period": 5}, ["scheduler.grace_period", "max_t=4"]),
        ({"max_t": 0}, ["scheduler.max_t", ">= 1"]),
        ({"reduction_factor": 1}, ["scheduler.reduction_factor", "> 1"]),
        ({"time_attr": ""}, ["scheduler.time_attr"]),
        ("asha", ["scheduler", "mapping"]),
    ],
)
def test_invalid_scheduler(scheduler: Any, fragments: list[str]) -> None:
    assert_mentions(spec_error(scheduler=scheduler), *fragments)


# --------------------------------------------------------------------------- budget, resources, top level
@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ({"budget": {"num_trials": 0}}, ["budget.num_trials", "got 0", ">= 1"]),
        ({"budget": {"num_trials": True}}, ["budget.num_trials", "integer"]),
        ({"budget": {"num_trials": 2.5}}, ["budget.num_trials", "2.5"]),
        ({"budget": {"max_concurrent": 0}}, ["budget.max_concurrent", ">= 1"]),
        ({"budget": {"time_budget_s": 0}}, ["budget.time_budget_s", "> 0"]),
        ({"budget": {"trial_timeout_s": 0}}, ["budget.trial_timeout_s", "got 0", "> 0"]),
        ({"budget": {"trial_timeout_s": "ten"}}, ["budget.trial_timeout_s", "'ten'", "number"]),
        ({"budget": {"trial_timeout": 60}}, ["budget.trial_timeout", "did you mean 'trial_timeout_s'"]),
        ({"budget": {"num_trial": 3}}, ["budget.num_trial", "did you mean 'num_trials'"]),
        ({"resources": {"cpu": -1}}, ["resources.cpu", "got -1", ">= 0"]),
        ({"resources": {"gpu": -0.5}}, ["resources.gpu", ">= 0"]),
        ({"resources": {"gpus": 1}}, ["resources.gpus", "did you mean 'gpu'"]),
        ({"objective": []}, ["objective", "did you mean 'objectives'"]),
        ({"name": "a/b"}, ["name", "'a/b'", "directory"]),
        ({"name": " "}, ["name", "non-empty"]),
        ({"seed": "zero"}, ["seed", "'zero'", "integer"]),
        ({"seed": True}, ["seed", "integer"]),
        ({"method": "ax_mobo"}, ["method", "did you mean 'ax-mobo'", "random"]),
        ({"method_options": ["a"]}, ["method_options", "mapping"]),
        ({"storage_path": ""}, ["storage_path", "non-empty"]),
    ],
)
def test_invalid_top_level_values(overrides: dict[str, Any], fragments: list[str]) -> None:
    assert_mentions(spec_error(**overrides), *fragments)


def test_missing_required_keys_are_named() -> None:
    spec = base_spec()
    del spec["trainable"], spec["objectives"]
    with pytest.raises(SpecError, match="missing required key.*trainable, objectives"):
        Experiment.from_dict(spec)


def test_from_dict_rejects_a_non_mapping() -> None:
    with pytest.raises(SpecError, match="mapping"):
        Experiment.from_dict(["name", "toy"])  # type: ignore[arg-type]


def test_spec_error_is_a_value_error_with_a_field_path() -> None:
    with pytest.raises(ValueError) as info:
        Objective("a", "up")
    error = info.value
    assert isinstance(error, SpecError) and error.field == "mode"
    assert str(error.within("objectives[2]")).startswith("objectives[2].mode: got 'up'")
    assert str(error.within("objectives").within("spec")).startswith("spec.objectives.mode")


# --------------------------------------------------------------------------- trainable
def test_bad_module_import_reports_the_original_exception(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "exploding_trainable_module.py").write_text("raise RuntimeError('boom at import')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    message = spec_error(trainable="exploding_trainable_module:train")
    assert_mentions(message, "trainable", "cannot import", "RuntimeError: boom at import")


@pytest.mark.parametrize(
    ("trainable", "fragments"),
    [
        ("train_digits", ["trainable", "'module:function'"]),
        ("orchestrator.demo.train_digits", ["did you mean 'orchestrator.demo:train_digits'"]),
        (":train", ["'module:function'"]),
        (
            "no_such_module_for_spec_tests:train",
            ["cannot import", "ModuleNotFoundError", "no_such_module_for_spec_tests"],
        ),
        (f"{__name__}:toy_trainabel", ["no attribute 'toy_trainabel'", "did you mean 'toy_trainable'"]),
        (f"{__name__}:NOT_CALLABLE", ["not callable", "int"]),
        (42, ["trainable", "42", "callable"]),
    ],
)
def test_invalid_trainable(trainable: Any, fragments: list[str]) -> None:
    assert_mentions(spec_error(trainable=trainable), *fragments)


def trainable_without_config() -> None:
    """Tune could not call this: it takes no config."""


def trainable_with_two_arguments(config: dict[str, Any], data: Any) -> None:
    """Tune could not call this: it needs a second argument."""


def trainable_with_extras(config: dict[str, Any], data: Any = None, *, verbose: bool = False) -> None:
    """Tune can call this: the extras have defaults."""


@pytest.mark.parametrize(
    "trainable",
    [f"{__name__}:trainable_without_config", trainable_with_two_arguments, lambda: None],
)
def test_trainable_that_tune_cannot_call_with_a_config_is_rejected(trainable: Any) -> None:
    assert_mentions(spec_error(trainable=trainable), "trainable: got", "taking (", "def train(config)")


@pytest.mark.parametrize("trainable", [trainable_with_extras, f"{__name__}:trainable_with_extras", dict])
def test_trainable_with_optional_extras_or_a_class_is_accepted(trainable: Any) -> None:
    # classes (Tune's Trainable API) are checked by orchestrator.preflight, which imports Ray
    assert Experiment.from_dict(base_spec(trainable=trainable)).trainable == trainable


# --------------------------------------------------------------------------- inputs that used to fail after Ray started
@pytest.mark.parametrize("seed", [0, 2**32 - 1, None])
def test_seed_range_that_every_method_takes(seed: Any) -> None:
    assert Experiment.from_dict(base_spec(seed=seed)).seed == seed


@pytest.mark.parametrize("seed", [-1, 2**32])
def test_seed_outside_numpys_range_is_rejected(seed: int) -> None:
    assert_mentions(spec_error(seed=seed), f"seed: got {seed}", "from 0 to 4294967295", "null")


def test_search_space_of_constants_only_is_rejected() -> None:
    message = spec_error(search_space={"epochs": 3, "width": 64})
    assert_mentions(message, "search_space: got only constants (epochs, width)", "nothing to tune", "config")


def test_pool_method_needs_candidates_and_no_tunable_space() -> None:
    message = spec_error(method="pool-mobo")
    assert_mentions(message, "method_options.candidates: missing", "list of configs", "CSV")
    candidates = [{"width": 16}, {"width": 32}]
    experiment = Experiment.from_dict(
        base_spec(method="pool-mobo", search_space={"epochs": 3}, method_options={"candidates": candidates})
    )
    assert experiment.method_options == {"candidates": candidates}


@pytest.mark.parametrize(
    ("parameter", "field"),
    [
        ({"type": "grid", "values": [1, 2]}, "search_space.x.type: got 'grid'"),
        ({"type": "Grid", "values": [1, 2]}, "search_space.x.type: got 'Grid'"),
        ({"grid_search": [1, 2]}, "search_space.x.grid_search: got a grid [1, 2]"),
    ],
)
def test_grid_is_rejected_with_choice_as_the_fix(parameter: dict[str, Any], field: str) -> None:
    message = spec_error(search_space={"x": parameter, "lr": {"type": "uniform", "low": 0, "high": 1}})
    assert_mentions(message, field, "cannot expand a grid", "{type: choice, values: [1, 2]}")


def test_tune_grid_search_is_rejected_like_its_mapping() -> None:
    from ray import tune

    assert_mentions(spec_error(search_space={"x": tune.grid_search([1, 2])}), "search_space.x.grid_search", "choice")


@pytest.mark.parametrize(
    ("resources", "fragments"),
    [
        ({"cpu": 0}, ["resources.cpu: got 0 with gpu 0", "reserve something", "cpu > 0"]),
        ({"cpu": 0, "gpu": 0}, ["resources.cpu: got 0 with gpu 0"]),
        ({"gpu": 1.5}, ["resources.gpu: got 1.5", "whole number of GPUs", "1 or 2"]),
        ({"cpu": "many"}, ["resources.cpu: got 'many'", "number"]),
    ],
)
def test_resources_ray_would_refuse_are_rejected(resources: dict[str, Any], fragments: list[str]) -> None:
    assert_mentions(spec_error(resources=resources), *fragments)


def test_a_gpu_alone_is_a_valid_trial_request() -> None:
    assert Experiment.from_dict(base_spec(resources={"cpu": 0, "gpu": 0.5})).resources == Resources(0, 0.5)


def test_search_problem_is_what_the_searcher_is_built_from() -> None:
    experiment = Experiment.from_dict(
        base_spec(seed=7, budget={"max_concurrent": 3}, scheduler={"max_t": 9}, constraints=["num_params <= 10"])
    )
    problem = experiment.search_problem()
    assert (problem.seed, problem.max_concurrent, problem.max_t, problem.time_attr) == (7, 3, 9, "training_iteration")
    assert problem.constraints == ("num_params <= 10",) and problem.objectives == experiment.objective_set
    assert set(problem.space) == {"lr", "width", "epochs"}


# --------------------------------------------------------------------------- Ray Tune domains
@pytest.fixture(scope="module")
def sample() -> types.ModuleType:
    from ray.tune.search import sample

    return sample


@pytest.mark.parametrize(
    ("parameter", "domain_class", "sampler_class", "bounds", "q"),
    [
        ({"type": "uniform", "low": 0.0, "high": 0.5}, "Float", "Uniform", (0.0, 0.5), None),
        ({"type": "quniform", "low": 0.0, "high": 1.0, "q": 0.25}, "Float", "Uniform", (0.0, 1.0), 0.25),
        ({"type": "loguniform", "low": 1e-4, "high": 1e-1, "base": 10}, "Float", "LogUniform", (1e-4, 1e-1), None),
        ({"type": "qloguniform", "low": 1e-3, "high": 1.0, "q": 1e-3}, "Float", "LogUniform", (1e-3, 1.0), 1e-3),
        ({"type": "randint", "low": 16, "high": 257}, "Integer", "Uniform", (16, 257), None),
        ({"type": "qrandint", "low": 8, "high": 64, "q": 8}, "Integer", "Uniform", (8, 64), 8),
        ({"type": "lograndint", "low": 1, "high": 1024}, "Integer", "LogUniform", (1, 1024), None),
        ({"type": "qlograndint", "low": 2, "high": 64, "q": 2}, "Integer", "LogUniform", (2, 64), 2),
    ],
)
def test_range_mappings_become_tune_domains(
    sample: types.ModuleType,
    parameter: dict[str, Any],
    domain_class: str,
    sampler_class: str,
    bounds: tuple[float, float],
    q: float | None,
) -> None:
    experiment = Experiment.from_dict(base_spec(search_space={"x": parameter}))
    domain = experiment.tune_search_space()["x"]
    assert type(domain) is getattr(sample, domain_class)
    assert (domain.lower, domain.upper) == bounds
    sampler = domain.get_sampler()
    if q is not None:
        assert isinstance(sampler, sample.Quantized) and sampler.q == q
        sampler = sampler.get_sampler()
    assert isinstance(sampler, getattr(sample, sampler_class))
    without_base = {key: value for key, value in parameter.items() if key != "base"}
    assert parameter_to_dict(domain) == without_base


def test_randint_high_is_exclusive(sample: types.ModuleType) -> None:
    domain = Experiment.from_dict(base_spec(search_space={"x": {"type": "randint", "low": 1, "high": 3}}))
    draws = set(domain.tune_search_space()["x"].sample(size=200, random_state=0))
    assert draws == {1, 2}


def test_choice_and_constants_in_the_tune_space(sample: types.ModuleType) -> None:
    space = {"batch": {"type": "choice", "values": [16, 32]}, "epochs": 8}
    experiment = Experiment.from_dict(base_spec(search_space=space, config={"data": "digits"}))
    tune_space = experiment.tune_search_space()
    assert isinstance(tune_space["batch"], sample.Categorical)
    assert tune_space["batch"].categories == [16, 32]
    assert tune_space["epochs"] == 8 and "data" not in tune_space
    assert experiment.tune_search_space(include_config=True)["data"] == "digits"


def test_tune_domains_are_accepted_checked_and_written_as_mappings() -> None:
    from ray import tune

    space = {
        "lr": tune.loguniform(1e-4, 1e-1),
        "width": tune.qrandint(8, 64, 8),
        "act": tune.choice(["a", "b"]),
    }
    experiment = Experiment.from_dict(base_spec(search_space=space))
    assert experiment.tune_search_space()["lr"] is space["lr"]
    written = experiment.to_dict()["search_space"]
    assert written == {
        "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-1},
        "width": {"type": "qrandint", "low": 8, "high": 64, "q": 8},
        "act": {"type": "choice", "values": ["a", "b"]},
    }
    assert Experiment.from_dict(experiment.to_dict()).search_space == written

    assert_mentions(spec_error(search_space={"x": tune.uniform(1.0, 0.0)}), "search_space.x", "low=1.0")
    normal = tune.randn(0, 1)
    written = Experiment.from_dict(base_spec(search_space={"x": normal})).to_dict()
    assert written["search_space"]["x"] is normal


# --------------------------------------------------------------------------- YAML
def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_load_experiment_matches_from_dict(tmp_path: Path) -> None:
    spec = base_spec(scheduler={"type": "asha", "max_t": 3})
    path = write(tmp_path / "toy.yaml", yaml.safe_dump(spec))
    assert load_experiment(path) == Experiment.from_dict(spec)


def test_load_experiment_names_the_experiment_after_the_file(tmp_path: Path) -> None:
    spec = base_spec()
    del spec["name"]
    assert load_experiment(write(tmp_path / "my_run.yaml", yaml.safe_dump(spec))).name == "my_run"


def test_yaml_exponent_without_dot_is_a_number(tmp_path: Path) -> None:
    text = yaml.safe_dump(base_spec(search_space={})).replace(
        "search_space: {}", "search_space:\n  lr: {type: loguniform, low: 1e-4, high: 1e-1}"
    )
    experiment = load_experiment(write(tmp_path / "exp.yaml", text))
    assert experiment.search_space["lr"] == {"type": "loguniform", "low": 1e-4, "high": 0.1}


@pytest.mark.parametrize(
    ("text", "fragments"),
    [
        ("", ["empty"]),
        ("# only a comment\n", ["empty"]),
        ("- name: toy\n", ["top level", "list"]),
        ("name: [unclosed\n", ["not valid YAML", "line"]),
        ("name: a\nname: b\n", ["duplicate key 'name'"]),
    ],
)
def test_bad_yaml_files_name_the_path(tmp_path: Path, text: str, fragments: list[str]) -> None:
    path = write(tmp_path / "bad.yaml", text)
    with pytest.raises(SpecError) as info:
        load_experiment(path)
    assert_mentions(str(info.value), str(path), *fragments)


def test_missing_yaml_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read"):
        load_experiment(tmp_path / "absent.yaml")


def test_invalid_field_in_yaml_names_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path / "exp.yaml", yaml.safe_dump(base_spec(budget={"num_trials": -3})))
    with pytest.raises(SpecError) as info:
        load_experiment(path)
    assert str(info.value).startswith(f"{path}: budget.num_trials: got -3")
    assert info.value.source == str(path) and info.value.field == "budget.num_trials"


def test_save_experiment_round_trips(tmp_path: Path) -> None:
    experiment = Experiment.from_dict(base_spec(scheduler={"type": "asha", "max_t": 3}, seed=7))
    assert load_experiment(save_experiment(experiment, tmp_path / "toy.yaml")) == experiment


def test_save_experiment_rejects_what_yaml_cannot_hold(tmp_path: Path) -> None:
    experiment = Experiment.from_dict(base_spec(trainable=lambda config: None))
    with pytest.raises(SpecError, match="module:function"):
        save_experiment(experiment, tmp_path / "toy.yaml")


def test_digits_example_matches_the_demo() -> None:
    from orchestrator.demo import demo_experiment

    experiment = load_experiment(EXAMPLES / "digits.yaml")
    assert experiment.to_dict() == demo_experiment().to_dict()
    assert experiment.budget == Budget(num_trials=20, max_concurrent=2)
    assert experiment.scheduler.max_t == experiment.search_space["epochs"] == 8


# --------------------------------------------------------------------------- cluster, resources.bundles
def test_cluster_defaults_run_locally_and_retry_a_lost_trial_three_times() -> None:
    cluster = Experiment.from_dict(base_spec()).cluster
    assert (cluster.address, cluster.autoscaling, cluster.shared_storage, cluster.max_failures) == (None, False, False, 3)


def test_cluster_and_bundles_round_trip_through_yaml(tmp_path: Path) -> None:
    experiment = Experiment.from_dict(base_spec(
        resources={"cpu": 1, "gpu": 0.25, "bundles": [{"gpu": 1}, {"cpu": 2}]},
        cluster={"address": " ray://head:10001 ", "autoscaling": True, "shared_storage": True, "max_failures": -1},
    ))
    assert experiment.cluster.address == "ray://head:10001"
    assert experiment.resources.bundles == [{"cpu": 1, "gpu": 1}, {"cpu": 2, "gpu": 0}]
    assert experiment.resources.trial_resources().bundle_list() == [{"CPU": 1, "GPU": 0.25}, {"CPU": 1, "GPU": 1}, {"CPU": 2}]
    assert load_experiment(save_experiment(experiment, tmp_path / "spec.yaml")) == experiment


@pytest.mark.parametrize(
    ("overrides", "fragments"),
    [
        ({"cluster": {"max_failures": -2}}, ["cluster.max_failures: got -2", "integer >= 0", "-1"]),
        ({"cluster": {"max_failures": 1.5}}, ["cluster.max_failures: got 1.5"]),
        ({"cluster": {"max_failures": True}}, ["cluster.max_failures: got True"]),
        ({"cluster": {"autoscaling": "yes"}}, ["cluster.autoscaling: got 'yes'; use true or false."]),
        ({"cluster": {"shared_storage": 1}}, ["cluster.shared_storage: got 1; use true or false."]),
        ({"cluster": {"address": ""}}, ["cluster.address: got ''", "non-empty"]),
        ({"cluster": {"adress": "auto"}}, ["cluster.adress", "did you mean 'address'"]),
        ({"cluster": "auto"}, ["cluster: got 'auto'; use a mapping with keys address, autoscaling"]),
        ({"resources": {"bundles": {"gpu": 1}}}, ["resources.bundles: got {'gpu': 1}; use a list of {cpu, gpu} mappings"]),
        ({"resources": {"bundles": [{"gpu": 2.5}]}}, ["resources.bundles[0].gpu: got 2.5", "whole number"]),
    ],
)
def test_invalid_cluster_and_bundles_name_the_field(overrides: dict[str, Any], fragments: list[str]) -> None:
    assert_mentions(spec_error(**overrides), *fragments)
