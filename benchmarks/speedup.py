"""How much cheaper a method reaches what full-fidelity BO reaches: ``python -m benchmarks speedup``.

For each seed, the baseline (``gp-bo`` by default: GP BO with every evaluation at full data) runs
``baseline_budget`` trials; its *target* is the best value it found. The method then runs until
it has spent as much simulated training cost as the baseline did (or ``budget`` trials). After
each finished trial a run's *value* is

* for the baseline, the best value it has evaluated (all at full fidelity);
* for the method, the true full-fidelity value of its incumbent, queried from the blackbox
  without charging cost, as the Fabolas paper evaluates incumbents. The incumbent is
  ``searcher.incumbent()`` when the searcher has one (``FabolasSearch``), else the configuration
  with the best reported value at the highest fidelity any trial reached so far (random search,
  Hyperband).

With two objectives (a blackbox made with two ``objectives``) a run's value is the hypervolume
of the true full-fidelity values of the configurations it recommends: for a searcher with a
``pareto_set()`` (``FabolasSearch``), those; otherwise the configurations whose reported values
are Pareto-optimal among the trials at the highest fidelity reached so far. Hypervolume is taken
in the objectives normalised by the blackbox's bounds (:func:`benchmarks.metrics.normalise_objectives`,
reference at the worst corner), so it lies in ``[0, 1]`` and is maximised. A recommended set
can lose volume when a member turns out worse at full data than predicted.

``cost-to-target`` is the cumulative training cost (trials in completion order) when the value
first reaches the target, and the seed's speed-up is ``baseline cost-to-target / method
cost-to-target`` (0 when the method never reaches it). The summary's ``speedup`` is the median
over seeds (``null`` when no seed reaches the target) and ``reached`` the share of seeds that do.

The target is met exactly by default. Where the optimum is a plateau, being within a hair of it
says more than meeting it to the last digit: ``tolerance`` (``--tolerance``) counts a value as
reaching the target once it is within ``tolerance * |target|`` of it, for the baseline and the
methods alike. ``--traces`` recomputes the table from a traces CSV written by ``--out``, without
running anything.

Example:
    python -m benchmarks speedup --benchmark yahpo:iaml_glmnet --data ../shared/benchmarks \\
        --instance 40981 --method fabolas --baseline gp-bo --seeds 5 --out benchmarks/results/fabolas
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ray.tune.search import Searcher

from benchmarks._delegating import DelegatingSearcher
from benchmarks.metrics import normalise_objectives
from benchmarks.runner import scheduler_for, search_problem
from benchmarks.simulator import SimulatedCluster
from benchmarks.summary import check_positive_int
from multiobjective import Objectives, hypervolume, pareto_mask
from orchestrator.methods import build_searcher

__all__ = [
    "IncumbentTracer",
    "cost_to_target",
    "plot_speedup",
    "read_traces",
    "run_traced",
    "speedup_rows",
    "speedup_study",
    "speedup_table",
    "value_mode",
]

Progress = Callable[[str], None]


def value_mode(blackbox: Any) -> str:
    """Direction of a trace's value: the objective's with one objective, ``"max"`` (hypervolume) with several."""
    objectives = blackbox.objectives
    return next(iter(objectives.values())) if len(objectives) == 1 else "max"


class IncumbentTracer(DelegatingSearcher):
    """Wraps a searcher: forwards every hook, snapshots what it recommends after each result, stops at a cost.

    What it recommends: ``incumbent()`` (one objective) or ``pareto_set()`` (``several=True``),
    when the searcher has it.

    Args:
        searcher: The wrapped ``Searcher``.
        cost_limit: Once the finished trials' ``time_total_s`` add up to this, ``suggest``
            returns ``Searcher.FINISHED`` (``None``: no limit).
        trace_incumbent: Whether to ask the searcher for its recommendation after each result.
        several: Whether the problem has several objectives.
    """

    def __init__(
        self, searcher: Searcher, cost_limit: float | None = None, trace_incumbent: bool = True, several: bool = False
    ) -> None:
        super().__init__(searcher)
        self.cost_limit = cost_limit
        self.trace_incumbent = trace_incumbent
        self.several = several
        self.spent = 0.0
        # trial_id -> the recommended configs after it (None: nothing recommended yet)
        self.incumbents: dict[str, list[dict[str, Any]] | None] = {}

    def suggest(self, trial_id: str) -> dict | str | None:
        if self.cost_limit is not None and self.spent >= self.cost_limit:
            return Searcher.FINISHED
        return self.searcher.suggest(trial_id)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        self.searcher.on_trial_complete(trial_id, result=result, error=error)
        if result:
            self.spent += float(result.get("time_total_s", 0.0))
        if not self.trace_incumbent:
            return
        if self.several:
            pareto_set = getattr(self.searcher, "pareto_set", None)
            if callable(pareto_set):
                self.incumbents[trial_id] = [dict(member.config) for member in pareto_set()] or None
            return
        incumbent = getattr(self.searcher, "incumbent", None)
        if callable(incumbent):
            found = incumbent()
            self.incumbents[trial_id] = None if found is None else [dict(found.config)]


def run_traced(
    blackbox: Any,
    method: str,
    *,
    seed: int,
    budget: int,
    workers: int = 1,
    cost_limit: float | None = None,
    use_incumbent: bool = True,
) -> pd.DataFrame:
    """One simulated run of ``method`` and its trace: one row per finished trial, in completion order.

    Columns: ``trial_order``, ``fidelity``, ``cost`` (this trial), ``cumulative_cost``,
    ``observed`` (its reported objective; with several objectives, the first) and ``value`` (the
    true full-fidelity value of the run's incumbent after it, or with several objectives the
    normalised hypervolume of its recommended set's true values; NaN before there is one).
    ``use_incumbent=False`` takes the best evaluated configuration(s) even when the searcher
    recommends some (the baseline).
    """
    scheduler = scheduler_for(blackbox, method)
    problem = search_problem(
        blackbox, seed=seed, workers=workers, max_t=None if scheduler is None else scheduler.max_t
    )
    objectives = Objectives.from_spec(blackbox.objectives)
    several = len(objectives) > 1
    tracer = IncumbentTracer(
        build_searcher(method, problem), cost_limit=cost_limit, trace_incumbent=use_incumbent, several=several
    )
    cluster = SimulatedCluster(
        blackbox, tracer, scheduler=None if scheduler is None else scheduler.build(),
        num_workers=workers, max_trials=budget, seed=seed,
    )
    history = cluster.run()
    name, mode = next(iter(blackbox.objectives.items()))
    config_columns = [c for c in history.columns if c.startswith("config/")]
    true_values: dict[str, np.ndarray] = {}

    def true_value(config: dict[str, Any]) -> np.ndarray:
        key = json.dumps(config, sort_keys=True, default=str)
        if key not in true_values:
            result = blackbox.evaluate(config, None)
            true_values[key] = np.array([float(result[n]) for n in objectives.names])
        return true_values[key]

    def value_of(configs: list[dict[str, Any]]) -> float:
        truth = np.array([true_value(config) for config in configs])
        if not several:
            return float(truth[:, 0].max() if mode == "max" else truth[:, 0].min())
        return hypervolume(normalise_objectives(truth, blackbox), np.zeros(len(objectives)))

    values = []
    evaluated: list[tuple[float, np.ndarray, dict[str, Any]]] = []  # (fidelity, signed values, config)
    for _, row in history.iterrows():
        observed = np.array([row[n] for n in objectives.names], dtype=float)
        fidelity = row["fidelity"]
        config = {c[len("config/"):]: row[c] for c in config_columns if not _missing(row[c])}
        if np.isfinite(observed).all():
            fidelity = 1.0 if _missing(fidelity) else float(fidelity)
            evaluated.append((fidelity, objectives.to_maximisation(observed[None, :])[0], config))
        traced = tracer.incumbents.get(row["trial_id"], False)
        if traced is False:  # the best evaluated configuration(s) at the highest fidelity reached
            top = max((f for f, _, _ in evaluated), default=None)
            level = [(v, c) for f, v, c in evaluated if f == top]
            if not several and level:
                level = [max(level, key=lambda item: item[0][0])]
            traced = None if not level else [
                c for (v, c), keep in zip(level, pareto_mask(np.array([v for v, _ in level]))) if keep
            ]
        values.append(math.nan if traced is None else value_of(traced))
    trace = pd.DataFrame({
        "trial_order": history["trial_order"],
        "fidelity": history["fidelity"],
        "cost": history["cost"],
        "cumulative_cost": history["cost"].cumsum(),
        "observed": history[name],
        "value": values,
    })
    trace.attrs.update(
        method=method, seed=seed, objective="hypervolume" if several else name, mode=value_mode(blackbox)
    )
    return trace


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def cost_to_target(trace: pd.DataFrame, target: float, mode: str, tolerance: float = 0.0) -> float | None:
    """Cumulative cost when ``trace.value`` first comes within ``tolerance * |target|`` of ``target`` (``None``: never).

    Example:
        >>> trace = pd.DataFrame({"cumulative_cost": [1.0, 3.0, 6.0], "value": [0.5, 0.8, 0.9]})
        >>> cost_to_target(trace, 0.8, "max"), cost_to_target(trace, 0.95, "max")
        (3.0, None)
        >>> cost_to_target(trace, 0.95, "max", tolerance=0.1)
        6.0
    """
    values = trace["value"].to_numpy(dtype=float)
    slack = tolerance * abs(target) + 1e-12
    reached = values >= target - slack if mode == "max" else values <= target + slack
    hits = np.flatnonzero(reached & np.isfinite(values))
    return None if hits.size == 0 else float(trace["cumulative_cost"].iloc[hits[0]])


def speedup_study(
    blackbox: Any,
    methods: Sequence[str],
    baseline: str = "gp-bo",
    *,
    seeds: int,
    budget: int = 200,
    baseline_budget: int = 50,
    workers: int = 1,
    tolerance: float = 0.0,
    progress: Progress | None = None,
) -> tuple[pd.DataFrame, dict[str, list[pd.DataFrame]]]:
    """Per-seed speed-ups of ``methods`` over ``baseline``, and every run's trace.

    Returns:
        ``(table, traces)``: :func:`speedup_rows` of the traces, and ``{name: [trace per seed]}``
        with the baseline under its own name.
    """
    check_positive_int("seeds", seeds)
    check_positive_int("budget", budget)
    check_positive_int("baseline_budget", baseline_budget)
    tolerance = _check_tolerance(tolerance)
    if baseline in methods:
        raise ValueError(f"--method: {baseline!r} is also the baseline; name the other methods (the baseline always runs).")
    mode = value_mode(blackbox)
    traces: dict[str, list[pd.DataFrame]] = {baseline: [], **{m: [] for m in methods}}
    for seed in range(seeds):
        base = run_traced(blackbox, baseline, seed=seed, budget=baseline_budget, workers=workers, use_incumbent=False)
        traces[baseline].append(base)
        target = float(base["value"].iloc[-1])
        base_total = float(base["cumulative_cost"].iloc[-1])
        if progress:
            base_cost = cost_to_target(base, target, mode, tolerance)
            progress(f"seed {seed}: {baseline} target {target:.5g} at cost {base_cost:.4g} of {base_total:.4g}")
        for method in methods:
            trace = run_traced(blackbox, method, seed=seed, budget=budget, workers=workers, cost_limit=base_total)
            traces[method].append(trace)
            if progress:
                reached = cost_to_target(trace, target, mode, tolerance)
                progress(f"seed {seed}: {method} reached {'never' if reached is None else f'at cost {reached:.4g}'}"
                         f" ({len(trace)} trials)")
    return speedup_rows(traces, baseline, mode, tolerance), traces


def speedup_rows(
    traces: dict[str, list[pd.DataFrame]], baseline: str, mode: str, tolerance: float = 0.0
) -> pd.DataFrame:
    """One row per method and seed: ``target`` (the baseline's final value), ``baseline_cost_to_target``,
    ``baseline_total_cost``, ``cost_to_target``, ``total_cost``, ``trials``, ``final_value``, ``speedup``.

    ``traces`` maps each method (the baseline included) to one trace per seed, seed order.
    """
    tolerance = _check_tolerance(tolerance)
    rows = []
    for seed, base in enumerate(traces[baseline]):
        target = float(base["value"].iloc[-1])
        base_cost = cost_to_target(base, target, mode, tolerance)
        base_total = float(base["cumulative_cost"].iloc[-1])
        for method, runs in traces.items():
            if method == baseline:
                continue
            trace = runs[seed]
            reached = cost_to_target(trace, target, mode, tolerance)
            rows.append({
                "method": method, "seed": seed, "target": target,
                "baseline_cost_to_target": base_cost, "baseline_total_cost": base_total,
                "cost_to_target": reached, "total_cost": float(trace["cumulative_cost"].iloc[-1]),
                "trials": len(trace), "final_value": float(trace["value"].iloc[-1]),
                "speedup": 0.0 if reached is None else base_cost / max(reached, 1e-12),
            })
    return pd.DataFrame(rows)


def read_traces(path: str | Path, baseline: str) -> dict[str, list[pd.DataFrame]]:
    """The traces a ``--out`` run wrote (``*_traces.csv``), as :func:`speedup_study` returns them."""
    frame = pd.read_csv(path)
    missing = {"method", "seed", "value", "cumulative_cost"} - set(frame.columns)
    if missing:
        raise ValueError(f"--traces {path}: no column(s) {sorted(missing)}; give a *_traces.csv written by --out.")
    if baseline not in set(frame["method"]):
        raise ValueError(
            f"--traces {path}: holds no run of the baseline {baseline!r} (it has {sorted(set(frame['method']))}); "
            "pass --baseline with the method that set the targets."
        )
    order = [baseline] + [m for m in dict.fromkeys(frame["method"]) if m != baseline]
    return {
        method: [runs.drop(columns=["method", "seed"]).reset_index(drop=True)
                 for _, runs in frame[frame["method"] == method].groupby("seed", sort=True)]
        for method in order
    }


def _check_tolerance(tolerance: float) -> float:
    if not (isinstance(tolerance, (int, float)) and not isinstance(tolerance, bool) and 0 <= tolerance < 1):
        raise ValueError(f"tolerance: got {tolerance!r}; use a relative tolerance in [0, 1), e.g. 0.001.")
    return float(tolerance)


def speedup_table(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """``{method: {"speedup": median over seeds or None, "reached": share of seeds, ...}}``.

    A seed that never reaches the target counts as speed-up 0, so the median is ``None`` only
    when no seed reaches it.

    Example:
        >>> table = pd.DataFrame({"method": ["m"] * 3, "speedup": [4.0, 0.0, 2.0],
        ...                       "cost_to_target": [1.0, None, 2.0], "final_value": [0.9, 0.7, 0.8]})
        >>> speedup_table(table)["m"]["speedup"], round(speedup_table(table)["m"]["reached"], 3)
        (2.0, 0.667)
    """
    summary = {}
    for method, rows in table.groupby("method", sort=False):
        reached = rows["cost_to_target"].notna()
        summary[method] = {
            "speedup": float(rows["speedup"].median()) if reached.any() else None,
            "reached": float(reached.mean()),
            "speedups": [round(float(v), 4) for v in rows["speedup"]],
            "median_final_value": float(rows["final_value"].median()),
            "seeds": int(len(rows)),
        }
    return summary


def plot_speedup(traces: dict[str, list[pd.DataFrame]], path: str | Path, title: str = "") -> Path:
    """Median (over seeds) incumbent value against cumulative cost, one line per method; saved to ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, runs in traces.items():
        if not runs:
            continue
        grid = np.geomspace(
            max(min(r["cumulative_cost"].iloc[0] for r in runs), 1e-6),
            max(r["cumulative_cost"].iloc[-1] for r in runs), 200,
        )
        curves = []
        for run in runs:
            index = np.searchsorted(run["cumulative_cost"].to_numpy(), grid, side="right") - 1
            values = run["value"].to_numpy(dtype=float)
            curves.append(np.where(index >= 0, values[np.clip(index, 0, None)], np.nan))
        with np.errstate(all="ignore"):
            median = np.nanmedian(np.array(curves), axis=0) if len(curves) > 1 else curves[0]
        axis.plot(grid, median, label=f"{name} ({len(runs)} seeds)")
    axis.set_xscale("log")
    axis.set_xlabel("cumulative training cost (simulated seconds)")
    mode = next(iter(traces.values()))[0].attrs.get("mode", "max") if traces else "max"
    objective = next(iter(traces.values()))[0].attrs.get("objective", "value") if traces else "value"
    if objective == "hypervolume":
        axis.set_ylabel("hypervolume (normalised) of the recommended set's true full-fidelity values")
    else:
        axis.set_ylabel(f"true full-fidelity {objective} of the incumbent ({mode})")
    axis.set_title(title)
    axis.legend()
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
