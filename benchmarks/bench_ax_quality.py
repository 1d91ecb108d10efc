"""Hypervolume of ``ax-mobo`` before and after a change of its options, in a plain Ray Tune run.

Each run is a ``tune.Tuner`` over BoTorch's two-objective test problems (ZDT1, ZDT2 and DTLZ2
with 6 parameters in [0, 1], both objectives minimised): ``--trials`` trials, 2 at a time, one
searcher per (setting, problem, seed), every setting on the same seeds. The hypervolume is
BoTorch's, from the problem's own reference point, over the trials' final results.

The settings (``--settings``, the first is the baseline):

- ``before``: ``ax-mobo`` as it was before background mode: Ax's default acquisition budget,
  every suggestion computed in ``suggest`` (``background=False``);
- ``after``: ``ax-mobo`` as the catalogue builds it now (background mode, Ax's defaults);
- ``cheap``: ``after`` with the method's ``cheap_options`` (what the demo runs).

    python -m benchmarks.bench_ax_quality --seeds 3 --trials 24

It prints one table row per problem and setting (hypervolume mean and std over seeds, the
ratio to the baseline's mean, the seconds per run) and, as its last line, a JSON summary.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import warnings
from typing import Any

import numpy as np

PROBLEMS = ("zdt1", "zdt2", "dtlz2")
SETTINGS = ("before", "after", "cheap")
DIMENSIONS = 6


def two_objective_problem(name: str) -> Any:
    """The BoTorch test function (minimisation form) called ``name``."""
    from botorch.test_functions.multi_objective import DTLZ2, ZDT1, ZDT2

    classes = {"zdt1": ZDT1, "zdt2": ZDT2, "dtlz2": DTLZ2}
    return classes[name](dim=DIMENSIONS, num_objectives=2)


def setting_options(setting: str) -> dict[str, Any]:
    """The searcher options of ``setting`` over the ``ax-mobo`` method's defaults."""
    from orchestrator.methods import get_method

    if setting == "before":
        return {"background": False}
    if setting == "after":
        return {}
    return dict(get_method("ax-mobo").cheap_options)


def final_hypervolume(values: np.ndarray, problem: Any) -> float:
    """Hypervolume dominated by minimised ``values`` (``n x 2``) below the problem's reference point."""
    from multiobjective import hypervolume

    reference = np.asarray(problem.ref_point, dtype=float)  # BoTorch's, in maximisation form
    return hypervolume(-values, -np.abs(reference))


def run_once(problem_name: str, setting: str, seed: int, trials: int, storage: str) -> dict[str, Any]:
    """One Tuner run; its hypervolume and wall time."""
    import torch
    from ray import tune

    from multiobjective import Objectives
    from orchestrator.methods import SearchProblem, build_searcher

    problem = two_objective_problem(problem_name)

    def trainable(config: dict) -> None:
        x = torch.tensor([[config[f"x{i}"] for i in range(DIMENSIONS)]], dtype=torch.double)
        f1, f2 = problem(x)[0].tolist()
        tune.report({"f1": f1, "f2": f2})

    space = {f"x{i}": tune.uniform(0.0, 1.0) for i in range(DIMENSIONS)}
    search = SearchProblem(space, Objectives.from_spec({"f1": "min", "f2": "min"}), seed=seed, max_concurrent=2)
    searcher = build_searcher("ax-mobo", search, **setting_options(setting))
    started = time.perf_counter()
    grid = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=trials, max_concurrent_trials=2, reuse_actors=True),
        run_config=tune.RunConfig(name=f"{problem_name}_{setting}_{seed}", storage_path=storage, verbose=0),
    ).fit()
    wall = time.perf_counter() - started
    frame = grid.get_dataframe()
    values = frame[["f1", "f2"]].dropna().to_numpy(dtype=float)
    return {"hypervolume": final_hypervolume(values, problem), "wall_s": wall, "trials": len(values)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", nargs="+", choices=PROBLEMS, default=list(PROBLEMS))
    parser.add_argument("--settings", nargs="+", choices=SETTINGS, default=["before", "after", "cheap"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--trials", type=int, default=24)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    import ray

    ray.init(address="local", num_cpus=3, include_dashboard=False, log_to_driver=False)
    results: dict[str, dict[str, list[dict[str, Any]]]] = {}
    with tempfile.TemporaryDirectory() as storage:
        for problem_name in args.problems:
            for setting in args.settings:
                runs = []
                for seed in range(args.seeds):
                    runs.append(run_once(problem_name, setting, seed, args.trials, storage))
                    print(f"# {problem_name} {setting} seed {seed}: {json.dumps(runs[-1])}", file=sys.stderr, flush=True)
                results.setdefault(problem_name, {})[setting] = runs
    ray.shutdown()

    print(f"| problem | setting | hypervolume (mean ± std over {args.seeds} seeds) | vs {args.settings[0]} | s / run |")
    print("|---|---|---|---|---|")
    summary: dict[str, Any] = {}
    for problem_name, by_setting in results.items():
        baseline = statistics.mean(run["hypervolume"] for run in by_setting[args.settings[0]])
        for setting, runs in by_setting.items():
            volumes = [run["hypervolume"] for run in runs]
            mean, spread = statistics.mean(volumes), statistics.pstdev(volumes)
            seconds = statistics.mean(run["wall_s"] for run in runs)
            print(f"| {problem_name} | {setting} | {mean:.4f} ± {spread:.4f} | {mean / baseline:.4f} | {seconds:.0f} |")
            summary.setdefault(problem_name, {})[setting] = {
                "hypervolume": volumes, "mean": mean, "ratio": mean / baseline, "wall_s": seconds,
            }
    print(json.dumps({"trials": args.trials, "seeds": args.seeds, "problems": summary}))


if __name__ == "__main__":
    main()
