"""Tests for searchers._tune_space: Tune domains <-> Ax parameter configs and values."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
from ax import ChoiceParameterConfig, Client, RangeParameterConfig
from ray import tune

from searchers._tune_space import AxSpaceCodec

SAMPLES = 3000


def only_parameter(domain) -> object:
    codec = AxSpaceCodec.from_tune({"x": domain})
    assert codec.parameter_names == ["x"]
    return codec.parameters[0]


def with_bounds(domain, lower, upper):
    """``domain`` with bounds that Tune's constructors would reject (for the codec's own checks)."""
    changed = copy.copy(domain)
    changed.lower, changed.upper = lower, upper
    return changed


def tune_samples(domain, size: int = SAMPLES) -> list:
    return list(domain.sample(size=size, random_state=np.random.default_rng(0)))


def ax_range_values(parameter: RangeParameterConfig) -> set[int]:
    lower, upper = parameter.bounds
    step = parameter.step_size or 1
    return set(range(int(lower), int(upper) + 1, int(step)))


def ax_trials(codec: AxSpaceCodec, count: int, seed: int = 0) -> list[dict]:
    logging.getLogger("ax").setLevel(logging.WARNING)
    client = Client(random_seed=seed)
    client.configure_experiment(parameters=codec.parameters)
    client.configure_optimization(objective="y")
    client.configure_generation_strategy(method="random_search", initialization_budget=count)
    return list(client.get_next_trials(max_trials=count).values())


# ----------------------------------------------------------------- continuous domains
def test_uniform_becomes_linear_float_range():
    parameter = only_parameter(tune.uniform(-2.0, 3.5))
    assert isinstance(parameter, RangeParameterConfig)
    assert parameter.bounds == (-2.0, 3.5)
    assert parameter.parameter_type == "float"
    assert parameter.scaling == "linear"
    assert parameter.step_size is None


def test_loguniform_becomes_log_float_range():
    parameter = only_parameter(tune.loguniform(1e-5, 1e-1))
    assert parameter.bounds == (1e-5, 1e-1)
    assert parameter.parameter_type == "float"
    assert parameter.scaling == "log"


@pytest.mark.parametrize(
    "domain",
    [tune.quniform(0.3, 1.0, 0.1), tune.quniform(-1.5, 2.0, 0.5), tune.qloguniform(5e-3, 1.0, 5e-3),
     with_bounds(tune.quniform(0.5, 2.0, 0.5), 0.25, 2.2)],
    ids=["quniform", "quniform-negative", "qloguniform", "quniform-unaligned-bounds"],
)
def test_quantized_float_bounds_and_step_cover_tune_samples(domain):
    parameter = only_parameter(domain)
    q = domain.get_sampler().q
    assert parameter.step_size == q
    lower, upper = parameter.bounds
    assert lower == pytest.approx(round(lower / q) * q)  # bounds on the q grid
    assert upper == pytest.approx(round(upper / q) * q)
    samples = tune_samples(domain)
    assert min(samples) >= lower - 1e-9
    assert max(samples) <= upper + 1e-9
    assert min(samples) == pytest.approx(lower)  # Tune does reach both grid ends
    assert max(samples) == pytest.approx(upper)


def test_quantized_float_bounds_snap_inwards_to_multiples():
    parameter = only_parameter(with_bounds(tune.quniform(0.5, 2.0, 0.5), 0.25, 2.2))
    assert parameter.bounds == (0.5, 2.0)


def test_quantized_float_bounds_carry_no_float_noise():
    assert only_parameter(tune.quniform(0.3, 0.7, 0.1)).bounds == (0.3, 0.7)


def test_quantized_float_decodes_onto_grid_and_roundtrips():
    codec = AxSpaceCodec.from_tune({"x": tune.quniform(0.3, 1.0, 0.1)})
    config = codec.to_tune({"x": 0.7999999999999999})
    assert config == {"x": 0.8}
    assert isinstance(config["x"], float)
    assert codec.to_ax(config) == {"x": pytest.approx(0.8)}


@pytest.mark.parametrize(
    "domain",
    [tune.uniform(1.0, 1.0), tune.quniform(1.0, 1.0, 0.5), with_bounds(tune.quniform(1.0, 2.0, 1.0), 0.9, 1.1)],
    ids=["uniform", "quniform", "one-multiple-inside"],
)
def test_float_domain_with_a_single_value_is_a_constant(domain):
    assert set(tune_samples(domain, 200)) == {1.0}
    codec = AxSpaceCodec.from_tune({"x": domain, "y": tune.uniform(0, 1)})
    assert codec.parameter_names == ["y"]
    assert codec.to_tune({"y": 0.5}) == {"x": 1.0, "y": 0.5}


def test_quantized_float_without_multiple_in_range_raises():
    with pytest.raises(ValueError, match=r"'x'.*no multiple of q=0.5"):
        AxSpaceCodec.from_tune({"x": with_bounds(tune.quniform(0.0, 0.5, 0.5), 0.1, 0.4)})


# ----------------------------------------------------------------- integer domains
def test_randint_upper_bound_is_exclusive_in_tune_and_inclusive_in_ax():
    domain = tune.randint(2, 7)
    parameter = only_parameter(domain)
    assert parameter.parameter_type == "int"
    assert parameter.bounds == (2, 6)
    assert parameter.scaling == "linear"
    assert parameter.step_size is None
    assert set(tune_samples(domain)) == ax_range_values(parameter) == {2, 3, 4, 5, 6}


def test_lograndint_is_log_scaled_with_exclusive_upper():
    domain = tune.lograndint(1, 64)
    parameter = only_parameter(domain)
    assert parameter.bounds == (1, 63)
    assert parameter.scaling == "log"
    samples = tune_samples(domain)
    assert min(samples) == 1 and max(samples) <= 63


@pytest.mark.parametrize(
    "domain",
    [
        tune.qrandint(0, 20, 5),
        tune.qrandint(3, 20, 4),
        tune.qrandint(-10, 10, 3),
        tune.qrandint(1, 6, 1),
        tune.qlograndint(4, 64, 4),
    ],
    ids=["aligned", "unaligned", "negative", "q1-exclusive", "qlograndint"],
)
def test_quantized_integer_value_set_matches_tune(domain):
    parameter = only_parameter(domain)
    assert parameter.parameter_type == "int"
    assert set(tune_samples(domain)) == ax_range_values(parameter)
    assert parameter.scaling == "linear"  # Ax's step grid is linear; log does not combine


def test_quantized_integer_with_single_multiple_is_a_constant():
    codec = AxSpaceCodec.from_tune({"x": tune.qrandint(5, 9, 5), "y": tune.uniform(0, 1)})
    assert codec.parameter_names == ["y"]
    assert codec.to_tune({"y": 0.1})["x"] == 5


def test_randint_with_one_value_is_a_constant():
    codec = AxSpaceCodec.from_tune({"x": tune.randint(4, 5), "y": tune.uniform(0, 1)})
    assert codec.parameter_names == ["y"]
    assert codec.constants == {"x": 4}


def test_integer_values_decode_as_int_and_round():
    codec = AxSpaceCodec.from_tune({"x": tune.randint(0, 10)})
    decoded = codec.to_tune({"x": 6.9999999})["x"]
    assert decoded == 7 and type(decoded) is int


def test_qrandint_without_multiple_in_range_raises():
    with pytest.raises(ValueError, match=r"'x'.*no multiple of q=10"):
        AxSpaceCodec.from_tune({"x": tune.qrandint(11, 19, 10)})


# ----------------------------------------------------------------- categorical domains
@pytest.mark.parametrize(
    "categories, parameter_type, ordered",
    [(["adam", "sgd", "rmsprop"], "str", False), ([16, 64, 32], "int", True),
     ([0.1, 0.5, 0.9], "float", True), ([True, False], "bool", False)],
)
def test_homogeneous_choice_keeps_values_and_type(categories, parameter_type, ordered):
    parameter = only_parameter(tune.choice(categories))
    assert isinstance(parameter, ChoiceParameterConfig)
    assert parameter.values == categories
    assert parameter.parameter_type == parameter_type
    assert parameter.is_ordered is ordered
    codec = AxSpaceCodec.from_tune({"x": tune.choice(categories)})
    for value in categories:
        decoded = codec.to_tune({"x": value})["x"]
        assert decoded == value and type(decoded) is type(value)
        assert codec.to_ax({"x": value}) == {"x": value}


MIXED = [None, 1, True, 1.0, "1", [1, 2], {"depth": 3}, (4, 5)]


def test_mixed_choice_travels_as_index_and_decodes_to_exact_object():
    codec = AxSpaceCodec.from_tune({"x": tune.choice(MIXED)})
    parameter = codec.parameters[0]
    assert parameter.parameter_type == "str"
    assert parameter.values == [str(i) for i in range(len(MIXED))]
    assert parameter.is_ordered is False
    for index, value in enumerate(MIXED):
        decoded = codec.to_tune({"x": str(index)})["x"]
        assert decoded == value and type(decoded) is type(value)
        # 1, True and 1.0 are equal in Python; the encoding must still tell them apart
        assert codec.to_ax({"x": value}) == {"x": str(index)}


def test_choice_with_repeated_values_uses_indices():
    codec = AxSpaceCodec.from_tune({"x": tune.choice([1, 1, 2])})
    assert codec.parameters[0].values == ["0", "1", "2"]
    assert codec.to_ax({"x": 2}) == {"x": "2"}
    assert codec.to_tune({"x": "1"}) == {"x": 1}


def test_one_value_choice_is_a_constant():
    codec = AxSpaceCodec.from_tune({"opt": tune.choice([["a", "b"]]), "y": tune.uniform(0, 1)})
    assert codec.parameter_names == ["y"]
    assert codec.constants == {"opt": ["a", "b"]}
    assert codec.to_tune({"y": 0.2}) == {"opt": ["a", "b"], "y": 0.2}


def test_empty_choice_raises():
    with pytest.raises(ValueError, match=r"'x'.*no values"):
        AxSpaceCodec.from_tune({"x": tune.choice([])})


# ----------------------------------------------------------------- structure
SPACE = {
    "optim": {"lr": tune.loguniform(1e-4, 1e-1), "name": tune.choice(["adam", "sgd"]), "eps": 1e-8},
    "model": {"width": tune.qrandint(16, 128, 16), "block": {"depth": tune.randint(1, 4)}, "extra": {}},
    "act": tune.choice([None, "relu", ["gelu", 0.1]]),
    "epochs": 5,
    "tags": ["a", "b"],
}


def test_nested_space_flattens_with_slash_and_keeps_constants_aside():
    codec = AxSpaceCodec.from_tune(SPACE)
    assert sorted(codec.parameter_names) == [
        "act", "model/block/depth", "model/width", "optim/lr", "optim/name"
    ]
    assert codec.constants == {"optim/eps": 1e-8, "model/extra": {}, "epochs": 5, "tags": ["a", "b"]}


def test_nested_space_unflattens_with_constants():
    codec = AxSpaceCodec.from_tune(SPACE)
    ax_values = {"optim/lr": 0.01, "optim/name": "sgd", "model/width": 48,
                 "model/block/depth": 2, "act": "2"}
    assert codec.to_tune(ax_values) == {
        "optim": {"lr": 0.01, "name": "sgd", "eps": 1e-8},
        "model": {"width": 48, "block": {"depth": 2}, "extra": {}},
        "act": ["gelu", 0.1],
        "epochs": 5,
        "tags": ["a", "b"],
    }


def test_to_ax_accepts_nested_and_flat_configs():
    codec = AxSpaceCodec.from_tune(SPACE)
    ax_values = {"optim/lr": 0.01, "optim/name": "sgd", "model/width": 48,
                 "model/block/depth": 2, "act": "0"}
    nested = codec.to_tune(ax_values)
    assert codec.to_ax(nested) == ax_values
    flat = {"optim/lr": 0.01, "optim/name": "sgd", "model/width": 48, "model/block/depth": 2, "act": None}
    assert codec.to_ax(flat) == ax_values


def test_roundtrip_through_ax_samples_keeps_values_and_types():
    codec = AxSpaceCodec.from_tune({
        **SPACE,
        "flag": tune.choice([True, False]),
        "ratio": tune.quniform(0.2, 0.8, 0.2),
        "scale": tune.qloguniform(1e-3, 1.0, 1e-3),
        "units": tune.lograndint(2, 300),
        "drop": tune.choice([0.0, 0.25, 0.5]),
    })
    for ax_values in ax_trials(codec, 12):
        config = codec.to_tune(ax_values)
        assert type(config["flag"]) is bool
        assert type(config["model"]["width"]) is int and config["model"]["width"] % 16 == 0
        assert 16 <= config["model"]["width"] <= 128
        assert type(config["model"]["block"]["depth"]) is int and 1 <= config["model"]["block"]["depth"] <= 3
        assert type(config["units"]) is int and 2 <= config["units"] <= 299
        assert type(config["optim"]["lr"]) is float and 1e-4 <= config["optim"]["lr"] <= 1e-1
        assert config["drop"] in (0.0, 0.25, 0.5) and type(config["drop"]) is float
        assert config["act"] in (None, "relu", ["gelu", 0.1])
        assert round(config["ratio"] / 0.2) * 0.2 == pytest.approx(config["ratio"])
        assert 0.2 - 1e-9 <= config["ratio"] <= 0.8 + 1e-9
        assert config["epochs"] == 5 and config["model"]["extra"] == {}
        back = codec.to_ax(config)
        assert back.keys() == ax_values.keys()
        for name, value in ax_values.items():
            assert back[name] == (pytest.approx(value) if isinstance(value, float) else value), name


def test_space_with_only_constants_raises():
    with pytest.raises(ValueError, match="no tunable parameter"):
        AxSpaceCodec.from_tune({"epochs": 5, "nested": {"a": 1}, "single": tune.choice(["only"])})


def test_key_with_slash_raises():
    with pytest.raises(ValueError, match="'/'"):
        AxSpaceCodec.from_tune({"a/b": tune.uniform(0, 1)})


def test_domain_inside_a_list_raises():
    with pytest.raises(ValueError, match=r"layers/0.*list"):
        AxSpaceCodec.from_tune({"layers": [tune.randint(1, 4), 8], "lr": tune.uniform(0, 1)})


# ----------------------------------------------------------------- unsupported domains
@pytest.mark.parametrize(
    "space, match",
    [
        ({"x": tune.grid_search([1, 2])}, "grid_search"),
        ({"n": {"x": tune.grid_search([1, 2])}, "y": tune.uniform(0, 1)}, r"n/x.*grid_search"),
        ({"x": tune.randn(0, 1)}, r"'x'.*randn"),
        ({"x": tune.qrandn(0, 1, 0.1)}, r"'x'.*randn"),
        ({"x": tune.sample_from(lambda _: 1)}, r"'x'.*sample_from"),
    ],
    ids=["grid", "nested-grid", "randn", "qrandn", "sample_from"],
)
def test_unsupported_domains_raise_with_the_parameter_name(space, match):
    with pytest.raises(ValueError, match=match):
        AxSpaceCodec.from_tune(space)


@pytest.mark.parametrize(
    "domain, match",
    [
        (tune.uniform(2.0, 1.0), r"'x' has lower bound 2.0 above upper bound 1.0"),
        (tune.randint(3, 3), r"lower bound 3 above upper bound 2"),
        (with_bounds(tune.loguniform(1.0, 2.0), 0.0, 2.0), r"'x' is log-scaled but its lower bound is 0.0"),
        (with_bounds(tune.loguniform(1.0, 2.0), -1.0, 2.0), "log-scaled"),
        (with_bounds(tune.lograndint(1, 10), 0, 10), "log-scaled"),
        (with_bounds(tune.qloguniform(0.1, 1.0, 0.1), 0.0, 1.0), "log-scaled"),
        (with_bounds(tune.uniform(0.0, 1.0), 0.0, float("inf")), "finite bounds"),
    ],
)
def test_invalid_bounds_raise(domain, match):
    with pytest.raises(ValueError, match=match):
        AxSpaceCodec.from_tune({"x": domain})


# ----------------------------------------------------------------- to_ax validation
def test_to_ax_missing_parameter_raises_with_its_name():
    codec = AxSpaceCodec.from_tune(SPACE)
    with pytest.raises(ValueError, match="lacks search-space parameter 'model/block/depth'"):
        codec.to_ax({"optim": {"lr": 0.1, "name": "sgd"}, "model": {"width": 32}, "act": None})


def test_to_ax_ignores_constants_and_unknown_keys():
    codec = AxSpaceCodec.from_tune({"x": tune.uniform(0, 1), "epochs": 3})
    assert codec.to_ax({"x": 0.5, "other": "ignored"}) == {"x": 0.5}


@pytest.mark.parametrize(
    "space, config",
    [
        ({"x": tune.choice(["adam", "sgd"])}, {"x": "lbfgs"}),
        ({"x": tune.choice([16, 32])}, {"x": 24}),
        ({"x": tune.choice([16, 32])}, {"x": 16.5}),
        ({"x": tune.choice([0.1, 0.2])}, {"x": 0.3}),
        ({"x": tune.choice([True, False])}, {"x": "maybe"}),
        ({"x": tune.choice([None, "a"])}, {"x": "b"}),
        ({"x": tune.choice([1, "a"])}, {"x": True}),  # equal to 1 but of another type
        ({"x": tune.uniform(0, 1)}, {"x": 1.5}),
        ({"x": tune.uniform(0, 1)}, {"x": "half"}),
        ({"x": tune.randint(0, 10)}, {"x": 10}),  # Tune's upper bound is exclusive
        ({"x": tune.randint(0, 10)}, {"x": 2.5}),
        ({"x": tune.qrandint(0, 20, 5)}, {"x": 25}),
    ],
)
def test_to_ax_rejects_values_outside_the_domain(space, config):
    codec = AxSpaceCodec.from_tune(space)
    with pytest.raises(ValueError, match=r"'x'"):
        codec.to_ax(config)


def test_to_ax_converts_reader_types_inside_the_domain():
    codec = AxSpaceCodec.from_tune({
        "width": tune.choice([16, 32]), "batch": tune.choice(["64", "128"]),
        "layers": tune.randint(1, 5), "lr": tune.uniform(0, 1),
    })
    encoded = codec.to_ax({"width": 32.0, "batch": 64, "layers": np.int64(3), "lr": np.float32(0.5)})
    assert encoded == {"width": 32, "batch": "64", "layers": 3, "lr": 0.5}
    assert type(encoded["width"]) is int and type(encoded["layers"]) is int
    assert type(encoded["lr"]) is float


def test_docstring_example():
    codec = AxSpaceCodec.from_tune({"lr": tune.loguniform(1e-4, 1e-1), "layers": tune.randint(1, 5), "epochs": 10})
    assert [p.name for p in codec.parameters] == ["lr", "layers"]
    assert codec.to_tune({"lr": 0.01, "layers": 4}) == {"lr": 0.01, "layers": 4, "epochs": 10}
