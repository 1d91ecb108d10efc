"""Metrics over a benchmark history: how fast a method finds the Pareto front.

A *history* is a DataFrame with one row per trial in completion order (as written by
:class:`benchmarks.simulator.SimulatedCluster`): objective columns named as in
``blackbox.objectives``, and optionally ``candidate_index`` (finite pools) and ``fidelity``.
A row counts as a *full evaluation* when all its objective values are finite and, if it has a
``fidelity``, that fidelity reaches ``blackbox.full_fidelity(candidate)``: a trial stopped early
by a scheduler has not revealed the candidate's final objective values.

The baseline for "iterations to find all ``k`` Pareto candidates among ``n``" is uniform random
search without replacement, whose expectation is the mean of the maximum of ``k`` draws from
``1..n`` without replacement: ``k * (n + 1) / (k + 1)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmarks.blackboxes.base import Blackbox
from multiobjective import Objectives, hypervolume, hypervolume_trace, normalise_mode

__all__ = [
    "best_value_curve",
    "expected_random_iterations_to_all",
    "full_evaluation_mask",
    "hypervolume_curve",
    "iterations_to_all",
    "known_hypervolume",
    "normalise_objectives",
    "pareto_found_curve",
]


def full_evaluation_mask(history: pd.DataFrame, blackbox: Blackbox) -> np.ndarray:
    """Boolean per history row: finite objectives reached at the candidate's full fidelity."""
    mask = np.isfinite(Objectives.from_spec(blackbox.objectives).values_in(history)).all(axis=1)
    if "fidelity" in history.columns and blackbox.fidelity is not None:
        fidelities = pd.to_numeric(history["fidelity"], errors="coerce").to_numpy(dtype=float)
        indices = _candidate_indices(history)
        for row in np.flatnonzero(mask):
            if np.isnan(fidelities[row]):
                continue  # no fidelity recorded: the evaluation was a full one
            index = None if indices[row] < 0 else int(indices[row])
            needed = blackbox.full_fidelity(index)
            mask[row] = needed is None or fidelities[row] >= needed - 1e-9
    return mask


def _candidate_indices(history: pd.DataFrame) -> np.ndarray:
    """Candidate index per row, -1 where the row has none."""
    if "candidate_index" not in history.columns:
        return np.full(len(history), -1, dtype=int)
    values = pd.to_numeric(history["candidate_index"], errors="coerce").to_numpy(dtype=float)
    return np.where(np.isfinite(values), values, -1).astype(int)


def pareto_found_curve(history: pd.DataFrame, blackbox: Blackbox) -> np.ndarray:
    """Number of distinct true-Pareto candidates fully evaluated after each history row.

    Returns:
        An integer array of length ``len(history)``, non-decreasing.

    Example:
        >>> curve = pareto_found_curve(history, blackbox)  # doctest: +SKIP
        >>> iterations_to_all(curve, len(blackbox.known_pareto_indices()))  # doctest: +SKIP
    """
    pareto = blackbox.known_pareto_indices()
    if pareto is None:
        raise ValueError(f"{blackbox!r} has no known Pareto front; use hypervolume_curve instead.")
    if "candidate_index" not in history.columns:
        raise KeyError("history needs a 'candidate_index' column to count Pareto candidates found.")
    is_pareto = np.zeros(len(blackbox.candidates()), dtype=bool)
    is_pareto[pareto] = True
    indices = _candidate_indices(history)
    full = full_evaluation_mask(history, blackbox)
    found: set[int] = set()
    curve = np.zeros(len(history), dtype=int)
    for row, (index, complete) in enumerate(zip(indices, full)):
        if complete and 0 <= index < len(is_pareto) and is_pareto[index]:
            found.add(int(index))
        curve[row] = len(found)
    return curve


def iterations_to_all(curve: Sequence[int] | np.ndarray, k: int) -> int | None:
    """First iteration (1-based) at which ``curve`` reaches ``k``; ``None`` if it never does.

    Example:
        >>> iterations_to_all([0, 1, 1, 2], 2)
        4
    """
    if k < 1:
        raise ValueError(f"k={k} must be >= 1 (the number of Pareto candidates to find).")
    reached = np.flatnonzero(np.asarray(curve) >= k)
    return int(reached[0]) + 1 if len(reached) else None


def expected_random_iterations_to_all(n: int, k: int) -> float:
    """Expected iterations for random search without replacement to find ``k`` targets in ``n``.

    ``E[max of k draws without replacement from 1..n] = k * (n + 1) / (k + 1)``.

    Example:
        >>> expected_random_iterations_to_all(118, 3)
        89.25
    """
    if not 1 <= k <= n:
        raise ValueError(f"k={k} must lie in [1, n={n}].")
    return k * (n + 1) / (k + 1)


def normalise_objectives(values: np.ndarray, blackbox: Blackbox) -> np.ndarray:
    """Map ``N x m`` objective values to ``[0, 1]^m`` where 1 is best and 0 the worst bound.

    ``(y - low) / (high - low)`` for maximised objectives, ``(high - y) / (high - low)`` for
    minimised ones, with ``(low, high)`` from ``blackbox.objective_bounds()``; clipped to [0, 1].
    """
    bounds = blackbox.objective_bounds()
    if bounds is None:
        raise ValueError(f"{blackbox!r} has no objective bounds to normalise with.")
    values = np.asarray(values, dtype=float).reshape(-1, len(blackbox.objectives))
    normalised = np.empty_like(values)
    for j, (name, mode) in enumerate(blackbox.objectives.items()):
        low, high = bounds[name]
        span = high - low if high > low else 1.0
        normalised[:, j] = (values[:, j] - low) / span if mode == "max" else (high - values[:, j]) / span
    return np.clip(normalised, 0.0, 1.0)


def hypervolume_curve(history: pd.DataFrame, blackbox: Blackbox) -> np.ndarray:
    """Hypervolume of the full evaluations so far, after each history row, in ``[0, 1]^m``.

    Objectives are normalised with :func:`normalise_objectives`; the reference point is the
    worst corner (the origin), so the curve lies in ``[0, 1]`` and is non-decreasing.
    """
    m = len(blackbox.objectives)
    if not len(history):
        return np.zeros(0)
    normalised = normalise_objectives(Objectives.from_spec(blackbox.objectives).values_in(history), blackbox)
    full = full_evaluation_mask(history, blackbox)
    return hypervolume_trace(normalised, np.zeros(m), include=full)


def known_hypervolume(blackbox: Blackbox) -> float | None:
    """Hypervolume of the true Pareto front (the ceiling of :func:`hypervolume_curve`), if known."""
    table = blackbox.candidate_objectives()
    pareto = blackbox.known_pareto_indices()
    if table is None or pareto is None:
        return None
    points = normalise_objectives(table.to_numpy(dtype=float)[pareto], blackbox)
    return hypervolume(points, np.zeros(len(blackbox.objectives)))


def best_value_curve(history: pd.DataFrame, objective: str, mode: str) -> np.ndarray:
    """Best ``objective`` value after each history row (NaN until the first finite value).

    Example:
        >>> best_value_curve(pd.DataFrame({"acc": [0.5, np.nan, 0.7, 0.6]}), "acc", "max")
        array([0.5, 0.5, 0.7, 0.7])
    """
    mode = normalise_mode(mode)
    if objective not in history.columns:
        raise KeyError(f"history has no column {objective!r}; it has {list(history.columns)}.")
    values = pd.to_numeric(history[objective], errors="coerce").to_numpy(dtype=float)
    accumulate = np.fmax.accumulate if mode == "max" else np.fmin.accumulate
    return accumulate(values) if len(values) else values
