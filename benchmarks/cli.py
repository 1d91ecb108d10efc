"""Command line of the benchmark harness: ``python -m benchmarks {methods,run,report,speedup,utilisation}``.

Examples:
    python -m benchmarks methods
    python -m benchmarks run --benchmark nmthpo --data ../shared/benchmarks --instance zh-en \\
        --method random,pool-mobo --budget 200 --seeds 10 --workers 4 --out results.csv
    python -m benchmarks run --benchmark yahpo:rbv2_xgboost --data ../shared/benchmarks \\
        --instance 16 --method random,asha --budget 100 --seeds 3
    python -m benchmarks report --data ../shared/benchmarks --out benchmarks/results --seeds 10 \\
        --seeds-for ax-mobo=2,pool-mobo=4 --jobs 2 --cache .bench-cache
    python -m benchmarks speedup --benchmark yahpo:iaml_glmnet --data ../shared/benchmarks \\
        --instance 40981 --method fabolas --baseline gp-bo --seeds 5
    python -m benchmarks utilisation --methods random pool-mobo --workers 4 --trials 40 --trial-seconds 10

``run``, ``speedup`` and ``utilisation`` print a table and, as their last line, one JSON object with
the summary.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from benchmarks.runner import load_blackbox, parse_methods, run_methods
from benchmarks.summary import benchmark_summary, json_ready, summary_table
from orchestrator.methods import describe_methods

__all__ = ["main", "parse_overrides"]


def parse_overrides(values: Sequence[str] | None, flag: str) -> dict[str, int]:
    """``["ax-mobo=2", "tpe=5,random=3"]`` -> ``{"ax-mobo": 2, "tpe": 5, "random": 3}``.

    Raises:
        ValueError: naming ``flag`` when an item is not ``NAME=INTEGER``.
    """
    overrides: dict[str, int] = {}
    for value in values or []:
        for item in filter(None, (part.strip() for part in value.split(","))):
            name, sep, number = item.partition("=")
            if not sep or not name.strip() or not number.strip().isdigit():
                raise ValueError(f"{flag} {item!r} must look like NAME=INTEGER, e.g. {flag} ax-mobo=2.")
            overrides[name.strip()] = int(number)
    if overrides:
        parse_methods(list(overrides))  # an unknown name fails here, listing the registry
    return overrides


def _check_data_dir(data: str | None) -> Path:
    if not data:
        raise ValueError("--data DIR is required: the folder holding the benchmark data (e.g. ../shared/benchmarks).")
    path = Path(data)
    if not path.is_dir():
        raise ValueError(f"--data {data!r} is not a directory; pass the folder holding the benchmark data.")
    return path


def _add_override_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seeds-for", action="append", metavar="NAME=N",
                        help="per-method seed count, e.g. ax-mobo=2 (repeatable or comma-separated)")
    parser.add_argument("--budget-for", action="append", metavar="NAME=N",
                        help="per-method trial budget, e.g. ax-mobo=50 (repeatable or comma-separated)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="runs executed at once, one process each (default 1); results do not depend on it")
    parser.add_argument("--cache", metavar="DIR",
                        help="keep finished runs in DIR and reuse them (keyed on settings, data and source code)")


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("methods", help="list the registered search methods")

    run = commands.add_parser("run", help="run methods on one benchmark instance in the simulated cluster")
    run.add_argument("--benchmark", required=True, help="'nmthpo' or 'yahpo:<scenario>' (e.g. yahpo:rbv2_xgboost)")
    run.add_argument("--data", metavar="DIR", help="folder holding the benchmark data (required)")
    run.add_argument("--instance", required=True, help="language pair (nmthpo) or dataset id (yahpo)")
    run.add_argument("--method", "--methods", dest="methods", required=True, help="NAME[,NAME...]")
    run.add_argument("--budget", type=int, default=200, help="trials per run (capped at the pool size)")
    run.add_argument("--seeds", type=int, default=10, help="runs per method, seeds 0..N-1")
    run.add_argument("--workers", type=int, default=4, help="simulated concurrent trials")
    run.add_argument("--objectives", help="comma-separated objective names (default: the benchmark's)")
    run.add_argument("--out", metavar="CSV", help="write every trial of every run (with method and seed columns)")
    _add_override_flags(run)

    study = commands.add_parser("schedulers", help="compare early-stopping schedulers (hypervolume vs. cost)")
    study.add_argument("--data", metavar="DIR", help="folder holding nmthpo/ and yahpo/ (required)")
    study.add_argument("--out", default="benchmarks/results/schedulers", help="output folder")
    study.add_argument("--seeds", type=int, default=5, help="runs per method, seeds 0..N-1")
    study.add_argument("--budget", type=int, default=300, help="trials per run of the early-stopping methods")
    study.add_argument("--baseline-budget", type=int, default=100, help="trials of random search without stopping")
    study.add_argument("--methods", help="methods (default: random,asha,mo-asha,mo-asha-promotion,mo-hyperband,mo-bohb)")
    study.add_argument("--lcbench-instances", help="lcbench dataset ids (default: the dev instances; 'none' for none)")
    study.add_argument("--nmt-pairs", help="NMT pairs (default en-ja,ja-en,ru-en,zh-en; 'none' for none)")
    study.add_argument("--workers", type=int, default=4, help="simulated concurrent trials")
    study.add_argument("--jobs", type=int, default=1, help="runs executed at once, one process each")
    study.add_argument("--cache", metavar="DIR", help="keep finished runs in DIR and reuse them")
    study.add_argument("--merge", metavar="DIR[,DIR...]",
                       help="write one README/summary over study folders run apart (runs nothing)")

    report = commands.add_parser("report", help="regenerate the markdown report and plots")
    report.add_argument("--data", metavar="DIR", help="folder holding nmthpo/ and yahpo/ (required)")
    report.add_argument("--out", default="benchmarks/results", help="output folder (default benchmarks/results)")
    report.add_argument("--seeds", type=int, default=10, help="runs per method, seeds 0..N-1")
    report.add_argument("--budget", type=int, default=200, help="trials per run (capped at the pool size)")
    report.add_argument("--workers", type=int, default=4, help="simulated concurrent trials")
    report.add_argument("--methods", help="methods for both sections (overrides the defaults)")
    report.add_argument("--nmt-methods", help="methods for the NMT section")
    report.add_argument("--yahpo-methods", help="methods for the YAHPO section")
    report.add_argument("--sections", default="nmthpo,yahpo", help="sections to run (default nmthpo,yahpo)")
    report.add_argument("--nmt-instances", help="language pairs (default: every pair in --data)")
    report.add_argument("--yahpo-scenarios", help="scenarios (default: every one in DEV_INSTANCES.json)")
    _add_override_flags(report)

    speedup = commands.add_parser("speedup", help="cost to reach full-fidelity BO's result (benchmarks/speedup.py)")
    speedup.add_argument("--benchmark", required=True, help="'yahpo:<scenario>' (a blackbox with a fraction fidelity)")
    speedup.add_argument("--data", metavar="DIR", help="folder holding the benchmark data (required)")
    speedup.add_argument("--instance", required=True, help="dataset id")
    speedup.add_argument("--method", "--methods", dest="methods", required=True,
                         help="NAME[,NAME...]; the JSON's top-level speedup/reached are the first one's")
    speedup.add_argument("--objectives", help="one objective (default: the benchmark's first) or two, "
                         "comma-separated: then the value is the hypervolume of the recommended set")
    speedup.add_argument("--baseline", default="gp-bo", help="method whose final best value is the target (default gp-bo)")
    speedup.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (default 5)")
    speedup.add_argument("--budget", type=int, default=200,
                         help="most trials of a method; it also stops at the baseline's total cost (default 200)")
    speedup.add_argument("--baseline-budget", type=int, default=50, help="trials of the baseline (default 50)")
    speedup.add_argument("--workers", type=int, default=1, help="simulated concurrent trials (default 1)")
    speedup.add_argument("--out", metavar="DIR", help="write the per-seed table, the traces and the plot here")
    speedup.add_argument("--tolerance", type=float, default=0.0,
                         help="count a value within TOLERANCE x |target| of the target as reaching it (default 0: exact)")
    speedup.add_argument("--traces", metavar="CSV",
                         help="recompute the table from a *_traces.csv written by --out instead of running")

    utilisation = commands.add_parser(
        "utilisation", help="busy workers and suggest latency of a real local Ray Tune run (benchmarks/utilisation.py)"
    )
    utilisation.add_argument("--method", "--methods", dest="methods", nargs="+", metavar="NAME",
                             help="methods without a scheduler, space- or comma-separated "
                                  "(default: random ax-mobo pool-mobo)")
    utilisation.add_argument("--workers", type=int, default=4, help="trials at once, one CPU each (default 4)")
    utilisation.add_argument("--trials", type=int, default=40, help="trials per method (default 40)")
    utilisation.add_argument("--trial-seconds", type=float, default=10.0, help="seconds each trial sleeps (default 10)")
    utilisation.add_argument("--seed", type=int, default=0, help="seed of the searchers and of pool-mobo's pool")
    utilisation.add_argument("--option", action="append", metavar="METHOD:KEY=VALUE",
                             help="searcher option over the method's defaults, VALUE as JSON when it parses "
                                  "(repeatable), e.g. pool-mobo:num_initial=8")
    return parser


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run(args: argparse.Namespace) -> int:
    data_dir = _check_data_dir(args.data)
    methods = parse_methods(args.methods)
    seeds_for = parse_overrides(args.seeds_for, "--seeds-for")
    budget_for = parse_overrides(args.budget_for, "--budget-for")
    blackbox = load_blackbox(args.benchmark, data_dir, args.instance, args.objectives)
    histories = run_methods(
        blackbox, methods, budget=args.budget, seeds=args.seeds, workers=args.workers,
        seeds_for=seeds_for, budget_for=budget_for, progress=_progress, jobs=args.jobs, cache=args.cache,
    )
    summary = benchmark_summary(blackbox, histories, budget=args.budget, workers=args.workers)
    if args.out:
        frames = [h.assign(method=name, seed=h.attrs["seed"]) for name, runs in histories.items() for h in runs]
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        pd.concat(frames, ignore_index=True).to_csv(args.out, index=False)
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(summary_table(summary).to_string(index=False))
    expected = summary["random_expected"]
    if expected is not None:
        measured = summary["methods"].get("random")
        measured_text = "" if measured is None else (
            f"; measured random: found {measured['found_at_budget']:.2f}, iterations to all "
            + ("-" if measured["iterations_to_all"] is None else f"{measured['iterations_to_all']:.1f}")
        )
        print(f"random search expected (k={summary['pareto_size']} of n={summary['pool_size']}): found "
              f"{expected['found_at_budget']:.2f} at budget {summary['budget']}, iterations to all "
              f"k*(n+1)/(k+1) = {expected['iterations_to_all']:.2f}{measured_text}")
    print(json.dumps(json_ready(summary), allow_nan=False))
    return 0


def _report(args: argparse.Namespace) -> int:
    from benchmarks.report import write_report

    started = time.perf_counter()
    data_dir = _check_data_dir(args.data)
    split = lambda text: None if text is None else [p.strip() for p in text.split(",") if p.strip()]  # noqa: E731
    paths = write_report(
        data_dir,
        args.out,
        seeds=args.seeds,
        budget=args.budget,
        workers=args.workers,
        methods=split(args.methods),
        nmt_methods=split(args.nmt_methods),
        yahpo_methods=split(args.yahpo_methods),
        sections=split(args.sections),
        nmt_instances=split(args.nmt_instances),
        yahpo_scenarios=split(args.yahpo_scenarios),
        seeds_for=parse_overrides(args.seeds_for, "--seeds-for"),
        budget_for=parse_overrides(args.budget_for, "--budget-for"),
        command=" ".join(["python -m benchmarks", *args.argv]),
        progress=_progress,
        jobs=args.jobs,
        cache=args.cache,
    )
    print(f"report: {len(paths)} files in {args.out}: {', '.join(sorted(p.name for p in paths.values()))}")
    print(f"report total wall time: {time.perf_counter() - started:.1f} s")
    return 0


def _speedup(args: argparse.Namespace) -> int:
    from benchmarks.speedup import plot_speedup, read_traces, speedup_rows, speedup_study, speedup_table, value_mode

    data_dir = _check_data_dir(args.data)
    methods = parse_methods(args.methods)
    parse_methods([args.baseline])
    blackbox = load_blackbox(args.benchmark, data_dir, args.instance, args.objectives)
    if getattr(blackbox, "fidelity", None) is None or blackbox.fidelity.kind != "fraction":
        raise ValueError(
            f"--benchmark {args.benchmark!r}: its fidelity is {getattr(blackbox, 'fidelity', None)!r}; "
            "use a benchmark whose fidelity is a training-set fraction (yahpo:rbv2_xgboost, rbv2_rpart, iaml_glmnet)."
        )
    if len(blackbox.objectives) > 2:
        raise ValueError(
            f"--objectives: got {list(blackbox.objectives)}; speedup compares one objective (best value) "
            "or two (hypervolume), name one or two."
        )
    if args.traces:
        traces = read_traces(args.traces, args.baseline)
        unknown = [m for m in methods if m not in traces]
        if unknown:
            raise ValueError(f"--method: {unknown} not in --traces {args.traces} (it has {sorted(traces)}).")
        traces = {name: runs for name, runs in traces.items() if name in methods or name == args.baseline}
        table = speedup_rows(traces, args.baseline, value_mode(blackbox), args.tolerance)
        args.seeds = len(traces[args.baseline])
    else:
        table, traces = speedup_study(
            blackbox, methods, args.baseline, seeds=args.seeds, budget=args.budget,
            baseline_budget=args.baseline_budget, workers=args.workers, tolerance=args.tolerance, progress=_progress,
        )
    summary = speedup_table(table)
    with pd.option_context("display.width", 200, "display.max_columns", None):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    if args.out:
        out = Path(args.out)
        stem = f"{blackbox.name.replace(':', '_')}_{blackbox.instance}"
        out.mkdir(parents=True, exist_ok=True)
        table.to_csv(out / f"{stem}_speedup.csv", index=False)
        frames = [t.assign(method=name, seed=seed) for name, runs in traces.items() for seed, t in enumerate(runs)]
        pd.concat(frames, ignore_index=True).to_csv(out / f"{stem}_traces.csv", index=False)
        plot_speedup(traces, out / f"{stem}_incumbent_vs_cost.png", title=f"{blackbox.name} {blackbox.instance}")
    first = summary[methods[0]]
    print(json.dumps(json_ready({
        "speedup": first["speedup"], "reached": first["reached"], "method": methods[0], "baseline": args.baseline,
        "benchmark": args.benchmark, "instance": args.instance, "seeds": args.seeds, "tolerance": args.tolerance,
        "speedups": first["speedups"], "methods": summary,
    }), allow_nan=False))
    return 0


def _utilisation(args: argparse.Namespace) -> int:
    from benchmarks.utilisation import (
        DEFAULT_METHODS,
        markdown_table,
        parse_method_options,
        utilisation_study,
        utilisation_table,
    )

    methods = parse_methods(",".join(args.methods)) if args.methods else list(DEFAULT_METHODS)
    summary = utilisation_study(
        methods, workers=args.workers, trials=args.trials, trial_seconds=args.trial_seconds, seed=args.seed,
        options=parse_method_options(args.option), progress=_progress,
    )
    print(markdown_table(utilisation_table(summary)))
    print(json.dumps(json_ready(summary), allow_nan=False))
    return 0


def _schedulers(args: argparse.Namespace) -> int:
    from benchmarks.scheduler_study import DEFAULT_METHODS, NMT_DEV_PAIRS, merge_studies, run_study

    split = lambda text: None if text is None else [p.strip() for p in text.split(",") if p.strip()]  # noqa: E731
    command = " ".join(["python -m benchmarks", *args.argv])
    if args.merge:
        print(merge_studies(split(args.merge), args.out, command=command)["readme"].read_text())
        return 0
    data_dir = _check_data_dir(args.data)
    methods = parse_methods(args.methods) if args.methods else list(DEFAULT_METHODS)
    pairs, lcbench = split(args.nmt_pairs), split(args.lcbench_instances)
    paths = run_study(
        data_dir, args.out, seeds=args.seeds, budget=args.budget, baseline_budget=args.baseline_budget,
        workers=args.workers, methods=methods,
        lcbench_instances=None if lcbench is None else [i for i in lcbench if i != "none"],
        nmt_pairs=NMT_DEV_PAIRS if pairs is None else [p for p in pairs if p != "none"],
        jobs=args.jobs, cache=args.cache, progress=_progress, command=command,
    )
    print(paths["readme"].read_text())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status (2 for a usage error, with the reason on stderr)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    args.argv = argv
    try:
        if args.command == "methods":
            descriptions = describe_methods()
            width = max(map(len, descriptions))
            for name, description in descriptions.items():
                print(f"{name:<{width}}  {description}")
            return 0
        if args.command == "speedup":
            return _speedup(args)
        if args.command == "schedulers":
            return _schedulers(args)
        if args.command == "utilisation":
            return _utilisation(args)
        return _run(args) if args.command == "run" else _report(args)
    except (ValueError, FileNotFoundError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
