"""Tests for benchmarks.pool_ceiling: the idealised pool searcher given the rest of the pool."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood

from benchmarks.pool_ceiling import Beliefs, beliefs, idealised_trials_to_all, loo_predictive, main
from multiobjective import Objectives, pareto_mask
from searchers._threads import torch_thread_limit
from tests.benchmark_data import NMTHPO_PAIRS, needs_nmthpo


def _data(n: int = 25, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.random((n, 3))
    y = np.column_stack([np.sin(6 * x[:, 0]) + x[:, 1], x[:, 2] - x[:, 0] ** 2]) + rng.normal(0, 0.05, (n, 2))
    return x, (y - y.mean(0)) / y.std(0)


@torch_thread_limit(1)  # small GPs: threads only contend
def test_loo_predictive_is_the_gp_conditioned_on_the_other_rows():
    x, y = _data()
    mean, sd = loo_predictive(x, y)
    for j in range(2):
        fitted = SingleTaskGP(torch.tensor(x), torch.tensor(y[:, j : j + 1]), outcome_transform=None)
        # the same fit again (seeded), then for each row a GP on the others with those hyperparameters
        with torch.random.fork_rng():
            torch.manual_seed(0)
            fit_gpytorch_mll(ExactMarginalLogLikelihood(fitted.likelihood, fitted))
        for i in (0, 7, 24):
            keep = np.arange(len(x)) != i
            other = SingleTaskGP(torch.tensor(x[keep]), torch.tensor(y[keep, j : j + 1]), outcome_transform=None)
            other.load_state_dict(fitted.state_dict(), strict=False)
            other.eval()
            with torch.no_grad():
                posterior = other.posterior(torch.tensor(x[i : i + 1]), observation_noise=True)
            assert mean[i, j] == pytest.approx(float(posterior.mean), abs=1e-6)
            assert sd[i, j] == pytest.approx(float(posterior.variance.sqrt()), abs=1e-6)


class _Pool:
    """A duck-typed pool blackbox: random features, two objectives (max, min)."""

    def __init__(self, n: int = 40, seed: int = 1) -> None:
        x, y = _data(n, seed)
        self.objectives = Objectives.from_spec({"score": "max", "cost": "min"})
        self._x = x
        self._table = pd.DataFrame({"score": y[:, 0], "cost": -y[:, 1]})

    def candidate_features(self) -> np.ndarray:
        return self._x

    def candidate_objectives(self) -> pd.DataFrame:
        return self._table

    def known_pareto_indices(self) -> list[int]:
        return [int(i) for i in np.flatnonzero(pareto_mask(self.objectives.to_maximisation(self._table.to_numpy())))]


def test_knowing_every_objective_finds_the_front_without_a_wasted_trial():
    pool = _Pool()
    belief = beliefs(pool, known=["score", "cost"])
    assert idealised_trials_to_all(belief, seed=0) == len(pool.known_pareto_indices())


def test_without_knowledge_it_takes_longer_but_stays_within_the_pool():
    pool = _Pool()
    k = len(pool.known_pareto_indices())
    belief = beliefs(pool)
    trials = [idealised_trials_to_all(belief, seed=seed, draws=64) for seed in range(3)]
    assert all(k <= t <= 40 for t in trials)
    assert max(trials) > k  # the predictive is not exact, so some trial is spent on a dominated one


def test_known_names_must_be_objectives():
    with pytest.raises(ValueError, match="known: \\['latency'\\] are not objectives"):
        beliefs(_Pool(), known=["latency"])


def test_trials_to_all_fails_loudly_if_the_front_is_not_in_the_pool():
    belief = Beliefs(np.zeros((3, 2)), np.zeros((3, 2)), np.ones((3, 2)), np.array([5]))
    with pytest.raises(AssertionError, match="still missing"):
        idealised_trials_to_all(belief, seed=0, draws=4)


@needs_nmthpo
def test_command_line_on_a_real_pair(data_dir, capsys):
    pair = "zh-en" if "zh-en" in NMTHPO_PAIRS else NMTHPO_PAIRS[0]
    report = main(["--data", str(data_dir), "--instances", pair, "--seeds", "2", "--draws", "32", "--known", "bleu,decode_time"])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == json.loads(json.dumps(report))
    row = last["instances"][pair]
    # both objectives known: exactly the Pareto models are evaluated
    k = row["trials_to_all"][0]
    assert row["trials_to_all"] == [k, k] and row["ratio"] == pytest.approx(k / row["random_expected"])


@needs_nmthpo
def test_command_line_rejects_an_unknown_objective(data_dir, capsys):
    with pytest.raises(SystemExit):
        main(["--data", str(data_dir), "--instances", "zh-en", "--known", "latency"])
    assert "are not objectives" in capsys.readouterr().err


@needs_nmthpo
def test_command_line_names_the_pairs_for_an_unknown_instance(data_dir, capsys):
    with pytest.raises(SystemExit):
        main(["--data", str(data_dir), "--instances", "xx-yy"])
    assert "instance='xx-yy' has no tables" in capsys.readouterr().err
