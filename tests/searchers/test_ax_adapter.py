"""Tests for searchers._ax_adapter: each assumption it makes about Ax, checked against the installed Ax.

When one of these fails after an Ax upgrade, the message names what moved; fix
``searchers/_ax_adapter.py`` (checked against ax-platform 1.3.1) rather than the searcher.
"""

from __future__ import annotations

import importlib
import inspect
import json
import logging

import cloudpickle
import pytest
from ray import tune

from searchers import AxMultiObjectiveSearch, _ax_adapter
from searchers._ax_adapter import AX_VERSION_CHECKED, build_generation_strategy, configure_generation_strategy

MOVED = f"searchers/_ax_adapter.py relies on this (checked against ax-platform {AX_VERSION_CHECKED})"
OPTIONS = {"num_restarts": 2, "raw_samples": 16}


def ax_name(module: str, name: str):
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as error:
        pytest.fail(f"Ax no longer has {module}.{name} ({error}); {MOVED}.")


def ax_default_strategy(method: str, budget: int | None):
    """Ax's own strategy, before the adapter changes it."""
    choose = ax_name("ax.api.utils.generation_strategy_dispatch", "choose_generation_strategy")
    struct = ax_name("ax.api.utils.structs", "GenerationStrategyDispatchStruct")
    settings = struct(method=method, initialization_budget=budget, allow_exceeding_initialization_budget=True)
    return choose(struct=settings)


def configured_client(seed: int | None = 0):
    from ax import Client, RangeParameterConfig

    client = Client(random_seed=seed)
    client.configure_experiment(parameters=[
        RangeParameterConfig(name="x", parameter_type="float", bounds=(0.0, 1.0)),
        RangeParameterConfig(name="y", parameter_type="float", bounds=(0.0, 1.0)),
    ])
    client.configure_optimization(objective="f, -g")
    return client


def strategy_json(client, tmp_path) -> dict:
    """The generation strategy as ``Client.save_to_json_file`` writes it, without its timestamps."""
    path = tmp_path / "client.json"
    client.save_to_json_file(str(path))
    strategy = json.loads(path.read_text())["generation_strategy"]
    strategy.pop("experiment", None)
    return strategy


def differences(left, right, path: str = "") -> dict[str, tuple]:
    if isinstance(left, dict) and isinstance(right, dict):
        found = {}
        for key in sorted(set(left) | set(right), key=str):
            found.update(differences(left.get(key), right.get(key), f"{path}/{key}"))
        return found
    if isinstance(left, list) and isinstance(right, list) and len(left) == len(right):
        found = {}
        for index, (a, b) in enumerate(zip(left, right)):
            found.update(differences(a, b, f"{path}[{index}]"))
        return found
    return {} if left == right else {path: (left, right)}


# ----------------------------------------------------------------- what the adapter imports and calls
@pytest.mark.parametrize(
    "module, name",
    [
        ("ax.api.utils.generation_strategy_dispatch", "choose_generation_strategy"),
        ("ax.api.utils.structs", "GenerationStrategyDispatchStruct"),
        ("ax.generation_strategy.transition_criterion", "MinTrials"),
        ("ax.adapter.registry", "Generators"),
        ("ax.core.trial_status", "TrialStatus"),
    ],
)
def test_ax_names_the_adapter_imports_exist(module, name):
    ax_name(module, name)


def test_dispatch_struct_takes_the_fields_the_adapter_sets():
    struct = ax_name("ax.api.utils.structs", "GenerationStrategyDispatchStruct")
    fields = set(inspect.signature(struct).parameters)
    wanted = {"method", "initialization_budget", "initialization_random_seed", "allow_exceeding_initialization_budget"}
    assert wanted <= fields, f"GenerationStrategyDispatchStruct lost {sorted(wanted - fields)}; {MOVED}."


def test_client_still_installs_a_generation_strategy():
    from ax import Client

    method = getattr(Client, "set_generation_strategy", None)
    assert method is not None, f"ax.Client.set_generation_strategy is gone; {MOVED}."
    assert "generation_strategy" in inspect.signature(method).parameters, (
        f"ax.Client.set_generation_strategy no longer takes generation_strategy=; {MOVED}."
    )


def test_strategy_exposes_the_public_attributes_the_adapter_walks():
    nodes = getattr(ax_default_strategy("fast", budget=4), "nodes_by_name", None)
    assert isinstance(nodes, dict) and nodes, f"GenerationStrategy.nodes_by_name is gone or empty; {MOVED}."
    for node in nodes.values():
        for attribute in ("transition_criteria", "generator_specs"):
            assert hasattr(node, attribute), f"GenerationNode.{attribute} is gone; {MOVED}."
        for spec in node.generator_specs:
            assert isinstance(getattr(spec, "generator_gen_kwargs", None), dict), (
                f"GeneratorSpec.generator_gen_kwargs is gone; {MOVED}."
            )


# ----------------------------------------------------------------- the layout of Ax's default strategy
@pytest.mark.parametrize("method", ["fast", "quality"])
def test_default_model_strategy_has_one_observed_criterion_and_one_botorch_node(method):
    strategy = ax_default_strategy(method, budget=4)
    assert _ax_adapter.count_early_stopped_as_observed(strategy) == 1, (
        f"Ax's '{method}' strategy no longer has exactly one MinTrials counting only COMPLETED "
        f"trials, so early-stopped trials would not count as observed; {MOVED}."
    )
    assert _ax_adapter.set_acquisition_options(strategy, OPTIONS) == 1, (
        f"Ax's '{method}' strategy no longer has exactly one BOTORCH_MODULAR generator, so "
        f"acquisition_options would be ignored; {MOVED}."
    )


