"""Early-stopping schedulers compared on hypervolume vs. simulated cost: ``python -m benchmarks schedulers``.

Every method runs in the simulated cluster on YAHPO ``lcbench`` (objectives ``val_accuracy`` max
and ``time`` min, epochs as fidelity; the dev instances of ``DEV_INSTANCES.json``) and on NMT
learning curves (BLEU max, decode time min, checkpoints as fidelity; multi-objective schedulers
rank checkpoints on dev perplexity, the one metric the tables record there). Random search runs
without early stopping for ``baseline_budget`` trials; the other methods for ``budget`` trials.
Hypervolume counts full-fidelity results only, normalised to ``[0, 1]`` as in the main report.

The table gives per instance and method: the final hypervolume and total simulated cost (mean ±
std over seeds); the hypervolume once each run has spent ``C``, the smallest mean final cost of
the early-stopping methods (every run of those gets there, so they compare at equal cost); and
whether MO-ASHA reached random search's final hypervolume at no more total cost.

Example:
    python -m benchmarks schedulers --data ../shared/benchmarks --out benchmarks/results/schedulers \\
        --seeds 5 --jobs 2 --cache .bench-cache
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import rankdata

from benchmarks.blackboxes import make_blackbox
from benchmarks.report import InstanceResult, _on_cost_grid, _run_instance, plot_value_vs_cost
from benchmarks.run_cache import RunCache
from benchmarks.summary import json_ready

__all__ = ["DEFAULT_METHODS", "merge_studies", "run_study"]

DEFAULT_METHODS = ("random", "asha", "mo-asha", "mo-asha-promotion", "mo-hyperband", "mo-bohb")
BASELINE = "random"
NMT_DEV_PAIRS = ("en-ja", "ja-en", "ru-en", "zh-en")
LCBENCH_OBJECTIVES = "val_accuracy,time"
Progress = Callable[[str], None]


def _lcbench_instances(data_dir: Path) -> list[str]:
    root = data_dir / "yahpo" if (data_dir / "yahpo").is_dir() else data_dir
    return [str(i) for i in json.loads((root / "DEV_INSTANCES.json").read_text())["lcbench"]]


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std(ddof=1)) if len(array) > 1 else 0.0


def instance_rows(result: InstanceResult) -> list[dict[str, Any]]:
    """One row per method: final hypervolume and cost, hypervolume at the common cost ``C``."""
    finals = {
        method: ([float(c["hypervolume"].iloc[-1]) for c in curves], [float(c["cost"].iloc[-1]) for c in curves])
        for method, curves in result.curves.items()
    }
    stopping = [m for m in result.curves if m != BASELINE]
    common = min((np.mean(finals[m][1]) for m in stopping), default=None)
    rows = []
    for method, curves in result.curves.items():
        hv, cost = finals[method]
        at_common = None if common is None else _on_cost_grid(curves, "hypervolume", np.array([common]))[:, 0]
        rows.append({
            "instance": result.label,
            "method": method,
            "seeds": len(curves),
            "trials": int(np.mean([len(c) for c in curves])),
            "final_hypervolume": _mean_std(hv),
            "cost": _mean_std(cost),
            "common_cost": common,
            "hypervolume_at_common_cost": None if at_common is None else _mean_std(at_common),
        })
    return rows


def goal_met(rows: Sequence[dict[str, Any]], method: str = "mo-asha") -> bool | None:
    """Whether ``method`` reached the baseline's final hypervolume (means) at no more total cost."""
    by_method = {row["method"]: row for row in rows}
    if method not in by_method or BASELINE not in by_method:
        return None
    ours, baseline = by_method[method], by_method[BASELINE]
    return ours["final_hypervolume"][0] >= baseline["final_hypervolume"][0] and ours["cost"][0] <= baseline["cost"][0]


