"""Figures of an experiment's results: the Pareto front and the hypervolume over trials.

Plain functions over results ``DataFrame``s (one row per trial, one column per objective). They build
``matplotlib.figure.Figure`` objects directly, without ``pyplot``, so they change no global
backend state, need no display and are safe in worker processes.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"acc": [0.9, 0.8, 0.7], "params": [300, 100, 200]})
    >>> figure = plot_pareto_front(df, {"acc": "max", "params": "min"})
    >>> figure.axes[0].get_xlabel()
    'acc (max)'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from multiobjective import Objectives, pareto_mask

DPI = 120
ALL_TRIALS_STYLE = {"color": "0.65", "s": 18, "label": "finished trials"}
PARETO_STYLE = {"color": "tab:red", "s": 36, "edgecolor": "black", "linewidth": 0.5, "zorder": 3}
PARETO_LINE_STYLE = {"color": "tab:red", "linewidth": 1.2, "zorder": 2}


def _axis_label(name: str, mode: str) -> str:
    return f"{name} ({mode})"


def _save(figure: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=DPI)
    return figure


def _pareto_staircase(front: np.ndarray, modes: tuple[str, str]) -> np.ndarray:
    """Vertices of the boundary of the region the 2-D ``front`` dominates, in data units.

    In maximisation space, with points sorted by ascending ``x`` (hence descending ``y``),
    the boundary drops vertically at each ``x_i`` from ``y_i`` to ``y_{i+1}``.
    """
    signs = np.array([1.0 if mode == "max" else -1.0 for mode in modes])
    maximized = front * signs
    maximized = maximized[np.lexsort((-maximized[:, 1], maximized[:, 0]))]
    vertices = [maximized[0]]
    for previous, point in zip(maximized[:-1], maximized[1:]):
        vertices.append(np.array([previous[0], point[1]]))
        vertices.append(point)
    return np.array(vertices) * signs


def _draw_empty(axes: Axes, names: list[str]) -> None:
    axes.text(
        0.5, 0.5, f"no finished trials with finite {', '.join(names)}",
        ha="center", va="center", transform=axes.transAxes,
    )


def _plot_two_objectives(
    figure: Figure, finished: pd.DataFrame, front: pd.DataFrame, pairs: list[tuple[str, str]]
) -> None:
    (x_name, x_mode), (y_name, y_mode) = pairs
    axes = figure.add_subplot()
    axes.set_xlabel(_axis_label(x_name, x_mode))
    axes.set_ylabel(_axis_label(y_name, y_mode))
    if finished.empty:
        _draw_empty(axes, [x_name, y_name])
        return
    axes.scatter(finished[x_name], finished[y_name], **ALL_TRIALS_STYLE)
    front_values = front[[x_name, y_name]].to_numpy(dtype=float)
    staircase = _pareto_staircase(front_values, (x_mode, y_mode))
    axes.plot(staircase[:, 0], staircase[:, 1], **PARETO_LINE_STYLE)
    axes.scatter(front_values[:, 0], front_values[:, 1], label="Pareto front", **PARETO_STYLE)
    axes.legend(loc="best")


def _plot_objective_matrix(
    figure: Figure, finished: pd.DataFrame, front: pd.DataFrame, pairs: list[tuple[str, str]]
) -> None:
    """Panel ``(i, j)`` plots objective ``j`` against ``i``; the diagonal holds histograms."""
    count = len(pairs)
    grid = figure.subplots(count, count, squeeze=False)
    for row, (y_name, y_mode) in enumerate(pairs):
        for column, (x_name, x_mode) in enumerate(pairs):
            axes = grid[row][column]
            if row == count - 1:
                axes.set_xlabel(_axis_label(x_name, x_mode))
            if column == 0:
                axes.set_ylabel(_axis_label(y_name, y_mode))
            if finished.empty:
                continue
            if row == column:
                axes.hist(finished[x_name], bins=20, color="0.65")
                axes.hist(front[x_name], bins=20, color="tab:red", alpha=0.8)
            else:
                axes.scatter(finished[x_name], finished[y_name], **{**ALL_TRIALS_STYLE, "s": 8})
                axes.scatter(front[x_name], front[y_name], **{**PARETO_STYLE, "s": 16})
    if finished.empty:
        _draw_empty(grid[0][0], [name for name, _ in pairs])
    figure.suptitle("Pareto-optimal trials in red")


def _plot_single_objective(figure: Figure, df: pd.DataFrame, name: str, mode: str) -> None:
    axes = figure.add_subplot()
    axes.set_xlabel("trial")
    axes.set_ylabel(_axis_label(name, mode))
    ordered = df.sort_values("trial_order", kind="stable") if "trial_order" in df.columns else df
    trial_numbers = np.arange(1, len(ordered) + 1)
    values = pd.to_numeric(ordered[name], errors="coerce").to_numpy(dtype=float)
    finished = np.isfinite(values)
    if not finished.any():
        _draw_empty(axes, [name])
        return
    best = pd.Series(np.where(finished, values, np.nan))
    best = (best.cummax() if mode == "max" else best.cummin()).ffill()
    axes.scatter(trial_numbers[finished], values[finished], **ALL_TRIALS_STYLE)
    axes.step(trial_numbers, best, where="post", label="best so far", **PARETO_LINE_STYLE)
    axes.legend(loc="best")


def plot_pareto_front(
    df: pd.DataFrame,
    objectives: Any,
    path: str | Path | None = None,
    front: pd.DataFrame | None = None,
) -> Figure:
    """Draw the finished trials with the Pareto-optimal ones highlighted.

    Two objectives: a scatter with the front as a staircase. Three or more: a matrix of
    pairwise scatters. One: each trial's value and the best so far, by trial order.

    Args:
        df: results, one row per trial (non-finite objective values are left out).
        objectives: anything :meth:`multiobjective.Objectives.from_spec` takes.
        path: where to save a PNG (at 120 dpi); nothing is written when ``None``.
        front: the rows to highlight as Pareto-optimal, e.g. the front among feasible trials
            that was also written to CSV; by default the front of all finished rows of ``df``.

    Returns:
        The ``Figure``.

    Example:
        >>> df = pd.DataFrame({"acc": [0.9, 0.8], "params": [300, 100]})
        >>> figure = plot_pareto_front(df, {"acc": "max", "params": "min"})
    """
    objectives = Objectives.from_spec(objectives)
    pairs = list(objectives.items())
    values = objectives.to_maximisation(objectives.values_in(df))
    finished = df.loc[np.isfinite(values).all(axis=1)]
    if front is None:
        front = df.loc[pareto_mask(values)]
    if len(pairs) == 1:
        figure = Figure(figsize=(6.4, 4.8), layout="constrained")
        _plot_single_objective(figure, df, *pairs[0])
    elif len(pairs) == 2:
        figure = Figure(figsize=(6.4, 4.8), layout="constrained")
        _plot_two_objectives(figure, finished, front, pairs)
    else:
        side = 2.6 * len(pairs)
        figure = Figure(figsize=(side, side), layout="constrained")
        _plot_objective_matrix(figure, finished, front, pairs)
    return _save(figure, path)


def plot_hypervolume_trace(
    trace_df: pd.DataFrame, path: str | Path | None = None, label: str | None = None
) -> Figure:
    """Draw the hypervolume reached after each trial.

    Args:
        trace_df: a table with
            columns ``trial_number`` and ``hypervolume``.
        path: where to save a PNG (at 120 dpi); nothing is written when ``None``.
        label: legend entry for the line, e.g. the method's name.

    Returns:
        The ``Figure``.

    Example:
        >>> trace = pd.DataFrame({"trial_number": [1, 2, 3], "hypervolume": [0.0, 1.5, 2.0]})
        >>> figure = plot_hypervolume_trace(trace, label="ax-mobo")
    """
    missing = [c for c in ("trial_number", "hypervolume") if c not in trace_df.columns]
    if missing:
        raise ValueError(
            f"trace_df lacks column(s) {missing}; available columns: {list(trace_df.columns)}. "
            "Build it with orchestrator.results.hypervolume_trace."
        )
    figure = Figure(figsize=(6.4, 4.0), layout="constrained")
    axes = figure.add_subplot()
    axes.set_xlabel("trial")
    axes.set_ylabel("hypervolume")
    if trace_df.empty:
        _draw_empty(axes, ["hypervolume"])
    else:
        axes.step(trace_df["trial_number"], trace_df["hypervolume"], where="post", label=label)
        if label is not None:
            axes.legend(loc="best")
    return _save(figure, path)
