"""Tests for searchers.fabolas: the model, the cost model, suggestions, parallelism, state, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from botorch.models.cost import AffineFidelityCostModel
from gpytorch.kernels import Kernel
from ray import tune
from ray.tune.search import Searcher

from botorch.models import SingleTaskMultiFidelityGP
from botorch.utils.sampling import draw_sobol_normal_samples

from multiobjective import hypervolume, pareto_mask, reference_point
from searchers.fabolas import FabolasSearch, Incumbent, ParetoMember
from searchers._fabolas_acquisition import choose_next_pareto, hypervolume_knowledge_gradient
from searchers._fabolas_cost import LogCostModel, MIN_COST_OBSERVATIONS
from searchers._fabolas_space import UnitCubeSpace

SPACE = {
    "lr": tune.loguniform(1e-4, 1e-1),
    "layers": tune.randint(1, 5),
    "act": tune.choice(["relu", "tanh"]),
    "optim": {"momentum": tune.uniform(0.5, 0.99)},
    "epochs": 3,
}
FAST = {"num_candidates": 24, "fidelity_levels": 3, "num_initial": 3}


def loss(config: dict) -> float:
    """Smallest at lr = 1e-2, momentum 0.9, 'tanh'; larger on less data."""
    s = config["data_fraction"]
    return ((math.log10(config["lr"]) + 2) ** 2 + (config["optim"]["momentum"] - 0.9) ** 2
            + 0.1 * (config["act"] == "relu") + 0.5 * (1 - s) ** 2)


def cost(config: dict) -> float:
    return 0.2 + 5.0 * config["data_fraction"] * config["layers"]


def searcher(**options) -> FabolasSearch:
    return FabolasSearch(SPACE, metric="loss", mode="min", seed=0, **{**FAST, **options})


def feed(search: FabolasSearch, count: int, start: int = 0) -> list[dict]:
    configs = []
    for i in range(start, start + count):
        config = search.suggest(f"t{i}")
        configs.append(config)
        search.on_trial_complete(f"t{i}", {"loss": loss(config), "time_total_s": cost(config)})
    return configs


def full_data_repeats(configs: list[dict]) -> list[dict]:
    """Re-evaluations: suggestions at s = 1 of a configuration suggested earlier (at a small fraction)."""
    strip = lambda config: {k: v for k, v in config.items() if k != "data_fraction"}  # noqa: E731
    return [c for i, c in enumerate(configs) if c["data_fraction"] == 1.0 and strip(c) in map(strip, configs[:i])]


def values_at_full_data(search: FabolasSearch, configs: list[dict], measure) -> tuple[np.ndarray, np.ndarray, set[int]]:
    """What the searcher should hold at ``s = 1`` (every objective minimised here): the distinct
    evaluated configurations (encoded), their posterior means with the mean of ``measure`` in
    place for those evaluated at full data, and the rows that were."""
    space = UnitCubeSpace(SPACE)
    strip = lambda config: {k: v for k, v in config.items() if k != "data_fraction"}  # noqa: E731
    distinct = np.unique(np.array([space.encode(strip(c)) for c in configs]), axis=0)
    full = torch.tensor(np.column_stack([distinct, np.ones(len(distinct))]), dtype=torch.double)
    model = search.model()
    with torch.no_grad():
        values = -model.posterior(full).mean.numpy()  # the model holds the negated (maximisation) form
    measured = set()
    for row, x in enumerate(distinct):
        at_full = [measure(c) for c in configs if c["data_fraction"] == 1.0 and np.allclose(space.encode(strip(c)), x)]
        if at_full:
            measured.add(row)
            values[row] = np.mean(at_full, axis=0)
    return distinct, values, measured


def kernels(module) -> list[str]:
    return [type(m).__name__ for m in module.modules() if isinstance(m, Kernel)]


def test_model_is_a_multi_fidelity_gp_with_the_downsampling_kernel():
    search = searcher()
    assert search.model() is None  # no results yet
    feed(search, 4)
    names = kernels(search.model().covar_module)
    assert "DownsamplingKernel" in names
    assert "LinearTruncatedFidelityKernel" not in names


def test_cost_model_learns_a_cost_that_grows_with_the_fraction():
    search = searcher(num_initial=20)
    assert isinstance(search.cost_model(), AffineFidelityCostModel)  # the prior, before data
    feed(search, 12)
    model = search.cost_model()
    assert isinstance(model, LogCostModel)
    point = UnitCubeSpace(SPACE).encode({"lr": 1e-2, "layers": 2, "act": "tanh", "optim": {"momentum": 0.9}})
    fractions = [1 / 32, 0.25, 1.0]
    inputs = torch.tensor(np.array([[np.append(point, s)] for s in fractions]), dtype=torch.double)
    predicted = model(inputs).squeeze().tolist()
    assert predicted[0] < predicted[1] < predicted[2]
    truth = 0.2 + 5.0 * 1.0 * 2
    assert truth / 2 < predicted[2] < truth * 2  # extrapolated from small fractions only


def test_affine_prior_is_used_until_enough_costs_are_measured():
    search = searcher()
    feed(search, MIN_COST_OBSERVATIONS - 1)
    assert isinstance(search.cost_model(), AffineFidelityCostModel)


def test_suggestions_respect_bounds_types_and_the_fidelity_range():
    search = searcher(min_fidelity=0.1)
    for config in feed(search, 8):
        assert 1e-4 <= config["lr"] <= 1e-1
        assert isinstance(config["layers"], int) and 1 <= config["layers"] <= 4
        assert config["act"] in ("relu", "tanh")
        assert 0.5 <= config["optim"]["momentum"] <= 0.99
        assert config["epochs"] == 3
        assert 0.1 <= config["data_fraction"] <= 1.0


def test_initial_design_is_cheap_and_gp_bo_stays_at_full_data():
    initial = feed(searcher(num_initial=3, min_fidelity=1 / 16), 3)
    assert [c["data_fraction"] for c in initial] == [1 / 16, 1 / 8, 1 / 4]
    full = feed(searcher(min_fidelity=1.0), 5)
    assert {c["data_fraction"] for c in full} == {1.0}


@pytest.mark.parametrize("objectives", [1, 2])
def test_parallel_suggestions_differ(objectives):
    search = searcher(max_concurrent=4) if objectives == 1 else pareto_searcher(max_concurrent=4)
    (feed if objectives == 1 else feed_pareto)(search, 4)
    pending = [search.suggest(f"p{i}") for i in range(4)]
    points = {(c["lr"], c["layers"], c["act"], c["optim"]["momentum"], c["data_fraction"]) for c in pending}
    assert len(points) == 4
    assert search.suggest("p4") is None  # max_concurrent reached


def test_max_trials_finishes():
    search = searcher(max_trials=2)
    feed(search, 2)
    assert search.suggest("t9") == Searcher.FINISHED


def test_incumbent_is_predicted_at_full_data():
    search = searcher()
    assert search.incumbent() is None
    configs = feed(search, 6)
    incumbent = search.incumbent()
    assert isinstance(incumbent, Incumbent)
    assert incumbent.config["data_fraction"] == 1.0
    evaluated = [{k: v for k, v in c.items() if k != "data_fraction"} for c in configs]
    assert {k: v for k, v in incumbent.config.items() if k != "data_fraction"} in evaluated
    assert math.isfinite(incumbent.predicted)


def test_incumbent_is_the_best_value_at_full_data_measured_values_first():
    search = searcher(incumbent_share=0.5)  # some configurations are measured at s = 1
    configs = feed(search, 10)
    distinct, values, measured = values_at_full_data(search, configs, lambda c: [loss(c)])
    best = int(np.argmin(values[:, 0]))
    assert best in measured  # full-data results are the best here: the substitution decides the value
    incumbent = search.incumbent()
    assert incumbent.evaluated_at_full
    assert incumbent.predicted == pytest.approx(values[best, 0], abs=1e-12)
    strip = {k: v for k, v in incumbent.config.items() if k != "data_fraction"}
    assert np.allclose(UnitCubeSpace(SPACE).encode(strip), distinct[best])


def test_incumbent_share_spends_suggestions_on_the_incumbent_at_full_data():
    search = searcher(incumbent_share=0.5)
    configs = feed(search, 7)
    assert full_data_repeats(configs), configs


def test_save_and_restore_replay_the_same_suggestions(tmp_path):
    original = searcher()
    feed(original, 4)
    original.suggest("pending")
    path = str(tmp_path / "fabolas.pkl")
    original.save(path)
    restored = FabolasSearch(seed=123)
    restored.restore(path)
    assert restored.metric == "loss" and restored.mode == "min"
    assert restored.suggest("next") == original.suggest("next")
    restored.on_trial_complete("pending", {"loss": 1.0, "time_total_s": 1.0})
    assert len(restored._observations) == 5


def test_space_and_metric_can_come_from_tune():
    search = FabolasSearch(seed=0, **FAST)
    assert search.set_search_properties("loss", "min", SPACE) is True
    assert "data_fraction" in search.suggest("t0")


@pytest.mark.parametrize(
    "result, match",
    [
        ({"time_total_s": 1.0, "accuracy": 0.9}, r"metric: got 'loss'.*reported \['accuracy', 'time_total_s'\]"),
        ({"loss": 0.3}, r"cost_metric: got 'time_total_s'.*report 'time_total_s'"),
    ],
)
def test_a_result_without_the_objective_or_the_cost_is_a_clear_error(result, match):
    search = searcher()
    search.suggest("t0")
    with pytest.raises(ValueError, match=match):
        search.on_trial_complete("t0", result)


def test_a_missing_value_after_earlier_reports_is_skipped_not_fatal():
    search = searcher()
    feed(search, 2)
    search.suggest("t2")
    search.on_trial_complete("t2", {"time_total_s": 1.0})
    assert len(search._observations) == 2


def test_custom_cost_metric_is_read():
    search = searcher(cost_metric="gpu_seconds")
    search.suggest("t0")
    search.on_trial_complete("t0", {"loss": 0.5, "gpu_seconds": 7.0})
    assert list(search._observations.values())[0][3] == 7.0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"min_fidelity": 0.0}, r"min_fidelity: got 0.0; use a fraction in \(0, 1\]"),
        ({"acquisition": "ei"}, r"acquisition: got 'ei'; use one of \['mes', 'kg'\]"),
        ({"incumbent_share": 1.0}, r"incumbent_share: got 1.0"),
        ({"num_initial": 0}, r"num_initial: got 0; use an integer >= 1"),
        ({"fidelity_key": ""}, r"fidelity_key: got ''"),
        ({"metric": ["a", "b", "c"], "mode": ["max", "min", "min"]},
         r"metric: got \['a', 'b', 'c'\]; FabolasSearch optimises one objective or a Pareto front of two"),
        ({"acquisition": "hvkg"}, r"acquisition: got 'hvkg' for 1 objective\(s\) \['loss'\]; use one of \['mes', 'kg'\]"),
        ({"metric": ["a", "b"], "mode": ["max", "min"], "acquisition": "mes"},
         r"acquisition: got 'mes' for 2 objective\(s\) \['a', 'b'\]; use one of \['hvkg'\]"),
    ],
)
def test_invalid_arguments_name_the_argument_and_the_fix(kwargs, match):
    options = {"metric": "loss", "mode": "min", **kwargs}
    with pytest.raises(ValueError, match=match):
        FabolasSearch(SPACE, **options)


def test_space_holding_the_fidelity_key_is_rejected():
    with pytest.raises(ValueError, match=r"space: holds 'data_fraction'"):
        FabolasSearch({**SPACE, "data_fraction": tune.uniform(0.1, 1)}, metric="loss", mode="min")


@pytest.mark.slow
def test_knowledge_gradient_suggests_inside_the_bounds():
    search = searcher(acquisition="kg", min_fidelity=0.2)
    configs = feed(search, 4)
    assert all(0.2 <= c["data_fraction"] <= 1.0 for c in configs)
    assert 1e-4 <= configs[-1]["lr"] <= 1e-1


# ---------------------------------------------------------------- two objectives: a Pareto front at s = 1
def latency(config: dict) -> float:
    """Grows with the layers, falls with the learning rate: at odds with ``loss`` near lr = 1e-2."""
    return config["layers"] + 2.0 * (1.0 - (math.log10(config["lr"]) + 4) / 3) + 0.01 * config["data_fraction"]


def pareto_searcher(**options) -> FabolasSearch:
    return FabolasSearch(SPACE, metric=["loss", "latency"], mode=["min", "min"], seed=0, **{**FAST, **options})


def feed_pareto(search: FabolasSearch, count: int, start: int = 0) -> list[dict]:
    configs = []
    for i in range(start, start + count):
        config = search.suggest(f"t{i}")
        configs.append(config)
        search.on_trial_complete(
            f"t{i}", {"loss": loss(config), "latency": latency(config), "time_total_s": cost(config)}
        )
    return configs


def test_two_objectives_model_one_downsampling_gp_per_objective():
    search = pareto_searcher()
    feed_pareto(search, 5)
    model = search.model()
    assert isinstance(model, SingleTaskMultiFidelityGP) and model.num_outputs == 2
    assert "DownsamplingKernel" in kernels(model.covar_module)
    assert search.metric == ["loss", "latency"] and search.mode == ["min", "min"]


def test_two_objective_suggestions_respect_the_space_and_the_fidelity_range():
    search = pareto_searcher(min_fidelity=0.1)
    configs = feed_pareto(search, 8)
    for config in configs:
        assert 1e-4 <= config["lr"] <= 1e-1 and config["layers"] in range(1, 5)
        assert 0.1 <= config["data_fraction"] <= 1.0
    assert len(search._observations) == 8


def test_pareto_set_is_the_front_of_the_values_at_full_data():
    search = pareto_searcher(incumbent_share=0.3)  # some configurations are measured at s = 1 too
    assert search.pareto_set() == []
    configs = feed_pareto(search, 10)
    members = search.pareto_set()
    assert members and all(isinstance(m, ParetoMember) for m in members)
    assert all(m.config["data_fraction"] == 1.0 and set(m.predicted) == {"loss", "latency"} for m in members)
    evaluated = [{k: v for k, v in c.items() if k != "data_fraction"} for c in configs]
    assert all({k: v for k, v in m.config.items() if k != "data_fraction"} in evaluated for m in members)
    # The members are exactly the non-dominated posterior means at s = 1 of the evaluated configurations.
    _, values, measured = values_at_full_data(search, configs, lambda c: [loss(c), latency(c)])
    assert measured  # measured at full data: the measured values
    front = pareto_mask(-values)  # pareto_mask takes the maximisation form
    assert len(members) == int(front.sum())
    predicted = sorted(values[front, 0])
    assert np.allclose(sorted(m.predicted["loss"] for m in members), predicted)
    with pytest.raises(ValueError, match=r"incumbent: the search has 2 objectives .* call pareto_set\(\) instead"):
        search.incumbent()


def test_two_objective_incumbent_share_runs_front_members_at_full_data():
    search = pareto_searcher(incumbent_share=0.5)
    configs = feed_pareto(search, 8)
    assert full_data_repeats(configs), configs
    assert any(m.evaluated_at_full for m in search.pareto_set())


def test_two_objective_save_and_restore_replay_the_same_suggestions(tmp_path):
    original = pareto_searcher()
    feed_pareto(original, 5)
    path = str(tmp_path / "fabolas.pkl")
    original.save(path)
    restored = FabolasSearch(seed=5)
    restored.restore(path)
    assert restored.metric == ["loss", "latency"]
    assert restored.suggest("next") == original.suggest("next")


def test_a_result_missing_the_second_objective_is_a_clear_error():
    search = pareto_searcher()
    search.suggest("t0")
    with pytest.raises(ValueError, match=r"metric: got 'latency', but trial t0 finished without reporting it"):
        search.on_trial_complete("t0", {"loss": 0.5, "time_total_s": 1.0})


def _two_output_model(seed: int = 0, n: int = 12) -> SingleTaskMultiFidelityGP:
    generator = torch.Generator().manual_seed(seed)
    train_x = torch.rand(n, 3, generator=generator, dtype=torch.double)
    train_y = torch.stack([train_x[:, 0].sin() + train_x[:, 2], -(train_x[:, 1] - 0.5) ** 2 + 0.3 * train_x[:, 0]], -1)
    train_y = train_y + 0.05 * torch.randn(train_y.shape, generator=generator, dtype=torch.double)
    model = SingleTaskMultiFidelityGP(train_x, train_y, data_fidelities=[2], linear_truncated=False)
    model.covar_module.kernels[0].lengthscale = 0.4  # fixed hyperparameters: the test is of the maths
    model.likelihood.noise = 0.01
    return model.eval()


def test_hypervolume_knowledge_gradient_equals_conditioning_on_each_fantasy():
    """Each fantasy's moved means are the posterior means after conditioning on that outcome (brute force)."""
    model = _two_output_model()
    generator = torch.Generator().manual_seed(1)
    designs = torch.rand(6, 3, generator=generator, dtype=torch.double)
    designs[:, -1] = 1.0
    candidates = torch.rand(5, 3, generator=generator, dtype=torch.double)
    candidates[:, -1] = torch.tensor([0.1, 0.3, 0.5, 0.8, 1.0], dtype=torch.double)
    gains = hypervolume_knowledge_gradient(model, designs, candidates, num_fantasies=8, seed=3)
    z = draw_sobol_normal_samples(2, 8, dtype=torch.double, seed=3)
    with torch.no_grad():
        reference = reference_point(model.posterior(designs).mean.numpy())
    for c, candidate in enumerate(candidates):
        points = torch.cat([designs, candidate.clone().index_fill_(0, torch.tensor([2]), 1.0).unsqueeze(0)])
        with torch.no_grad():
            now = hypervolume(model.posterior(points).mean.numpy(), reference)
            predictive = model.posterior(candidate.unsqueeze(0), observation_noise=True)
        after = []
        for fantasy in z:
            outcome = predictive.mean + predictive.variance.sqrt() * fantasy
            conditioned = model.condition_on_observations(candidate.unsqueeze(0), outcome)
            with torch.no_grad():
                after.append(hypervolume(conditioned.posterior(points).mean.numpy(), reference))
        assert float(gains[c]) == pytest.approx(np.mean(after) - now, abs=1e-6)


