"""Pareto fronts, hypervolumes and result files of a finished (or running) experiment.

Every function here takes a results ``DataFrame`` (one row per trial, one column per
objective, ``config/*`` columns for the hyperparameters, optionally ``trial_order``) and the
experiment's objectives, and returns data: a ``DataFrame``, a float, a path. The maths is
:mod:`multiobjective.pareto`'s; drawing lives in :mod:`orchestrator.plots`.

Objectives are anything :meth:`multiobjective.Objectives.from_spec` takes: an ``Objectives``, a
mapping ``{"accuracy": "max", "params": "min"}`` or a list of ``Objective(name, mode)``. Rows
whose value for any objective is missing or non-finite (failed or still running trials) take
part in no front and no hypervolume.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"acc": [0.9, 0.8, 0.7], "params": [300, 100, 200]})
    >>> pareto_front(df, {"acc": "max", "params": "min"}).index.tolist()
    [0, 1]
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from multiobjective import Objectives, pareto
from orchestrator.plots import plot_hypervolume_trace, plot_pareto_front

CONFIG_PREFIX = "config/"
RESULTS_FILENAME = "results.csv"
PARETO_FILENAME = "pareto_front.csv"
PARETO_PLOT_FILENAME = "pareto_front.png"
HYPERVOLUME_PLOT_FILENAME = "hypervolume.png"
CHECKPOINT_COLUMN = "checkpoint"
"""Column of the trial's last checkpoint folder (:func:`orchestrator.export.checkpoint_path`)."""
TRIAL_COLUMNS = ("trial_id", "status", "training_iteration", CHECKPOINT_COLUMN)
"""What names a trial and leads to its model; :func:`format_pareto_table` shows those present."""


def _maximised(df: pd.DataFrame, objectives: Objectives) -> np.ndarray:
    return objectives.to_maximisation(objectives.values_in(df))


def _reference_vector(reference_point: Mapping[str, float], objectives: Objectives) -> np.ndarray:
    missing = [name for name in objectives.names if name not in reference_point]
    if missing:
        raise ValueError(
            f"reference_point: got {dict(reference_point)!r}, which lacks objective(s) {missing}; "
            "give one value per objective, in the objective's own units."
        )
    vector = np.array([float(reference_point[name]) for name in objectives.names])
    if not np.isfinite(vector).all():
        raise ValueError(f"reference_point: got {dict(reference_point)!r}; every value must be finite.")
    return objectives.to_maximisation(vector)


def finished_mask(df: pd.DataFrame, objectives: Any) -> pd.Series:
    """Boolean Series, True where every objective value of the row is finite."""
    objectives = Objectives.from_spec(objectives)
    return pd.Series(np.isfinite(objectives.values_in(df)).all(axis=1), index=df.index)


def pareto_front(df: pd.DataFrame, objectives: Any) -> pd.DataFrame:
    """Rows of ``df`` that no other finished row dominates (:func:`multiobjective.pareto_mask`).

    Args:
        df: results, one row per trial.
        objectives: anything :meth:`multiobjective.Objectives.from_spec` takes.

    Returns:
        The non-dominated rows in their original order, with the original index; identical
        Pareto-optimal rows are all kept.

    Example:
        >>> df = pd.DataFrame({"acc": [0.9, 0.8, float("nan")], "params": [300, 100, 1]})
        >>> pareto_front(df, {"acc": "max", "params": "min"}).index.tolist()
        [0, 1]
    """
    objectives = Objectives.from_spec(objectives)
    return df.loc[pareto.pareto_mask(_maximised(df, objectives))]


