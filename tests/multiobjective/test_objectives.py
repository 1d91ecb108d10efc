"""Tests for multiobjective.objectives: the one place objective names, modes and thresholds are checked."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from multiobjective import ObjectiveError, Objectives
from multiobjective.objectives import normalise_mode


@dataclass
class SpecObjective:
    name: str
    mode: str


def test_from_spec_accepts_every_user_shape_in_order():
    expected = Objectives(("b", "a"), ("min", "max"))
    assert Objectives.from_spec({"b": "min", "a": "max"}) == expected
    assert Objectives.from_spec(["b", "a"], ["min", "max"]) == expected
    assert Objectives.from_spec([SpecObjective("b", "min"), SpecObjective("a", "max")]) == expected
    assert Objectives.from_spec([("b", "min"), ("a", "max")]) == expected
    assert Objectives.from_spec(expected) is expected
    assert Objectives.from_spec("loss", "MIN") == Objectives(("loss",), ("min",))


def test_is_an_ordered_read_only_mapping_of_modes():
    objectives = Objectives.from_spec({"acc": "max", "ms": "min"}, thresholds={"ms": 5})
    assert list(objectives) == ["acc", "ms"] and objectives["ms"] == "min" and len(objectives) == 2
    assert dict(objectives.items()) == {"acc": "max", "ms": "min"}
    assert objectives.thresholds == {"ms": 5.0}
    # Equal to a plain dict only without thresholds; order matters.
    assert objectives != {"acc": "max", "ms": "min"}
    assert Objectives.from_spec({"acc": "max", "ms": "min"}) == {"acc": "max", "ms": "min"}
    assert Objectives.from_spec({"acc": "max", "ms": "min"}) != {"ms": "min", "acc": "max"}


@pytest.mark.parametrize(
    ("metric", "mode", "message"),
    [
        ([], [], "objectives: got none"),
        ({}, None, "objectives: got none"),
        (["a", "b"], "max", r"mode: got 1 modes \['max'\] for 2 objectives \['a', 'b'\]"),
        (["a", "b"], ["max"], "got 1 modes"),
        ({"acc": "maximize"}, None, r"mode of objective 'acc': got 'maximize'; use 'max' .* or 'min'"),
        (["a", "a"], ["max", "min"], r"objectives: got \['a'\] more than once"),
        (["a", ""], ["max", "min"], "objective name: got ''"),
        ("acc", None, "mode: missing for objective 'acc'"),
        (["acc"], None, r"mode: missing for objectives \['acc'\]"),
        ({"acc": "max"}, "max", "mode: got a mode beside a {name: mode} mapping"),
        (42, None, "objectives: got 42"),
    ],
)
def test_from_spec_rejects_bad_objectives_naming_field_and_fix(metric, mode, message):
    with pytest.raises(ObjectiveError, match=message):
        Objectives.from_spec(metric, mode)


def test_thresholds_must_name_objectives_and_be_finite():
    with pytest.raises(ObjectiveError, match="thresholds.params: not an objective.*outcome constraint"):
        Objectives.from_spec({"acc": "max"}, thresholds={"params": 3})
    with pytest.raises(ObjectiveError, match="thresholds.acc: got nan; use a finite number"):
        Objectives.from_spec({"acc": "max"}, thresholds={"acc": math.nan})


def test_optional_is_none_without_metric_and_needs_both():
    assert Objectives.optional(None, None) is None
    with pytest.raises(ObjectiveError, match="metric: missing beside mode='max'"):
        Objectives.optional(None, "max")


def test_normalise_mode():
    assert normalise_mode(" Max ") == "max"
    with pytest.raises(ObjectiveError, match="got 'up'"):
        normalise_mode("up")


def test_to_maximisation_negates_min_objectives_for_arrays_lists_and_tensors():
    objectives = Objectives(("acc", "ms"), ("max", "min"))
    assert objectives.to_maximisation([[1.0, 2.0]]).tolist() == [[1.0, -2.0]]
    tensor = objectives.to_maximisation(torch.tensor([[1.0, 2.0]], dtype=torch.double))
    assert isinstance(tensor, torch.Tensor) and tensor.dtype == torch.double
    assert tensor.tolist() == [[1.0, -2.0]]


def test_thresholds_in_maximisation_form_and_as_constraints():
    objectives = Objectives(("acc", "ms", "size"), ("max", "min", "min"), {"acc": 0.9, "ms": 5})
    assert objectives.threshold_vector().tolist() == [0.9, -5.0, -math.inf]
    assert objectives.threshold_constraints() == ["acc >= 0.9", "ms <= 5.0"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [(None, "missing"), (math.nan, "NaN"), (math.inf, "infinite"), (-math.inf, "-infinite"),
     ("fast", "not a number ('fast')"), (True, "not a number (True)"), ([1], "not a number ([1])")],
)
def test_validate_names_each_bad_value_with_its_reason(value, reason):
    objectives = Objectives(("acc", "ms"), ("max", "min"))
    result = {"acc": 0.5} if value is None else {"acc": 0.5, "ms": value}
    with pytest.raises(ObjectiveError, match=re.escape(f"ms is {reason}")) as raised:
        objectives.validate(result)
    assert raised.value.problems == {"ms": reason}


def test_validate_returns_floats_in_objective_order():
    objectives = Objectives(("acc", "ms"), ("max", "min"))
    assert objectives.validate({"ms": np.float32(2.0), "acc": "0.5", "other": 1}) == {"acc": 0.5, "ms": 2.0}


def test_values_reads_columns_and_names_missing_ones():
    import pandas as pd

    objectives = Objectives(("acc", "ms"), ("max", "min"))
    frame = pd.DataFrame({"ms": [1.0, "x"], "acc": [0.5, 0.6]})
    values = objectives.values_in(frame)
    assert values[0].tolist() == [0.5, 1.0] and math.isnan(values[1, 1])
    assert objectives.values_in(frame.iloc[:0]).shape == (0, 2)
    with pytest.raises(ObjectiveError, match=r"objective column\(s\) \['acc'\] not in the results"):
        objectives.values_in(frame[["ms"]])
