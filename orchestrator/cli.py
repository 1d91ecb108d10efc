"""Command line for the orchestrator: run a YAML experiment, report a finished one, run the demo.

Example:
    $ python -m orchestrator run examples/digits.yaml --num-trials 8
    $ python -m orchestrator report results/digits
    $ python -m orchestrator demo --num-trials 6 --epochs 4
    $ python -m orchestrator export results/digits
    $ python -m orchestrator methods

An invalid specification, or one that the machine, the files or the searcher cannot run
(:mod:`orchestrator.preflight`), prints one ``error: <file>: <field>: <problem and fix>`` line
on stderr and exits with status 2, before Ray starts; ``--debug`` shows the traceback instead.
Ray and the training code are imported only by the command that needs them, so ``--help`` and
spec errors come back in well under a second.

Running into a directory that already holds a run of the same experiment (``storage_path/name``)
is refused unless ``--resume`` continues it or ``--fresh`` moves it aside and starts anew.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cluster.resources import ResourcesError
from multiobjective.objectives import ObjectiveError
from orchestrator.spec import Experiment, SpecError, load_experiment

__all__ = ["build_parser", "main"]

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
"""``run`` and ``demo`` stopped before their budget (Ctrl-C, SIGTERM): 128 + SIGINT, as shells do."""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"got {text!r}; use an integer >= 1.")
    return value


def _add_budget_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--num-trials", type=_positive_int, metavar="N", help="trials to run in total"
    )
    parser.add_argument(
        "--max-concurrent", type=_positive_int, metavar="N", help="trials running at the same time"
    )
    parser.add_argument(
        "--storage-path",
        metavar="DIR",
        help="where results go; relative paths resolve against the current directory",
    )


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    again = parser.add_mutually_exclusive_group()
    again.add_argument(
        "--resume",
        action="store_true",
        help="continue the earlier run in storage_path/name, with the spec it started with "
        "(a changed budget or search is refused)",
    )
    again.add_argument(
        "--fresh",
        action="store_true",
        help="move an earlier run in storage_path/name aside (it is kept, renamed) and start anew",
    )


def _add_debug_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--debug", action="store_true", help="on an error, show the Python traceback, not one line"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``orchestrator`` argument parser with its five sub-commands."""
    parser = argparse.ArgumentParser(
        prog="orchestrator",
        description="Find Pareto-optimal deep-learning models with Ray Tune.",
        epilog="Run `orchestrator COMMAND --help` for the options of one command.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the experiment described by a YAML file")
    run.add_argument("spec", type=Path, metavar="SPEC.yaml", help="experiment specification")
    _add_run_options(run)
    _add_budget_options(run)
    _add_debug_option(run)
    run.set_defaults(handler=_run_command)

    report = commands.add_parser("report", help="print the Pareto front of a finished experiment")
    report.add_argument("directory", type=Path, metavar="DIR", help="the experiment's directory")
    _add_debug_option(report)
    report.set_defaults(handler=_report_command)

    demo = commands.add_parser("demo", help="find Pareto-optimal MLPs on the 8x8 digits data set")
    _add_run_options(demo)
    _add_budget_options(demo)
    demo.add_argument("--epochs", type=_positive_int, metavar="E", help="epochs per trial")
    demo.add_argument("--method", help="search method (see `orchestrator methods`)")
    _add_debug_option(demo)
    demo.set_defaults(handler=_demo_command)

    export = commands.add_parser("export", help="copy each Pareto trial's last checkpoint to DIR/pareto")
    export.add_argument("directory", type=Path, metavar="DIR", help="the experiment's directory")
    export.add_argument("--out", type=Path, metavar="OUT", help="write OUT/pareto instead of DIR/pareto")
    _add_debug_option(export)
    export.set_defaults(handler=_export_command)

    methods = commands.add_parser("methods", help="list the search methods and schedulers")
    methods.set_defaults(handler=_methods_command)
    return parser


def _with_budget_options(experiment: Experiment, args: argparse.Namespace) -> Experiment:
    budget_changes = {
        key: value
        for key, value in (("num_trials", args.num_trials), ("max_concurrent", args.max_concurrent))
        if value is not None
    }
    changes: dict[str, Any] = {}
    if budget_changes:
        changes["budget"] = dataclasses.replace(experiment.budget, **budget_changes)
    if args.storage_path is not None:
        changes["storage_path"] = args.storage_path
    # replace() runs Experiment.__post_init__ again, so overrides are validated like the file.
    return dataclasses.replace(experiment, **changes) if changes else experiment


