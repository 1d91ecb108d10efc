"""Pareto fronts, hypervolumes and result files for a finished (or running) experiment.

Every function here takes a results ``DataFrame`` (one row per trial, one column per
objective, ``config/*`` columns for the hyperparameters, optionally ``trial_order``) and the
experiment's objectives, and returns data: a ``DataFrame``, a float, a path. Drawing lives in
:mod:`orchestrator.plots`.

Objectives are given either as a mapping ``{"accuracy": "max", "params": "min"}`` or as a
sequence of objects with ``.name`` and ``.mode`` (e.g. :class:`orchestrator.spec.Objective`).
Rows whose value for any objective is missing or non-finite (failed or still running trials)
take part in no front and no hypervolume.

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
import torch
from botorch.utils.multi_objective.box_decompositions.dominated import DominatedPartitioning
from botorch.utils.multi_objective.pareto import is_non_dominated

ObjectivesLike = Mapping[str, str] | Sequence[Any]

VALID_MODES = ("max", "min")
CONFIG_PREFIX = "config/"
RESULTS_FILENAME = "results.csv"
PARETO_FILENAME = "pareto_front.csv"
PARETO_PLOT_FILENAME = "pareto_front.png"
HYPERVOLUME_PLOT_FILENAME = "hypervolume.png"
# Share of the observed range by which the default reference point lies beyond the worst value,
# so that the worst Pareto point along each objective still adds a non-zero slab of volume.
REFERENCE_POINT_MARGIN = 0.1


def normalize_objectives(objectives: ObjectivesLike) -> list[tuple[str, str]]:
    """Return the objectives as ``[(name, mode), ...]`` after checking names and modes.

    Args:
        objectives: mapping ``name -> "max" | "min"`` or a sequence of objects with
            ``.name`` and ``.mode``.

    Returns:
        One ``(name, mode)`` pair per objective, in the given order.

    Example:
        >>> normalize_objectives({"acc": "max", "params": "min"})
        [('acc', 'max'), ('params', 'min')]
    """
    if isinstance(objectives, (str, bytes)):
        raise TypeError(
            f"objectives={objectives!r} is a string; pass a mapping such as "
            f"{{{objectives!r}: 'max'}} or a list of Objective(name, mode)."
        )
    if isinstance(objectives, Mapping):
        pairs = [(name, mode) for name, mode in objectives.items()]
    else:
        pairs = []
        for objective in objectives:
            if not (hasattr(objective, "name") and hasattr(objective, "mode")):
                raise TypeError(
                    f"objectives contains {objective!r}, which has no .name/.mode; pass a "
                    "mapping name -> 'max'/'min' or Objective(name, mode) objects."
                )
            pairs.append((objective.name, objective.mode))
    if not pairs:
        raise ValueError("objectives is empty; give at least one objective, e.g. {'acc': 'max'}.")
    for name, mode in pairs:
        if mode not in VALID_MODES:
            raise ValueError(
                f"objective {name!r} has mode={mode!r}; the mode must be one of {VALID_MODES}."
            )
    names = [name for name, _ in pairs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"objectives name {duplicates} more than once; each name must be unique.")
    return pairs


def _check_columns(df: pd.DataFrame, names: Sequence[str]) -> None:
    missing = [name for name in names if name not in df.columns]
    if missing:
        raise ValueError(
            f"objective column(s) {missing} not in the results; available columns: "
            f"{list(map(str, df.columns))}."
        )


def _objective_values(df: pd.DataFrame, pairs: list[tuple[str, str]]) -> np.ndarray:
    """``n x m`` float array of the objective columns; unparsable entries become NaN."""
    _check_columns(df, [name for name, _ in pairs])
    columns = [pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float) for name, _ in pairs]
    return np.column_stack(columns) if columns else np.empty((len(df), 0))


def _maximization_space(values: np.ndarray, pairs: list[tuple[str, str]]) -> np.ndarray:
    signs = np.array([1.0 if mode == "max" else -1.0 for _, mode in pairs])
    return values * signs


def finished_mask(df: pd.DataFrame, objectives: ObjectivesLike) -> pd.Series:
    """Boolean Series, True where every objective value of the row is finite."""
    values = _objective_values(df, normalize_objectives(objectives))
    return pd.Series(np.isfinite(values).all(axis=1), index=df.index)


def pareto_front(df: pd.DataFrame, objectives: ObjectivesLike) -> pd.DataFrame:
    """Rows of ``df`` that no other finished row dominates.

    Row ``a`` dominates ``b`` when ``a`` is at least as good on every objective and strictly
    better on one. Identical Pareto-optimal rows are all kept (``deduplicate=False``), so two
    trials that reached the same optimum both appear.

    Args:
        df: results, one row per trial.
        objectives: mapping ``name -> "max" | "min"`` or objects with ``.name``/``.mode``.

    Returns:
        The non-dominated rows in their original order, with the original index.

    Example:
        >>> df = pd.DataFrame({"acc": [0.9, 0.8, float("nan")], "params": [300, 100, 1]})
        >>> pareto_front(df, {"acc": "max", "params": "min"}).index.tolist()
        [0, 1]
    """
    pairs = normalize_objectives(objectives)
    values = _objective_values(df, pairs)
    finite = np.isfinite(values).all(axis=1)
    mask = np.zeros(len(df), dtype=bool)
    if finite.any():
        maximized = torch.as_tensor(_maximization_space(values[finite], pairs), dtype=torch.double)
        mask[finite] = is_non_dominated(maximized, maximize=True, deduplicate=False).numpy()
    return df.loc[mask]


def _reference_vector(
    reference_point: Mapping[str, float], pairs: list[tuple[str, str]]
) -> np.ndarray:
    missing = [name for name, _ in pairs if name not in reference_point]
    if missing:
        raise ValueError(
            f"reference_point={dict(reference_point)!r} lacks objective(s) {missing}; give one "
            "value per objective, in the objective's own units."
        )
    vector = np.array([float(reference_point[name]) for name, _ in pairs])
    if not np.isfinite(vector).all():
        raise ValueError(f"reference_point={dict(reference_point)!r} must be finite.")
    return vector


def _hypervolume_max_space(points: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by ``points`` and dominating ``reference``; both in maximisation space."""
    if len(points) == 0:
        return 0.0
    if points.shape[1] == 1:
        # DominatedPartitioning needs two or more objectives; in 1-D the volume is a length.
        return max(0.0, float(points[:, 0].max() - reference[0]))
    partitioning = DominatedPartitioning(
        ref_point=torch.as_tensor(reference, dtype=torch.double),
        Y=torch.as_tensor(points, dtype=torch.double),
    )
    return float(partitioning.compute_hypervolume())


