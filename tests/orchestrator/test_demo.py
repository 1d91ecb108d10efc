"""Tests for orchestrator.demo: the digits data, the MLP, the trainable and the demo experiment.

``train_digits`` runs directly against :class:`FakeTuneSession`; one test marked ``ray`` runs it
inside a real ``tune.Tuner`` to show reporting and checkpoints survive Ray.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from orchestrator import demo
from orchestrator.demo import (
    LATENCY_BATCH,
    build_mlp,
    demo_experiment,
    load_digits_split,
    train_digits,
)
from orchestrator.spec import Experiment
from orchestrator.trainable import CHECKPOINT_FILE, count_parameters
from tests.orchestrator.fake_tune_session import FakeTuneSession

BASE_CONFIG = {
    "hidden_width": 64,
    "num_layers": 2,
    "lr": 1e-2,
    "batch_size": 32,
    "dropout": 0.1,
    "epochs": 8,
}


@pytest.fixture(autouse=True)
def restore_torch_threads():
    # train_digits pins torch to one thread for the whole process; give the others theirs back.
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


# --- data and model ----------------------------------------------------------------------------


def test_split_is_stratified_75_25_and_standardised():
    x_train, y_train, x_val, y_val = load_digits_split()
    assert x_train.shape == (1347, 64) and x_val.shape == (450, 64)
    assert x_train.dtype == torch.float32 and y_train.dtype == torch.int64
    assert y_train.shape == (1347,) and y_val.shape == (450,)
    class_counts = torch.bincount(torch.cat([y_train, y_val]), minlength=10)
    validation_counts = torch.bincount(y_val, minlength=10)
    assert torch.all((validation_counts - 0.25 * class_counts).abs() <= 1)
    assert x_train.mean(dim=0).abs().max() < 1e-5
    # Constant pixels keep standard deviation 0; every other pixel is scaled to 1.
    deviations = x_train.std(dim=0, unbiased=False)
    assert torch.all(((deviations - 1).abs() < 1e-4) | (deviations < 1e-6))


def test_split_is_fixed_across_calls():
    load_digits_split.cache_clear()
    first = load_digits_split()
    load_digits_split.cache_clear()
    second = load_digits_split()
    assert all(torch.equal(a, b) for a, b in zip(first, second))


@pytest.mark.parametrize("num_layers", [1, 2, 4])
def test_mlp_has_num_layers_hidden_blocks(num_layers):
    model = build_mlp(64, 10, hidden_width=32, num_layers=num_layers, dropout=0.25)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    assert len(linears) == num_layers + 1
    assert all(m.p == 0.25 for m in model if isinstance(m, torch.nn.Dropout))
    expected = 64 * 32 + 32 + (num_layers - 1) * (32 * 32 + 32) + 32 * 10 + 10
    assert count_parameters(model) == expected
    assert model(torch.zeros(5, 64)).shape == (5, 10)


# --- train_digits ------------------------------------------------------------------------------


def test_trains_to_high_accuracy_and_reports_every_epoch(session):
    train_digits(BASE_CONFIG)
    assert [row["epoch"] for row in session.metrics] == list(range(1, 9))
    assert session.metrics[-1]["val_accuracy"] > 0.8
    assert session.metrics[0]["val_accuracy"] > 0.5
    expected_params = 64 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10
    assert {row["num_params"] for row in session.metrics} == {expected_params}
    assert all(row["latency_us"] > 0 for row in session.metrics)
    assert set(session.metrics[0]) == {"val_accuracy", "latency_us", "num_params", "epoch"}
    assert len(session.checkpoint_dirs) == 8
    state = torch.load(session.checkpoint_dirs[-1] / CHECKPOINT_FILE, weights_only=True)
    assert state["epoch"] == 7


def test_pins_torch_to_one_thread(session):
    torch.set_num_threads(2)
    train_digits({**BASE_CONFIG, "epochs": 1})
    assert torch.get_num_threads() == 1


def test_resumed_trial_skips_completed_epochs_and_matches_an_uninterrupted_one(
    monkeypatch, tmp_path
):
    from ray import tune

    config = {**BASE_CONFIG, "epochs": 3, "dropout": 0.2}
    uninterrupted = FakeTuneSession(tmp_path / "first").install(monkeypatch)
    train_digits(config)

    resumed = FakeTuneSession(tmp_path / "second").install(monkeypatch)
    after_second_epoch = uninterrupted.checkpoint_dirs[1]
    resumed.loaded_checkpoint = tune.Checkpoint.from_directory(after_second_epoch)
    train_digits(config)
    assert [row["epoch"] for row in resumed.metrics] == [3]
    assert resumed.metrics[0]["val_accuracy"] == uninterrupted.metrics[2]["val_accuracy"]


def test_resuming_a_finished_trial_reports_nothing(session):
    train_digits({**BASE_CONFIG, "epochs": 1})
    session.resume_from(0)
    train_digits({**BASE_CONFIG, "epochs": 1})
    assert len(session.metrics) == 1


def test_accepts_numpy_scalars_from_samplers(session):
    config = {
        **BASE_CONFIG,
        "hidden_width": np.int64(16),
        "num_layers": np.int64(1),
        "batch_size": np.int64(128),
        "lr": np.float64(0.01),
        "epochs": 1,
        "seed": np.int64(3),
    }
    train_digits(config)
    assert session.metrics[0]["num_params"] == 64 * 16 + 16 + 16 * 10 + 10


def test_latency_is_timed_on_a_batch_of_64_validation_images(session, monkeypatch):
    timed_shapes = []

    def fake_latency(model, example_input, **kwargs):
        timed_shapes.append(tuple(example_input.shape))
        return 12.5

    monkeypatch.setattr(demo, "measure_latency", fake_latency)
    train_digits({**BASE_CONFIG, "epochs": 2})
    assert timed_shapes == [(LATENCY_BATCH, 64)] * 2 and LATENCY_BATCH == 64
    assert [row["latency_us"] for row in session.metrics] == [12.5, 12.5]


@pytest.mark.parametrize(
    "override, message",
    [
        ({"num_layers": 0}, "config\\['num_layers'\\] must be an integer >= 1, got 0"),
        ({"hidden_width": 8.5}, "config\\['hidden_width'\\] must be an integer >= 1, got 8.5"),
        ({"batch_size": "32"}, "config\\['batch_size'\\] must be an integer >= 1, got '32'"),
        ({"epochs": True}, "config\\['epochs'\\] must be an integer >= 1, got True"),
        ({"seed": -1}, "config\\['seed'\\] must be an integer >= 0, got -1"),
        ({"lr": 0}, "config\\['lr'\\] must be a number in \\(0, 10\\), got 0"),
        ({"lr": "fast"}, "config\\['lr'\\] must be a number in \\(0, 10\\), got 'fast'"),
        ({"dropout": 1.0}, "config\\['dropout'\\] must be a number in \\[0, 1\\), got 1.0"),
        ({"dropout": -0.1}, "config\\['dropout'\\] must be a number in \\[0, 1\\), got -0.1"),
    ],
)
def test_rejects_invalid_configs_naming_the_key(session, override, message):
    with pytest.raises(ValueError, match=message):
        train_digits({**BASE_CONFIG, **override})
    assert session.metrics == []


def test_rejects_configs_missing_keys(session):
    config = {key: value for key, value in BASE_CONFIG.items() if key not in ("lr", "epochs")}
    with pytest.raises(ValueError, match="missing \\['epochs', 'lr'\\]"):
        train_digits(config)


# --- demo_experiment ---------------------------------------------------------------------------


def test_demo_experiment_matches_the_digits_job(tmp_path):
    experiment = demo_experiment(num_trials=6, max_concurrent=2, epochs=5, storage_path=str(tmp_path))
    assert isinstance(experiment, Experiment)
    assert experiment.metric_names == ["val_accuracy", "latency_us", "num_params"]
    assert list(experiment.objective_set.modes) == ["max", "min", "min"]
    assert experiment.resolve_trainable() is train_digits
    assert experiment.method == "ax-mobo" and experiment.seed == 0
    assert (experiment.budget.num_trials, experiment.budget.max_concurrent) == (6, 2)
    assert (experiment.resources.cpu, experiment.resources.gpu) == (1, 0)
    assert experiment.storage_path == str(tmp_path)
    scheduler = experiment.scheduler
    assert scheduler.type == "mo-asha"  # epochs as the resource, ranked on all three objectives
    assert experiment.scheduler_config().metric == ("val_accuracy", "latency_us", "num_params")
    assert (scheduler.max_t, scheduler.grace_period, scheduler.reduction_factor) == (5, 2, 3)
    space = experiment.search_space
    assert space["epochs"] == 5
    assert space["hidden_width"] == {"type": "randint", "low": 16, "high": 257}
    assert space["num_layers"] == {"type": "randint", "low": 1, "high": 5}
    assert space["batch_size"]["values"] == [16, 32, 64, 128]


def test_demo_experiment_space_converts_to_tune_domains():
    space = demo_experiment().tune_search_space()
    assert space["epochs"] == 8
    assert (space["hidden_width"].lower, space["hidden_width"].upper) == (16, 257)
    assert (space["lr"].lower, space["lr"].upper) == (1e-4, 1e-1)
    assert space["batch_size"].categories == [16, 32, 64, 128]
    assert (space["dropout"].lower, space["dropout"].upper) == (0.0, 0.5)


def test_demo_experiment_round_trips_through_plain_data():
    experiment = demo_experiment(method="random", seed=7)
    again = Experiment.from_dict(experiment.to_dict())
    assert again.to_dict() == experiment.to_dict()
    assert again.method == "random" and again.seed == 7


def test_single_epoch_demo_shrinks_the_grace_period():
    assert demo_experiment(epochs=1).scheduler.grace_period == 1


@pytest.mark.parametrize("epochs", [0, 2.0, None])
def test_demo_experiment_rejects_bad_epochs(epochs):
    with pytest.raises(ValueError, match=f"epochs must be an integer >= 1, got {epochs!r}"):
        demo_experiment(epochs=epochs)


# --- under Ray ---------------------------------------------------------------------------------


@pytest.mark.ray
def test_train_digits_reports_and_checkpoints_under_tune(ray_session, tmp_path):
    from ray import tune

    tuner = tune.Tuner(
        tune.with_resources(train_digits, {"cpu": 1}),
        param_space={**BASE_CONFIG, "epochs": 2, "seed": tune.grid_search([0, 1])},
        run_config=tune.RunConfig(storage_path=str(tmp_path), name="digits"),
    )
    results = tuner.fit()
    assert results.num_errors == 0
    assert len(results) == 2
    for result in results:
        assert result.metrics["training_iteration"] == 2
        assert result.metrics["epoch"] == 2
        assert 0 < result.metrics["val_accuracy"] <= 1
        with result.checkpoint.as_directory() as directory:
            state = torch.load(Path(directory) / CHECKPOINT_FILE, weights_only=True)
        assert state["epoch"] == 1
