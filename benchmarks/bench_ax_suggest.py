"""Median ``AxMultiObjectiveSearch.suggest`` latency at a given number of observations.

Side by side in one run, on the same warm-started observations:

1. Ax's ``Client`` defaults (BoTorch's 20 restarts and 1024 raw samples, PyTorch's threads);
2. the same with one torch thread;
3. the cheaper ``acquisition_options`` of the ``ax-mobo`` method, computed in ``suggest``
   (``background=False``, the reproducible mode): the model step itself;
4. ``ax-mobo`` as the catalogue builds it (background mode): ``suggest`` as Tune sees it when each
   trial runs ``--trial-seconds`` between its suggestion and its result, with 2 trials at a time.

Problems: ``demo`` (the demo's space: 2 integer, 1 categorical, 2 continuous parameters; three
objectives) or ``zdt1`` (6 continuous parameters, BoTorch's ZDT1, two objectives). No Ray
processes are started.

    python -m benchmarks.bench_ax_suggest --problem zdt1 --observations 100 --repeats 5
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from typing import Any, Callable

import numpy as np
import pandas as pd

def _demo_objectives(config: dict[str, Any], rng: np.random.Generator) -> dict[str, float]:
    width, layers = config["hidden_width"], config["num_layers"]
    accuracy = 0.97 - 0.02 * abs(np.log10(config["lr"]) + 2.5) - 0.05 * config["dropout"] + rng.normal(0, 0.005)
    return {
        "val_accuracy": float(accuracy),
        "latency_us": float(0.3 + width * layers / 200 + rng.normal(0, 0.02)),
        "num_params": float(64 * width + (layers - 1) * width**2 + 10 * width),
    }


def _zdt1_objectives(config: dict[str, Any], rng: np.random.Generator) -> dict[str, float]:
    import torch
    from botorch.test_functions.multi_objective import ZDT1

    x = torch.tensor([[config[f"x{i}"] for i in range(6)]], dtype=torch.double)
    f1, f2 = ZDT1(dim=6)(x)[0].tolist()
    return {"f1": f1, "f2": f2}


def _problem(name: str) -> tuple[dict[str, Any], list[str], list[str], Callable]:
    from ray import tune

    if name == "zdt1":
        return {f"x{i}": tune.uniform(0.0, 1.0) for i in range(6)}, ["f1", "f2"], ["min", "min"], _zdt1_objectives
    space = {
        "hidden_width": tune.randint(16, 257),
        "num_layers": tune.randint(1, 5),
        "lr": tune.loguniform(1e-4, 1e-1),
        "batch_size": tune.choice([16, 32, 64, 128]),
        "dropout": tune.uniform(0.0, 0.5),
    }
    return space, ["val_accuracy", "latency_us", "num_params"], ["max", "min", "min"], _demo_objectives


def suggest_latencies(
    observations: int,
    repeats: int,
    acquisition_options: dict | None,
    seed: int = 0,
    torch_threads: int | None = 1,
    problem: str = "demo",
    background: bool = False,
    trial_seconds: float = 0.0,
) -> list[float]:
    """Seconds per ``suggest`` for ``repeats`` suggestions after ``observations`` completed trials.

    Two trials run at a time: each timed ``suggest`` follows the result of the oldest running
    trial, ``trial_seconds`` after the previous suggestion (the time the trials ran).
    """
    from searchers import AxMultiObjectiveSearch

    space, metric, mode, objectives = _problem(problem)
    rng = np.random.default_rng(seed)
    # Observations come from random warm-start rows so every setting sees the same data.
    sampler = np.random.default_rng(seed + 1)
    rows = []
    for _ in range(observations):
        config = {name: domain.sample(random_state=sampler) for name, domain in space.items()}
        rows.append({**config, **objectives(config, rng)})
    searcher = AxMultiObjectiveSearch(
        space,
        metric=metric,
        mode=mode,
        seed=seed,
        warm_start=pd.DataFrame(rows),
        acquisition_options=acquisition_options,
        torch_threads=torch_threads,
        max_concurrent=2,
        background=background,
    )
    running = [(name, searcher.suggest(name)) for name in ("warm_0", "warm_1")]
    latencies = []
    for index in range(repeats):
        time.sleep(trial_seconds)
        name, config = running.pop(0)
        result = {**objectives(config, rng), "training_iteration": 1}
        searcher.on_trial_result(name, result)
        searcher.on_trial_complete(name, result)
        start = time.perf_counter()
        config = searcher.suggest(f"bench_{index}")
        latencies.append(time.perf_counter() - start)
        running.append((f"bench_{index}", config))
    return latencies


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problem", choices=("demo", "zdt1"), default="demo")
    parser.add_argument("--observations", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--trial-seconds", type=float, default=5.0,
                        help="time each trial runs in the background-mode row (default 5)")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    import torch

    from orchestrator.methods import get_method

    cheap = get_method("ax-mobo").cheap_options["acquisition_options"]
    print(f"problem={args.problem} observations={args.observations} repeats={args.repeats}")
    rows = [
        (f"Ax Client defaults, torch threads={torch.get_num_threads()}", {"acquisition_options": None, "torch_threads": None}),
        ("Ax defaults, torch threads=1", {"acquisition_options": None}),
        ("ax-mobo options, computed in suggest (background=False)", {"acquisition_options": cheap}),
        (f"ax-mobo options, background (trials of {args.trial_seconds:g} s)",
         {"acquisition_options": cheap, "background": True, "trial_seconds": args.trial_seconds}),
    ]
    medians = []
    for label, options in rows:
        latencies = suggest_latencies(args.observations, args.repeats, problem=args.problem, **options)
        medians.append(statistics.median(latencies))
        print(f"{label}: median suggest {medians[-1]:.3f} s, max {max(latencies):.3f} s "
              f"({medians[-1] / medians[0]:.3f}x the first row)")


if __name__ == "__main__":
    main()
