"""Pareto front, hypervolume and the default reference point, written once for the whole project.

Every function takes objective values in *maximisation form* (an ``n x m`` array, min objectives
negated: see :meth:`multiobjective.Objectives.to_maximisation`). Rows with a NaN or infinite
value (failed or unfinished trials) belong to no front and add no volume. The maths is BoTorch's
(``is_non_dominated``, ``DominatedPartitioning``); this module fixes the conventions around it:
ties stay on the front, one objective is allowed, and the reference-point rule.

Example:
    >>> Y = np.array([[1.0, -2.0], [2.0, -1.0], [0.5, -3.0]])
    >>> pareto_mask(Y).tolist()
    [False, True, False]
    >>> reference = reference_point(Y)
    >>> reference.tolist()
    [0.35, -3.2]
    >>> round(hypervolume(Y, reference), 4)
    3.63
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = [
    "REFERENCE_POINT_MARGIN",
    "hypervolume",
    "hypervolume_2d_batch",
    "hypervolume_trace",
    "pareto_mask",
    "reference_point",
]

REFERENCE_POINT_MARGIN = 0.1
"""Share of the observed range by which the default reference point lies beyond the worst value,
so that the worst Pareto point along each objective still adds a non-zero slab of volume."""


def _as_matrix(values: np.ndarray) -> np.ndarray:
    matrix = np.asarray(values, dtype=float)
    if matrix.ndim == 1:
        matrix = matrix.reshape(-1, 1)
    if matrix.ndim != 2:
        raise ValueError(f"values: got shape {matrix.shape}; pass an n x m array (one row per point).")
    return matrix


def pareto_mask(values: np.ndarray) -> np.ndarray:
    """Boolean per row: finite and dominated by no other finite row (maximisation form).

    Row ``a`` dominates ``b`` when ``a >= b`` everywhere and ``a > b`` somewhere. Identical
    non-dominated rows are all kept, so two trials that reached the same optimum both count.

    Args:
        values: ``n x m`` objective values in maximisation form.

    Returns:
        ``n`` booleans.

    Example:
        >>> pareto_mask(np.array([[1.0, 1.0], [1.0, 1.0], [np.nan, 5.0]])).tolist()
        [True, True, False]
    """
    import torch  # imported on first use: checking objectives needs no PyTorch
    from botorch.utils.multi_objective.pareto import is_non_dominated

    matrix = _as_matrix(values)
    finite = np.isfinite(matrix).all(axis=1)
    mask = np.zeros(len(matrix), dtype=bool)
    if finite.any():
        points = torch.as_tensor(matrix[finite], dtype=torch.double)
        mask[finite] = is_non_dominated(points, maximize=True, deduplicate=False).numpy()
    return mask


def reference_point(values: np.ndarray, margin: float = REFERENCE_POINT_MARGIN) -> np.ndarray:
    """Reference point just worse than the worst finite value of each objective (maximisation form).

    ``ref_j = worst_j - margin * (best_j - worst_j)``; when objective ``j`` took one value only,
    ``ref_j = worst_j - margin * |worst_j|``, or ``worst_j - 1`` when that value is 0. The point
    moves with the data: fix one explicitly to compare runs.

    Raises:
        ValueError: if no row is finite.

    Example:
        >>> reference_point(np.array([[0.5, -10.0], [1.0, -20.0]])).tolist()
        [0.45, -21.0]
    """
    matrix = _as_matrix(values)
    matrix = matrix[np.isfinite(matrix).all(axis=1)]
    if len(matrix) == 0:
        raise ValueError("values: no row has finite values for every objective; a reference point needs one.")
    worst, best = matrix.min(axis=0), matrix.max(axis=0)
    offset = margin * (best - worst)
    offset = np.where(offset > 0, offset, np.where(worst != 0, margin * np.abs(worst), 1.0))
    return worst - offset


def hypervolume(values: np.ndarray, reference: np.ndarray) -> float:
    """Volume dominated by the finite rows and dominating ``reference`` (maximisation form).

    ``HV = vol({y : ref <= y <= p for some row p})``; rows that do not dominate the reference add
    nothing. With one objective the volume is the length ``max(0, max_i y_i - ref)``.

    Example:
        >>> hypervolume(np.array([[1.0, -1.0], [2.0, -2.0]]), np.array([0.0, -3.0]))
        3.0
    """
    matrix = _as_matrix(values)
    reference = np.asarray(reference, dtype=float).reshape(-1)
    if reference.shape[0] != matrix.shape[1]:
        raise ValueError(
            f"reference: got {reference.shape[0]} values for {matrix.shape[1]} objectives; give one per objective."
        )
    if not np.isfinite(reference).all():
        raise ValueError(f"reference: got {reference.tolist()}; every value must be finite.")
    matrix = matrix[np.isfinite(matrix).all(axis=1)]
    if len(matrix) == 0:
        return 0.0
    if matrix.shape[1] == 1:  # BoTorch's box decompositions need two or more objectives
        return max(0.0, float(matrix[:, 0].max() - reference[0]))
    import torch
    from botorch.utils.multi_objective.box_decompositions.dominated import DominatedPartitioning

    partitioning = DominatedPartitioning(
        ref_point=torch.as_tensor(reference, dtype=torch.double),
        Y=torch.as_tensor(matrix, dtype=torch.double),
    )
    return float(partitioning.compute_hypervolume())


def hypervolume_2d_batch(points: Any, reference: Any) -> Any:
    """Hypervolumes of many two-objective point sets at once: ``points`` is a ``... x n x 2`` tensor.

    The same volume as :func:`hypervolume` (maximisation form), for every set in the batch, by one
    sort and a running maximum: sorted by the first objective, descending, each point adds the
    strip between the highest second objective before it and its own, as wide as its first
    objective is beyond the reference. Values at or below the reference, and NaN, add nothing.
    An acquisition that scores thousands of fantasised fronts per step needs this in one pass.

    Args:
        points: ``batch x n x 2`` tensor (any batch shape).
        reference: two reference values (maximisation form).

    Returns:
        ``batch`` tensor of hypervolumes.

    Example:
        >>> import torch
        >>> sets = torch.tensor([[[1.0, -1.0], [2.0, -2.0]], [[1.0, -1.0], [0.5, -5.0]]])
        >>> hypervolume_2d_batch(sets, torch.tensor([0.0, -3.0])).tolist()
        [3.0, 2.0]
    """
    import torch

    reference = torch.as_tensor(reference, dtype=points.dtype, device=points.device).reshape(-1)
    if points.shape[-1] != 2 or reference.shape[0] != 2:
        raise ValueError(
            f"points: got {points.shape[-1]} objectives and {reference.shape[0]} reference values; "
            "hypervolume_2d_batch takes two of each (use hypervolume for other numbers)."
        )
    clean = torch.nan_to_num(points, nan=-torch.inf)
    first = torch.maximum(clean[..., 0], reference[0])
    second = torch.maximum(clean[..., 1], reference[1])
    first, order = first.sort(dim=-1, descending=True)
    top = second.gather(-1, order).cummax(dim=-1).values
    below = torch.cat([torch.full_like(top[..., :1], float(reference[1])), top[..., :-1]], dim=-1)
    return ((first - reference[0]) * (top - below)).sum(dim=-1)


def hypervolume_trace(values: np.ndarray, reference: np.ndarray, include: np.ndarray | None = None) -> np.ndarray:
    """Hypervolume of the first ``k`` rows, for ``k = 1..n`` (maximisation form); non-decreasing.

    ``trace_k = HV({rows i <= k : include_i}, ref)``. A row that is excluded, not finite, or
    weakly dominated by the front so far repeats the previous value without recomputing.

    Args:
        values: ``n x m`` objective values in maximisation form, in the order to accumulate.
        reference: ``m`` reference values in maximisation form.
        include: ``n`` booleans, the rows that count (e.g. full-fidelity evaluations); all by default.

    Example:
        >>> hypervolume_trace(np.array([[1.0, -2.0], [2.0, -1.0]]), np.array([0.0, -3.0])).tolist()
        [1.0, 4.0]
    """
    matrix = _as_matrix(values)
    counted = np.isfinite(matrix).all(axis=1)
    if include is not None:
        counted &= np.asarray(include, dtype=bool)
    trace = np.zeros(len(matrix))
    front = np.empty((0, matrix.shape[1]))
    current = 0.0
    for row, point in enumerate(matrix):
        if counted[row] and not (front >= point).all(axis=1).any():
            front = np.vstack([front[~(point >= front).all(axis=1)], point])
            current = hypervolume(front, reference)
        trace[row] = current
    return trace