def _format(pair: tuple[float, float] | None, digits: int) -> str:
    return "-" if pair is None else f"{pair[0]:.{digits}f} ± {pair[1]:.{digits}f}"


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """The study's rows as a markdown table (one block per instance)."""
    lines = [
        "| instance | method | seeds | trials | final hypervolume | total cost | hypervolume at cost C | C |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        common = "-" if row["common_cost"] is None else f"{row['common_cost']:.0f}"
        lines.append(
            f"| {row['instance']} | {row['method']} | {row['seeds']} | {row['trials']} | "
            f"{_format(row['final_hypervolume'], 4)} | {_format(row['cost'], 0)} | "
            f"{_format(row['hypervolume_at_common_cost'], 4)} | {common} |"
        )
    return "\n".join(lines)


def mean_ranks(rows: Sequence[dict[str, Any]], key: str) -> dict[str, float]:
    """Mean rank (1 = best, by ``key``'s mean, larger is better, ties averaged) of each method over instances."""
    ranks: dict[str, list[float]] = {}
    for instance in dict.fromkeys(row["instance"] for row in rows):
        entries = [row for row in rows if row["instance"] == instance and row[key] is not None]
        order = rankdata([-row[key][0] for row in entries], method="average")
        for row, rank in zip(entries, order):
            ranks.setdefault(row["method"], []).append(float(rank))
    return {method: float(np.mean(values)) for method, values in ranks.items()}


def run_study(
    data_dir: str | Path,
    out_dir: str | Path,
    *,
    seeds: int = 5,
    budget: int = 300,
    baseline_budget: int = 100,
    workers: int = 4,
    methods: Sequence[str] = DEFAULT_METHODS,
    lcbench_instances: Sequence[str] | None = None,
    nmt_pairs: Sequence[str] | None = NMT_DEV_PAIRS,
    jobs: int = 1,
    cache: RunCache | str | Path | None = None,
    progress: Progress | None = None,
    command: str | None = None,
) -> dict[str, Path]:
    """Run the study, write ``README.md``, ``summary.json`` and the plots into ``out_dir``."""
    started = time.perf_counter()
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    if cache is not None and not isinstance(cache, RunCache):
        cache = RunCache(cache)
    lcbench = _lcbench_instances(data_dir) if lcbench_instances is None else lcbench_instances
    instances = [("yahpo:lcbench", i, LCBENCH_OBJECTIVES) for i in lcbench]
    instances += [("nmthpo", pair, None) for pair in (nmt_pairs or ())]
    results, skipped = [], {}
    for benchmark, instance, objectives in instances:
        blackbox = make_blackbox(benchmark, data_dir, instance, objectives)
        results.append(_run_instance(
            blackbox, list(methods), seeds=seeds, budget=budget, workers=workers, seeds_for={},
            budget_for={BASELINE: baseline_budget}, skipped=skipped, progress=progress, jobs=jobs, cache=cache,
        ))
    rows = [row for result in results for row in instance_rows(result)]
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    groups = {"lcbench": [r for r in results if r.blackbox.name == "yahpo:lcbench"],
              "nmthpo": [r for r in results if r.blackbox.name == "nmthpo"]}
    for name, group in groups.items():
        if group:
            figure = plot_value_vs_cost(group, "hypervolume", "normalised hypervolume (full fidelity)",
                                        f"{name}: hypervolume vs. simulated cost")
            paths[f"{name}_plot"] = out_dir / f"{name}_hypervolume_vs_cost.png"
            figure.savefig(paths[f"{name}_plot"], dpi=90)
    goals = {row["instance"]: goal_met([r for r in rows if r["instance"] == row["instance"]]) for row in rows}
    summary = {"settings": {"seeds": seeds, "budget": budget, "baseline_budget": baseline_budget,
                            "workers": workers, "methods": list(methods), "skipped": skipped},
               "rows": rows, "mo_asha_goal": goals,
               "mean_rank_final": mean_ranks(rows, "final_hypervolume"),
               "mean_rank_at_common_cost": mean_ranks(rows, "hypervolume_at_common_cost")}
    paths["summary"] = out_dir / "summary.json"
    paths["summary"].write_text(json.dumps(json_ready(summary), indent=1, allow_nan=False))
    paths["readme"] = out_dir / "README.md"
    paths["readme"].write_text(_readme(summary, rows, goals, command, time.perf_counter() - started))
    return paths


def merge_studies(parts: Sequence[str | Path], out_dir: str | Path, command: str | None = None) -> dict[str, Path]:
    """One ``README.md`` and ``summary.json`` over several study folders (e.g. instances run apart).

    Every part must have run the same settings (seeds, budgets, workers); each keeps its own
    plots and README, which the merged README links to.
    """
    out_dir = Path(out_dir)
    summaries = [json.loads((Path(part) / "summary.json").read_text()) for part in parts]
    keys = ("seeds", "budget", "baseline_budget", "workers")
    settings = [{key: summary["settings"][key] for key in keys} for summary in summaries]
    if any(other != settings[0] for other in settings[1:]):
        raise ValueError(f"parts: got different settings {settings}; merge only studies run with the same ones.")
    rows = [row for summary in summaries for row in summary["rows"]]
    for row in rows:  # JSON turned the (mean, std) pairs into lists
        for key in ("final_hypervolume", "cost", "hypervolume_at_common_cost"):
            row[key] = None if row[key] is None else tuple(row[key])
    methods = list(dict.fromkeys(m for summary in summaries for m in summary["settings"]["methods"]))
    goals = {row["instance"]: goal_met([r for r in rows if r["instance"] == row["instance"]]) for row in rows}
    summary = {"settings": {**settings[0], "methods": methods, "parts": [str(part) for part in parts]},
               "rows": rows, "mo_asha_goal": goals,
               "mean_rank_final": mean_ranks(rows, "final_hypervolume"),
               "mean_rank_at_common_cost": mean_ranks(rows, "hypervolume_at_common_cost")}
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"summary": out_dir / "summary.json", "readme": out_dir / "README.md"}
    paths["summary"].write_text(json.dumps(json_ready(summary), indent=1, allow_nan=False))
    commands = "\n".join(f"- [`{Path(part).name}`]({Path(part).name}/README.md): "
                         + (Path(part) / "README.md").read_text().split("`")[1] for part in parts)
    text = _readme(summary, rows, goals, command or "python -m benchmarks schedulers --merge ...", None)
    text = text.replace("Plots: `lcbench_hypervolume_vs_cost.png`, `nmthpo_hypervolume_vs_cost.png`",
                        "Plots: in each part's folder")
    paths["readme"].write_text(text + f"\nParts, each with its command, README and plots:\n{commands}\n")
    return paths


