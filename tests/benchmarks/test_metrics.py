"""Tests for benchmarks.metrics on hand-made histories and on random search over the NMT pools."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest

from benchmarks.blackboxes.base import Blackbox, Fidelity
from benchmarks.blackboxes.nmthpo import NMTBlackbox
from benchmarks.metrics import (
    best_value_curve,
    expected_random_iterations_to_all,
    full_evaluation_mask,
    hypervolume_curve,
    iterations_to_all,
    known_hypervolume,
    normalise_objectives,
    pareto_found_curve,
)
from tests.benchmark_data import NMTHPO_PAIRS, needs_nmthpo


class PoolBlackbox(Blackbox):
    """Five candidates with objectives a (max) and b (min) in [0, 10]; candidate 4 has a 2-step curve."""

    name, instance = "toy", "toy"
    objectives = {"a": "max", "b": "min"}
    fidelity = Fidelity("epoch", 1, 4, "epoch", [1, 2, 3, 4])
    table = pd.DataFrame({"a": [10.0, 5.0, 10.0, 4.0, 0.0], "b": [0.0, 5.0, 8.0, 6.0, 10.0]})

    def search_space(self):
        return {}

    def evaluate(self, config, fidelity=None):
        raise NotImplementedError

    def features_of(self, config):
        return np.zeros(1)

    def candidates(self):
        return pd.DataFrame({"x": range(len(self.table))})

    def candidate_objectives(self):
        return self.table.copy()

    def known_pareto_indices(self):
        return [0]

    def objective_bounds(self):
        return {"a": (0.0, 10.0), "b": (0.0, 10.0)}

    def full_fidelity(self, index=None):
        return 2.0 if index == 4 else self.fidelity.max


class SurrogateBlackbox(PoolBlackbox):
    def known_pareto_indices(self):
        return None

    def objective_bounds(self):
        return None


def _history(indices, a, b, fidelity=None):
    history = pd.DataFrame({"candidate_index": indices, "a": a, "b": b})
    if fidelity is not None:
        history["fidelity"] = fidelity
    return history


def test_pareto_found_curve_counts_distinct_full_evaluations():
    box = PoolBlackbox()
    box.known_pareto_indices = lambda: [0, 2, 4]
    history = _history(
        [2, 2, np.nan, 0, 4, 4, 0],
        [10, 10, 9, np.nan, 0, 0, 10],
        [8, 8, 1, 0, 10, 10, 0],
        fidelity=[4, 4, 4, 4, 1, 2, np.nan],
    )
    # row 3 lacks an objective value, row 4 stopped below candidate 4's full fidelity (2).
    assert full_evaluation_mask(history, box).tolist() == [True, True, True, False, False, True, True]
    curve = pareto_found_curve(history, box)
    assert curve.tolist() == [1, 1, 1, 1, 1, 2, 3]
    assert iterations_to_all(curve, 3) == 7 and iterations_to_all(curve, 2) == 6
    assert iterations_to_all(curve[:6], 3) is None


def test_pareto_found_curve_needs_a_front_and_candidate_indices():
    with pytest.raises(ValueError, match="no known Pareto front"):
        pareto_found_curve(_history([0], [1], [1]), SurrogateBlackbox())
    with pytest.raises(KeyError, match="candidate_index"):
        pareto_found_curve(pd.DataFrame({"a": [1.0], "b": [1.0]}), PoolBlackbox())
    with pytest.raises(ValueError, match=r"objective column\(s\) \['b'\] not in the results"):
        pareto_found_curve(pd.DataFrame({"candidate_index": [0], "a": [1.0]}), PoolBlackbox())
    with pytest.raises(ValueError, match="k=0"):
        iterations_to_all([1, 2], 0)


def test_expected_random_iterations_formula_matches_enumeration():
    assert expected_random_iterations_to_all(118, 3) == 89.25
    for n, k in [(5, 2), (7, 3), (6, 1), (4, 4)]:
        maxima = [max(c) for c in itertools.combinations(range(1, n + 1), k)]
        assert expected_random_iterations_to_all(n, k) == pytest.approx(np.mean(maxima))
    for n, k in [(5, 0), (5, 6)]:
        with pytest.raises(ValueError, match=f"k={k}"):
            expected_random_iterations_to_all(n, k)


def test_hypervolume_curve_by_hand():
    box = PoolBlackbox()
    history = _history([1, 0, 2, 3, 4], [5, np.nan, 10, 4, 0], [5, 0, 8, 6, 10])
    # (5,5) -> square 0.5^2; row 2 adds (1, 0.2): 0.25 + 0.2 - 0.5*0.2; (4,6) is dominated; (0,10) is the origin.
    np.testing.assert_allclose(hypervolume_curve(history, box), [0.25, 0.25, 0.35, 0.35, 0.35])
    everything = _history(range(5), box.table["a"], box.table["b"])
    assert hypervolume_curve(everything, box)[-1] == pytest.approx(1.0) == known_hypervolume(box)
    assert known_hypervolume(SurrogateBlackbox()) is None
    with pytest.raises(ValueError, match="no objective bounds"):
        hypervolume_curve(history, SurrogateBlackbox())


def test_normalise_objectives_orients_and_clips():
    values = np.array([[10.0, 0.0], [0.0, 10.0], [15.0, -5.0], [2.5, 7.5]])
    np.testing.assert_allclose(normalise_objectives(values, PoolBlackbox()), [[1, 1], [0, 0], [1, 1], [0.25, 0.25]])


def test_best_value_curve():
    history = pd.DataFrame({"loss": [np.nan, 3.0, 4.0, 1.0, np.nan]})
    np.testing.assert_array_equal(best_value_curve(history, "loss", "min"), [np.nan, 3.0, 3.0, 1.0, 1.0])
    np.testing.assert_array_equal(best_value_curve(history, "loss", "max"), [np.nan, 3.0, 4.0, 4.0, 4.0])
    assert best_value_curve(history.iloc[:0], "loss", "max").size == 0
    with pytest.raises(ValueError, match="got 'best'; use 'max'"):
        best_value_curve(history, "loss", "best")
    with pytest.raises(KeyError, match="no column 'acc'"):
        best_value_curve(history, "acc", "max")


def _random_search_iterations(box: NMTBlackbox, seeds) -> list[int]:
    """Iterations uniform random search without replacement needs to find the whole front."""
    objectives = box.candidate_objectives()
    k = len(box.known_pareto_indices())
    iterations = []
    for seed in seeds:
        order = np.random.default_rng(seed).permutation(len(objectives))
        history = objectives.iloc[order].reset_index(drop=True).assign(candidate_index=order)
        iterations.append(iterations_to_all(pareto_found_curve(history, box), k))
    return iterations


@needs_nmthpo
@pytest.mark.parametrize("pair", NMTHPO_PAIRS or ["<no tables>"])
def test_random_search_matches_expected_iterations_to_all(data_dir, pair):
    box = NMTBlackbox(data_dir, pair)
    n, k = len(box.candidates()), len(box.known_pareto_indices())
    expected = expected_random_iterations_to_all(n, k)
    # Var[max of k of 1..n without replacement] = k (n+1) (n-k) / ((k+1)^2 (k+2)).
    std = math.sqrt(k * (n + 1) * (n - k) / ((k + 1) ** 2 * (k + 2)))
    many = _random_search_iterations(box, range(200))
    assert abs(np.mean(many) - expected) <= 4 * std / math.sqrt(len(many))
    assert np.mean(many) == pytest.approx(expected, rel=0.10)
    # The 20-seed check: deterministic with these seeds (standard error up to ~6% of the mean).
    assert np.mean(_random_search_iterations(box, range(20))) == pytest.approx(expected, rel=0.10)
