"""Median ``FabolasSearch.suggest`` latency at a given number of observations (target <= 2 s at 100).

The searcher runs on a synthetic problem with the digits example's space (two integer, one
categorical, two continuous parameters, so 8 model columns with the one-hot block and the
fraction): ``observations`` random results at random fractions are fed first, then ``warmup``
model-based suggestions (the first fit is cold; later ones start from the last hyperparameters,
as in a running study), then ``repeats`` timed suggestions, each followed by its result. No Ray
processes are started; PyTorch uses one thread, as the searcher does beside running trials.

    python -m benchmarks.bench_fabolas_suggest --observations 100 --repeats 10
    python -m benchmarks.bench_fabolas_suggest --observations 100 --repeats 10 --acquisition hvkg

``--acquisition hvkg`` runs the two-objective search: ``val_loss`` and ``params`` (a model-size
figure that grows with the width and the depth), both minimised.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from typing import Any


def _result(config: dict[str, Any]) -> dict[str, float]:
    s = config["data_fraction"]
    loss = (0.05 * abs(math.log10(config["lr"]) + 2.5) + 0.1 * config["dropout"]
            + 0.02 * (config["batch_size"] == 128) + 0.3 * (1 - s) ** 2 + 0.01 * config["num_layers"])
    cost = 0.5 + 20.0 * s * config["hidden_width"] / 128
    params = config["hidden_width"] * (config["num_layers"] + 1) / 1000
    return {"val_loss": loss, "params": params, "time_total_s": cost}


def suggest_latencies(
    observations: int, repeats: int, warmup: int = 3, acquisition: str = "mes", seed: int = 0
) -> tuple[list[float], list[float]]:
    """Wall and CPU seconds per ``suggest`` for ``repeats`` model-based suggestions after ``observations`` results.

    CPU time (this process) is the figure to compare on a shared machine, where wall time also
    counts the waits for a core.
    """
    from ray import tune

    from searchers.fabolas import FabolasSearch

    space = {
        "lr": tune.loguniform(1e-4, 3e-1), "hidden_width": tune.lograndint(8, 257),
        "num_layers": tune.randint(1, 4), "dropout": tune.uniform(0.0, 0.6),
        "batch_size": tune.choice([16, 32, 64, 128]),
    }
    several = acquisition == "hvkg"
    searcher = FabolasSearch(space, metric=["val_loss", "params"] if several else "val_loss",
                             mode=["min", "min"] if several else "min", num_initial=observations, seed=seed,
                             acquisition=acquisition)
    wall, cpu = [], []
    for index in range(observations + warmup + repeats):
        started, started_cpu = time.perf_counter(), time.process_time()
        config = searcher.suggest(f"t{index}")
        if index >= observations + warmup:
            wall.append(time.perf_counter() - started)
            cpu.append(time.process_time() - started_cpu)
        searcher.on_trial_complete(f"t{index}", _result(config))
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--observations", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--acquisition", default="mes", choices=["mes", "kg", "hvkg"])
    args = parser.parse_args()
    wall, cpu = suggest_latencies(args.observations, args.repeats, acquisition=args.acquisition)
    print(json.dumps({
        "observations": args.observations, "acquisition": args.acquisition,
        "median_wall_s": round(statistics.median(wall), 3), "max_wall_s": round(max(wall), 3),
        "median_cpu_s": round(statistics.median(cpu), 3), "max_cpu_s": round(max(cpu), 3),
        "wall_s": [round(value, 3) for value in wall],
    }))


if __name__ == "__main__":
    main()