def _readme(summary: dict[str, Any], rows: Sequence[dict[str, Any]], goals: dict[str, bool | None],
            command: str | None, wall_s: float | None) -> str:
    settings = summary["settings"]
    met = [instance for instance, ok in goals.items() if ok]
    ranks = " · ".join(f"{m} {r:.2f}" for m, r in sorted(summary["mean_rank_at_common_cost"].items(), key=lambda x: x[1]))
    finals = " · ".join(f"{m} {r:.2f}" for m, r in sorted(summary["mean_rank_final"].items(), key=lambda x: x[1]))
    return f"""# Early-stopping schedulers: hypervolume vs. simulated cost

Generated by `{command or 'python -m benchmarks schedulers'}`{'' if wall_s is None else f' in {wall_s / 60:.1f} min'}.
{settings['seeds']} seeds per method, {settings['workers']} simulated workers; `{BASELINE}` runs
{settings['baseline_budget']} trials without early stopping, every other method {settings['budget']}
trials (capped at the pool size on NMT). Hypervolume: full-fidelity results only, objectives
normalised to [0, 1] by the benchmark's bounds, reference point at the origin.

Methods (the table shows the ones run): `random` (no early stopping), `asha` (Ray's ASHA on the first objective, or on dev
perplexity for NMT), `mo-asha` (MultiObjectiveASHA: stops outside the top 1/3 by Pareto rank),
`mo-asha-promotion` (pauses at rungs, resumes the promoted trials), `mo-hyperband`
(MultiObjectiveHyperBand), `mo-bohb` (MultiFidelityTPESearch, Optuna's multi-objective TPE on the
highest rung with enough results, with `mo-asha`). Searchers other than `mo-bohb` are uniform
random. On NMT, BLEU and decode time exist only for the final checkpoint, so the `mo-` schedulers
rank checkpoints on dev perplexity alone (one objective: their decisions equal Ray's ASHA).

**MO-ASHA at {settings['budget']} trials reached random search's final hypervolume at
{settings['baseline_budget']} trials, at no more total cost, on {len(met)} of {len(goals)} instances**
({', '.join(met) or 'none'}).

Mean rank of the hypervolume at the common cost C (1 = best): {ranks}.
Mean rank of the final hypervolume: {finals}.

C is, per instance, the smallest mean total cost among the early-stopping methods; every run of
those methods spends at least about that much, so the column compares them at equal cost.

{markdown_table(rows)}

Plots: `lcbench_hypervolume_vs_cost.png`, `nmthpo_hypervolume_vs_cost.png` (mean over seeds,
log cost axis).
"""