def _print_result(result: Any) -> None:
    """Print an ``orchestrator.run.ExperimentResult``: the Pareto table, then the files written."""
    from orchestrator.results import format_pareto_table

    print(f"Pareto front: {len(result.pareto)} of {len(result.results)} trials")
    print(format_pareto_table(result.pareto, result.experiment.objectives))
    for message in getattr(result, "warnings", []):
        print(f"warning: {message}")
    print(f"\nExperiment directory: {result.experiment_dir}")
    for name, path in result.paths.items():
        print(f"  {name}: {path}")
    if "pareto_models" in result.paths:
        from orchestrator.export import print_export_summary

        print_export_summary(result.paths["pareto_models"])


def _run_command(args: argparse.Namespace) -> int:
    experiment = _with_budget_options(load_experiment(args.spec), args)
    from orchestrator.run import run

    again = _command_again(f"orchestrator run {args.spec}", args, ("num_trials", "max_concurrent", "storage_path"))
    return _finished(run(experiment, resume=args.resume, fresh=args.fresh), again)


def _command_again(prefix: str, args: argparse.Namespace, options: Sequence[str]) -> str:
    """The command line that resumes this run: ``prefix --resume`` and the options given."""
    given = [f"--{name.replace('_', '-')} {getattr(args, name)}" for name in options if getattr(args, name) is not None]
    return " ".join([prefix, "--resume", *given])


def _finished(result: Any, resume_command: str) -> int:
    """Print the result; say what is left, and how to continue, if the run stopped early."""
    _print_result(result)
    if result.unfinished is None:
        return 0
    print(f"interrupted: {result.unfinished}; continue with: {resume_command}", file=sys.stderr)
    return EXIT_INTERRUPTED


def _report_command(args: argparse.Namespace) -> int:
    if not args.directory.is_dir():
        print(f"error: {args.directory}: no such experiment directory.", file=sys.stderr)
        return EXIT_USAGE
    from orchestrator.run import report

    result = report(args.directory)  # main() reports a directory `run` did not write
    _print_result(result)
    if result.unfinished is not None:
        print(f"not finished: {result.unfinished}; `orchestrator run SPEC --resume` continues it.", file=sys.stderr)
    return 0


def _export_command(args: argparse.Namespace) -> int:
    from orchestrator.export import export_pareto, print_export_summary

    try:
        folder = export_pareto(args.directory, args.out)
    except ValueError as error:  # a pareto_front.csv without trial ids (main() reports a missing one)
        raise FileNotFoundError(str(error)) from error
    print_export_summary(folder)
    return 0


def _demo_command(args: argparse.Namespace) -> int:
    from orchestrator.demo import demo_experiment

    options = {
        "num_trials": args.num_trials,
        "max_concurrent": args.max_concurrent,
        "epochs": args.epochs,
        "storage_path": args.storage_path,
        "method": args.method,
    }
    given = {key: value for key, value in options.items() if value is not None}
    experiment = demo_experiment(**given)
    from orchestrator.run import run

    again = _command_again("orchestrator demo", args, tuple(options))
    return _finished(run(experiment, resume=args.resume, fresh=args.fresh), again)


def _methods_command(args: argparse.Namespace) -> int:
    from orchestrator import methods
    from schedulers import catalogue

    descriptions = methods.describe_methods()
    schedulers = catalogue.describe_schedulers()
    width = max(map(len, [*descriptions, *schedulers]), default=0)
    for name, description in descriptions.items():
        print(f"{name:<{width}}  {description}")
    print("\nSchedulers (scheduler.type; options left out take these defaults):")
    for name, description in schedulers.items():
        print(f"{name:<{width}}  {description}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the command and return its exit status.

    Returns:
        0 on success, 2 on a usage or specification error (one ``error: ...`` line on stderr,
        no traceback; with ``--debug`` the error is raised instead).
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_request:  # --help and usage errors; return rather than exit
        return exit_request.code if isinstance(exit_request.code, int) else 0
    try:
        return args.handler(args)
    except (SpecError, ObjectiveError, ResourcesError, FileNotFoundError) as error:
        if getattr(args, "debug", False):
            raise
        line = str(error) if isinstance(error, FileNotFoundError) else _error_line(error, getattr(args, "spec", None))
        print(f"error: {line}", file=sys.stderr)
        return EXIT_USAGE


def _error_line(error: ValueError, spec: Path | None) -> str:
    """``FILE: field: message`` for an error about the spec read from ``spec``."""
    if isinstance(error, ResourcesError):  # from the cluster check once Ray is connected
        from orchestrator.preflight import resources_error

        error = resources_error(error)
    elif not isinstance(error, SpecError):
        error = SpecError(str(error))
    if error.source is None and spec is not None:
        error = error.located(str(spec))
    return str(error)