def hypervolume(
    points_df: pd.DataFrame, objectives: ObjectivesLike, reference_point: Mapping[str, float]
) -> float:
    """Hypervolume of the region dominated by the finished rows and bounded by a reference point.

    ``HV = vol({y : ref <= y <= p for some row p})`` after negating min objectives; rows that
    do not dominate the reference point contribute nothing.

    Args:
        points_df: rows to measure (all rows or just the front; dominated rows add nothing).
        objectives: mapping ``name -> "max" | "min"`` or objects with ``.name``/``.mode``.
        reference_point: mapping ``name -> value`` in each objective's own units, worse than
            every point of interest (see :func:`default_reference_point`).

    Returns:
        The hypervolume, ``0.0`` when no finished row dominates the reference point.

    Example:
        >>> df = pd.DataFrame({"acc": [1.0, 2.0], "cost": [1.0, 2.0]})
        >>> hypervolume(df, {"acc": "max", "cost": "min"}, {"acc": 0.0, "cost": 3.0})
        3.0
    """
    pairs = normalize_objectives(objectives)
    reference = _maximization_space(_reference_vector(reference_point, pairs), pairs)
    values = _objective_values(points_df, pairs)
    values = values[np.isfinite(values).all(axis=1)]
    return _hypervolume_max_space(_maximization_space(values, pairs), reference)


