"""Summaries of simulated runs: per-trial curves, mean ± std over seeds, the JSON summary and its table.

A *history* is the simulator's table of one run (one row per finished trial, see
:meth:`benchmarks.simulator.SimulatedCluster.run`). :func:`history_curves` turns it into the
curves the metrics are read from; :func:`summarize` aggregates the runs of one method over seeds;
:func:`benchmark_summary` is the JSON object that ``python -m benchmarks run`` prints last.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.metrics import (
    best_value_curve,
    expected_random_iterations_to_all,
    full_evaluation_mask,
    hypervolume_curve,
    iterations_to_all,
    known_hypervolume,
    pareto_found_curve,
)

__all__ = [
    "benchmark_summary",
    "check_positive_int",
    "effective_budget",
    "format_mean_std",
    "history_curves",
    "json_ready",
    "mean_std",
    "random_expectation",
    "summarize",
    "suggest_latency_ms",
    "summary_table",
]


def check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}={value!r} must be an integer >= 1.")
    return int(value)


def effective_budget(blackbox: Any, budget: int) -> int:
    """``min(budget, pool size)`` for finite pools, else ``budget``."""
    budget = check_positive_int("budget", budget)
    candidates = blackbox.candidates() if callable(getattr(blackbox, "candidates", None)) else None
    return budget if candidates is None else min(budget, len(candidates))


def history_curves(history: pd.DataFrame, blackbox: Any) -> pd.DataFrame:
    """Per finished trial: ``iteration``, ``cost`` (cumulative), ``pareto_found``, ``hypervolume``, ``best_value``.

    ``pareto_found`` needs a known front, ``hypervolume`` objective bounds and ``best_value``
    (of the first objective, full evaluations only) nothing; missing ones are NaN.
    """
    curves = pd.DataFrame({"iteration": np.arange(1, len(history) + 1)})
    cost = pd.to_numeric(history["cost"], errors="coerce").fillna(0.0) if "cost" in history else 0.0
    curves["cost"] = np.cumsum(np.asarray(cost, dtype=float)) if len(history) else []
    if blackbox.known_pareto_indices() is not None and "candidate_index" in history:
        curves["pareto_found"] = pareto_found_curve(history, blackbox)
    else:
        curves["pareto_found"] = np.nan
    objective, mode = next(iter(blackbox.objectives.items()))
    full_only = pd.DataFrame({objective: pd.to_numeric(history[objective], errors="coerce")})
    full_only.loc[~full_evaluation_mask(history, blackbox), objective] = np.nan
    curves["best_value"] = best_value_curve(full_only, objective, mode)
    bounds = blackbox.objective_bounds() if callable(getattr(blackbox, "objective_bounds", None)) else None
    if bounds is None or not len(history):
        curves["hypervolume"] = np.nan
    else:
        curves["hypervolume"] = hypervolume_curve(history, blackbox)
    return curves


def mean_std(values: Sequence[float | None]) -> tuple[float | None, float | None]:
    """Mean and sample standard deviation (0 for one value) of the finite ``values``; ``(None, None)`` if none."""
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return None, None
    return float(np.mean(finite)), float(np.std(finite, ddof=1)) if len(finite) > 1 else 0.0


def _per_seed(history: pd.DataFrame, blackbox: Any) -> dict[str, Any]:
    curves = history_curves(history, blackbox)
    last = curves.iloc[-1] if len(curves) else None
    pareto = blackbox.known_pareto_indices()
    found = None if last is None or pareto is None else int(last["pareto_found"])
    to_all = None if pareto is None or not pareto else iterations_to_all(curves["pareto_found"], len(pareto))
    finite = lambda x: None if last is None or not np.isfinite(x) else float(x)  # noqa: E731
    return {
        "found_at_budget": found,
        "iterations_to_all": to_all,
        "final_hypervolume": None if last is None else finite(last["hypervolume"]),
        "best_value": None if last is None or len(blackbox.objectives) > 1 else finite(last["best_value"]),
        "cost": 0.0 if last is None else float(last["cost"]),
        "makespan": float(pd.to_numeric(history["end_time"], errors="coerce").max()) if len(history) else 0.0,
        "trials": len(history),
        "stopped": int((history["status"] == "stopped").sum()) if "status" in history else 0,
        "wall_s": float(history.attrs.get("wall_s", float("nan"))),
    }


def suggest_latency_ms(histories: Sequence[pd.DataFrame]) -> tuple[float | None, float | None]:
    """Median and 90th percentile, in milliseconds, of every ``suggest`` call of the ``histories``.

    Pools the ``attrs["suggest_s"]`` lists of all runs (``np.percentile``, linear interpolation).
    A run without them (cached before they were recorded) is left out; ``(None, None)`` when no
    run has any.
    """
    recorded = [h.attrs.get("suggest_s") for h in histories]
    durations = [float(s) for run in recorded if run is not None for s in run]
    durations = [s for s in durations if math.isfinite(s)]
    if not durations:
        return None, None
    p50, p90 = np.percentile(np.asarray(durations) * 1000.0, [50, 90])
    return float(p50), float(p90)


def summarize(histories: Sequence[pd.DataFrame], blackbox: Any) -> dict[str, Any]:
    """Mean (and ``<key>_std``) over the seeds of one method.

    Keys: ``found_at_budget`` (true Pareto candidates found), ``iterations_to_all`` (``None``
    unless every seed found the whole front; ``iterations_to_all_reached`` counts the seeds that
    did), ``final_hypervolume`` (normalised, in [0, 1]), ``best_value`` (single objective only),
    ``cost`` (simulated compute summed over trials), ``makespan`` (simulated wall time),
    ``trials``, ``stopped`` (trials stopped early), ``wall_s`` (real seconds per run),
    ``suggest_p50_ms`` / ``suggest_p90_ms`` (:func:`suggest_latency_ms` over all seeds; ``None``
    when unknown), plus ``seeds``, ``seed_values``, ``budget`` and ``pool_mode``.
    """
    if not histories:
        raise ValueError("histories is empty; pass one history per seed.")
    runs = [_per_seed(history, blackbox) for history in histories]
    summary: dict[str, Any] = {}
    for key in runs[0]:
        values = [run[key] for run in runs]
        summary[key], summary[f"{key}_std"] = mean_std(values)
        if key == "iterations_to_all":
            reached = sum(value is not None for value in values)
            summary["iterations_to_all_reached"] = reached
            if reached < len(runs):  # a mean is undefined when some seed never got there
                summary[key] = summary[f"{key}_std"] = None
    modes = sorted({str(h.attrs.get("pool_mode", "off")) for h in histories})
    summary["suggest_p50_ms"], summary["suggest_p90_ms"] = suggest_latency_ms(histories)
    summary.update(
        seeds=len(histories),
        seed_values=[h.attrs.get("seed") for h in histories],
        budget=max(int(h.attrs.get("budget", len(h))) for h in histories),
        pool_mode="/".join(modes),
    )
    return summary


def random_expectation(blackbox: Any, budget: int) -> dict[str, float] | None:
    """What uniform random search without replacement achieves on average on a finite pool.

    ``found_at_budget = k * B / n`` (hypergeometric mean) and ``iterations_to_all =
    k * (n + 1) / (k + 1)`` for ``k`` Pareto candidates among ``n`` and budget ``B``.
    """
    pareto = blackbox.known_pareto_indices()
    candidates = blackbox.candidates()
    if pareto is None or candidates is None or not pareto:
        return None
    n, k, budget = len(candidates), len(pareto), min(budget, len(candidates))
    return {"found_at_budget": k * budget / n, "iterations_to_all": expected_random_iterations_to_all(n, k)}


def benchmark_summary(
    blackbox: Any, histories: Mapping[str, Sequence[pd.DataFrame]], *, budget: int, workers: int
) -> dict[str, Any]:
    """The JSON-ready summary of :func:`run_methods` output on one blackbox."""
    pareto = blackbox.known_pareto_indices()
    candidates = blackbox.candidates()
    bounds = blackbox.objective_bounds() if candidates is not None else None
    return {
        "benchmark": blackbox.name,
        "instance": blackbox.instance,
        "objectives": dict(blackbox.objectives),
        "budget": effective_budget(blackbox, budget),
        "seeds": max((len(runs) for runs in histories.values()), default=0),
        "workers": workers,
        "pool_size": None if candidates is None else len(candidates),
        "pareto_size": None if pareto is None else len(pareto),
        "random_expected": random_expectation(blackbox, budget),
        "known_hypervolume": known_hypervolume(blackbox) if bounds is not None else None,
        "methods": {name: summarize(runs, blackbox) for name, runs in histories.items()},
    }


def json_ready(value: Any) -> Any:
    """``value`` with NaN/inf as ``None`` and NumPy scalars as Python numbers (strict JSON)."""
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_mean_std(mean: float | None, std: float | None, digits: int) -> str:
    """``"mean ± std"`` (``"mean"`` without a std, ``"-"`` without a mean) to ``digits`` decimals."""
    if mean is None:
        return "-"
    return f"{mean:.{digits}f}" if std is None else f"{mean:.{digits}f} ± {std:.{digits}f}"


def summary_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """One row per method (mean ± std), plus ``random (expected)`` on finite pools."""
    rows = []
    for name, result in summary["methods"].items():
        to_all = format_mean_std(result["iterations_to_all"], result["iterations_to_all_std"], 1)
        if summary.get("pareto_size") and result["iterations_to_all"] is None:
            to_all = f"all found in {result['iterations_to_all_reached']}/{result['seeds']} seeds"
        rows.append({
            "method": name,
            "seeds": result["seeds"],
            "pool_mode": result["pool_mode"],
            "found_at_budget": format_mean_std(result["found_at_budget"], result["found_at_budget_std"], 2),
            "iterations_to_all": to_all,
            "final_hypervolume": format_mean_std(result["final_hypervolume"], result["final_hypervolume_std"], 3),
            "best_value": format_mean_std(result["best_value"], result["best_value_std"], 4),
            "cost": format_mean_std(result["cost"], result["cost_std"], 0),
            "wall_s": format_mean_std(result["wall_s"], None, 2),
        })
    expected = summary.get("random_expected")
    if expected is not None:
        rows.append({
            "method": "random (expected)", "seeds": "-", "pool_mode": "-",
            "found_at_budget": f"{expected['found_at_budget']:.2f}",
            "iterations_to_all": f"{expected['iterations_to_all']:.1f}",
            "final_hypervolume": "-", "best_value": "-", "cost": "-", "wall_s": "-",
        })
    return pd.DataFrame(rows)
