"""Figures of an experiment's results: the Pareto front and the hypervolume over trials.

Plain functions over results ``DataFrame``s (one row per trial, one column per objective). They build
``matplotlib.figure.Figure`` objects directly, without ``pyplot``, so they change no global
backend state, need no display and are safe in worker processes. The data they draw is computed
elsewhere (:mod:`orchestrator.results`, :mod:`multiobjective`) or in a data step of its own
(:func:`_pareto_plot_data`), as in Optuna's ``visualization/_pareto_front.py``.

Every axis label names the objective, its direction and which way is better
(``acc (max, better →)``); an axis is logarithmic when :func:`use_log_scale` says so.

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"acc": [0.9, 0.8, 0.7], "params": [300, 100, 200]})
    >>> figure = plot_pareto_front(df, {"acc": "max", "params": "min"})
    >>> figure.axes[0].get_xlabel(), figure.axes[0].get_yscale()
    ('acc (max, better →)', 'linear')
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from multiobjective import Objectives, pareto_mask

DPI = 120
LOG_SCALE_MIN_RATIO = 100.0
"""Largest over smallest value from which an axis is logarithmic: two decades."""
CREATION_ORDER_COLUMN = "trial_order"
"""Column of the 1-based order trials were created in, written by :mod:`orchestrator.trials`."""
HISTOGRAM_BINS = 20
CAPTION_WIDTH = 95
"""Characters per line of the hypervolume plot's caption (small font, 6.4 inches wide)."""
ALL_TRIALS_STYLE = {"color": "0.65", "s": 18, "label": "finished trials"}
PARETO_STYLE = {
    "color": "tab:red", "marker": "D", "s": 36, "edgecolor": "black", "linewidth": 0.5, "zorder": 3,
}
PARETO_LINE_STYLE = {"color": "tab:red", "linewidth": 1.2, "zorder": 2}


def use_log_scale(values: Any) -> bool:
    """Whether an axis showing ``values`` should be logarithmic.

    True when every finite value is positive (a log axis would hide the others) and the largest
    is at least :data:`LOG_SCALE_MIN_RATIO` (100) times the smallest, i.e. they span two decades.

    Example:
        >>> use_log_scale([1e3, 5e4, 2e5]), use_log_scale([0.5, 0.9]), use_log_scale([0.0, 1e6])
        (True, False, False)
    """
    array = np.asarray(values, dtype=float).reshape(-1)
    finite = array[np.isfinite(array)]
    if len(finite) == 0 or (finite <= 0).any():
        return False
    return bool(finite.max() / finite.min() >= LOG_SCALE_MIN_RATIO)


def _axis_label(name: str, mode: str) -> str:
    # In a rotated y label the arrow turns with the text, so "→" points up there.
    return f"{name} ({mode}, better {'→' if mode == 'max' else '←'})"


def _save(figure: Figure, path: str | Path | None) -> Figure:
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=DPI)
    return figure


def _draw_empty(axes: Axes, names: list[str]) -> None:
    axes.text(
        0.5, 0.5, f"no finished trials with finite {', '.join(names)}",
        ha="center", va="center", transform=axes.transAxes,
    )


# ---------------------------------------------------------------- Pareto front: data


class _ParetoPlotData(NamedTuple):
    pairs: list[tuple[str, str]]  # (objective, mode) in order
    finished: pd.DataFrame  # rows with finite values for every objective
    front: pd.DataFrame  # the rows to highlight
    log_scale: dict[str, bool]  # objective -> logarithmic axis (use_log_scale of finished)


def _pareto_plot_data(df: pd.DataFrame, objectives: Any, front: pd.DataFrame | None) -> _ParetoPlotData:
    objectives = Objectives.from_spec(objectives)
    values = objectives.to_maximisation(objectives.values_in(df))
    finished = df.loc[np.isfinite(values).all(axis=1)]
    if front is None:
        front = df.loc[pareto_mask(values)]
    finished_values = objectives.values_in(finished)
    log_scale = {name: use_log_scale(finished_values[:, j]) for j, name in enumerate(objectives.names)}
    return _ParetoPlotData(list(objectives.items()), finished, front, log_scale)


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


def _front_label(front: pd.DataFrame) -> str:
    return f"Pareto front ({len(front)} trial{'' if len(front) == 1 else 's'})"


# ---------------------------------------------------------------- Pareto front: drawing


