"""Fabolas on scikit-learn's digits: train on a fraction of the data, recommend for all of it.

The trainable trains the digits MLP of ``orchestrator/demo.py`` on a stratified ``data_fraction``
of the training split and reports the validation accuracy and ``train_seconds`` (the time spent
in the training loop, the cost Fabolas learns; Tune's ``time_total_s`` would also count its own
start-up). ``FabolasSearch`` chooses the configuration and the fraction; full-fidelity GP BO
(``FabolasSearch(min_fidelity=1)``, the ``gp-bo`` method) trains every trial on all the data.
At the end both recommendations are retrained on the full training set, and the script prints
each method's training cost and the full-data accuracy of what it recommends.

With ``--pareto`` the search has two objectives, ``val_accuracy`` (max) and ``num_params``
(min): both searchers then recommend a front (``pareto_set()``), every member is retrained on the
full training set, and the script prints each front with its full-data accuracies.

Run (a few minutes on 2 CPU cores; it starts Ray):

    python examples/fabolas_digits.py --fabolas-trials 40 --gp-bo-trials 20
    python examples/fabolas_digits.py --pareto --fabolas-trials 40 --gp-bo-trials 20
"""

from __future__ import annotations

import argparse
import time
from typing import Any, Mapping

import numpy as np
import torch
from ray import tune
from torch import nn

from orchestrator.demo import build_mlp, load_digits_split
from searchers.fabolas import FabolasSearch

SPACE = {
    "lr": tune.loguniform(1e-4, 3e-1),
    "hidden_width": tune.lograndint(8, 257),
    "num_layers": tune.randint(1, 4),
    "dropout": tune.uniform(0.0, 0.6),
    "batch_size": tune.choice([16, 32, 64, 128]),
    "epochs": 30,
}


def train_on_fraction(config: Mapping[str, Any]) -> dict[str, float]:
    """Train on ``config["data_fraction"]`` of the training split; validation accuracy and training seconds."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    x_train, y_train, x_val, y_val = load_digits_split()
    generator = np.random.default_rng(0)
    keep = []
    for label in range(10):  # stratified: every class keeps its share
        members = np.flatnonzero(y_train.numpy() == label)
        count = max(2, int(round(config["data_fraction"] * len(members))))
        keep.extend(generator.choice(members, size=min(count, len(members)), replace=False))
    x_train, y_train = x_train[keep], y_train[keep]
    model = build_mlp(64, 10, int(config["hidden_width"]), int(config["num_layers"]), float(config["dropout"]))
    optimizer = torch.optim.Adam(model.parameters(), lr=float(config["lr"]))
    loss_function = nn.CrossEntropyLoss()
    started = time.perf_counter()
    for _ in range(int(config["epochs"])):
        model.train()
        for batch in torch.randperm(len(x_train)).split(int(config["batch_size"])):
            optimizer.zero_grad(set_to_none=True)
            loss_function(model(x_train[batch]), y_train[batch]).backward()
            optimizer.step()
    train_seconds = time.perf_counter() - started
    model.eval()
    with torch.inference_mode():
        accuracy = (model(x_val).argmax(dim=1) == y_val).float().mean().item()
    num_params = sum(parameter.numel() for parameter in model.parameters())
    return {"val_accuracy": accuracy, "num_params": float(num_params), "train_seconds": train_seconds}


def trainable(config: dict) -> None:
    tune.report(train_on_fraction(config))


def run(searcher: FabolasSearch, trials: int) -> tuple[float, list[dict[str, Any]]]:
    """Tune ``trials`` trials with ``searcher``; ``(training seconds spent, recommended configs)``."""
    tuner = tune.Tuner(
        trainable,
        param_space=SPACE,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=trials, metric="val_accuracy", mode="max",
                                    max_concurrent_trials=2),
    )
    results = tuner.fit()
    spent = float(sum(r.metrics.get("train_seconds", 0.0) for r in results))
    if isinstance(searcher.metric, list):  # two objectives: the predicted front at full data
        return spent, [member.config for member in searcher.pareto_set()]
    return spent, [searcher.incumbent().config]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fabolas-trials", type=int, default=40)
    parser.add_argument("--gp-bo-trials", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pareto", action="store_true", help="two objectives: val_accuracy (max), num_params (min)")
    args = parser.parse_args()
    objectives = {"metric": ["val_accuracy", "num_params"], "mode": ["max", "min"]} if args.pareto else {
        "metric": "val_accuracy", "mode": "max"}
    common = {**objectives, "cost_metric": "train_seconds", "seed": args.seed}
    rows = []
    for name, searcher, trials in (
        ("fabolas", FabolasSearch(min_fidelity=1 / 16, incumbent_share=0.1, **common), args.fabolas_trials),
        ("gp-bo", FabolasSearch(min_fidelity=1.0, **common), args.gp_bo_trials),
    ):
        spent, configs = run(searcher, trials)
        for config in configs:
            final = train_on_fraction({**config, "data_fraction": 1.0})
            rows.append((name, trials, spent, final["val_accuracy"], final["num_params"], config))
    print(f"{'method':<8} {'trials':>6} {'train s':>8} {'full-data val_accuracy':>23} {'num_params':>10}  recommended config")
    for name, trials, spent, accuracy, num_params, config in rows:
        print(f"{name:<8} {trials:>6} {spent:>8.1f} {accuracy:>23.4f} {num_params:>10.0f}  {config}")


if __name__ == "__main__":
    main()
