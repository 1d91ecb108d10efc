"""The benchmark report: methods compared on every NMT pair and on YAHPO Gym dev instances.

Writes ``README.md`` (markdown tables, mean ± std over seeds), ``summary.json`` (every
number, the seeds and pool mode of each method) and PNG plots into one folder:

* NMT tables (finite pools with a known Pareto front): true Pareto models found after 50, 100
  and 200 trials (``FOUND_AT``; the pool size, if smaller), trials until all were found, and the
  expectation of uniform random search beside them; plots of Pareto models found vs. trials and of
  normalised hypervolume vs. simulated cost.
* YAHPO surrogates (single objective): best value vs. simulated cost, including methods that
  stop trials early (ASHA, HyperBand).

Both tables give each method's real seconds per run and the median / 90th percentile time of
its searcher's ``suggest`` calls.

Regenerate with ``python -m benchmarks report --data DIR --out benchmarks/results``; slow
methods can run fewer seeds (``--seeds-for ax-mobo=2``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from benchmarks.blackboxes import make_blackbox
from benchmarks.blackboxes.nmthpo import available_instances as nmt_pairs
from benchmarks.blackboxes.yahpo import available_instances as yahpo_instances
from benchmarks.run_cache import RunCache
from benchmarks.runner import parse_methods, run_methods, search_problem
from benchmarks.summary import benchmark_summary, format_mean_std, history_curves, json_ready, mean_std
from orchestrator.methods import build_searcher, describe_methods, get_method

__all__ = [
    "DEFAULT_NMT_METHODS",
    "DEFAULT_YAHPO_METHODS",
    "InstanceResult",
    "inapplicable_reason",
    "plot_pareto_found",
    "plot_value_vs_cost",
    "write_report",
    "yahpo_dev_instances",
]

DEFAULT_NMT_METHODS = ("random", "tpe", "ax-mobo", "pool-mobo")
DEFAULT_YAHPO_METHODS = ("random", "tpe", "asha", "hyperband", "ax-mobo")
FOUND_AT = (50, 100, 200)  # the NMT table's "found @t" columns, in order
SECTIONS = ("nmthpo", "yahpo")
COST_GRID_POINTS = 200
Progress = Callable[[str], None]


@dataclass
class InstanceResult:
    """The runs of every method on one benchmark instance."""

    blackbox: Any
    summary: dict[str, Any]
    curves: dict[str, list[pd.DataFrame]] = field(default_factory=dict)
    histories: list[pd.DataFrame] = field(default_factory=list)

    @property
    def label(self) -> str:
        return f"{self.blackbox.name.removeprefix('yahpo:')}/{self.blackbox.instance}"


def yahpo_dev_instances(data_dir: str | Path) -> dict[str, str]:
    """``{scenario: instance}``: the first instance of each scenario in ``DEV_INSTANCES.json``.

    Without that file, every scenario folder (one holding ``config_space.json``) and its first
    instance.
    """
    root = Path(data_dir) / "yahpo" if (Path(data_dir) / "yahpo").is_dir() else Path(data_dir)
    listing = root / "DEV_INSTANCES.json"
    if listing.is_file():
        return {scenario: str(ids[0]) for scenario, ids in json.loads(listing.read_text()).items() if ids}
    scenarios = sorted(p.name for p in root.iterdir() if (p / "config_space.json").is_file()) if root.is_dir() else []
    return {scenario: yahpo_instances(root, scenario)[0] for scenario in scenarios}


def inapplicable_reason(blackbox: Any, method: str) -> str | None:
    """Why ``method`` cannot run on ``blackbox`` (no pool for a pool searcher, no fidelity for a scheduler)."""
    if get_method(method).scheduler is not None and getattr(blackbox, "fidelity", None) is None:
        return "stops trials early but the benchmark has no fidelity"
    searcher = build_searcher(method, search_problem(blackbox, seed=None, workers=None))
    if callable(getattr(searcher, "set_candidates", None)) and blackbox.candidates() is None:
        return "chooses among a finite pool but the benchmark is a surrogate without one"
    return None


def _run_instance(
    blackbox: Any, methods: Sequence[str], *, seeds: int, budget: int, workers: int,
    seeds_for: Mapping[str, int], budget_for: Mapping[str, int], skipped: dict[str, str],
    progress: Progress | None, jobs: int = 1, cache: RunCache | None = None,
) -> InstanceResult:
    applicable = []
    for method in methods:
        reason = inapplicable_reason(blackbox, method)
        if reason is None:
            applicable.append(method)
        else:
            skipped[f"{method} on {blackbox.name}"] = reason
    histories = run_methods(
        blackbox, applicable, budget=budget, seeds=seeds, workers=workers,
        seeds_for=seeds_for, budget_for=budget_for, progress=progress, jobs=jobs, cache=cache,
    ) if applicable else {}
    summary = benchmark_summary(blackbox, histories, budget=budget, workers=workers)
    curves = {method: [history_curves(h, blackbox) for h in runs] for method, runs in histories.items()}
    return InstanceResult(blackbox, summary, curves, [h for runs in histories.values() for h in runs])


# ----------------------------------------------------------------------------- statistics
def _value_at(curves: Sequence[pd.DataFrame], column: str, iteration: int) -> list[float | None]:
    """Per seed, ``column`` after ``iteration`` trials (``None`` if the run was shorter)."""
    return [float(c[column].iloc[iteration - 1]) if len(c) >= iteration else None for c in curves]


def _on_cost_grid(curves: Sequence[pd.DataFrame], column: str, grid: np.ndarray) -> np.ndarray:
    """``seeds x len(grid)``: each run's ``column`` once its cumulative cost reached each grid point.

    A run that finished before a grid point keeps its final value. Before a run's first finished
    trial, counts and hypervolumes are 0 and a best value is undefined (NaN).
    """
    start = 0.0 if column in ("pareto_found", "hypervolume") else np.nan
    rows = []
    for curve in curves:
        cost, values = curve["cost"].to_numpy(dtype=float), curve[column].to_numpy(dtype=float)
        position = np.searchsorted(cost, grid, side="right") - 1
        rows.append(np.where(position >= 0, values[np.clip(position, 0, None)], start))
    return np.array(rows)


def _significant(value: float) -> str:
    """``value`` as an integer from 10 on, else to two significant digits (``1.2``, ``0.23``, ``0.0041``)."""
    if value >= 10:
        return f"{value:.0f}"
    return np.format_float_positional(value, precision=2, fractional=False, trim="-")


def _latency_text(info: Mapping[str, Any]) -> str:
    """``"p50 / p90"`` of a method's ``suggest`` calls in ms (``"12 / 40"``), or ``"-"`` when unknown."""
    p50, p90 = info.get("suggest_p50_ms"), info.get("suggest_p90_ms")
    if p50 is None or p90 is None:
        return "-"
    return f"{_significant(p50)} / {_significant(p90)}"