def _plot_two_objectives(figure: Figure, data: _ParetoPlotData) -> None:
    (x_name, x_mode), (y_name, y_mode) = data.pairs
    axes = figure.add_subplot()
    axes.set_xlabel(_axis_label(x_name, x_mode))
    axes.set_ylabel(_axis_label(y_name, y_mode))
    axes.set_xscale("log" if data.log_scale[x_name] else "linear")
    axes.set_yscale("log" if data.log_scale[y_name] else "linear")
    if data.finished.empty:
        _draw_empty(axes, [x_name, y_name])
        return
    axes.scatter(data.finished[x_name], data.finished[y_name], **ALL_TRIALS_STYLE)
    front_values = data.front[[x_name, y_name]].to_numpy(dtype=float)
    if len(front_values):
        staircase = _pareto_staircase(front_values, (x_mode, y_mode))
        axes.plot(staircase[:, 0], staircase[:, 1], **PARETO_LINE_STYLE)
    axes.scatter(front_values[:, 0], front_values[:, 1], label=_front_label(data.front), **PARETO_STYLE)
    # Above the axes: inside, any place may hide the front or its staircase.
    figure.legend(*axes.get_legend_handles_labels(), loc="outside upper center", ncols=2)


def _histogram_bins(values: pd.Series, log: bool) -> np.ndarray | int:
    low, high = float(values.min()), float(values.max())
    if low == high:
        return HISTOGRAM_BINS
    return np.geomspace(low, high, HISTOGRAM_BINS + 1) if log else np.linspace(low, high, HISTOGRAM_BINS + 1)


def _plot_objective_matrix(figure: Figure, data: _ParetoPlotData) -> None:
    """Lower triangle: panel ``(i, j)``, ``i > j``, plots objective ``i`` against ``j``.

    The diagonal holds each objective's histogram (count on the right), titled with its name;
    panels of one column share the x axis, the off-diagonal panels of one row the y axis.
    """
    count = len(data.pairs)
    grid = figure.add_gridspec(count, count)
    panels: dict[tuple[int, int], Axes] = {}
    for row, (y_name, y_mode) in enumerate(data.pairs):
        for column, (x_name, x_mode) in enumerate(data.pairs[: row + 1]):
            axes = figure.add_subplot(
                grid[row, column],
                sharex=panels.get((column, column)),
                sharey=panels.get((row, 0)) if 0 < column < row else None,
            )
            panels[row, column] = axes
            axes.set_xscale("log" if data.log_scale[x_name] else "linear")
            if row == column:
                axes.set_title(_axis_label(x_name, x_mode), fontsize="medium")
                axes.yaxis.tick_right()
            else:
                axes.set_yscale("log" if data.log_scale[y_name] else "linear")
            if row == count - 1:
                axes.set_xlabel(_axis_label(x_name, x_mode))
            else:
                axes.tick_params(labelbottom=False)
            if column == 0 and row > 0:
                axes.set_ylabel(_axis_label(y_name, y_mode))
            elif row != column:
                axes.tick_params(labelleft=False)
            if data.finished.empty:
                continue
            if row == column:
                bins = _histogram_bins(data.finished[x_name], data.log_scale[x_name])
                axes.hist(data.finished[x_name], bins=bins, color="0.65")
                axes.hist(data.front[x_name], bins=bins, color=PARETO_STYLE["color"], alpha=0.8)
            else:
                axes.scatter(data.finished[x_name], data.finished[y_name], **{**ALL_TRIALS_STYLE, "s": 8})
                axes.scatter(
                    data.front[x_name], data.front[y_name], label=_front_label(data.front),
                    **{**PARETO_STYLE, "s": 18},
                )
    if data.finished.empty:
        _draw_empty(panels[0, 0], [name for name, _ in data.pairs])
        return
    # The empty upper triangle holds the legend.
    handles, labels = panels[1, 0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="upper right")