def hypervolume(points_df: pd.DataFrame, objectives: Any, reference_point: Mapping[str, float]) -> float:
    """Hypervolume of the finished rows bounded by a reference point in the objectives' own units.

    Args:
        points_df: rows to measure (all rows or just the front; dominated rows add nothing).
        objectives: anything :meth:`multiobjective.Objectives.from_spec` takes.
        reference_point: mapping ``name -> value``, worse than every point of interest (see
            :func:`default_reference_point`).

    Returns:
        The hypervolume (:func:`multiobjective.hypervolume`), ``0.0`` when no finished row
        dominates the reference point.

    Example:
        >>> df = pd.DataFrame({"acc": [1.0, 2.0], "cost": [1.0, 2.0]})
        >>> hypervolume(df, {"acc": "max", "cost": "min"}, {"acc": 0.0, "cost": 3.0})
        3.0
    """
    objectives = Objectives.from_spec(objectives)
    reference = _reference_vector(reference_point, objectives)
    return pareto.hypervolume(_maximised(points_df, objectives), reference)


def default_reference_point(df: pd.DataFrame, objectives: Any) -> dict[str, float]:
    """:func:`multiobjective.reference_point` over the finished rows, in the objectives' own units.

    Raises:
        ValueError: if no row has finite values for every objective.

    Example:
        >>> df = pd.DataFrame({"acc": [0.5, 1.0], "cost": [10.0, 20.0]})
        >>> default_reference_point(df, {"acc": "max", "cost": "min"})
        {'acc': 0.45, 'cost': 21.0}
    """
    objectives = Objectives.from_spec(objectives)
    values = _maximised(df, objectives)
    if not np.isfinite(values).all(axis=1).any():
        raise ValueError(
            "default_reference_point needs at least one row with finite values for all "
            f"objectives {list(objectives.names)}; none of the {len(df)} rows has them."
        )
    reference = objectives.to_maximisation(pareto.reference_point(values))
    return {name: float(value) for name, value in zip(objectives.names, reference)}


def hypervolume_trace(
    df: pd.DataFrame,
    objectives: Any,
    reference_point: Mapping[str, float] | None = None,
    order_by: str | None = "trial_order",
    include: pd.Series | np.ndarray | None = None,
    normalise: bool = False,
) -> pd.DataFrame:
    """Hypervolume of the first ``k`` trials, for ``k = 1..n`` (:func:`multiobjective.hypervolume_trace`).

    With ``normalise=True`` the volume is divided by that of the box between the reference point
    ``r`` and the best value ``b_j`` each objective reached among the counted finished rows:
    ``trace_k / prod_j (b_j - r_j)``. That is the hypervolume after scaling each objective
    affinely so that ``r -> 0`` and ``b -> 1``, so objectives of any scale count alike and the
    trace lies in ``[0, 1]`` (``1``: one trial was the best in every objective). With the
    default reference point the worst observed value of each objective sits at
    ``margin / (1 + margin)`` of that scale (``REFERENCE_POINT_MARGIN``: 0.1 -> 0.09).

    Args:
        df: results, one row per trial.
        objectives: anything :meth:`multiobjective.Objectives.from_spec` takes.
        reference_point: mapping ``name -> value``; defaults to
            :func:`default_reference_point` over the counted rows so every ``k`` shares it.
        order_by: column giving the order trials were created in; when absent from ``df`` the
            index order is used.
        include: booleans aligned with ``df``, the rows that count (e.g. feasible trials); the
            others repeat the previous value. All rows by default.
        normalise: divide by the volume of the box from the reference point to the best values.

    Returns:
        ``DataFrame`` with columns ``trial_number`` (1..n) and ``hypervolume``. Its ``attrs``
        say what it was computed against, for :func:`orchestrator.plots.plot_hypervolume_trace`
        to state: ``reference_point`` and ``best_point`` (``{name: value}`` in the objectives'
        units, ``None`` without a finished row), ``normalised``, ``finished_trials`` (the
        counted rows with finite values) and ``order_by`` (the column used, or ``None``).

    Example:
        >>> df = pd.DataFrame({"acc": [1.0, 2.0], "cost": [2.0, 1.0]})
        >>> trace = hypervolume_trace(df, {"acc": "max", "cost": "min"}, {"acc": 0.0, "cost": 3.0})
        >>> trace["hypervolume"].tolist()
        [1.0, 4.0]
        >>> trace = hypervolume_trace(df, {"acc": "max", "cost": "min"}, normalise=True)
        >>> trace["hypervolume"].round(4).tolist(), trace.attrs["reference_point"]
        ([0.0083, 1.0], {'acc': 0.9, 'cost': 2.1})
    """
    objectives = Objectives.from_spec(objectives)
    flags = pd.Series(True if include is None else np.asarray(include, dtype=bool), index=df.index)
    ordered_by = order_by if order_by in df.columns else None
    ordered = df.sort_values(ordered_by, kind="stable") if ordered_by is not None else df
    counted = flags.loc[ordered.index].to_numpy()
    values = _maximised(ordered, objectives)
    finished = np.isfinite(values).all(axis=1) & counted
    volumes = np.zeros(len(ordered))
    best_point = None
    if finished.any():
        if reference_point is None:
            reference_point = default_reference_point(ordered.loc[counted], objectives)
        reference = _reference_vector(reference_point, objectives)
        volumes = pareto.hypervolume_trace(values, reference, include=counted)
        best = values[finished].max(axis=0)
        best_point = dict(zip(objectives.names, map(float, objectives.to_maximisation(best))))
        if normalise:
            # A reference better than every value on some axis leaves no volume to scale.
            volumes = volumes / np.prod(np.where(best > reference, best - reference, 1.0))
    trace = pd.DataFrame({"trial_number": np.arange(1, len(ordered) + 1), "hypervolume": volumes})
    trace.attrs = {
        "reference_point": None if reference_point is None else {
            name: float(reference_point[name]) for name in objectives.names
        },
        "best_point": best_point,
        "normalised": normalise,
        "finished_trials": int(finished.sum()),
        "order_by": ordered_by,
    }
    return trace