def _mean_std_text(values: Sequence[float | None], digits: int) -> str:
    """``"mean ± std"`` over seeds, or ``"-"`` unless every seed has a finite value."""
    if any(v is None or not np.isfinite(v) for v in values):
        return "-"
    return format_mean_std(*mean_std(values), digits)


# ----------------------------------------------------------------------------- plots
def _axes_grid(count: int, title: str) -> tuple[Figure, list[Any]]:
    columns = min(2, max(count, 1))
    rows = int(np.ceil(max(count, 1) / columns))
    figure = Figure(figsize=(6.0 * columns, 4.2 * rows), layout="constrained")
    axes = list(np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel())
    for extra in axes[count:]:
        extra.set_visible(False)
    figure.suptitle(title)
    return figure, axes[:count]


def plot_pareto_found(results: Sequence[InstanceResult]) -> Figure:
    """Mean (± std band) true Pareto models found vs. trials, one panel per instance.

    The dashed line is uniform random search's expectation ``k * t / n``.
    """
    figure, axes = _axes_grid(len(results), "True Pareto-optimal models found vs. trials")
    for ax, result in zip(axes, results):
        n, k = result.summary["pool_size"], result.summary["pareto_size"]
        for method, curves in result.curves.items():
            length = max(len(c) for c in curves)
            padded = np.array([np.pad(c["pareto_found"].to_numpy(float), (0, length - len(c)), mode="edge")
                               for c in curves])
            steps = np.arange(1, length + 1)
            mean, std = padded.mean(axis=0), padded.std(axis=0)
            ax.plot(steps, mean, label=f"{method} ({len(curves)} seeds)")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.15)
        budget = result.summary["budget"]
        ax.plot([0, budget], [0, k * budget / n], "k--", linewidth=1, label="random (expected)")
        ax.axhline(k, color="grey", linewidth=0.8)
        ax.set(title=f"{result.label} (n={n}, k={k})", xlabel="trials finished", ylabel="Pareto models found")
        ax.legend(fontsize="small")
    return figure