def default_reference_point(df: pd.DataFrame, objectives: ObjectivesLike) -> dict[str, float]:
    """Reference point just worse than the worst finished value of each objective.

    ``ref_j = worst_j - 0.1 * (best_j - worst_j)`` for a max objective (``+`` for min); when an
    objective took one value only, the margin is ``0.1 * |value|``, or ``1.0`` if it is zero.
    Fix the reference point explicitly when comparing runs: this one moves with the data.

    Args:
        df: results, one row per trial.
        objectives: mapping ``name -> "max" | "min"`` or objects with ``.name``/``.mode``.

    Returns:
        Mapping ``name -> reference value`` in the objective's own units.

    Example:
        >>> df = pd.DataFrame({"acc": [0.5, 1.0], "cost": [10.0, 20.0]})
        >>> default_reference_point(df, {"acc": "max", "cost": "min"})
        {'acc': 0.45, 'cost': 21.0}
    """
    pairs = normalize_objectives(objectives)
    values = _objective_values(df, pairs)
    values = values[np.isfinite(values).all(axis=1)]
    if len(values) == 0:
        raise ValueError(
            "default_reference_point needs at least one row with finite values for all "
            f"objectives {[name for name, _ in pairs]}; none of the {len(df)} rows has them."
        )
    reference: dict[str, float] = {}
    for column, (name, mode) in enumerate(pairs):
        low, high = float(values[:, column].min()), float(values[:, column].max())
        worst = low if mode == "max" else high
        margin = REFERENCE_POINT_MARGIN * (high - low)
        if margin == 0.0:
            margin = REFERENCE_POINT_MARGIN * abs(worst) or 1.0
        reference[name] = worst - margin if mode == "max" else worst + margin
    return reference


def _ordered(df: pd.DataFrame, order_by: str | None) -> pd.DataFrame:
    if order_by is not None and order_by in df.columns:
        return df.sort_values(order_by, kind="stable")
    return df


def hypervolume_trace(
    df: pd.DataFrame,
    objectives: ObjectivesLike,
    reference_point: Mapping[str, float] | None = None,
    order_by: str | None = "trial_order",
) -> pd.DataFrame:
    """Hypervolume of the first ``k`` trials, for ``k = 1..n``.

    ``hypervolume_k = HV(front(rows[:k]), ref)``; non-decreasing in ``k``. A row without finite
    objective values (failed trial) repeats the previous value.

    Args:
        df: results, one row per trial.
        objectives: mapping ``name -> "max" | "min"`` or objects with ``.name``/``.mode``.
        reference_point: mapping ``name -> value``; defaults to
            :func:`default_reference_point` over all of ``df`` so every ``k`` shares it.
        order_by: column giving the order trials finished in; when absent from ``df`` the
            index order is used.

    Returns:
        ``DataFrame`` with columns ``trial_number`` (1..n) and ``hypervolume``.

    Example:
        >>> df = pd.DataFrame({"acc": [1.0, 2.0], "cost": [2.0, 1.0]})
        >>> trace = hypervolume_trace(df, {"acc": "max", "cost": "min"}, {"acc": 0.0, "cost": 3.0})
        >>> trace["hypervolume"].tolist()
        [1.0, 4.0]
    """
    pairs = normalize_objectives(objectives)
    ordered = _ordered(df, order_by)
    values = _objective_values(ordered, pairs)
    finite = np.isfinite(values).all(axis=1)
    volumes = np.zeros(len(ordered))
    if finite.any():
        if reference_point is None:
            reference_point = default_reference_point(df, dict(pairs))
        reference = _maximization_space(_reference_vector(reference_point, pairs), pairs)
        maximized = _maximization_space(values, pairs)
        front = np.empty((0, len(pairs)))
        current = 0.0
        for k in range(len(ordered)):
            point = maximized[k]
            # Recompute only when the new point is not weakly dominated by the current front.
            if finite[k] and not (front >= point).all(axis=1).any():
                front = np.vstack([front[~(point >= front).all(axis=1)], point])
                current = _hypervolume_max_space(front, reference)
            volumes[k] = current
    return pd.DataFrame({"trial_number": np.arange(1, len(ordered) + 1), "hypervolume": volumes})


