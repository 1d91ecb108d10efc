"""PoolMultiObjectiveSearch driven by hand (no Ray session): validation, phases, pool bookkeeping,
failures, save/restore, and search quality against random search on a synthetic pool."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch
from botorch.utils.multi_objective.pareto import is_non_dominated
from botorch.sampling import SobolQMCNormalSampler
from ray.tune.search import Searcher

import searchers.pool_multi_objective as pool_module
from searchers.pool_multi_objective import (
    CANDIDATE_INDEX_KEY,
    PoolMultiObjectiveSearch,
    encode_candidates,
    log_prob_non_dominated,
    prob_non_dominated_by_others,
    rank_normal_scores,
)

METRICS, MODES = ["loss", "score"], ["min", "max"]
POOL_SIZE = 60


def grid_pool(size: int = 12) -> pd.DataFrame:
    """A one-dimensional pool ``x = 0, 1/(size-1), ..., 1`` plus an integer column."""
    x = np.linspace(0.0, 1.0, size)
    return pd.DataFrame({"x": x, "layers": np.arange(size, dtype=np.int64)})


def trade_off(config: dict) -> dict:
    """``loss`` (min) falls and ``score`` (max) falls with x: every candidate is Pareto-optimal."""
    return {"loss": 1.0 - config["x"], "score": 1.0 - config["x"] ** 2}


def make(pool=None, **options) -> PoolMultiObjectiveSearch:
    # The reproducible mode: tests script the exact order (background mode: test_pool_background.py).
    options = {"metric": METRICS, "mode": MODES, "num_initial": 3, "seed": 0, "background": False, **options}
    return PoolMultiObjectiveSearch(grid_pool() if pool is None else pool, **options)


def drive(searcher: PoolMultiObjectiveSearch, objective, steps: int, prefix: str = "t") -> list[int]:
    """Suggest and complete ``steps`` trials one at a time; returns the chosen candidate indices."""
    chosen = []
    for step in range(steps):
        config = searcher.suggest(f"{prefix}{step}")
        if config == Searcher.FINISHED:
            break
        chosen.append(config[CANDIDATE_INDEX_KEY])
        searcher.on_trial_complete(f"{prefix}{step}", objective(config))
    return chosen


# --- features ----------------------------------------------------------------------------------


def test_encode_candidates_scales_numeric_log_scales_wide_positive_and_one_hots_the_rest():
    table = pd.DataFrame(
        {
            "lr": [1e-4, 1e-3, 1e-2],  # positive, max/min = 100 -> not above threshold
            "params": [1e3, 1e5, 1e7],  # max/min = 1e4 -> log scale
            "depth": [2, 4, 8],
            "constant": [5.0, 5.0, 5.0],
            "act": ["relu", "gelu", "relu"],
            "bias": [True, False, True],
        }
    )
    features = encode_candidates(table)
    np.testing.assert_allclose(features[:, 0], [0.0, 0.0009 / 0.0099, 1.0])
    np.testing.assert_allclose(features[:, 1], [0.0, 0.5, 1.0])
    np.testing.assert_allclose(features[:, 2], [0.0, 1 / 3, 1.0])
    np.testing.assert_allclose(features[:, 3], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(features[:, 4:6], [[0, 1], [1, 0], [0, 1]])
    np.testing.assert_allclose(features[:, 6:8], [[0, 1], [1, 0], [0, 1]])
    assert features.shape == (3, 8)


def test_encode_candidates_rejects_missing_numeric_values():
    with pytest.raises(ValueError, match="column 'x' has missing"):
        encode_candidates(pd.DataFrame({"x": [1.0, np.nan]}))


def test_constructor_derives_features_from_a_list_of_dicts():
    searcher = PoolMultiObjectiveSearch(
        [{"w": 1, "act": "relu"}, {"w": 3, "act": "gelu"}], metric="acc", mode="max"
    )
    np.testing.assert_allclose(searcher._features, [[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])


def test_rank_normal_scores_keep_the_order_and_dominance_of_each_column():
    values = np.array([[1.0, 5.0], [1000.0, 5.0], [2.0, -1.0], [3.0, 7.0]])
    scores = rank_normal_scores(values)
    np.testing.assert_allclose(scores[:, 0], norm_ppf([0.125, 0.875, 0.375, 0.625]))
    np.testing.assert_allclose(scores[:, 1], norm_ppf([0.5, 0.5, 0.125, 0.875]))  # ties share
    before = is_non_dominated(torch.tensor(values))
    assert torch.equal(before, is_non_dominated(torch.tensor(scores)))


def norm_ppf(probabilities: list[float]) -> np.ndarray:
    standard_normal = torch.distributions.Normal(0.0, 1.0)
    return standard_normal.icdf(torch.tensor(probabilities, dtype=torch.double)).numpy()


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        # Objective checks are multiobjective.Objectives' (tested there); one of each kind here.
        ({"metric": ["a", "b"], "mode": "max"}, r"got 1 modes \['max'\] for 2 objectives"),
        ({"metric": ["a", "b"], "mode": ["max", "up"]}, r"mode of objective 'b': got 'up'"),
        ({"metric": ["a", "a"], "mode": ["max", "min"]}, r"got \['a'\] more than once"),
        ({"metric": [], "mode": []}, r"objectives: got none"),
        ({"metric": "a", "mode": None}, r"mode: missing for objective 'a'"),
        ({"num_initial": 0}, r"num_initial=0: expected an integer >= 1"),
        ({"num_initial": True}, r"num_initial=True"),
        ({"num_initial": 2.5}, r"num_initial=2.5"),
        ({"seed": "zero"}, r"seed='zero': expected an integer or None"),
        ({"max_concurrent": 0}, r"max_concurrent=0: expected an integer >= 1 or None"),
        ({"objective_transform": "log"}, r"objective_transform='log': expected one of \('rank',"),
        ({"acquisition": "ehvi"}, r"acquisition='ehvi': expected one of \('hypervolume', 'pareto', 'pareto\+hypervolume'\)"),
        ({"features": np.zeros((5, 2))}, r"features has shape \(5, 2\) but candidates has 12 rows"),
        ({"features": np.full((12, 1), np.nan)}, r"features has NaN or infinite values \(rows \[0, 1, 2"),
        ({"features": np.full((12, 1), 3.0)}, r"features span \[3, 3\] but must lie in \[0, 1\]"),
    ],
)
def test_constructor_rejects_bad_arguments_naming_them(options, message):
    with pytest.raises(ValueError, match=message):
        make(**options)


@pytest.mark.parametrize(
    ("candidates", "message"),
    [
        ([], "candidates is empty"),
        (pd.DataFrame(), "candidates is empty"),
        ("abc", "candidates=str: expected a pandas.DataFrame or a list of dicts"),
        ([{"x": 1}, 2], "candidates=list: expected"),
        (pd.DataFrame({0: [1, 2]}), r"candidates columns \[0\] must all be strings"),
    ],
)
def test_constructor_rejects_bad_candidates(candidates, message):
    with pytest.raises(ValueError, match=message):
        PoolMultiObjectiveSearch(candidates, metric="a", mode="max")


def test_numpy_integers_are_accepted_where_integers_are_expected():
    searcher = make(num_initial=np.int64(2), seed=np.int32(1), max_concurrent=np.int64(3))
    assert isinstance(searcher.suggest("t"), dict)


def test_features_without_candidates_is_an_error():
    with pytest.raises(ValueError, match="features was given without candidates"):
        PoolMultiObjectiveSearch(features=np.zeros((3, 1)), metric="a", mode="max")


def test_suggest_without_pool_or_metric_explains_the_fix():
    with pytest.raises(RuntimeError, match="no candidates; pass candidates= or call set_candidates"):
        PoolMultiObjectiveSearch(metric="a", mode="max").suggest("t")
    with pytest.raises(RuntimeError, match="no metric/mode"):
        PoolMultiObjectiveSearch(grid_pool()).suggest("t")


# --- Tune and simulator protocols --------------------------------------------------------------


def test_set_search_properties_keeps_constructor_metric_and_otherwise_takes_tunes():
    fixed = make()
    assert fixed.set_search_properties("other", "max", {}) is False
    assert fixed.metric == METRICS and fixed.mode == MODES

    unset = PoolMultiObjectiveSearch(grid_pool())
    assert unset.set_search_properties(None, None, {}) is False
    assert unset.set_search_properties(METRICS, MODES, {"x": 1}) is True
    assert unset.metric == METRICS and unset.mode == MODES
    with pytest.raises(ValueError, match=r"got 'maximise'; use 'max'"):
        PoolMultiObjectiveSearch(grid_pool()).set_search_properties("a", "maximise", {})


def test_set_candidates_sets_the_pool_but_not_after_suggestions():
    searcher = PoolMultiObjectiveSearch(metric="a", mode="max", seed=0)
    searcher.set_candidates(grid_pool(4), np.linspace(0, 1, 4)[:, None])
    config = searcher.suggest("t0")
    assert set(config) == {"x", "layers", CANDIDATE_INDEX_KEY}
    with pytest.raises(RuntimeError, match="after suggestions were made"):
        searcher.set_candidates(grid_pool(4))


def test_suggested_configs_are_pool_rows_with_plain_python_values():
    pool = grid_pool()
    config = make(pool).suggest("t0")
    index = config.pop(CANDIDATE_INDEX_KEY)
    assert type(index) is int and type(config["layers"]) is int and type(config["x"]) is float
    assert config == {"x": pool.x[index], "layers": pool.layers[index]}


# --- phases and pool bookkeeping ---------------------------------------------------------------


def test_random_phase_then_model_phase(monkeypatch):
    searcher = make(num_initial=4)
    model_calls = []
    original = PoolMultiObjectiveSearch._model_choice

    def counting_model_choice(self, available, observations, pending, num_suggested, **options):
        model_calls.append(len(observations))
        return original(self, available, observations, pending, num_suggested, **options)

    monkeypatch.setattr(PoolMultiObjectiveSearch, "_model_choice", counting_model_choice)
    drive(searcher, trade_off, 6)
    assert model_calls == [4, 5]


@pytest.mark.parametrize(("mode", "sign"), [("max", -1.0), ("min", 1.0)])
def test_model_phase_goes_for_the_optimum_of_a_single_objective(mode, sign):
    # score = -+(x - 0.7)^2: from five spread-out results the GP must locate the peak/valley.
    pool = grid_pool(31)
    searcher = PoolMultiObjectiveSearch(pool, metric="score", mode=mode, num_initial=5, seed=0, background=False)
    for step, index in enumerate([0, 9, 15, 27, 30]):
        searcher._pending[f"seed{step}"] = index
        searcher._num_suggested += 1
        searcher.on_trial_complete(f"seed{step}", {"score": sign * (pool.x[index] - 0.7) ** 2})
    config = searcher.suggest("next")
    assert abs(config["x"] - 0.7) < 0.1


def test_never_repeats_a_candidate_and_finishes_when_the_pool_is_exhausted():
    searcher = make()
    chosen = drive(searcher, trade_off, 20)
    assert sorted(chosen) == list(range(12))
    assert searcher.suggest("extra") == Searcher.FINISHED


def test_pending_candidates_are_not_suggested_again_in_either_phase(monkeypatch):
    pending_seen = []
    acquisition_class = pool_module.qLogNoisyExpectedHypervolumeImprovement

    def recording_acquisition(model, **options):
        pending_seen.append(None if options["X_pending"] is None else options["X_pending"].tolist())
        return acquisition_class(model, **options)

    monkeypatch.setattr(pool_module, "qLogNoisyExpectedHypervolumeImprovement", recording_acquisition)
    searcher = make(acquisition="hypervolume")  # "pareto": test_pareto_probability_keeps_pending_...
    drive(searcher, trade_off, 4)  # past num_initial=3
    first, second = searcher.suggest("p1"), searcher.suggest("p2")
    assert first[CANDIDATE_INDEX_KEY] != second[CANDIDATE_INDEX_KEY]
    # The second model-based choice knows the first is running (its features go in X_pending).
    assert pending_seen[-2:] == [None, [searcher._features[first[CANDIDATE_INDEX_KEY]].tolist()]]
    random_phase = make(num_initial=10)
    indices = {random_phase.suggest(f"r{i}")[CANDIDATE_INDEX_KEY] for i in range(12)}
    assert indices == set(range(12))
    assert random_phase.suggest("r12") == Searcher.FINISHED


def test_max_concurrent_limits_pending_trials():
    searcher = make(max_concurrent=2)
    assert searcher.suggest("a") is not None and searcher.suggest("b") is not None
    assert searcher.suggest("c") is None
    searcher.on_trial_complete("a", trade_off(searcher.config_of(searcher._pending["a"])))
    assert isinstance(searcher.suggest("c"), dict)
    assert searcher.set_max_concurrency(3) is True
    assert isinstance(searcher.suggest("d"), dict)
    with pytest.raises(ValueError, match="max_concurrent=-1"):
        searcher.set_max_concurrency(-1)


# --- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "error", "logged"),
    [
        (None, True, "failed"),
        (None, False, "failed"),
        ({"loss": 0.1}, False, "score is missing"),
        ({"loss": float("nan"), "score": 1.0}, False, "loss is NaN"),
        ({"loss": 0.1, "score": float("inf")}, False, "score is infinite"),
        ({"loss": "n/a", "score": 1.0}, False, "loss is not a number ('n/a')"),
    ],
)
def test_failed_trials_count_as_evaluated_but_not_as_training_data(result, error, logged, caplog):
    searcher = make(pool=grid_pool(3))
    config = searcher.suggest("bad")
    with caplog.at_level(logging.WARNING, logger="searchers.pool_multi_objective"):
        searcher.on_trial_complete("bad", result, error=error)
    assert "trial 'bad'" in caplog.text and logged in caplog.text
    assert searcher.evaluated_indices == []
    rest = drive(searcher, trade_off, 5)
    assert config[CANDIDATE_INDEX_KEY] not in rest and len(rest) == 2
    assert searcher.suggest("after") == Searcher.FINISHED


def test_completion_of_an_unknown_trial_is_ignored_with_a_warning(caplog):
    searcher = make()
    with caplog.at_level(logging.WARNING, logger="searchers.pool_multi_objective"):
        searcher.on_trial_complete("ghost", {"loss": 1.0, "score": 1.0})
    assert "unknown trial 'ghost'" in caplog.text and searcher.evaluated_indices == []


def test_on_trial_result_is_ignored():
    searcher = make()
    config = searcher.suggest("t")
    searcher.on_trial_result("t", trade_off(config))
    assert searcher.evaluated_indices == [] and "t" in searcher._pending


def test_model_failure_falls_back_to_a_random_candidate(monkeypatch, caplog):
    searcher = make()
    drive(searcher, trade_off, 3)

    def broken_fit(*args, **kwargs):
        raise RuntimeError("not positive definite")

    monkeypatch.setattr(PoolMultiObjectiveSearch, "_fit", broken_fit)
    with caplog.at_level(logging.WARNING, logger="searchers.pool_multi_objective"):
        config = searcher.suggest("t3")
    assert "not positive definite" in caplog.text
    assert config[CANDIDATE_INDEX_KEY] not in searcher.evaluated_indices


def test_hyperparameters_are_fitted_as_the_data_grows_by_a_tenth_and_reused_in_between(monkeypatch):
    fitted_sizes = []
    real_fit = pool_module.fit_gpytorch_mll

    def recording_fit(mll, **kwargs):
        fitted_sizes.append(mll.model.train_inputs[0].shape[-2])
        return real_fit(mll, **kwargs)

    monkeypatch.setattr(pool_module, "fit_gpytorch_mll", recording_fit)
    searcher = make(pool=grid_pool(40), num_initial=2)
    drive(searcher, trade_off, 34)
    assert fitted_sizes == list(range(2, 20)) + [20, 22, 24, 26, 28, 30, 33]
    assert [pool_module.next_fit_size(n) for n in (2, 19, 20, 55, 80, 500)] == [3, 20, 22, 60, 88, 508]
    # Between fits: the last fit's hyperparameters, the current data's standardisation.
    train_x, train_y, key = searcher._training_data(dict(searcher._observations))
    last_fit = searcher._fitted
    assert len(key) == 34 and last_fit[2] == 33
    model = searcher._fit(train_x, train_y, key)
    assert fitted_sizes[-1] == 33  # no new fit
    assert torch.equal(model.covar_module.raw_lengthscale, last_fit[1]["covar_module.raw_lengthscale"])
    assert torch.allclose(model.outcome_transform.means.squeeze(), train_y.mean(dim=0))


# --- save / restore ----------------------------------------------------------------------------


@pytest.mark.parametrize(("steps_before_save", "seed"), [(1, 0), (5, 0), (5, None)])
def test_save_and_restore_continue_identically(tmp_path, steps_before_save, seed):
    original = make(pool=grid_pool(16), seed=seed)
    drive(original, trade_off, steps_before_save)
    pending = original.suggest("pending")
    original.save(str(tmp_path / "state.pkl"))

    restored = PoolMultiObjectiveSearch(seed=123, background=False)
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored.metric == METRICS and restored._pending == {"pending": pending[CANDIDATE_INDEX_KEY]}
    for searcher in (original, restored):
        searcher.on_trial_complete("pending", trade_off(pending))
    # The restored searcher refits from scratch; its choices and random stream must still agree.
    assert drive(restored, trade_off, 6, "n") == drive(original, trade_off, 6, "n")
    assert restored._rng.random() == original._rng.random()


def test_choices_depend_on_the_seed_alone_and_leave_torchs_global_stream_alone():
    def run(global_seed: int) -> tuple[list[int], torch.Tensor]:
        torch.manual_seed(global_seed)
        searcher = make(pool=grid_pool(16), seed=3)
        chosen = drive(searcher, trade_off, 8)
        return chosen, torch.rand(1)

    first, second = run(global_seed=1), run(global_seed=2)
    assert first[0] == second[0]
    torch.manual_seed(1)
    assert torch.equal(first[1], torch.rand(1))  # as if the searcher had never run


# --- "pareto" acquisition ----------------------------------------------------------------------


def _square_pool(side: int = 8) -> tuple[pd.DataFrame, np.ndarray]:
    """Candidates on a grid in [0, 1]^2 whose two objectives (both max) are their coordinates."""
    a, b = np.meshgrid(np.linspace(0, 1, side), np.linspace(0, 1, side))
    points = np.stack([a.ravel(), b.ravel()], axis=1)
    return pd.DataFrame(points, columns=["a", "b"]), points


def _pareto_scores(searcher, observed: list[int], pending: list[int] = ()) -> dict[int, float]:
    values = {index: searcher._candidates.iloc[index][["a", "b"]].tolist() for index in observed}
    available = np.array([i for i in range(len(searcher._candidates)) if i not in values and i not in pending])
    train_x, train_y, key = searcher._training_data(values)
    with torch.random.fork_rng():
        model = searcher._fit(train_x, train_y, key)
        scores = searcher._pareto_probability(model, train_y, available, list(pending), 0)
    return dict(zip(available.tolist(), scores.tolist()))


@pytest.mark.parametrize("objectives", [2, 3])
def test_non_dominated_agrees_with_botorch_including_ties_in_one_objective(objectives):
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(16, 200, objectives, generator=generator, dtype=torch.double)
    values[:, :50, 0] = values[:, :50, 0].mul(5).round().div(5)  # many ties in the first objective
    values[:, 50:100, 1] = values[:, 50:100, 1].mul(5).round().div(5)  # and in the second
    expected = is_non_dominated(values, deduplicate=True)
    assert torch.equal(pool_module.non_dominated(values), expected)
    assert 0 < int(expected.sum()) < expected.numel()
    duplicated = torch.tensor([[[1.0, 2.0], [1.0, 2.0], [0.5, 3.0], [0.2, 0.1]]], dtype=torch.double)
    assert pool_module.non_dominated(duplicated).tolist() == [[True, False, True, False]]


@pytest.mark.parametrize("joint", [True, False])
def test_pareto_probability_is_high_near_the_unseen_front_and_nil_behind_the_observed_one(monkeypatch, joint):
    if not joint:  # the marginal draws used for large pools
        monkeypatch.setattr(pool_module, "_JOINT_DRAW_LIMIT", 1)
    candidates, points = _square_pool()
    searcher = PoolMultiObjectiveSearch(
        candidates, metric=["a", "b"], mode=["max", "max"], seed=0, background=False, objective_transform="none"
    )
    # Observed: the inner part of the square, none of the 15 candidates on the top or right edge.
    observed = [i for i, (a, b) in enumerate(points) if a < 0.9 and b < 0.9 and (i % 3 == 0 or a + b > 1.2)]
    scores = _pareto_scores(searcher, observed)
    assert all(0.0 <= value <= 1.0 for value in scores.values())
    corner = int(np.flatnonzero((points == [1, 1]).all(axis=1))[0])  # dominates every other candidate
    assert scores[corner] > 0.9, scores[corner]
    behind = [i for i in scores if any((points[j] >= points[i] + 0.25).all() for j in observed)]
    assert behind and max(scores[i] for i in behind) < 0.02, {i: scores[i] for i in behind}
    edge = [i for i in scores if points[i].max() == 1.0 and i != corner]
    inner = [i for i in scores if points[i].max() < 0.8]
    assert min(scores[i] for i in edge) > max(scores[i] for i in inner)


@pytest.mark.parametrize("objectives", [2, 3])
def test_log_prob_non_dominated_matches_monte_carlo_and_ranks_hopeless_points_by_distance(objectives):
    generator = torch.Generator().manual_seed(objectives)
    values = torch.randn(30, objectives, generator=generator, dtype=torch.double)
    mean = torch.randn(6, objectives, generator=generator, dtype=torch.double)
    sd = torch.rand(6, objectives, generator=generator, dtype=torch.double) + 0.1
    draws = mean + sd * torch.randn(100_000, *mean.shape, generator=generator, dtype=torch.double)
    dominated = (values >= draws.unsqueeze(-2)).all(dim=-1).any(dim=-1)  # draws x points
    expected = (~dominated).double().mean(dim=0)
    exact = log_prob_non_dominated(mean, sd, values).exp()
    assert torch.allclose(exact, expected, atol=0.005), (exact, expected)
    assert 0.0 < float(expected.max()) < 1.0  # neither trivial case
    # Far behind the front Monte Carlo sees nothing; the log-probability still orders by distance.
    behind = values.min(dim=0).values - torch.tensor([[5.0], [10.0], [20.0]], dtype=torch.double)
    log_p = log_prob_non_dominated(behind, torch.full_like(behind, 0.5), values)
    assert torch.isfinite(log_p).all() and log_p[0] > log_p[1] > log_p[2] and float(log_p[0]) < -50


def test_prob_non_dominated_by_others_matches_sampling_each_candidate_given_the_others():
    """Brute force: per draw, sample candidate i from its conditional with the others held fixed."""
    generator = torch.Generator().manual_seed(1)
    observed = torch.randn(5, 2, generator=generator, dtype=torch.double)
    draws = torch.randn(3, 8, 2, generator=generator, dtype=torch.double)
    # In draw 0, candidate 0 beats every point and candidate 1 is dominated by it alone: 1 is on
    # the front that candidate 0 must escape, though not on the draw's front.
    draws[0, 0] = torch.cat([observed, draws[0]]).max(dim=0).values + 1.0
    draws[0, 1] = draws[0, 0] - 0.1
    mean = draws + 0.3 * torch.randn(draws.shape, generator=generator, dtype=torch.double)
    mean[0, 0] = draws[0, 1]  # candidate 0 given the others: centred on candidate 1
    sd = 0.2 + torch.rand(draws.shape, generator=generator, dtype=torch.double)
    exact = prob_non_dominated_by_others(draws, mean, sd, observed, num_scored=6, chunk=4)
    samples = mean + sd * torch.randn(100_000, *draws.shape, generator=generator, dtype=torch.double)
    expected = torch.zeros(6, dtype=torch.double)
    for i in range(6):
        others = torch.cat([observed.expand(3, 5, 2), draws[:, [j for j in range(8) if j != i]]], dim=1)
        own = samples[:, :, i]  # samples x draws x 2
        dominated = (others.unsqueeze(0) >= own.unsqueeze(-2)).all(dim=-1).any(dim=-1)
        expected[i] = (~dominated).double().mean()
    assert exact.shape == (6,)
    assert torch.allclose(exact, expected, atol=0.006), (exact, expected)
    assert 0.05 < float(expected.min()) and float(expected.max()) < 0.95  # no trivial case


@pytest.mark.parametrize("joint", [True, False])
def test_rao_blackwellised_pareto_probability_agrees_with_many_counted_draws(monkeypatch, joint):
    if not joint:
        monkeypatch.setattr(pool_module, "_JOINT_DRAW_LIMIT", 1)
    rng = np.random.default_rng(0)  # three features, two objectives that they explain in part
    features = rng.uniform(size=(60, 3))
    points = np.stack([features[:, 0] + 0.5 * rng.normal(size=60), features[:, 1] + 0.5 * rng.normal(size=60)], 1)
    candidates = pd.DataFrame(features, columns=["u", "v", "w"])
    searcher = PoolMultiObjectiveSearch(candidates, metric=["a", "b"], mode=["max", "max"], seed=0, background=False)
    observed = {i: points[i].tolist() for i in range(0, len(points), 4)}
    pending = [1, 2]
    available = np.array([i for i in range(len(points)) if i not in observed and i not in pending])
    train_x, train_y, key = searcher._training_data(observed)
    model = searcher._fit(train_x, train_y, key)
    scores = searcher._pareto_probability(model, train_y, available, pending, 0)  # 128 draws
    x = torch.tensor(searcher._features[np.concatenate([available, pending])], dtype=torch.double)
    with torch.no_grad():
        posterior = model.posterior(x if joint else x.unsqueeze(1))
        torch.manual_seed(0)
        draws = posterior.rsample(torch.Size([20_000])).reshape(20_000, len(x), 2)
    counted = pool_module.non_dominated(torch.cat([train_y.expand(20_000, *train_y.shape), draws], dim=-2))
    counted = counted[:, len(train_y) : len(train_y) + len(available)].double().mean(dim=0)
    assert float((scores - counted).abs().max()) < 0.04, (scores - counted).abs().max()
    assert float((scores - counted).abs().mean()) < 0.006
    assert int(scores.argmax()) == int(counted.argmax())
    if joint:  # counting the very draws the estimate used is noisier
        sampler = SobolQMCNormalSampler(torch.Size([pool_module._MC_SAMPLES]), seed=searcher._derived_seed(0))
        with torch.no_grad():
            same = sampler(model.posterior(x))
        counts = pool_module.non_dominated(torch.cat([train_y.expand(len(same), *train_y.shape), same], dim=-2))
        counts = counts[:, len(train_y) : len(train_y) + len(available)].double().mean(dim=0)
        assert float((scores - counted).abs().mean()) < 0.5 * float((counts - counted).abs().mean())


def test_conditionals_are_gaussian_conditioning_on_the_other_candidates():
    rng = np.random.default_rng(2)
    features = rng.uniform(size=(30, 2))
    searcher = PoolMultiObjectiveSearch(
        pd.DataFrame(features, columns=["u", "v"]), metric=["a", "b"], mode=["max", "max"], seed=0, background=False
    )
    observed = {i: [features[i].sum(), features[i, 0] - features[i, 1]] for i in range(0, 30, 3)}
    train_x, train_y, key = searcher._training_data(observed)
    model = searcher._fit(train_x, train_y, key)
    x = torch.tensor(features[[i for i in range(30) if i not in observed]][:8], dtype=torch.double)
    draws = torch.randn(4, 8, 2, generator=torch.Generator().manual_seed(0), dtype=torch.double)
    mean, sd = pool_module._conditionals(model, x, draws, joint=True)
    with torch.no_grad():
        for output in range(2):
            posterior = model.subset_output([output]).posterior(x)
            mu, cov = posterior.mean.reshape(-1), posterior.distribution.covariance_matrix
            for i in range(8):
                rest = [j for j in range(8) if j != i]
                weights = torch.linalg.solve(cov[rest][:, rest], cov[rest, i])
                expected_mean = mu[i] + (draws[:, rest, output] - mu[rest]) @ weights
                expected_sd = (cov[i, i] - cov[i, rest] @ weights).sqrt()
                assert torch.allclose(mean[:, i, output], expected_mean, atol=1e-4, rtol=1e-3)
                assert torch.allclose(sd[:, i, output], expected_sd.expand(4), atol=1e-5, rtol=1e-3)
                assert float(expected_sd) < 0.9 * float(cov[i, i].sqrt())  # the others do inform it
    marginal_mean, marginal_sd = pool_module._conditionals(model, x, draws, joint=False)
    with torch.no_grad():
        posterior = model.posterior(x.unsqueeze(1))
    assert torch.allclose(marginal_mean, posterior.mean.squeeze(-2).expand(4, 8, 2))
    assert torch.allclose(marginal_sd, posterior.variance.sqrt().squeeze(-2).expand(4, 8, 2))


def test_pareto_ties_go_to_the_candidate_likeliest_to_escape_the_front_not_to_the_row_order():
    rng = np.random.default_rng(3)
    points = rng.uniform(0.0, 1.0, size=(48, 2))
    candidates = pd.DataFrame(points, columns=["a", "b"])
    observed = list(range(0, len(points), 3))

    def choice(rows: np.ndarray) -> list[float]:
        pool = candidates.iloc[rows].reset_index(drop=True)
        searcher = PoolMultiObjectiveSearch(pool, metric=["a", "b"], mode=["max", "max"], seed=0, background=False)
        position = {int(row): i for i, row in enumerate(rows)}
        values = {position[i]: points[i].tolist() for i in observed}
        available = np.array([i for i in range(len(pool)) if i not in values])
        train_x, train_y, key = searcher._training_data(values)
        model = searcher._fit(train_x, train_y, key)
        tied = torch.zeros(len(available), dtype=torch.double)  # late in a run: no draw is Pareto
        scores = searcher._break_ties(tied, model, train_y, available)
        posterior = model.posterior(torch.tensor(searcher._features[available]).unsqueeze(1))
        log_escape = log_prob_non_dominated(
            posterior.mean.squeeze(-2).detach(), posterior.variance.sqrt().squeeze(-2).detach(), train_y
        )
        assert int(scores.argmax()) == int(log_escape.argmax())
        return pool.iloc[int(available[int(scores.argmax())])].tolist()

    forward = choice(np.arange(len(points)))
    assert choice(np.random.default_rng(0).permutation(len(points))) == forward  # wherever it sits
    assert choice(np.arange(len(points))[::-1].copy()) == forward
    assert forward != points[1].tolist()  # the first unevaluated row, which argmax over ties took


def test_break_ties_never_reorders_candidates_the_draws_tell_apart():
    candidates, points = _square_pool()
    searcher = PoolMultiObjectiveSearch(
        candidates, metric=["a", "b"], mode=["max", "max"], seed=0, background=False, objective_transform="none"
    )
    observed = {i: points[i].tolist() for i in range(0, len(points), 5)}
    available = np.array([i for i in range(len(points)) if i not in observed])
    train_x, train_y, key = searcher._training_data(observed)
    model = searcher._fit(train_x, train_y, key)
    counts = torch.randint(0, 4, (len(available),), generator=torch.Generator().manual_seed(0))
    probability = counts.double() / pool_module._MC_SAMPLES  # as the draws give it: a multiple of 1/128
    scores = searcher._break_ties(probability, model, train_y, available)
    assert torch.equal(scores.argsort(descending=True).argsort()[counts == 3].sort().values,
                       torch.arange(int((counts == 3).sum())))  # the best-drawn stay first
    assert ((scores - probability) >= 0).all() and ((scores - probability) < 0.5 / pool_module._MC_SAMPLES).all()
    # Rao-Blackwellised estimates are continuous: gaps far below 1/128 still decide, ties at 0 do not.
    close = torch.linspace(0.3, 0.3001, len(available), dtype=torch.double).flip(0)
    close[len(available) // 2 :] = 0.0
    scores = searcher._break_ties(close, model, train_y, available)
    half = len(available) // 2
    assert torch.equal(scores[:half].argsort(descending=True), torch.arange(half))
    assert float(scores[:half].min()) > float(scores[half:].max()) and len(set(scores[half:].tolist())) > 1


def test_pareto_probability_keeps_pending_candidates_as_competitors():
    """A pending candidate is not offered again, but it is still in the pool others must beat."""
    candidates, points = _square_pool()
    searcher = PoolMultiObjectiveSearch(
        candidates, metric=["a", "b"], mode=["max", "max"], seed=0, background=False, objective_transform="none"
    )
    observed = [i for i, (a, b) in enumerate(points) if a < 0.9 and b < 0.9 and (i % 3 == 0 or a + b > 1.2)]
    corner = int(np.flatnonzero((points == [1, 1]).all(axis=1))[0])
    alone, with_corner_pending = _pareto_scores(searcher, observed), _pareto_scores(searcher, observed, [corner])
    assert corner not in with_corner_pending and set(with_corner_pending) == set(alone) - {corner}
    # The top and right edges tie the corner in one objective: about half the draws let it dominate.
    edge = [i for i in with_corner_pending if points[i].max() == 1.0]
    assert all(abs(with_corner_pending[i] - alone[i]) < 0.15 for i in edge)
    assert all(0.2 < with_corner_pending[i] < 0.8 for i in edge), {i: with_corner_pending[i] for i in edge}


def test_pareto_acquisition_finds_every_pareto_candidate_and_survives_save_and_restore(tmp_path):
    points = np.random.default_rng(7).uniform(size=(40, 2))
    loss, score = ((points - 0.2) ** 2).sum(axis=1), -((points - 0.8) ** 2).sum(axis=1)
    targets = set(np.flatnonzero(is_non_dominated(torch.tensor(np.stack([-loss, score], 1)))).tolist())
    candidates = pd.DataFrame(points, columns=["a", "b"])

    def objective(config):
        return {"loss": loss[config[CANDIDATE_INDEX_KEY]], "score": score[config[CANDIDATE_INDEX_KEY]]}

    searcher = make(pool=candidates, acquisition="pareto", num_initial=5)
    first = drive(searcher, objective, 8)
    searcher.save(str(tmp_path / "state.pkl"))
    restored = PoolMultiObjectiveSearch(background=False)
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored._acquisition_name == "pareto"
    after = drive(searcher, objective, 6, "n")
    assert drive(restored, objective, 6, "n") == after
    order = first + after + drive(searcher, objective, 40, "m")
    assert _iterations_to_find_all(order, targets) < _iterations_to_find_all(np.random.default_rng(0).permutation(40), targets)


def test_pareto_plus_hypervolume_takes_turns_between_the_two_acquisitions(monkeypatch):
    used = []
    hypervolume_class = pool_module.qLogNoisyExpectedHypervolumeImprovement
    pareto_method = PoolMultiObjectiveSearch._pareto_probability

    def recording_hypervolume(model, **options):
        used.append("hypervolume")
        return hypervolume_class(model, **options)

    def recording_pareto(self, *args):
        used.append("pareto")
        return pareto_method(self, *args)

    monkeypatch.setattr(pool_module, "qLogNoisyExpectedHypervolumeImprovement", recording_hypervolume)
    monkeypatch.setattr(PoolMultiObjectiveSearch, "_pareto_probability", recording_pareto)
    searcher = make(acquisition="pareto+hypervolume")
    drive(searcher, trade_off, 7)  # 3 random, then suggestions 3, 4, 5, 6 from the model
    assert used == ["hypervolume", "pareto", "hypervolume", "pareto"]


# --- quality -----------------------------------------------------------------------------------


def _iterations_to_find_all(order, targets: set[int]) -> int:
    found = set()
    for iteration, index in enumerate(order, start=1):
        found |= {int(index)} & targets
        if found == targets:
            return iteration
    raise AssertionError(f"{len(targets - found)} Pareto candidates never found")


@pytest.mark.slow  # about 20 model fits per seed (10-40 s on two busy cores)
def test_finds_the_whole_pareto_front_much_sooner_than_random_search():
    points = np.random.default_rng(7).uniform(size=(POOL_SIZE, 3))
    # Two smooth conflicting objectives: squared distances to two separated centres.
    loss = ((points - [0.2, 0.3, 0.2]) ** 2).sum(axis=1)
    score = -((points - [0.8, 0.7, 0.6]) ** 2).sum(axis=1)
    targets = set(np.flatnonzero(is_non_dominated(torch.tensor(np.stack([-loss, score], 1)))).tolist())
    candidates = pd.DataFrame(points, columns=["a", "b", "c"])

    searched, random = [], []
    for seed in range(3):
        searcher = PoolMultiObjectiveSearch(
            candidates, metric=METRICS, mode=MODES, num_initial=10, seed=seed, background=False
        )
        order = []
        while not targets <= set(order):
            index = searcher.suggest(f"t{len(order)}")[CANDIDATE_INDEX_KEY]
            searcher.on_trial_complete(f"t{len(order)}", {"loss": loss[index], "score": score[index]})
            order.append(index)
        searched.append(len(order))
        random_order = np.random.default_rng(seed).permutation(POOL_SIZE)
        random.append(_iterations_to_find_all(random_order, targets))
    # Here about 31 vs 55 iterations; random search would need k (n + 1) / (k + 1) on average.
    assert len(targets) >= 5
    assert np.mean(searched) < 0.7 * np.mean(random), (searched, random)