@pytest.mark.parametrize("budget", [0, 1])
def test_budgets_without_initialisation_neither_warn_nor_change_criteria(budget, caplog):
    with caplog.at_level(logging.WARNING, logger="searchers._ax_adapter"):
        build_generation_strategy(method="fast", initialization_budget=budget, seed=0, acquisition_options=OPTIONS)
    assert caplog.text == ""
    strategy = ax_default_strategy("fast", budget)
    assert _ax_adapter.count_early_stopped_as_observed(strategy) == 0
    assert _ax_adapter.set_acquisition_options(strategy, OPTIONS) == 1


def test_random_search_is_left_alone(caplog):
    with caplog.at_level(logging.WARNING, logger="searchers._ax_adapter"):
        build_generation_strategy(
            method="random_search", initialization_budget=None, seed=0, acquisition_options=OPTIONS)
    assert caplog.text == ""
    strategy = ax_default_strategy("random_search", budget=None)
    assert _ax_adapter.count_early_stopped_as_observed(strategy) == 0
    assert _ax_adapter.set_acquisition_options(strategy, OPTIONS) == 0


def test_a_changed_layout_is_logged(monkeypatch, caplog):
    monkeypatch.setattr(_ax_adapter, "count_early_stopped_as_observed", lambda strategy: 0)
    monkeypatch.setattr(_ax_adapter, "set_acquisition_options", lambda strategy, options: 0)
    with caplog.at_level(logging.WARNING, logger="searchers._ax_adapter"):
        build_generation_strategy(method="fast", initialization_budget=4, seed=0, acquisition_options=OPTIONS)
    assert "no MinTrials criterion counts only COMPLETED" in caplog.text
    assert "no BOTORCH_MODULAR generator takes the acquisition_options" in caplog.text
    assert f"checked against {AX_VERSION_CHECKED}" in caplog.text


@pytest.mark.parametrize("method, budget", [("fast", 4), ("fast", None), ("random_search", None)])
def test_same_strategy_as_client_configure_generation_strategy_but_for_the_two_changes(tmp_path, method, budget):
    by_ax = configured_client()
    by_ax.configure_generation_strategy(
        method=method, initialization_budget=budget, initialization_random_seed=3,
        allow_exceeding_initialization_budget=True,
    )
    by_adapter = configured_client()
    configure_generation_strategy(
        by_adapter, method=method, initialization_budget=budget, seed=3, acquisition_options=OPTIONS)
    found = differences(strategy_json(by_ax, tmp_path), strategy_json(by_adapter, tmp_path))
    statuses = [{"__type": "TrialStatus", "name": "COMPLETED"}]
    expected = {} if method == "random_search" else {
        "/nodes[1]/transition_criteria[1]/only_in_statuses": (
            statuses, statuses + [{"__type": "TrialStatus", "name": "EARLY_STOPPED"}]),
        "/nodes[2]/generator_specs[0]/generator_gen_kwargs/model_gen_options": (None, {"optimizer_kwargs": OPTIONS}),
        "/nodes[2]/generator_spec_to_gen_from/generator_gen_kwargs/model_gen_options": (
            None, {"optimizer_kwargs": OPTIONS}),
    }
    assert found == expected, (
        f"The adapter's strategy differs from Client.configure_generation_strategy's in more (or "
        f"other) places than the two intended changes; {MOVED}."
    )


# ----------------------------------------------------------------- the effect, end to end
def early_stopped_trials_then_next_node(acquisition_options=None) -> tuple[str, AxMultiObjectiveSearch]:
    """Two trials end early-stopped under a scheduler; which Ax node generates the third?"""
    searcher = AxMultiObjectiveSearch(
        {"x": tune.uniform(0, 1), "y": tune.uniform(0, 1)}, metric=["f", "g"], mode=["max", "min"],
        seed=0, method="fast", initialization_budget=2, max_progression=10,
        objective_thresholds={"g": 2.0}, acquisition_options=acquisition_options, background=False,
    )
    for i in range(2):
        config = searcher.suggest(f"t{i}")
        values = {"f": config["x"] + config["y"], "g": (config["x"] - 0.3) ** 2 + config["y"]}
        searcher.on_trial_result(f"t{i}", {**values, "training_iteration": 1})
        searcher.on_trial_complete(f"t{i}", {**values, "training_iteration": 2})
    assert set(searcher.client.summarize()["trial_status"]) == {"EARLY_STOPPED"}
    searcher = cloudpickle.loads(cloudpickle.dumps(searcher))  # the changes live in the saved strategy
    searcher.suggest("t2")
    return searcher.client.summarize()["generation_node"].tolist()[-1], searcher


def test_without_the_status_change_early_stopped_trials_keep_ax_in_sobol(monkeypatch):
    monkeypatch.setattr(_ax_adapter, "count_early_stopped_as_observed", lambda strategy: 0)
    node, _ = early_stopped_trials_then_next_node()
    assert node == "Sobol", "the control case no longer shows why the adapter changes the criterion"


def test_early_stopped_trials_hand_over_to_the_model_with_the_acquisition_options(monkeypatch):
    acquisition = ax_name("ax.generators.torch.botorch_modular.acquisition", "Acquisition")
    seen = []
    original = acquisition.optimize

    def recording_optimize(self, *args, **kwargs):
        seen.append(kwargs.get("optimizer_options"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(acquisition, "optimize", recording_optimize)
    node, _ = early_stopped_trials_then_next_node(acquisition_options=OPTIONS)
    assert node == "MBM", f"early-stopped trials no longer count as observed for Ax's transition; {MOVED}."
    assert seen and all(
        options is not None and {k: options.get(k) for k in OPTIONS} == OPTIONS for options in seen
    ), f"acquisition_options no longer reach Acquisition.optimize (saw {seen}); {MOVED}."