def save_results(
    df: pd.DataFrame,
    objectives: ObjectivesLike,
    out_dir: str | Path,
    reference_point: Mapping[str, float] | None = None,
) -> dict[str, Path]:
    """Write the results table, the Pareto front and their plots under ``out_dir``.

    Args:
        df: results, one row per trial.
        objectives: mapping ``name -> "max" | "min"`` or objects with ``.name``/``.mode``.
        out_dir: directory to write into; created if missing.
        reference_point: for the hypervolume plot; defaults to :func:`default_reference_point`.

    Returns:
        Paths keyed ``results_csv``, ``pareto_csv``, ``pareto_plot``, ``hypervolume_plot``.

    Example:
        >>> import tempfile
        >>> df = pd.DataFrame({"acc": [0.8, 0.9], "config/lr": [0.1, 0.01]})
        >>> paths = save_results(df, {"acc": "max"}, tempfile.mkdtemp())
        >>> sorted(path.name for path in paths.values())
        ['hypervolume.png', 'pareto_front.csv', 'pareto_front.png', 'results.csv']
    """
    # plots imports this module, so importing it at the top would be circular.
    from orchestrator.plots import plot_hypervolume_trace, plot_pareto_front

    pairs = normalize_objectives(objectives)
    mapping = dict(pairs)
    _check_columns(df, list(mapping))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "results_csv": out_dir / RESULTS_FILENAME,
        "pareto_csv": out_dir / PARETO_FILENAME,
        "pareto_plot": out_dir / PARETO_PLOT_FILENAME,
        "hypervolume_plot": out_dir / HYPERVOLUME_PLOT_FILENAME,
    }
    df.to_csv(paths["results_csv"], index=False)
    pareto_front(df, mapping).to_csv(paths["pareto_csv"], index=False)
    plot_pareto_front(df, mapping, path=paths["pareto_plot"])
    trace = hypervolume_trace(df, mapping, reference_point=reference_point)
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
    return pd.read_csv(path)


def _format_float(value: float) -> str:
    return f"{value:.6g}"


def format_pareto_table(
    df: pd.DataFrame, objectives: ObjectivesLike, columns: Sequence[str] | None = None
) -> str:
    """The Pareto-optimal rows as text: objectives first, then hyperparameters.

    Rows are sorted best-first by the first objective; ``config/`` is stripped from headers.

    Args:
        df: results, one row per trial.
        objectives: mapping ``name -> "max" | "min"`` or objects with ``.name``/``.mode``.
        columns: extra columns to show after the objectives; defaults to every ``config/*``.

    Returns:
        The table as a string, or a one-line message when no trial has finished.

    Example:
        >>> df = pd.DataFrame({"acc": [0.8, 0.9], "config/lr": [0.1, 0.01]})
        >>> print(format_pareto_table(df, {"acc": "max"}))
        acc   lr
        0.9 0.01
    """
    pairs = normalize_objectives(objectives)
    names = [name for name, _ in pairs]
    front = pareto_front(df, dict(pairs))
    if front.empty:
        return f"No finished trials with finite values for {names}."
    if columns is None:
        columns = [c for c in df.columns if isinstance(c, str) and c.startswith(CONFIG_PREFIX)]
    else:
        _check_columns(df, list(columns))
    shown = names + [c for c in columns if c not in names]
    first_name, first_mode = pairs[0]
    table = front[shown].sort_values(first_name, ascending=first_mode == "min", kind="stable")
    table = table.rename(columns=lambda c: str(c).removeprefix(CONFIG_PREFIX))
    # pandas pads every line with one leading space when the index is hidden.
    return textwrap.dedent(table.to_string(index=False, float_format=_format_float))
