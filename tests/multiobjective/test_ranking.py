"""Tests for multiobjective.ranking: fronts, hypervolume contributions, scores."""

from __future__ import annotations

import numpy as np
import pytest

from multiobjective.pareto import hypervolume
from multiobjective.ranking import hypervolume_contributions, nondominated_fronts, pareto_scores


def test_fronts_peel_layer_by_layer_and_skip_non_finite_rows():
    Y = np.array([[3, 1], [1, 3], [2, 0.5], [0.5, 2], [0, 0], [np.nan, 1], [np.inf, 0]], dtype=float)
    assert nondominated_fronts(Y).tolist() == [0, 0, 1, 1, 2, -1, -1]


def test_every_point_of_a_front_is_dominated_by_one_of_the_previous_front():
    rng = np.random.default_rng(0)
    Y = rng.random((60, 3))
    fronts = nondominated_fronts(Y)
    for front in range(1, fronts.max() + 1):
        better = Y[fronts == front - 1]
        for point in Y[fronts == front]:
            assert ((better >= point).all(axis=1) & (better > point).any(axis=1)).any()


def test_contributions_are_the_volume_lost_without_the_point():
    rng = np.random.default_rng(1)
    x = np.sort(rng.random(6))
    front = np.column_stack([x, 1 - x**2])
    reference = np.array([-0.1, -0.1])
    contributions = hypervolume_contributions(front, reference)
    for i in range(len(front)):
        expected = hypervolume(front, reference) - hypervolume(np.delete(front, i, axis=0), reference)
        assert contributions[i] == pytest.approx(expected)
    assert (contributions > 0).all()


def test_duplicates_share_the_contribution_of_their_point():
    contributions = hypervolume_contributions(np.array([[2.0, 1.0], [2.0, 1.0], [1.0, 2.0]]), np.zeros(2))
    assert contributions[0] == contributions[1] == pytest.approx(1.0)


def test_scores_order_fronts_and_refine_only_the_named_front():
    Y = np.array([[3.0, 1.0], [1.0, 3.0], [2.2, 2.2], [1.0, 1.0], [0.5, 0.5]])
    coarse = pareto_scores(Y)
    assert coarse.tolist() == [3.0, 3.0, 3.0, 1.0, 0.0]
    refined = pareto_scores(Y, refine=[0])
    assert refined[2] == 4.0 and refined[0] == refined[1] == 2.5  # (2.2, 2.2) adds the most volume
    assert refined[3:].tolist() == [1.0, 0.0]


def test_one_objective_scores_are_ranks_and_nan_stays_nan():
    scores = pareto_scores(np.array([[5.0], [np.nan], [1.0], [5.0]]))
    assert scores[[0, 2, 3]].tolist() == [1.5, 0.0, 1.5] and np.isnan(scores[1])
