"""Median ``AxMultiObjectiveSearch.suggest`` latency at a given number of observations.

Compares Ax's default acquisition optimisation with the cheaper ``acquisition_options`` the demo
uses, side by side, on the demo's search space (2 integer, 1 categorical, 2 continuous
parameters) with three synthetic objectives. No Ray processes are started.

    python -m benchmarks.bench_ax_suggest --observations 20 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd

FAST_OPTIONS = {"num_restarts": 4, "raw_samples": 256, "options": {"maxiter_alternating": 8}}


def _objectives(config: dict[str, Any], rng: np.random.Generator) -> dict[str, float]:
    width, layers = config["hidden_width"], config["num_layers"]
    accuracy = 0.97 - 0.02 * abs(np.log10(config["lr"]) + 2.5) - 0.05 * config["dropout"] + rng.normal(0, 0.005)
    return {
        "val_accuracy": float(accuracy),
        "latency_us": float(0.3 + width * layers / 200 + rng.normal(0, 0.02)),
        "num_params": float(64 * width + (layers - 1) * width**2 + 10 * width),
    }


def suggest_latencies(
    observations: int, repeats: int, acquisition_options: dict | None, seed: int = 0, torch_threads: int | None = 1
) -> list[float]:
    """Seconds per ``suggest`` for ``repeats`` suggestions after ``observations`` completed trials."""
    from ray import tune

    from searchers import AxMultiObjectiveSearch

    space = {
        "hidden_width": tune.randint(16, 257),
        "num_layers": tune.randint(1, 5),
        "lr": tune.loguniform(1e-4, 1e-1),
        "batch_size": tune.choice([16, 32, 64, 128]),
        "dropout": tune.uniform(0.0, 0.5),
    }
    rng = np.random.default_rng(seed)
    # Observations come from quasi-random warm-start rows so both settings see the same data.
    sampler = np.random.default_rng(seed + 1)
    rows = []
    for _ in range(observations):
        config = {name: domain.sample(random_state=sampler) for name, domain in space.items()}
        rows.append({**config, **_objectives(config, rng)})
    searcher = AxMultiObjectiveSearch(
        space,
        metric=["val_accuracy", "latency_us", "num_params"],
        mode=["max", "min", "min"],
        seed=seed,
        warm_start=pd.DataFrame(rows),
        acquisition_options=acquisition_options,
        torch_threads=torch_threads,
    )
    latencies = []
    for index in range(repeats):
        start = time.perf_counter()
        config = searcher.suggest(f"bench_{index}")
        latencies.append(time.perf_counter() - start)
        searcher.on_trial_complete(f"bench_{index}", result={**_objectives(config, rng), "training_iteration": 1})
    return latencies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    import torch

    print(f"observations={args.observations} repeats={args.repeats} (the first suggest of each run is Ax's centre point)")
    rows = [
        (f"Ax defaults, torch threads={torch.get_num_threads()}", None, None),
        ("Ax defaults, torch threads=1 (searcher default)", None, 1),
        (f"demo acquisition_options {FAST_OPTIONS}, threads=1", FAST_OPTIONS, 1),
    ]
    medians = []
    for label, options, threads in rows:
        median = statistics.median(suggest_latencies(args.observations, args.repeats, options, torch_threads=threads))
        medians.append(median)
        print(f"{label}: median suggest {median:.2f} s ({medians[0] / median:.2f}x vs first row)")


if __name__ == "__main__":
    main()
