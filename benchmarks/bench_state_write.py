"""What writing the experiment state at every Tune controller step costs, against Tune's 10 s timer.

``orchestrator.run`` sets ``TUNE_GLOBAL_CHECKPOINT_S=0`` so that a killed driver loses nothing
(see ``orchestrator.run.TUNE_ENVIRONMENT``). This runs the demo experiment (digits MLPs, a
checkpoint every epoch, ASHA; local Ray) under both settings, side by side, and prints the
driver's wall and CPU seconds: the state writes happen in the driver, the trials' own processes
are not counted.

Example: ``python -m benchmarks.bench_state_write --method ax-mobo --trials 12``
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from typing import Any

from orchestrator.run import TUNE_ENVIRONMENT

def measure(period: str, method: str, trials: int, epochs: int) -> dict[str, Any]:
    """Run the experiment with ``TUNE_GLOBAL_CHECKPOINT_S=period``; driver wall and CPU seconds."""
    import os

    from orchestrator.demo import demo_experiment
    from orchestrator.run import run

    with tempfile.TemporaryDirectory() as folder:
        experiment = demo_experiment(num_trials=trials, epochs=epochs, storage_path=folder, method=method)
        os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = period
        started_wall, started_cpu = time.perf_counter(), _cpu_seconds()
        try:
            result = run(experiment)
        finally:
            del os.environ["TUNE_GLOBAL_CHECKPOINT_S"]
        wall, cpu = time.perf_counter() - started_wall, _cpu_seconds() - started_cpu
        return {
            "TUNE_GLOBAL_CHECKPOINT_S": period,
            "method": method,
            "trials": len(result.results),
            "completed": int((result.results["status"] == "completed").sum()),
            "driver_wall_s": round(wall, 1),
            "driver_cpu_s": round(cpu, 2),
        }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="ax-mobo")
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each setting, interleaved")
    args = parser.parse_args(argv)
    import ray

    ray.init(include_dashboard=False, num_cpus=2)
    measure("auto", args.method, 2, 1)  # warm-up: imports and the first worker processes
    settings = ("auto", TUNE_ENVIRONMENT["TUNE_GLOBAL_CHECKPOINT_S"])
    rows = [measure(period, args.method, args.trials, args.epochs) for _ in range(args.repeats) for period in settings]
    for row in rows:
        print(json.dumps(row))
    mean = {period: {key: statistics.mean(r[key] for r in rows if r["TUNE_GLOBAL_CHECKPOINT_S"] == period)
                     for key in ("driver_cpu_s", "driver_wall_s")} for period in settings}
    base, ours = (mean[period] for period in settings)
    print(json.dumps({
        "mean_driver_cpu_s": {period: round(mean[period]["driver_cpu_s"], 2) for period in settings},
        "mean_driver_wall_s": {period: round(mean[period]["driver_wall_s"], 2) for period in settings},
        "driver_cpu_ratio": round(ours["driver_cpu_s"] / max(base["driver_cpu_s"], 1e-9), 2),
        "driver_wall_ratio": round(ours["driver_wall_s"] / max(base["driver_wall_s"], 1e-9), 2),
    }))


if __name__ == "__main__":
    main()
