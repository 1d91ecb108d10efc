"""The demo job: trade accuracy against latency and size for an MLP on scikit-learn's digits.

``train_digits`` is a complete Ray Tune function trainable built from
:mod:`orchestrator.trainable`; ``demo_experiment`` wraps it in the same experiment as
``examples/digits.yaml``. The data (1797 8x8 images, 10 classes) ships with scikit-learn, so
the demo needs no download, and an 8-epoch trial takes a second or two on one CPU core.

Example:
    >>> experiment = demo_experiment(num_trials=20)
    >>> experiment.method, experiment.scheduler.type, experiment.budget.num_trials
    ('ax-mobo', 'mo-asha', 20)
    >>> from orchestrator.run import run
    >>> result = run(experiment)  # starts Ray, a few minutes on 2 CPUs  # doctest: +SKIP
    >>> print(result.pareto)  # doctest: +SKIP
"""

from __future__ import annotations

import functools
import numbers
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from orchestrator.methods import get_method
from orchestrator.spec import Budget, Experiment, Objective, Resources, SchedulerSpec
from orchestrator.trainable import (
    count_parameters,
    measure_latency,
    pick_device,
    report_epoch,
    restore_from_checkpoint,
)

SPLIT_SEED = 0
"""Fixed seed of the train/validation split, so every trial is scored on the same images."""

LATENCY_BATCH = 64
"""Validation samples per timed forward pass when measuring ``latency_us``."""


@functools.lru_cache(maxsize=1)
def load_digits_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stratified 75/25 split of scikit-learn's digits, standardised with training statistics.

    Returns:
        ``(x_train, y_train, x_val, y_val)``: float32 ``n x 64`` features and int64 labels
        (1347 training and 450 validation images). Cached: treat them as read-only.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    features, labels = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(
        features, labels, test_size=0.25, stratify=labels, random_state=SPLIT_SEED
    )
    scaler = StandardScaler().fit(x_train)
    return (
        torch.as_tensor(scaler.transform(x_train), dtype=torch.float32),
        torch.as_tensor(y_train, dtype=torch.int64),
        torch.as_tensor(scaler.transform(x_val), dtype=torch.float32),
        torch.as_tensor(y_val, dtype=torch.int64),
    )


def build_mlp(
    input_dim: int, num_classes: int, hidden_width: int, num_layers: int, dropout: float
) -> nn.Sequential:
    """``num_layers`` hidden blocks of ``Linear -> ReLU -> Dropout``, then a linear classifier.

    Example:
        >>> build_mlp(64, 10, hidden_width=32, num_layers=2, dropout=0.1)[0]
        Linear(in_features=64, out_features=32, bias=True)
    """
    layers: list[nn.Module] = []
    width = input_dim
    for _ in range(num_layers):
        layers += [nn.Linear(width, hidden_width), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden_width
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


def _validated(config: Mapping[str, Any]) -> dict[str, Any]:
    # numbers.Integral/Real also admit the numpy scalars that Tune's samplers hand back.
    def integer(key: str, minimum: int = 1) -> int:
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"config[{key!r}] must be an integer >= {minimum}, got {value!r}.")
        return int(value)

    def real(key: str, low: float, high: float, interval: str) -> float:
        value = config[key]
        is_real = isinstance(value, numbers.Real) and not isinstance(value, bool)
        above_low = is_real and (value >= low if interval.startswith("[") else value > low)
        if not (above_low and value < high):
            raise ValueError(f"config[{key!r}] must be a number in {interval}, got {value!r}.")
        return float(value)

    missing = {"hidden_width", "num_layers", "lr", "batch_size", "dropout", "epochs"} - set(config)
    if missing:
        raise ValueError(f"train_digits config is missing {sorted(missing)}; got {dict(config)}.")
    return {
        "hidden_width": integer("hidden_width"),
        "num_layers": integer("num_layers"),
        "batch_size": integer("batch_size"),
        "epochs": integer("epochs"),
        "seed": integer("seed", minimum=0) if "seed" in config else 0,
        "lr": real("lr", 0, 10, "(0, 10)"),
        "dropout": real("dropout", 0, 1, "[0, 1)"),
    }


def _accuracy(model: nn.Module, features: torch.Tensor, labels: torch.Tensor) -> float:
    model.eval()
    with torch.inference_mode():
        predictions = model(features).argmax(dim=1)
    return (predictions == labels).float().mean().item()


