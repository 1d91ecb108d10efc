"""How busy the workers of a real local Ray Tune run are, per search method: ``python -m benchmarks utilisation``.

Unlike the simulator, this starts local Ray and runs ``trials`` real trials of ``trial_seconds``
each, at most ``workers`` at once, for every named method. The trainable only sleeps, then
reports the two ZDT1 objectives of its config (``f1``, ``f2``, both minimised) with its
``started_at`` / ``ended_at`` wall-clock times, so any time a worker is not running a trial is
spent by Tune and by the searcher, whose ``suggest`` runs on the driver between trials.

Per method it measures:

* ``busy``: the share of worker time spent inside trials,
  ``sum_i (ended_i - started_i) / (workers * (max_i ended_i - min_i started_i))``
  (:func:`busy_fraction`; the start of Ray before the first trial is not counted);
* ``idle_s``: where the idle worker-seconds went (:func:`idle_split`): ``waiting``, before the
  last trial started (free workers waiting for a suggestion or for Tune), and ``tail``, after
  it (workers done while the last trials run; small when trials stay in step);
* ``wall_s``: the wall time of ``tuner.fit()``;
* ``suggest_ms``: median, 90th percentile and maximum of the searcher's ``suggest`` calls that
  returned a config (:class:`SuggestTimer` times every call; Tune's ``ConcurrencyLimiter``
  wraps it and answers for it while ``workers`` trials are pending);
* ``hypervolume``: the ZDT1 hypervolume of the finished trials from BoTorch's reference point
  ``(11, 11)`` (:func:`zdt1_hypervolume`), so a method that keeps its workers busier by choosing
  worse (staler or random) configurations shows it beside its ``busy`` figure;
* ``random_fallbacks``: how many of the trials ran a uniformly random configuration because a
  model step overran (``ax-mobo``'s ``max_wait_s``): such a run kept its workers busy partly by
  not using the model, so read its ``busy`` beside this count.

Methods that come with an early-stopping scheduler are refused: this measures searchers only.
``pool-mobo`` gets a pool of 300 uniformly random configs of the same space unless
``--option pool-mobo:candidates=...`` names another.

Example:
    python -m benchmarks utilisation --methods random ax-mobo pool-mobo --workers 4 --trials 40 \\
        --trial-seconds 10 --option pool-mobo:num_initial=8 \\
        --option ax-mobo:acquisition_options='{"num_restarts": 4, "raw_samples": 256}'

The command prints a markdown table, then, as its last line, one JSON object with the summary.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import ray
from ray import tune
from ray.tune.search import Searcher

from benchmarks._delegating import DelegatingSearcher
from benchmarks.summary import check_positive_int
from multiobjective import Objectives
from orchestrator.methods import SearchProblem, build_searcher, get_method, method_names

__all__ = [
    "DEFAULT_METHODS",
    "OBJECTIVES",
    "PARAMETERS",
    "SuggestCall",
    "SuggestTimer",
    "busy_fraction",
    "idle_split",
    "markdown_table",
    "measure_method",
    "parse_method_options",
    "percentile_summary",
    "utilisation_study",
    "utilisation_table",
    "zdt1",
    "zdt1_hypervolume",
]

DEFAULT_METHODS = ("random", "ax-mobo", "pool-mobo")
PARAMETERS = tuple(f"x{index}" for index in range(6))
OBJECTIVES = {"f1": "min", "f2": "min"}
# BoTorch's reference point for ZDT1 (botorch.test_functions.multi_objective.ZDT1.ref_point).
ZDT1_REFERENCE = (11.0, 11.0)
POOL_SIZE = 300
"""Number of random candidates ``pool-mobo`` chooses from (unless its options name a pool)."""

REPO_ROOT = Path(__file__).resolve().parents[1]
Progress = Callable[[str], None]


def zdt1(x: Sequence[float]) -> tuple[float, float]:
    """ZDT1 on ``[0, 1]^d``: ``f1 = x_0``, ``g = 1 + 9 mean(x_1..x_{d-1})``, ``f2 = g (1 - sqrt(f1 / g))``.

    Example:
        >>> zdt1([0.0] * 6), zdt1([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
        ((0.0, 1.0), (1.0, 0.0))
    """
    f1 = float(x[0])
    g = 1.0 + 9.0 * float(np.mean(x[1:]))
    return f1, g * (1.0 - math.sqrt(f1 / g))


def zdt1_hypervolume(values: Iterable[Sequence[float]]) -> float:
    """Hypervolume that minimised ``(f1, f2)`` rows dominate below ``ZDT1_REFERENCE``.

    Example:
        >>> zdt1_hypervolume([(0.0, 1.0), (1.0, 0.0)])
        120.0
    """
    from multiobjective import hypervolume

    rows = np.asarray(list(values), dtype=float).reshape(-1, 2)
    return hypervolume(-rows, -np.asarray(ZDT1_REFERENCE))


def busy_fraction(intervals: Iterable[tuple[float, float]], workers: int) -> float:
    """Share of ``workers`` slots spent inside the ``(start, end)`` intervals, from the first start to the last end.

    ``sum_i (end_i - start_i) / (workers * (max end - min start))``; gaps between intervals count as
    idle. NaN without intervals or when they span no time. Above 1 means more intervals
    overlapped than ``workers``, so the count is wrong.

    Raises:
        ValueError: when ``workers`` is not a positive integer or an interval ends before it starts.

    Example:
        >>> busy_fraction([(0, 10), (0, 10), (10, 20), (10, 20)], workers=2)
        1.0
        >>> busy_fraction([(0, 5), (10, 20)], workers=1)
        0.75
    """
    workers = check_positive_int("workers", workers)
    pairs = [(float(start), float(end)) for start, end in intervals]
    for start, end in pairs:
        if not end >= start:  # also refuses NaN
            raise ValueError(f"intervals: got ({start!r}, {end!r}); each interval must end at or after its start.")
    if not pairs:
        return math.nan
    span = max(end for _, end in pairs) - min(start for start, _ in pairs)
    if span <= 0:
        return math.nan
    return sum(end - start for start, end in pairs) / (workers * span)


def idle_split(intervals: Iterable[tuple[float, float]], workers: int) -> dict[str, float]:
    """Idle worker-seconds before and after the last start: ``{"waiting": ..., "tail": ...}``.

    Between the first start and the last start every idle slot is a worker that could have run
    a trial (no trials were left over only at the end); after the last start, finished workers
    have nothing left to run. ``waiting + tail = workers x span - busy``. Both NaN without
    intervals.

    Example:
        >>> idle_split([(0, 10), (12, 22), (0, 16)], workers=2)
        {'waiting': 2.0, 'tail': 6.0}
    """
    workers = check_positive_int("workers", workers)
    pairs = [(float(start), float(end)) for start, end in intervals]
    if not pairs:
        return {"waiting": math.nan, "tail": math.nan}
    first, last_start = min(start for start, _ in pairs), max(start for start, _ in pairs)
    last_end = max(end for _, end in pairs)

    def busy_between(low: float, high: float) -> float:
        return sum(max(0.0, min(end, high) - max(start, low)) for start, end in pairs)

    return {
        "waiting": workers * (last_start - first) - busy_between(first, last_start),
        "tail": workers * (last_end - last_start) - busy_between(last_start, last_end),
    }


def percentile_summary(values: Iterable[float]) -> dict[str, float | None]:
    """``{"p50", "p90", "max"}`` of ``values`` (linear interpolation, NumPy's default); ``None`` each when empty.

    Example:
        >>> percentile_summary(range(1, 11))
        {'p50': 5.5, 'p90': 9.1, 'max': 10.0}
    """
    array = np.asarray(list(values), dtype=float)
    if array.size == 0:
        return {"p50": None, "p90": None, "max": None}
    return {
        "p50": float(np.percentile(array, 50)),
        "p90": float(np.percentile(array, 90)),
        "max": float(array.max()),
    }


def parse_method_options(values: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """``["pool-mobo:num_initial=8", "ax-mobo:torch_threads=2"]`` -> ``{method: {key: value}}``.

    ``VALUE`` is read as JSON when it parses (numbers, booleans, lists, objects), else kept as a
    string.

    Raises:
        ValueError: when an item is not ``METHOD:KEY=VALUE``, names an unknown method, or sets
            the same key of a method twice.

    Example:
        >>> parse_method_options(["pool-mobo:num_initial=8", "pool-mobo:candidates=pool.csv",
        ...                       'ax-mobo:acquisition_options={"num_restarts": 4, "raw_samples": 256}'])
        ... # doctest: +NORMALIZE_WHITESPACE
        {'pool-mobo': {'num_initial': 8, 'candidates': 'pool.csv'},
         'ax-mobo': {'acquisition_options': {'num_restarts': 4, 'raw_samples': 256}}}
    """
    options: dict[str, dict[str, Any]] = {}
    for item in values or []:
        method, colon, assignment = item.partition(":")
        key, equals, text = assignment.partition("=")
        method, key = method.strip(), key.strip()
        if not colon or not equals or not method or not key:
            raise ValueError(
                f"--option: got {item!r}; use METHOD:KEY=VALUE, e.g. --option pool-mobo:num_initial=8."
            )
        get_method(method)  # an unknown name fails here, listing the registered ones
        if key in options.get(method, {}):
            raise ValueError(f"--option: got {method}:{key} twice; give each option of a method once.")
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        options.setdefault(method, {})[key] = value
    return options


class SuggestCall(NamedTuple):
    """One call of ``suggest``: its wall time and whether it returned a config (not ``None``/``FINISHED``)."""

    seconds: float
    suggested: bool


class SuggestTimer(DelegatingSearcher):
    """Wraps a searcher: forwards every hook and times each ``suggest`` call with ``time.perf_counter``.

    ``calls`` holds one :class:`SuggestCall` per call, those that returned ``None`` or
    ``Searcher.FINISHED`` included.

    Example:
        >>> from ray import tune
        >>> from searchers import RandomSearch
        >>> timer = SuggestTimer(RandomSearch({"x": tune.uniform(0, 1)}, seed=0))
        >>> sorted(timer.suggest("trial_1")), [call.suggested for call in timer.calls]
        (['x'], [True])
    """

    def __init__(self, searcher: Searcher) -> None:
        super().__init__(searcher)
        self.calls: list[SuggestCall] = []

    def suggest(self, trial_id: str) -> dict | str | None:
        started = time.perf_counter()
        try:
            suggestion = self.searcher.suggest(trial_id)
        except BaseException:
            self.calls.append(SuggestCall(time.perf_counter() - started, False))
            raise
        self.calls.append(SuggestCall(time.perf_counter() - started, suggestion not in (None, Searcher.FINISHED)))
        return suggestion

    # Tune saves and restores the state of each wrapper (an object with a `searcher`) beside the
    # wrapped searcher's own checkpoint: see SearchGenerator.save_to_dir.
    def get_state(self) -> dict:
        return {"calls": [tuple(call) for call in self.calls]}

    def set_state(self, state: dict) -> None:
        self.calls = [SuggestCall(*call) for call in state["calls"]]


def _search_space() -> dict[str, Any]:
    return {name: tune.uniform(0.0, 1.0) for name in PARAMETERS}


def _random_pool(seed: int) -> list[dict[str, float]]:
    rows = np.random.default_rng(seed).uniform(0.0, 1.0, size=(POOL_SIZE, len(PARAMETERS)))
    return [dict(zip(PARAMETERS, map(float, row))) for row in rows]


def _build(name: str, *, workers: int, seed: int, options: Mapping[str, Any]) -> Searcher:
    own = get_method(name).scheduler
    if own is not None:
        searchers_only = [m for m in method_names() if get_method(m).scheduler is None]
        raise ValueError(
            f"method: got {name!r}, which comes with the {own!r} scheduler; this benchmark measures "
            f"searchers only, so use one of {', '.join(searchers_only)}."
        )
    problem = SearchProblem(_search_space(), Objectives.from_spec(OBJECTIVES), seed=seed, max_concurrent=workers)
    options = dict(options)
    if name == "pool-mobo":
        options.setdefault("candidates", _random_pool(seed))
    return build_searcher(name, problem, **options)


def _sleeping_trainable(trial_seconds: float) -> Callable[[dict], None]:
    def zdt1_trial(config: dict) -> None:
        started_at = time.time()
        f1, f2 = zdt1([config[name] for name in PARAMETERS])
        time.sleep(trial_seconds)
        tune.report({"f1": f1, "f2": f2, "started_at": started_at, "ended_at": time.time()})

    return zdt1_trial


@contextmanager
def _local_ray(workers: int) -> Iterator[None]:
    """A local Ray with ``workers`` CPUs for trials (and more), or the session already running."""
    started = not ray.is_initialized()
    if started:
        ray.init(
            address="local",  # a new local instance, never one another process left running
            num_cpus=max(workers, 2) + 1,
            include_dashboard=False,
            log_to_driver=False,
            # Workers import this module (the trainable's) even when the project is not pip-installed.
            runtime_env={"env_vars": {"PYTHONPATH": str(REPO_ROOT)}},
        )
    try:
        cpus = ray.cluster_resources().get("CPU", 0)
        if cpus < workers:
            raise ValueError(
                f"workers: got {workers}, but the running Ray session has {cpus:g} CPUs; "
                "ask for fewer workers or start Ray with more CPUs."
            )
        yield
    finally:
        if started:
            ray.shutdown()


def measure_method(
    name: str,
    searcher: Searcher,
    *,
    workers: int,
    trials: int,
    trial_seconds: float,
    storage_path: str | Path,
) -> dict[str, Any]:
    """Run ``trials`` sleeping trials with ``searcher`` under Tune (Ray must be running) and measure them.

    Returns:
        ``busy``, ``idle_s`` (:func:`idle_split`), ``wall_s``, ``trials_finished``, ``trials_errored``, ``suggest_ms``
        (``p50``/``p90``/``max`` over the calls that returned a config), ``suggest_calls`` (those
        calls), ``suggest_calls_all`` (every call, ``None`` answers included) and
        ``hypervolume`` (:func:`zdt1_hypervolume` of the finished trials) and
        ``random_fallbacks`` (suggestions that were random configurations handed out while a
        model step overran, for searchers that count them, e.g. ``ax-mobo``; else ``None``).
    """
    timer = SuggestTimer(searcher)
    tuner = tune.Tuner(
        _sleeping_trainable(trial_seconds),
        tune_config=tune.TuneConfig(
            search_alg=timer, num_samples=trials, max_concurrent_trials=workers, reuse_actors=True
        ),
        run_config=tune.RunConfig(storage_path=str(storage_path), name=f"utilisation-{name}", verbose=0),
    )
    started = time.perf_counter()
    with redirect_stdout(sys.stderr):  # Tune prints its experiment box even at verbose=0; stdout keeps our table
        grid = tuner.fit()
    wall_s = time.perf_counter() - started
    finished = [
        result.metrics for result in grid if result.error is None and result.metrics and "ended_at" in result.metrics
    ]
    intervals = [(metrics["started_at"], metrics["ended_at"]) for metrics in finished]
    suggested = [call.seconds * 1000.0 for call in timer.calls if call.suggested]
    return {
        "busy": busy_fraction(intervals, workers),
        "idle_s": idle_split(intervals, workers),
        "wall_s": wall_s,
        "trials_finished": len(intervals),
        "trials_errored": grid.num_errors,
        "suggest_ms": percentile_summary(suggested),
        "suggest_calls": len(suggested),
        "suggest_calls_all": len(timer.calls),
        "hypervolume": zdt1_hypervolume((metrics["f1"], metrics["f2"]) for metrics in finished),
        "random_fallbacks": getattr(searcher, "random_fallbacks", None),
    }


def utilisation_study(
    methods: Sequence[str] = DEFAULT_METHODS,
    *,
    workers: int = 4,
    trials: int = 40,
    trial_seconds: float = 10.0,
    seed: int = 0,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Measure every method in turn on one local Ray (started here unless one is running).

    Every searcher is built before Ray starts, so a bad method name or option fails at once.

    Args:
        methods: Method names of :mod:`orchestrator.methods` without a scheduler.
        workers: Trials running at once (one CPU each).
        trials: Trials per method.
        trial_seconds: How long each trial sleeps.
        seed: Seed of every searcher and of ``pool-mobo``'s random pool.
        options: ``{method: {key: value}}`` over each method's defaults (:func:`parse_method_options`).
        progress: Called with one line per finished method.

    Returns:
        ``{"methods": {name: measure_method(...)}, "workers", "trials", "trial_seconds", "seed"}``.
    """
    workers = check_positive_int("workers", workers)
    trials = check_positive_int("trials", trials)
    trial_seconds = float(trial_seconds)
    if not (math.isfinite(trial_seconds) and trial_seconds >= 0):
        raise ValueError(f"trial_seconds: got {trial_seconds!r}; use a finite number of seconds >= 0.")
    methods = list(methods)
    if not methods:
        raise ValueError("methods: got none; name at least one, e.g. random.")
    options = {name: dict(values) for name, values in (options or {}).items()}
    unused = sorted(set(options) - set(methods))
    if unused:
        raise ValueError(f"--option: got options for {', '.join(unused)}; that method is not run, add it to --methods.")
    searchers = {
        name: _build(name, workers=workers, seed=seed, options=options.get(name, {})) for name in methods
    }
    results: dict[str, dict[str, Any]] = {}
    with _local_ray(workers), tempfile.TemporaryDirectory(prefix="utilisation-") as storage:
        for name, searcher in searchers.items():
            results[name] = measure_method(
                name, searcher, workers=workers, trials=trials, trial_seconds=trial_seconds, storage_path=storage
            )
            if progress is not None:
                result = results[name]
                progress(
                    f"utilisation: {name}: {result['trials_finished']}/{trials} trials in {result['wall_s']:.1f} s, "
                    f"busy {100 * result['busy']:.1f}%"
                )
    return {"methods": results, "workers": workers, "trials": trials, "trial_seconds": trial_seconds, "seed": seed}


def utilisation_table(summary: Mapping[str, Any]) -> pd.DataFrame:
    """One row per method of a :func:`utilisation_study` summary; ``trials`` reads ``finished/asked`` when short."""
    rows = []
    for name, result in summary["methods"].items():
        finished, asked = result["trials_finished"], summary["trials"]
        rows.append({
            "method": name,
            "workers": summary["workers"],
            "trials": str(finished) if finished == asked else f"{finished}/{asked}",
            "trial s": summary["trial_seconds"],
            "wall s": result["wall_s"],
            "busy %": 100.0 * result["busy"],
            "idle waiting s": result.get("idle_s", {}).get("waiting"),
            "idle tail s": result.get("idle_s", {}).get("tail"),
            "suggest p50 ms": result["suggest_ms"]["p50"],
            "p90 ms": result["suggest_ms"]["p90"],
            "max ms": result["suggest_ms"]["max"],
            "suggest calls": result["suggest_calls"],
            "hypervolume": result.get("hypervolume"),
            "random fallbacks": result.get("random_fallbacks"),
        })
    table = pd.DataFrame(rows)
    if rows:  # counts stay integers beside methods without one (None), not floats and NaN
        table["random fallbacks"] = pd.Series([row["random fallbacks"] for row in rows], dtype=object)
    return table


def markdown_table(table: pd.DataFrame, digits: int = 2) -> str:
    """``table`` as a markdown table, floats to ``digits`` decimals and missing values as ``-``.

    Example:
        >>> print(markdown_table(pd.DataFrame({"method": ["random"], "busy %": [87.456]})))
        | method | busy % |
        |---|---|
        | random | 87.46 |
    """

    def cell(value: Any) -> str:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        if isinstance(value, (float, np.floating)):
            return f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)