def plot_value_vs_cost(results: Sequence[InstanceResult], column: str, ylabel: str, title: str) -> Figure:
    """Mean ``column`` (``"hypervolume"`` or ``"best_value"``) vs. cumulative simulated cost (log scale).

    The log axis keeps the cheap start, where early stopping pays off, as visible as the end.
    """
    figure, axes = _axes_grid(len(results), title)
    for ax, result in zip(axes, results):
        costs = [c["cost"].to_numpy(dtype=float) for curves in result.curves.values() for c in curves if len(c)]
        positive = [cost[cost > 0] for cost in costs]
        low = min((cost[0] for cost in positive if len(cost)), default=1.0)
        high = max((cost[-1] for cost in positive if len(cost)), default=low)
        grid = np.geomspace(low, max(high, low * 1.000001), COST_GRID_POINTS)
        for method, curves in result.curves.items():
            # A plain mean: a best value appears once every seed has one, so the curve never dips
            # when a late seed joins with a worse value.
            mean = _on_cost_grid(curves, column, grid).mean(axis=0)
            ax.plot(grid, mean, label=f"{method} ({len(curves)} seeds)")
        if column == "hypervolume" and result.summary.get("known_hypervolume") is not None:
            ax.axhline(result.summary["known_hypervolume"], color="grey", linewidth=0.8, label="true front")
        objective = ", ".join(f"{k} ({v})" for k, v in result.summary["objectives"].items())
        ax.set(title=f"{result.label}: {objective}", xlabel="simulated cost (sum over trials)", ylabel=ylabel,
               xscale="log")
        ax.legend(fontsize="small")
    return figure


# ----------------------------------------------------------------------------- tables
def _table_header(columns: Sequence[str]) -> list[str]:
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def _nmt_table(results: Sequence[InstanceResult]) -> str:
    found_columns = [f"found @{c}" for c in FOUND_AT]
    found_columns[-1] += " (or @n)"
    lines = _table_header(["pair (n, k)", "method", "seeds", "pool mode", *found_columns, "trials to find all",
                           "s / run", "suggest p50 / p90 (ms)"])
    for result in results:
        summary = result.summary
        n, k = summary["pool_size"], summary["pareto_size"]
        # Checkpoints beyond the pool become @n once; the columns they leave empty get "-".
        checkpoints = sorted({min(c, n) for c in FOUND_AT})
        padding = ["-"] * (len(FOUND_AT) - len(checkpoints))
        label = lambda c: "" if c in FOUND_AT else f" (@{c})"  # noqa: E731
        pair = f"{result.blackbox.instance} ({n}, {k})"
        for method, curves in result.curves.items():
            info = summary["methods"][method]
            found = [_mean_std_text(_value_at(curves, "pareto_found", c), 2) + label(c) for c in checkpoints]
            if info["iterations_to_all"] is None:
                to_all = f"not in every seed ({info['iterations_to_all_reached']}/{info['seeds']})"
            else:
                to_all = format_mean_std(info["iterations_to_all"], info["iterations_to_all_std"], 1)
            lines.append(f"| {pair} | {method} | {info['seeds']} | {info['pool_mode']} | "
                         + " | ".join(found + padding)
                         + f" | {to_all} | {info['wall_s']:.1f} | {_latency_text(info)} |")
        expected = summary["random_expected"]
        found = [f"{k * c / n:.2f}" + label(c) for c in checkpoints]
        lines.append(f"| {pair} | *random, expected* | - | - | " + " | ".join(found + padding)
                     + f" | {expected['iterations_to_all']:.1f} | - | - |")
    return "\n".join(lines)


def _yahpo_table(results: Sequence[InstanceResult]) -> str:
    lines = _table_header(["scenario/instance", "objective", "method", "seeds", "best value", "total cost",
                           "best at 25% of random's cost", "stopped early", "simulated wall time", "s / run",
                           "suggest p50 / p90 (ms)"])
    for result in results:
        objective = ", ".join(f"{k} ({v})" for k, v in result.summary["objectives"].items())
        reference = result.summary["methods"].get("random", {}).get("cost")
        for method, curves in result.curves.items():
            info = result.summary["methods"][method]
            early = "-"
            if reference:
                early_values = _on_cost_grid(curves, "best_value", np.array([0.25 * reference]))[:, 0]
                early = _mean_std_text([None if np.isnan(v) else float(v) for v in early_values], 4)
            lines.append(
                f"| {result.label} | {objective} | {method} | {info['seeds']} "
                f"| {_mean_std_text([c['best_value'].iloc[-1] for c in curves], 4)} "
                f"| {_mean_std_text([c['cost'].iloc[-1] for c in curves], 0)} | {early} "
                f"| {info['stopped']:.1f} / {info['trials']:.0f} | {info['makespan']:.0f} | {info['wall_s']:.1f} "
                f"| {_latency_text(info)} |"
            )
    return "\n".join(lines)