def save_results(
    df: pd.DataFrame,
    objectives: Any,
    out_dir: str | Path,
    reference_point: Mapping[str, float] | None = None,
    eligible: pd.Series | np.ndarray | None = None,
) -> dict[str, Path]:
    """Write the results table, the Pareto front and their plots under ``out_dir``.

    The front is computed once, over the ``eligible`` rows, and that same front is written to
    ``pareto_front.csv``, highlighted in ``pareto_front.png`` and accumulated in
    ``hypervolume.png``, so the files never disagree.

    Args:
        df: results, one row per trial.
        objectives: anything :meth:`multiobjective.Objectives.from_spec` takes.
        out_dir: directory to write into; created if missing.
        reference_point: for the hypervolume plot, which shows the normalised trace
            (:func:`hypervolume_trace` with ``normalise=True``) and states this point; defaults
            to :func:`default_reference_point` over the eligible rows.
        eligible: booleans aligned with ``df``: the rows that may be Pareto-optimal (e.g.
            completed trials meeting every constraint); all rows by default.

    Returns:
        Paths keyed ``results_csv``, ``pareto_csv``, ``pareto_plot``, ``hypervolume_plot``.

    Example:
        >>> import tempfile
        >>> df = pd.DataFrame({"acc": [0.8, 0.9], "config/lr": [0.1, 0.01]})
        >>> paths = save_results(df, {"acc": "max"}, tempfile.mkdtemp())
        >>> sorted(path.name for path in paths.values())
        ['hypervolume.png', 'pareto_front.csv', 'pareto_front.png', 'results.csv']
    """
    objectives = Objectives.from_spec(objectives)
    objectives.values_in(df)  # names a missing objective column before anything is written
    eligible = np.ones(len(df), dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    if eligible.shape != (len(df),):
        raise ValueError(f"eligible: got {eligible.shape[0]} flags for {len(df)} rows; give one per row.")
    front = pareto_front(df.loc[eligible], objectives)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "results_csv": out_dir / RESULTS_FILENAME,
        "pareto_csv": out_dir / PARETO_FILENAME,
        "pareto_plot": out_dir / PARETO_PLOT_FILENAME,
        "hypervolume_plot": out_dir / HYPERVOLUME_PLOT_FILENAME,
    }
    df.to_csv(paths["results_csv"], index=False)
    front.to_csv(paths["pareto_csv"], index=False)
    plot_pareto_front(df, objectives, path=paths["pareto_plot"], front=front)
    trace = hypervolume_trace(df, objectives, reference_point, include=eligible, normalise=True)
    plot_hypervolume_trace(trace, path=paths["hypervolume_plot"])
    return paths


