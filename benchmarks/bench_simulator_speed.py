"""Wall time of a large simulated study: ASHA + random search, 10,000 trials on 64 workers.

The blackbox is synthetic and nearly free to evaluate, so the time measured is the simulator's
own overhead plus Ray's ASHA and the searcher (target: well under 60 s).

Example: ``python -m benchmarks.bench_simulator_speed --trials 10000 --workers 64``
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field

import pandas as pd
from ray import tune
from ray.tune.schedulers import ASHAScheduler

from benchmarks.simulator import SimulatedCluster
from searchers.random_search import RandomSearch


@dataclass
class _EpochFidelity:
    """Duck-typed ``benchmarks.blackboxes.base.Fidelity`` (epochs 1..max_epochs)."""

    max_epochs: int
    name: str = "epoch"
    kind: str = "epoch"
    steps: list[float] = field(init=False)

    def __post_init__(self) -> None:
        self.steps = [float(epoch) for epoch in range(1, self.max_epochs + 1)]
        self.min, self.max = self.steps[0], self.steps[-1]


class SyntheticCurveBlackbox:
    """Cheap learning curves: ``accuracy(lr, width, e) = q(lr, width) * (1 - exp(-e / 4))``.

    ``q`` peaks at ``lr = 1e-2``; one epoch costs ``1 + width / 256`` simulated seconds, so the
    second objective ``params`` trades off against accuracy.
    """

    name = "synthetic-curves"
    instance = "default"
    objectives = {"accuracy": "max", "params": "min"}

    def __init__(self, max_epochs: int = 27) -> None:
        self.fidelity = _EpochFidelity(max_epochs)

    def search_space(self) -> dict:
        return {"lr": tune.loguniform(1e-4, 1.0), "width": tune.randint(8, 512)}

    def evaluate(self, config: dict, fidelity: float | None = None) -> dict[str, float]:
        epochs = self.fidelity.max if fidelity is None else fidelity
        quality = math.exp(-((math.log10(config["lr"]) + 2.0) ** 2)) * (0.6 + 0.4 * config["width"] / 512)
        return {
            "accuracy": quality * (1.0 - math.exp(-epochs / 4.0)),
            "params": float(config["width"]) * 1000.0,
            "cost": epochs * (1.0 + config["width"] / 256.0),
        }

    def candidates(self) -> None:
        return None


def simulate(num_trials: int, num_workers: int, seed: int = 0) -> tuple[float, pd.DataFrame]:
    """Runs the study and returns (wall seconds of ``SimulatedCluster.run``, its history)."""
    blackbox = SyntheticCurveBlackbox()
    searcher = RandomSearch(blackbox.search_space(), seed=seed)
    scheduler = ASHAScheduler(max_t=27, grace_period=1, reduction_factor=3)
    cluster = SimulatedCluster(
        blackbox,
        searcher,
        scheduler=scheduler,
        num_workers=num_workers,
        max_trials=num_trials,
        seed=seed,
    )
    start = time.perf_counter()
    history = cluster.run()
    return time.perf_counter() - start, history


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    wall, history = simulate(args.trials, args.workers, args.seed)
    print(
        f"{len(history)} trials ({int(history['training_iteration'].sum())} results) on "
        f"{args.workers} workers: {wall:.2f} s wall, "
        f"{history['end_time'].max():.0f} s simulated; "
        f"status counts {history['status'].value_counts().to_dict()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
