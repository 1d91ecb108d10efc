"""Ordering points by Pareto dominance: non-dominated fronts, hypervolume contributions, scores.

Multi-objective schedulers compare the trials at a rung by these, the way single-objective ones
compare a number: front ``0`` is the non-dominated set, front ``1`` is non-dominated once front
``0`` is removed, and so on (non-dominated sorting, Deb et al. 2002). Within a front, a point's
*exclusive hypervolume contribution* (the volume that only it dominates) breaks ties, as in
SMS-EMOA: a point that alone dominates much volume goes first, a point crowded by its
neighbours last. Values are in maximisation form (see :meth:`multiobjective.Objectives.to_maximisation`);
non-finite rows belong to no front. Dominance is the relation of BoTorch's ``is_non_dominated``
(evaluated for all pairs at once, so the fronts peel in one pass), volumes
:func:`multiobjective.pareto.hypervolume`.

Example:
    >>> Y = np.array([[3.0, 1.0], [1.0, 3.0], [2.0, 2.0], [1.0, 1.0], [np.nan, 9.0]])
    >>> nondominated_fronts(Y).tolist()
    [0, 0, 0, 1, -1]
    >>> pareto_scores(Y).tolist()  # the front-0 points tie without refinement
    [2.0, 2.0, 2.0, 0.0, nan]
    >>> pareto_scores(Y, refine=[0]).tolist()  # (2, 2) alone dominates the most volume
    [1.5, 1.5, 3.0, 0.0, nan]
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from multiobjective.pareto import _as_matrix, hypervolume, reference_point

__all__ = ["hypervolume_contributions", "nondominated_fronts", "pareto_scores"]


def nondominated_fronts(values: np.ndarray) -> np.ndarray:
    """Front index per row: ``0`` for the non-dominated rows, ``1`` once those are removed, ...

    Identical rows share a front. Rows with a NaN or infinite value get ``-1``.

    Args:
        values: ``n x m`` objective values in maximisation form.

    Returns:
        ``n`` integers.

    Example:
        >>> nondominated_fronts(np.array([[1.0, 1.0], [0.0, 0.0], [1.0, 1.0]])).tolist()
        [0, 1, 0]
    """
    matrix = _as_matrix(values)
    fronts = np.full(len(matrix), -1, dtype=int)
    rows = np.flatnonzero(np.isfinite(matrix).all(axis=1))
    points = matrix[rows]
    # dominates[i, j]: row i is >= row j everywhere and > somewhere (BoTorch's is_non_dominated
    # relation, for every pair at once: O(n^2 m) memory, fine for the rungs and studies here).
    geq = (points[:, None, :] >= points[None, :, :]).all(axis=2)
    gt = (points[:, None, :] > points[None, :, :]).any(axis=2)
    dominates = geq & gt
    remaining = np.ones(len(points), dtype=bool)
    front = 0
    while remaining.any():
        on_front = remaining & ~dominates[remaining].any(axis=0)
        fronts[rows[on_front]] = front
        remaining &= ~on_front
        front += 1
    return fronts


def hypervolume_contributions(values: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Exclusive hypervolume contribution of each row: ``HV(all) - HV(all without the row)``.

    Identical rows are counted once and each gets the contribution of that one point (removing a
    duplicate alone would always give 0). Meant for the rows of one front; rows that are not
    finite get NaN.

    Example:
        >>> hypervolume_contributions(np.array([[3.0, 1.0], [2.0, 2.0], [1.0, 3.0]]), np.zeros(2)).tolist()
        [1.0, 1.0, 1.0]
    """
    matrix = _as_matrix(values)
    finite = np.isfinite(matrix).all(axis=1)
    contributions = np.full(len(matrix), np.nan)
    if not finite.any():
        return contributions
    unique, inverse = np.unique(matrix[finite], axis=0, return_inverse=True)
    total = hypervolume(unique, reference)
    if len(unique) == 1:
        exclusive = np.array([total])
    else:
        exclusive = np.array([total - hypervolume(np.delete(unique, i, axis=0), reference) for i in range(len(unique))])
    contributions[finite] = exclusive[np.asarray(inverse).reshape(-1)]
    return contributions


def pareto_scores(values: np.ndarray, refine: Iterable[int] = (), fronts: np.ndarray | None = None) -> np.ndarray:
    """A score per row, higher is better, that orders rows by front and then by contribution.

    Rows are placed best first: by front (:func:`nondominated_fronts`), and within each front
    listed in ``refine`` by exclusive hypervolume contribution (:func:`hypervolume_contributions`
    of that front against :func:`~multiobjective.pareto.reference_point` of all finite rows),
    largest first. A row's score is ``n_finite - 1 - position``; rows that stay tied (a front not
    refined, equal contributions, identical rows) share the mean of their positions. Non-finite
    rows score NaN. With one objective the score is the rank of the value (ties averaged).

    Refining costs one hypervolume per distinct point of the front, so callers refine only the
    fronts where the order inside matters (e.g. the one a cut-off falls in).

    Args:
        values: ``n x m`` objective values in maximisation form.
        refine: front indices (0 = non-dominated) whose rows are ordered by contribution.
        fronts: :func:`nondominated_fronts` of ``values``, when the caller has them already.

    Returns:
        ``n`` floats.

    Example:
        >>> pareto_scores(np.array([[1.0], [3.0], [2.0], [2.0]])).tolist()
        [0.0, 3.0, 1.5, 1.5]
    """
    matrix = _as_matrix(values)
    fronts = nondominated_fronts(matrix) if fronts is None else np.asarray(fronts)
    finite = fronts >= 0
    scores = np.full(len(matrix), np.nan)
    if not finite.any():
        return scores
    # Secondary key within a front: -contribution where refined, else 0 (a tie).
    secondary = np.zeros(len(matrix))
    refine = {int(front) for front in refine}
    if refine:
        reference = reference_point(matrix[finite])
        for front in refine:
            members = np.flatnonzero(fronts == front)
            if len(members) > 1:
                secondary[members] = -hypervolume_contributions(matrix[members], reference)
    rows = np.flatnonzero(finite)
    keys = np.stack([fronts[rows], secondary[rows]], axis=1)
    order = np.lexsort((keys[:, 1], keys[:, 0]))  # best first
    positions = np.empty(len(rows))
    start = 0
    while start < len(order):  # average the positions of each run of equal keys
        stop = start + 1
        while stop < len(order) and (keys[order[stop]] == keys[order[start]]).all():
            stop += 1
        positions[order[start:stop]] = (start + stop - 1) / 2
        start = stop
    scores[rows] = len(rows) - 1 - positions
    return scores
