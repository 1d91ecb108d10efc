"""Tests for schedulers.catalogue: every scheduler by name, multi-objective ones with all objectives."""

from __future__ import annotations

import pytest
from ray.tune.schedulers import FIFOScheduler, MedianStoppingRule

from multiobjective import Objectives
from schedulers import MultiObjectiveASHA, MultiObjectiveHyperBand, MultiObjectivePromotionASHA
from schedulers.catalogue import DEFAULT_SCHEDULER, get_scheduler_type, scheduler_config, scheduler_names

OBJECTIVES = Objectives.from_spec(["acc", "ms"], ["max", "min"])


def test_the_catalogue_names_every_scheduler_the_spec_cli_and_benchmarks_use():
    assert {"mo-asha", "mo-asha-promotion", "mo-hyperband", "asha", "hyperband", "median", "fifo", "none"} <= set(
        scheduler_names())
    assert DEFAULT_SCHEDULER == "mo-asha"


@pytest.mark.parametrize("name, cls", [
    ("mo-asha", MultiObjectiveASHA), ("mo-asha-promotion", MultiObjectivePromotionASHA),
    ("mo-hyperband", MultiObjectiveHyperBand),
])
def test_multi_objective_schedulers_rank_on_every_objective(name, cls):
    config = scheduler_config(name, metric="acc", mode="max", max_t=9, objectives=OBJECTIVES)
    assert config.metric == ("acc", "ms") and config.mode == ("max", "min")
    scheduler = config.build()
    assert type(scheduler) is cls and scheduler.objectives.names == ("acc", "ms")
    assert get_scheduler_type(name).multi_objective


def test_options_override_defaults_and_thresholds_reach_the_scheduler():
    config = scheduler_config("mo-asha", max_t=27, objectives=OBJECTIVES, grace_period=3,
                              objective_thresholds={"ms": 5.0})
    assert dict(config.options) == {"grace_period": 3, "reduction_factor": 3, "objective_thresholds": {"ms": 5.0}}
    scheduler = config.build()
    assert scheduler.milestones == [3, 9, 27] and scheduler.objectives.thresholds == {"ms": 5.0}


def test_single_metric_schedulers_default_to_the_first_objective():
    median = scheduler_config("median", max_t=9, objectives=OBJECTIVES)
    assert (median.metric, median.mode) == ("acc", "max") and isinstance(median.build(), MedianStoppingRule)
    assert type(scheduler_config("fifo", metric="acc", mode="max", max_t=9).build()) is FIFOScheduler
    assert scheduler_config("none", metric="acc", mode="max", max_t=9).build() is None


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="objectives="):
        scheduler_config("mo-asha", metric="acc", mode="max", max_t=9)
    with pytest.raises(ValueError, match="does not take it"):
        scheduler_config("median", max_t=9, objectives=OBJECTIVES, reduction_factor=2)
    with pytest.raises(ValueError, match="did you mean 'mo-asha'"):
        scheduler_config("mo-ash", max_t=9, objectives=OBJECTIVES)