def _plot_single_objective(figure: Figure, df: pd.DataFrame, name: str, mode: str) -> None:
    axes = figure.add_subplot()
    in_creation_order = CREATION_ORDER_COLUMN in df.columns
    axes.set_xlabel("trial (creation order)" if in_creation_order else "trial")
    axes.set_ylabel(_axis_label(name, mode))
    ordered = df.sort_values(CREATION_ORDER_COLUMN, kind="stable") if in_creation_order else df
    trial_numbers = np.arange(1, len(ordered) + 1)
    values = pd.to_numeric(ordered[name], errors="coerce").to_numpy(dtype=float)
    finished = np.isfinite(values)
    if not finished.any():
        _draw_empty(axes, [name])
        return
    axes.set_yscale("log" if use_log_scale(values) else "linear")
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
    """Draw the finished trials with the Pareto-optimal ones marked (red diamonds, on top).

    Two objectives: a scatter with the front and the staircase bounding the region it
    dominates. Three or more: a lower-triangle matrix of pairwise scatters with histograms on
    the diagonal and the legend in the empty upper right. One: each trial's value and the best
    so far, in creation order. Axes are logarithmic where :func:`use_log_scale` says so.

    Args:
        df: results, one row per trial (non-finite objective values are left out).
        objectives: anything :meth:`multiobjective.Objectives.from_spec` takes.
        path: where to save a PNG (at 120 dpi); nothing is written when ``None``.
        front: the rows to highlight as Pareto-optimal, e.g. the front among feasible trials
            that was also written to CSV; by default the front of all finished rows of ``df``.

    Returns:
        The ``Figure``.

    Example:
        >>> df = pd.DataFrame({"acc": [0.9, 0.8], "params": [30_000, 100]})
        >>> figure = plot_pareto_front(df, {"acc": "max", "params": "min"})
        >>> figure.axes[0].get_ylabel(), figure.axes[0].get_yscale()
        ('params (min, better ←)', 'log')
    """
    data = _pareto_plot_data(df, objectives, front)
    if len(data.pairs) == 1:
        figure = Figure(figsize=(6.4, 4.8), layout="constrained")
        _plot_single_objective(figure, df, *data.pairs[0])
    elif len(data.pairs) == 2:
        figure = Figure(figsize=(6.4, 4.8), layout="constrained")
        _plot_two_objectives(figure, data)
    else:
        side = 2.6 * len(data.pairs)
        figure = Figure(figsize=(side, side), layout="constrained")
        _plot_objective_matrix(figure, data)
    return _save(figure, path)


# ---------------------------------------------------------------- hypervolume trace


def _format_point(point: Mapping[str, float]) -> str:
    return ", ".join(f"{name}={value:.4g}" for name, value in point.items())


def _hypervolume_caption(attrs: Mapping[str, Any]) -> str | None:
    """What a trace was computed against, from :func:`orchestrator.results.hypervolume_trace`'s ``attrs``."""
    reference = attrs.get("reference_point")
    if reference is None:
        return None
    lines = [f"reference point (in objective units): {_format_point(reference)}"]
    if attrs.get("normalised") and attrs.get("best_point") is not None:
        lines.append(
            f"objectives scaled to [0, 1] over {attrs['finished_trials']} finished trials: "
            f"reference point → 0, best ({_format_point(attrs['best_point'])}) → 1"
        )
    return "\n".join(textwrap.fill(line, CAPTION_WIDTH, subsequent_indent="    ") for line in lines)


def _trial_axis_label(order_by: str | None) -> str:
    if order_by == CREATION_ORDER_COLUMN:
        return "trial (creation order)"
    return "trial" if order_by is None else f"trial (ordered by {order_by})"


def plot_hypervolume_trace(
    trace_df: pd.DataFrame, path: str | Path | None = None, label: str | None = None
) -> Figure:
    """Draw the hypervolume reached after each trial, stating what it was measured against.

    When ``trace_df`` comes from :func:`orchestrator.results.hypervolume_trace` its ``attrs``
    give the title (the reference point in objective units and, for a normalised trace, the
    scaling) and the x axis (``trial (creation order)``); a normalised trace's y axis is
    ``[0, 1]``.

    Args:
        trace_df: a table with columns ``trial_number`` and ``hypervolume``.
        path: where to save a PNG (at 120 dpi); nothing is written when ``None``.
        label: legend entry for the line, e.g. the method's name.

    Returns:
        The ``Figure``.

    Example:
        >>> trace = pd.DataFrame({"trial_number": [1, 2, 3], "hypervolume": [0.0, 1.5, 2.0]})
        >>> trace.attrs = {"reference_point": {"acc": 0.45, "latency": 21.0}}
        >>> figure = plot_hypervolume_trace(trace, label="ax-mobo")
        >>> figure.axes[0].get_title()
        'reference point (in objective units): acc=0.45, latency=21'
    """
    missing = [c for c in ("trial_number", "hypervolume") if c not in trace_df.columns]
    if missing:
        raise ValueError(
            f"trace_df lacks column(s) {missing}; available columns: {list(trace_df.columns)}. "
            "Build it with orchestrator.results.hypervolume_trace."
        )
    attrs = trace_df.attrs
    figure = Figure(figsize=(6.4, 4.4), layout="constrained")
    axes = figure.add_subplot()
    axes.set_xlabel(_trial_axis_label(attrs.get("order_by")))
    normalised = bool(attrs.get("normalised"))
    axes.set_ylabel("hypervolume (normalised)" if normalised else "hypervolume")
    caption = _hypervolume_caption(attrs)
    if caption is not None:
        axes.set_title(caption, fontsize="small")
    if trace_df.empty:
        _draw_empty(axes, ["hypervolume"])
        return _save(figure, path)
    if normalised:
        axes.set_ylim(0.0, 1.05)
    axes.step(trace_df["trial_number"], trace_df["hypervolume"], where="post", label=label)
    if label is not None:
        axes.legend(loc="best")
    return _save(figure, path)
