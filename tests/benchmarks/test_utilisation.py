"""Tests for benchmarks.utilisation (``python -m benchmarks utilisation``).

The pure functions, the option parser and the refusals run without Ray; one end-to-end run
starts real Tune trials on the module's ``ray_session`` (tests/conftest.py).
"""

from __future__ import annotations

import json
import math

import pytest
from ray import tune
from ray.tune.search import Searcher

from benchmarks.cli import main
from benchmarks.utilisation import (
    SuggestCall,
    SuggestTimer,
    busy_fraction,
    idle_split,
    markdown_table,
    parse_method_options,
    percentile_summary,
    utilisation_study,
    utilisation_table,
    zdt1,
    zdt1_hypervolume,
)


def _run(capsys, *argv: str) -> tuple[int, list[str], str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out.strip().splitlines(), captured.err


# --- busy_fraction ---------------------------------------------------------------------------


@pytest.mark.parametrize(("workers", "expected"), [(2, 1.0), (4, 0.5)])
def test_busy_fraction_of_two_back_to_back_rounds(workers, expected):
    # 4 trials x 10 s = 40 busy seconds over 20 s of wall time.
    assert busy_fraction([(0, 10), (0, 10), (10, 20), (10, 20)], workers) == pytest.approx(expected)


def test_busy_fraction_counts_gaps_as_idle():
    # Worker A: 0-10 then idle until 14, 14-20; worker B: 2-20. Busy 10 + 6 + 18 = 34 of 2 x 20.
    assert busy_fraction([(0, 10), (14, 20), (2, 20)], 2) == pytest.approx(34 / 40)
    # One worker, a 5 s gap between two trials: 15 of 20 s.
    assert busy_fraction([(0, 5), (10, 20)], 1) == pytest.approx(0.75)


def test_busy_fraction_measures_from_the_first_start_not_from_zero():
    assert busy_fraction([(100, 110), (105, 115)], 2) == pytest.approx(20 / 30)


def test_busy_fraction_without_intervals_or_time_is_nan():
    assert math.isnan(busy_fraction([], 4))
    assert math.isnan(busy_fraction([(3, 3), (3, 3)], 2))


@pytest.mark.parametrize("intervals", [[(10, 5)], [(0, float("nan"))]])
def test_busy_fraction_refuses_an_interval_that_ends_before_it_starts(intervals):
    with pytest.raises(ValueError, match="intervals: got"):
        busy_fraction(intervals, 1)


def test_idle_split_separates_waiting_for_a_suggestion_from_the_tail():
    # Two workers. A: 0-10, waits 2 s, 12-22. B: 0-16, then has nothing left to run.
    split = idle_split([(0, 10), (12, 22), (0, 16)], workers=2)
    assert split == pytest.approx({"waiting": 2.0, "tail": 6.0})
    assert sum(split.values()) == pytest.approx(2 * 22 * (1 - busy_fraction([(0, 10), (12, 22), (0, 16)], 2)))


def test_idle_split_of_trials_in_step_has_no_idle_time():
    assert idle_split([(0, 10), (0, 10), (10, 20), (10, 20)], workers=2) == {"waiting": 0.0, "tail": 0.0}


def test_idle_split_without_intervals_is_nan():
    assert all(math.isnan(value) for value in idle_split([], 4).values())


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_busy_fraction_refuses_a_bad_worker_count(workers):
    with pytest.raises(ValueError, match="workers"):
        busy_fraction([(0, 1)], workers)


# --- percentile_summary, zdt1, table ---------------------------------------------------------


def test_percentile_summary_interpolates_linearly():
    # Sorted 1..10: p50 halfway between 5 and 6; p90 at rank 0.9 * 9 = 8.1 -> 9 + 0.1.
    assert percentile_summary(range(10, 0, -1)) == {"p50": 5.5, "p90": pytest.approx(9.1), "max": 10.0}
    assert percentile_summary([4.0]) == {"p50": 4.0, "p90": 4.0, "max": 4.0}
    assert percentile_summary([]) == {"p50": None, "p90": None, "max": None}


def test_zdt1_on_its_front_and_off_it():
    assert zdt1([0.25, 0, 0, 0, 0, 0]) == pytest.approx((0.25, 0.5))  # g = 1: f2 = 1 - sqrt(f1)
    # g = 1 + 9 * 0.5 = 5.5; f2 = 5.5 * (1 - sqrt(0.25 / 5.5)).
    assert zdt1([0.25, 0.5, 0.5, 0.5, 0.5, 0.5]) == pytest.approx((0.25, 5.5 * (1 - math.sqrt(0.25 / 5.5))))


def test_zdt1_hypervolume_from_botorchs_reference_point():
    assert zdt1_hypervolume([(0.0, 1.0), (1.0, 0.0)]) == pytest.approx(120.0)  # 121 less the corner [0,1]^2
    # A dominated row adds nothing; none at all dominates nothing.
    assert zdt1_hypervolume([(0.0, 1.0), (1.0, 0.0), (2.0, 2.0)]) == pytest.approx(120.0)
    assert zdt1_hypervolume([]) == 0.0
    # One row on the front, f1 = 0.25, f2 = 0.5: (11 - 0.25) * (11 - 0.5).
    assert zdt1_hypervolume([zdt1([0.25, 0, 0, 0, 0, 0])]) == pytest.approx(10.75 * 10.5)


def test_table_has_one_row_per_method_and_marks_missing_values():
    summary = {
        "workers": 2, "trials": 4, "trial_seconds": 0.5,
        "methods": {
            "random": {"busy": 0.8, "wall_s": 3.0, "trials_finished": 4, "suggest_calls": 4,
                       "idle_s": {"waiting": 0.25, "tail": 1.0}, "random_fallbacks": 2, "hypervolume": 115.5,
                       "suggest_ms": {"p50": 0.1, "p90": 0.2, "max": 0.3}},
            "pool-mobo": {"busy": math.nan, "wall_s": 1.0, "trials_finished": 0, "suggest_calls": 0,
                          "suggest_ms": {"p50": None, "p90": None, "max": None}},
        },
    }
    lines = markdown_table(utilisation_table(summary)).splitlines()
    assert lines[0] == ("| method | workers | trials | trial s | wall s | busy % | idle waiting s | idle tail s "
                        "| suggest p50 ms | p90 ms | max ms | suggest calls | hypervolume | random fallbacks |")
    assert lines[2] == "| random | 2 | 4 | 0.50 | 3.00 | 80.00 | 0.25 | 1.00 | 0.10 | 0.20 | 0.30 | 4 | 115.50 | 2 |"
    assert lines[3] == "| pool-mobo | 2 | 0/4 | 0.50 | 1.00 | - | - | - | - | - | - | 0 | - | - |"


# --- parse_method_options --------------------------------------------------------------------


def test_options_are_json_when_they_parse_else_strings():
    assert parse_method_options([
        "pool-mobo:num_initial=8",
        "pool-mobo:candidates=pool.csv",
        "ax-mobo:acquisition_options={\"num_restarts\": 4}",
        "ax-mobo:verbose=true",
        "random:max_trials= 3",
        "tpe:weights=[0.5, 0.5]",
        "optuna-gp:note=a=b",  # only the first '=' separates key and value
    ]) == {
        "pool-mobo": {"num_initial": 8, "candidates": "pool.csv"},
        "ax-mobo": {"acquisition_options": {"num_restarts": 4}, "verbose": True},
        "random": {"max_trials": 3},
        "tpe": {"weights": [0.5, 0.5]},
        "optuna-gp": {"note": "a=b"},
    }
    assert parse_method_options(None) == {} and parse_method_options([]) == {}


@pytest.mark.parametrize("item", ["random", "random=3", "random:=3", ":seed=3", "random:seed"])
def test_option_that_is_not_method_key_value_is_refused(item):
    with pytest.raises(ValueError, match=r"--option: got .*; use METHOD:KEY=VALUE"):
        parse_method_options([item])


def test_option_of_an_unknown_method_lists_the_registered_ones():
    with pytest.raises(ValueError, match=r"method: got 'randon' \(did you mean 'random'\?\)"):
        parse_method_options(["randon:seed=1"])


def test_option_given_twice_is_refused():
    with pytest.raises(ValueError, match="--option: got pool-mobo:num_initial twice"):
        parse_method_options(["pool-mobo:num_initial=8", "pool-mobo:num_initial=9"])


# --- refusals before Ray starts --------------------------------------------------------------


def test_scheduler_method_is_refused_with_the_reason(capsys):
    with pytest.raises(ValueError, match="'mo-asha', which comes with the 'mo-asha' scheduler; this benchmark "
                                         "measures searchers only"):
        utilisation_study(["random", "mo-asha"], trials=1, trial_seconds=0)
    code, _, err = _run(capsys, "utilisation", "--methods", "mo-asha")
    assert code == 2 and "measures searchers only" in err


def test_study_settings_are_checked(capsys):
    with pytest.raises(ValueError, match="that method is not run"):
        utilisation_study(["random"], options={"pool-mobo": {"num_initial": 2}})
    with pytest.raises(ValueError, match="trial_seconds: got -1.0"):
        utilisation_study(["random"], trial_seconds=-1)
    with pytest.raises(ValueError, match="workers=0"):
        utilisation_study(["random"], workers=0)
    code, _, err = _run(capsys, "utilisation", "--methods", "random", "--option", "random")
    assert code == 2 and "METHOD:KEY=VALUE" in err


# --- SuggestTimer ----------------------------------------------------------------------------


class Scripted(Searcher):
    """Suggests the configs given, ``None`` for a ``None`` entry, then ``FINISHED``; records the hooks."""

    def __init__(self, configs: list) -> None:
        super().__init__(metric=["f1", "f2"], mode=["min", "min"])
        self.configs = list(configs)
        self.hooks: list[tuple] = []

    def suggest(self, trial_id: str):
        return self.configs.pop(0) if self.configs else Searcher.FINISHED

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self.hooks.append(("set_max_concurrency", max_concurrent))
        return True

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self.hooks.append(("result", trial_id))

    def on_trial_complete(self, trial_id: str, result=None, error=False) -> None:
        self.hooks.append(("complete", trial_id, error))

    def save(self, checkpoint_path: str) -> None:
        self.hooks.append(("save", checkpoint_path))

    def restore(self, checkpoint_path: str) -> None:
        self.hooks.append(("restore", checkpoint_path))


def test_timer_times_every_suggest_call_and_forwards_every_hook():
    inner = Scripted([{"x0": 0.1}, None, {"x0": 0.2}])
    timer = SuggestTimer(inner)
    assert (timer.metric, timer.mode) == (["f1", "f2"], ["min", "min"])
    answers = [timer.suggest(f"t{i}") for i in range(4)]
    assert answers == [{"x0": 0.1}, None, {"x0": 0.2}, Searcher.FINISHED]
    assert [call.suggested for call in timer.calls] == [True, False, True, False]
    assert all(call.seconds >= 0 for call in timer.calls)
    assert timer.set_max_concurrency(3) is True
    timer.on_trial_result("t0", {"f1": 1.0})
    timer.on_trial_complete("t0", {"f1": 1.0, "f2": 2.0}, error=False)
    timer.save("path")
    timer.restore("path")
    assert inner.hooks == [("set_max_concurrency", 3), ("result", "t0"), ("complete", "t0", False),
                           ("save", "path"), ("restore", "path")]


def test_timer_state_round_trips_for_tune_checkpoints():
    timer = SuggestTimer(Scripted([]))
    timer.calls = [SuggestCall(0.5, True), SuggestCall(0.25, False)]
    copy = SuggestTimer(Scripted([]))
    copy.set_state(timer.get_state())
    assert copy.calls == timer.calls


def test_timer_wraps_only_searchers():
    with pytest.raises(TypeError, match="searcher: got dict"):
        SuggestTimer({})


def test_timer_under_concurrency_limiter_sets_search_properties():
    # Tune wraps the timer in a ConcurrencyLimiter (max_concurrent_trials) and passes the space.
    from ray.tune.search import ConcurrencyLimiter

    from searchers import RandomSearch

    limited = ConcurrencyLimiter(SuggestTimer(RandomSearch(seed=0)), max_concurrent=1)
    assert limited.set_search_properties(None, None, {"x": tune.uniform(0, 1)})
    assert set(limited.suggest("t0")) == {"x"}
    assert limited.suggest("t1") is None  # the limiter answers for the timer while one trial is live


# --- end to end on Ray -----------------------------------------------------------------------


@pytest.mark.ray
def test_random_search_run_on_ray_keeps_the_workers_busy(ray_session, capsys):
    code, lines, _ = _run(capsys, "utilisation", "--methods", "random", "--workers", "2", "--trials", "4",
                          "--trial-seconds", "0.5")
    assert code == 0
    summary = json.loads(lines[-1])
    assert (summary["workers"], summary["trials"], summary["trial_seconds"]) == (2, 4, 0.5)
    result = summary["methods"]["random"]
    assert result["trials_finished"] == 4 and result["trials_errored"] == 0
    assert 0 < result["busy"] <= 1
    assert result["suggest_calls"] >= 4 and result["suggest_calls_all"] >= result["suggest_calls"]
    assert 0 <= result["suggest_ms"]["p50"] <= result["suggest_ms"]["p90"] <= result["suggest_ms"]["max"]
    assert result["wall_s"] >= 1.0  # two rounds of 0.5 s trials on two workers
    assert result["random_fallbacks"] is None  # RandomSearch has no model to fall back from
    assert 0 < result["hypervolume"] < 121.0  # four ZDT1 points below BoTorch's reference (11, 11)
    assert any(line.startswith("| random | 2 | 4 |") for line in lines)
    assert ray_session.is_initialized()  # a session it did not start is left running
