"""Tests for multiobjective.pareto: the front, the hypervolume and the reference point, in maximisation form."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from multiobjective import hypervolume, hypervolume_trace, pareto_mask, reference_point


def _brute_force_mask(values: np.ndarray) -> list[bool]:
    finite = np.isfinite(values).all(axis=1)
    mask = []
    for i, point in enumerate(values):
        dominated = any(
            finite[j] and (other >= point).all() and (other > point).any()
            for j, other in enumerate(values) if j != i
        )
        mask.append(bool(finite[i] and not dominated))
    return mask


def test_pareto_mask_matches_brute_force_and_keeps_ties():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 4, size=(40, 3)).astype(float)
    values[5] = np.nan
    assert pareto_mask(values).tolist() == _brute_force_mask(values)
    assert pareto_mask(np.array([[1.0, 1.0], [1.0, 1.0]])).tolist() == [True, True]


def test_pareto_mask_one_objective_and_no_finite_rows():
    assert pareto_mask(np.array([1.0, 3.0, 3.0, np.inf])).tolist() == [False, True, True, False]
    assert pareto_mask(np.full((2, 2), np.nan)).tolist() == [False, False]


def test_reference_point_rule():
    assert reference_point(np.array([[0.5, -10.0], [1.0, -20.0], [np.nan, 5.0]])).tolist() == pytest.approx([0.45, -21.0])
    # A constant objective: a tenth of its magnitude, or 1 when it is zero.
    assert reference_point(np.array([[5.0, 0.0, -2.0]])).tolist() == pytest.approx([4.5, -1.0, -2.2])
    with pytest.raises(ValueError, match="no row has finite values"):
        reference_point(np.array([[np.nan, 1.0]]))


def test_every_front_point_adds_volume_above_the_default_reference():
    rng = np.random.default_rng(1)
    values = rng.normal(size=(30, 2))
    reference = reference_point(values)
    for point in values[pareto_mask(values)]:
        assert hypervolume(point[None, :], reference) > 0


def test_hypervolume_staircase_one_objective_and_errors():
    points = np.array([[1.0, 3.0], [2.0, 2.0], [3.0, 1.0], [0.5, 0.5]])
    assert hypervolume(points, np.zeros(2)) == pytest.approx(6.0)
    assert hypervolume(np.array([[4.0], [np.nan]]), np.array([1.0])) == 3.0
    assert hypervolume(np.array([[0.0]]), np.array([1.0])) == 0.0
    assert hypervolume(np.empty((0, 2)), np.zeros(2)) == 0.0
    with pytest.raises(ValueError, match="got 1 values for 2 objectives"):
        hypervolume(points, np.zeros(1))
    with pytest.raises(ValueError, match="must be finite"):
        hypervolume(points, np.array([0.0, np.nan]))


def test_hypervolume_trace_equals_hypervolume_of_each_prefix():
    rng = np.random.default_rng(2)
    values = rng.normal(size=(25, 3))
    values[3] = np.nan
    include = rng.random(25) > 0.3
    reference = reference_point(values) - 1.0
    trace = hypervolume_trace(values, reference, include=include)
    for k in range(1, len(values) + 1):
        prefix = values[:k][include[:k]]
        assert trace[k - 1] == pytest.approx(hypervolume(prefix, reference))
    assert all(a <= b for a, b in itertools.pairwise(trace))


def test_hypervolume_2d_batch_equals_hypervolume_of_each_set():
    import torch

    from multiobjective import hypervolume_2d_batch

    rng = np.random.default_rng(3)
    sets = rng.normal(size=(40, 9, 2))
    sets[0, 3] = np.nan  # a failed point adds nothing
    sets[1] = -5.0  # every point behind the reference
    reference = np.array([-1.0, -1.5])
    batch = hypervolume_2d_batch(torch.tensor(sets), torch.tensor(reference)).numpy()
    expected = [hypervolume(points, reference) for points in sets]
    assert np.allclose(batch, expected, atol=1e-12)
    assert batch[1] == 0.0
    nested = hypervolume_2d_batch(torch.tensor(sets.reshape(4, 10, 9, 2)), torch.tensor(reference))
    assert nested.shape == (4, 10) and np.allclose(nested.numpy().ravel(), expected)
    with pytest.raises(ValueError, match="takes two of each"):
        hypervolume_2d_batch(torch.zeros(3, 3), torch.zeros(3))