def test_choose_next_pareto_takes_the_best_gain_per_cost_and_skips_excluded_points():
    model = _two_output_model()
    configs = np.random.default_rng(0).random((6, 2))
    designs = configs[:2]
    cost_model = AffineFidelityCostModel(fidelity_weights={2: 10.0}, fixed_cost=0.5)
    fidelities = np.array([0.1, 1.0])
    grid = torch.tensor(np.concatenate([np.column_stack([configs, np.full(6, s)]) for s in fidelities]))
    design_points = torch.tensor(np.column_stack([designs, np.ones(2)]))
    scores = hypervolume_knowledge_gradient(model, design_points, grid, seed=7) / (0.5 + 10.0 * grid[:, 2])
    first = int(scores.argmax())
    x, s = choose_next_pareto(model, cost_model, configs, fidelities, designs=designs, x_pending=None,
                              exclude=None, seed=7)
    assert np.allclose(np.append(x, s), grid[first].numpy())
    x, s = choose_next_pareto(model, cost_model, configs, fidelities, designs=designs, x_pending=None,
                              exclude=grid[first : first + 1], seed=7)
    second = int(scores.clone().index_fill_(0, torch.tensor([first]), -torch.inf).argmax())
    assert np.allclose(np.append(x, s), grid[second].numpy())