def load_results(out_dir: str | Path) -> pd.DataFrame:
    """Read the ``results.csv`` that :func:`save_results` wrote into ``out_dir``.

    Example:
        >>> df = load_results("results/demo")  # doctest: +SKIP
    """
    path = Path(out_dir) / RESULTS_FILENAME
    if not path.is_file():
        raise FileNotFoundError(
            f"no {RESULTS_FILENAME} in {str(out_dir)!r}; run the experiment first "
            "(`orchestrator run <experiment.yaml>`) or pass the directory it wrote to."
        )
    return pd.read_csv(path, dtype={"trial_id": str, CHECKPOINT_COLUMN: str})


def config_columns(df: pd.DataFrame) -> list[str]:
    """The hyperparameter columns (``config/<name>``) of a results table."""
    return [c for c in df.columns if isinstance(c, str) and c.startswith(CONFIG_PREFIX)]


def as_search_results(df: pd.DataFrame, objectives: Any) -> pd.DataFrame:
    """A results table as searchers take it for a warm start: parameter columns without the
    ``config/`` prefix, then the objective columns; only rows with finite objectives.

    Example:
        >>> df = pd.DataFrame({"config/lr": [0.1, 0.2], "acc": [0.9, float("nan")]})
        >>> as_search_results(df, {"acc": "max"}).to_dict("records")
        [{'lr': 0.1, 'acc': 0.9}]
    """
    objectives = Objectives.from_spec(objectives)
    finished = df.loc[finished_mask(df, objectives)]
    parameters = finished[config_columns(df)].rename(columns=lambda c: c.removeprefix(CONFIG_PREFIX))
    return pd.concat([parameters, finished[list(objectives.names)]], axis=1).reset_index(drop=True)


def _format_float(value: float) -> str:
    return f"{value:.6g}"


def format_pareto_table(df: pd.DataFrame, objectives: Any, columns: Sequence[str] | None = None) -> str:
    """The Pareto-optimal rows of ``df`` as text: objectives, the trial, then hyperparameters.

    Rows are sorted best-first by the first objective; ``config/`` is stripped from headers.
    Pass the front itself (e.g. ``ExperimentResult.pareto``) to print exactly those rows.

    Args:
        df: results, one row per trial.
        objectives: anything :meth:`multiobjective.Objectives.from_spec` takes.
        columns: extra columns to show after the objectives; defaults to those of
            :data:`TRIAL_COLUMNS` that ``df`` has (``trial_id``, ``status``,
            ``training_iteration``, ``checkpoint``), then every ``config/*``.

    Returns:
        The table as a string, or a one-line message when no trial has finished.

    Example:
        >>> df = pd.DataFrame({"acc": [0.8, 0.9], "config/lr": [0.1, 0.01]})
        >>> print(format_pareto_table(df, {"acc": "max"}))
        acc   lr
        0.9 0.01
        >>> df["trial_id"], df["training_iteration"] = ["a1", "b2"], [4, 8]
        >>> print(format_pareto_table(df, {"acc": "max"}))
        acc trial_id  training_iteration   lr
        0.9       b2                   8 0.01
    """
    objectives = Objectives.from_spec(objectives)
    names = list(objectives.names)
    front = pareto_front(df, objectives)
    if front.empty:
        return f"No finished trials with finite values for {names}."
    if columns is None:
        columns = [c for c in TRIAL_COLUMNS if c in df.columns] + config_columns(df)
    else:
        missing = [c for c in columns if c not in df.columns]
        if missing:
            raise ValueError(f"columns: {missing} not in the results; available columns: {list(map(str, df.columns))}.")
    shown = names + [c for c in columns if c not in names]
    table = front[shown].sort_values(names[0], ascending=objectives.modes[0] == "min", kind="stable")
    table = table.rename(columns=lambda c: str(c).removeprefix(CONFIG_PREFIX))
    # pandas pads every line with one leading space when the index is hidden.
    return textwrap.dedent(table.to_string(index=False, float_format=_format_float))