def train_digits(config: Mapping[str, Any]) -> None:
    """Ray Tune function trainable: train an MLP on digits, report once per epoch.

    Config keys: ``hidden_width`` (int), ``num_layers`` (int >= 1 hidden layers), ``lr``
    (Adam learning rate), ``batch_size`` (int), ``dropout`` (probability), ``epochs`` (int),
    optional ``seed`` (int, default 0) and ``device`` (see
    :func:`~orchestrator.trainable.pick_device`).

    Each epoch reports ``val_accuracy`` (to maximise), ``latency_us`` (median microseconds per
    sample over a batch of 64, to minimise), ``num_params`` (to minimise) and ``epoch``
    (epochs completed), with a checkpoint, so paused or restarted trials resume where they
    stopped.

    Example:
        >>> from ray import tune
        >>> tuner = tune.Tuner(train_digits, param_space={"hidden_width": 64, "num_layers": 2,
        ...     "lr": 1e-2, "batch_size": 32, "dropout": 0.1, "epochs": 8})  # doctest: +SKIP
        >>> results = tuner.fit()  # starts Ray  # doctest: +SKIP
    """
    settings = _validated(config)
    # Two trials share two cores; intra-op threads would make them fight over both.
    torch.set_num_threads(1)
    torch.manual_seed(settings["seed"])  # initial weights
    device = pick_device(config)
    x_train, y_train, x_val, y_val = (tensor.to(device) for tensor in load_digits_split())

    model = build_mlp(
        input_dim=x_train.shape[1],
        num_classes=10,
        hidden_width=settings["hidden_width"],
        num_layers=settings["num_layers"],
        dropout=settings["dropout"],
    ).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["lr"])
    loss_function = nn.CrossEntropyLoss()
    num_params = count_parameters(model)
    start_epoch = restore_from_checkpoint(model, optimizer, map_location=device)

    for epoch in range(start_epoch, settings["epochs"]):
        # Seeding per epoch makes a resumed trial shuffle and drop out exactly like an
        # uninterrupted one, without storing RNG state in the checkpoint.
        torch.manual_seed(settings["seed"] * 10_000 + epoch)
        order = torch.randperm(len(x_train)).to(device)
        model.train()
        for batch in order.split(settings["batch_size"]):
            optimizer.zero_grad(set_to_none=True)
            loss_function(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()

        metrics = {
            "val_accuracy": _accuracy(model, x_val, y_val),
            "latency_us": measure_latency(model, x_val[:LATENCY_BATCH], repeats=5, warmup=1),
            "num_params": num_params,
            "epoch": epoch + 1,
        }
        report_epoch(metrics, model=model, optimizer=optimizer, epoch=epoch)


def _demo_scheduler(method: str, epochs: int) -> SchedulerSpec:
    """Multi-objective ASHA judging trials at epochs 2 and 6 on all three objectives (as in
    examples/digits.yaml), or the method's own scheduler."""
    if get_method(method).scheduler is not None:
        return SchedulerSpec(max_t=epochs)
    return SchedulerSpec("mo-asha", max_t=epochs, grace_period=min(2, epochs), reduction_factor=3)


def demo_experiment(
    num_trials: int = 20,
    max_concurrent: int = 2,
    epochs: int = 8,
    storage_path: str = "./results",
    seed: int | None = 0,
    method: str = "ax-mobo",
) -> Experiment:
    """The experiment of ``examples/digits.yaml``: maximise ``val_accuracy`` while minimising
    ``latency_us`` and ``num_params`` of :func:`train_digits`, with multi-objective ASHA stopping
    trials outside the top third by Pareto rank at epochs 2 and 6.

    Args:
        num_trials: Trials to run in total.
        max_concurrent: Trials running at once (one CPU each).
        epochs: Epochs per trial (the resource), also the scheduler's ``max_t``.
        storage_path: Where Ray Tune writes the experiment directory.
        seed: Seed of the search method.
        method: Search method name (see ``orchestrator.methods.method_names()``).

    Example:
        >>> demo_experiment(num_trials=4, epochs=2).metric_names
        ['val_accuracy', 'latency_us', 'num_params']
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be an integer >= 1, got {epochs!r}.")
    return Experiment(
        name="digits",
        trainable="orchestrator.demo:train_digits",
        search_space={
            # randint's high is exclusive, as in tune.randint: widths 16..256, 1..4 layers.
            "hidden_width": {"type": "randint", "low": 16, "high": 257},
            "num_layers": {"type": "randint", "low": 1, "high": 5},
            "lr": {"type": "loguniform", "low": 1e-4, "high": 1e-1},
            "batch_size": {"type": "choice", "values": [16, 32, 64, 128]},
            "dropout": {"type": "uniform", "low": 0.0, "high": 0.5},
            "epochs": epochs,
        },
        objectives=[
            Objective("val_accuracy", "max"),
            Objective("latency_us", "min"),
            Objective("num_params", "min"),
        ],
        method=method,
        # The method's cheap options keep each suggestion to seconds on 2 CPU cores.
        method_options=dict(get_method(method).cheap_options),
        scheduler=_demo_scheduler(method, epochs),
        budget=Budget(num_trials=num_trials, max_concurrent=max_concurrent),
        resources=Resources(cpu=1, gpu=0),
        storage_path=storage_path,
        seed=seed,
    )