def _methods_table(results: Sequence[InstanceResult]) -> str:
    used: dict[str, dict[str, set]] = {}
    for result in results:
        for method, info in result.summary["methods"].items():
            entry = used.setdefault(method, {"seeds": set(), "pool": set(), "budget": set()})
            entry["seeds"].add(info["seeds"])
            entry["pool"].add(f"{info['pool_mode']} ({result.blackbox.name})")
            entry["budget"].add(info["budget"])
    descriptions = describe_methods()
    lines = ["| method | seeds | trials per run | pool mode | description |", "|---|---|---|---|---|"]
    for method, entry in used.items():
        join = lambda values: ", ".join(str(v) for v in sorted(values))  # noqa: E731
        lines.append(f"| {method} | {join(entry['seeds'])} | {join(entry['budget'])} | {join(entry['pool'])} "
                     f"| {descriptions[method]} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- entry point
def write_report(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    seeds: int = 10,
    budget: int = 200,
    workers: int = 4,
    methods: Sequence[str] | None = None,
    nmt_methods: Sequence[str] | None = None,
    yahpo_methods: Sequence[str] | None = None,
    sections: Sequence[str] | None = None,
    nmt_instances: Sequence[str] | None = None,
    yahpo_scenarios: Sequence[str] | None = None,
    seeds_for: Mapping[str, int] | None = None,
    budget_for: Mapping[str, int] | None = None,
    command: str | None = None,
    progress: Progress | None = None,
    jobs: int = 1,
    cache: RunCache | str | Path | None = None,
) -> dict[str, Path]:
    """Run the benchmark suite and write ``README.md``, ``summary.json`` and the plots into ``out_dir``.

    Args:
        data_dir: folder holding ``nmthpo/`` and ``yahpo/``.
        out_dir: output folder (created).
        seeds, budget, workers: runs per method (seeds ``0..seeds-1``), trials per run, workers.
        methods: methods for both sections; ``nmt_methods``/``yahpo_methods`` override per section.
        sections: subset of ``("nmthpo", "yahpo")``.
        nmt_instances, yahpo_scenarios: default every pair in the data / every dev scenario.
        seeds_for, budget_for: per-method overrides of ``seeds`` and ``budget``.
        command: the command line recorded in the README.
        jobs: runs executed at once in separate processes.
        cache: a :class:`~benchmarks.run_cache.RunCache` (or its folder) of runs to reuse and extend.

    Returns:
        ``{"readme": ..., "summary": ..., <plot name>: ...}`` paths written.
    """
    started = time.perf_counter()
    sections = list(SECTIONS if sections is None else sections)
    unknown = [s for s in sections if s not in SECTIONS]
    if unknown or not sections:
        raise ValueError(f"sections={sections!r} must be a non-empty subset of {list(SECTIONS)}.")
    nmt_list = parse_methods(nmt_methods or methods or DEFAULT_NMT_METHODS)
    yahpo_list = parse_methods(yahpo_methods or methods or DEFAULT_YAHPO_METHODS)
    options = dict(seeds=seeds, budget=budget, workers=workers, seeds_for=dict(seeds_for or {}),
                   budget_for=dict(budget_for or {}), progress=progress, jobs=jobs,
                   cache=cache if cache is None or isinstance(cache, RunCache) else RunCache(cache))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    skipped: dict[str, str] = {}
    nmt_results: list[InstanceResult] = []
    yahpo_results: list[InstanceResult] = []
    if "nmthpo" in sections:
        pairs = list(nmt_instances or nmt_pairs(data_dir))
        if not pairs:
            raise ValueError(f"no NMT tables found under data_dir={str(data_dir)!r}.")
        for pair in pairs:
            blackbox = make_blackbox("nmthpo", data_dir, pair)
            nmt_results.append(_run_instance(blackbox, nmt_list, skipped=skipped, **options))
    if "yahpo" in sections:
        dev = yahpo_dev_instances(data_dir)
        chosen = list(yahpo_scenarios or dev)
        missing = [s for s in chosen if s not in dev]
        if missing:
            raise ValueError(f"yahpo scenarios {missing} are not in the data; available: {sorted(dev)}.")
        for scenario in chosen:
            blackbox = make_blackbox(f"yahpo:{scenario}", data_dir, dev[scenario])
            yahpo_results.append(_run_instance(blackbox, yahpo_list, skipped=skipped, **options))

    paths: dict[str, Path] = {}
    figures = []
    if nmt_results:
        figures += [("nmthpo_pareto_found", plot_pareto_found(nmt_results)),
                    ("nmthpo_hypervolume_vs_cost", plot_value_vs_cost(
                        nmt_results, "hypervolume", "normalised hypervolume", "Hypervolume vs. simulated cost"))]
    if yahpo_results:
        figures.append(("yahpo_best_value_vs_cost", plot_value_vs_cost(
            yahpo_results, "best_value", "best value (full evaluations)", "Best value vs. simulated cost")))
    for name, figure in figures:
        paths[name] = out / f"{name}.png"
        figure.savefig(paths[name], dpi=110)

    wall_s = time.perf_counter() - started
    runs = [h for result in nmt_results + yahpo_results for h in result.histories]
    settings = {"runs": len(runs), "runs_from_cache": sum(bool(h.attrs.get("from_cache")) for h in runs),
                "runs_wall_s": float(sum(h.attrs.get("wall_s", 0.0) for h in runs)),"seeds": seeds, "budget": budget, "workers": workers, "seeds_for": options["seeds_for"],
                "budget_for": options["budget_for"], "command": command, "wall_s": wall_s,
                "generated": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "skipped": skipped}
    paths["summary"] = out / "summary.json"
    paths["summary"].write_text(json.dumps(json_ready(
        {"settings": settings, "results": [r.summary for r in nmt_results + yahpo_results]}), indent=1) + "\n")
    paths["readme"] = out / "README.md"
    paths["readme"].write_text(_readme(settings, nmt_results, yahpo_results, [p.name for p in paths.values()]))
    return paths


def _readme(settings: dict[str, Any], nmt: Sequence[InstanceResult], yahpo: Sequence[InstanceResult],
            files: Sequence[str]) -> str:
    command = settings["command"] or "python -m benchmarks report --data DIR --out benchmarks/results"
    parts = [
        "# Benchmark results",
        f"Generated {settings['generated']} by `{command}` in {settings['wall_s']:.0f} s of wall time; its "
        f"{settings['runs']} runs took {settings['runs_wall_s']:.0f} s in all, summed run by run when each was "
        f"computed ({settings['runs_from_cache']} loaded from the run cache). Default seeds {settings['seeds']}, "
        f"budget {settings['budget']} trials, {settings['workers']} simulated workers. Every run replays the "
        "method's Ray Tune searcher (and scheduler) in the simulated cluster; a trial counts once it completes "
        "or is stopped, in completion order, so with several workers cheap trials count first. Values are "
        "mean ± std over seeds 0..N-1; the seeds and pool mode each method used are listed at the end. "
        "*suggest p50 / p90 (ms)* is the median and 90th percentile, over every call of every seed, of the "
        "time one `suggest` call took in this simulated replay, where model-based searchers run in their "
        "reproducible mode (`Method.reproducible_options`, e.g. `background=False`), so it is the cost of "
        "one model step on this machine; in a real Ray Tune run, background mode computes it while trials "
        "run. Raw numbers: `summary.json`.",
    ]
    if nmt:
        objectives = ", ".join(f"{k} ({v})" for k, v in nmt[0].summary["objectives"].items())
        parts += [
            "## NMT tables: true Pareto-optimal models found",
            f"Objectives {objectives}. `n` candidates, `k` of them Pareto-optimal; the budget is capped at "
            "`n`. *random, expected* is uniform random search without replacement: `k·t/n` found after `t` "
            "trials and `k(n+1)/(k+1)` trials to find all. Pool mode `native`: the searcher chooses "
            "candidates itself; `nearest`: its suggestions are mapped to the nearest unevaluated candidate.",
            _nmt_table(nmt),
            "![Pareto models found vs. trials](nmthpo_pareto_found.png)",
            "![Hypervolume vs. simulated cost](nmthpo_hypervolume_vs_cost.png)",
        ]
    if yahpo:
        parts += [
            "## YAHPO Gym surrogates: best value vs. cost",
            "One dev instance per scenario, default single objective. The best value counts full-fidelity "
            "evaluations only; cost is the surrogate's runtime summed over trials (stopped trials cost less).",
            _yahpo_table(yahpo),
            "![Best value vs. simulated cost](yahpo_best_value_vs_cost.png)",
        ]
    parts += ["## Methods, seeds and pool modes", _methods_table([*nmt, *yahpo])]
    if settings["skipped"]:
        parts.append("Not run: " + "; ".join(f"{k} ({v})" for k, v in settings["skipped"].items()) + ".")
    parts.append("Files: " + ", ".join(f"`{name}`" for name in files) + ".")
    return "\n\n".join(parts) + "\n"
