"""Tests for orchestrator.results: Pareto fronts, hypervolumes, result files and tables."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from orchestrator.results import (
    default_reference_point,
    finished_mask,
    format_pareto_table,
    hypervolume,
    hypervolume_trace,
    load_results,
    pareto_front,
    save_results,
)
from tests.benchmark_data import NMTHPO_PAIRS, needs_nmthpo

MAX_MIN = {"acc": "max", "cost": "min"}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass
class Objective:
    name: str
    mode: str


def brute_force_front(values: np.ndarray) -> np.ndarray:
    """Non-dominated mask for maximisation, the O(n^2) definition."""
    n = len(values)
    mask = np.ones(n, dtype=bool)
    for i in range(n):
        for j in range(n):
            if (values[j] >= values[i]).all() and (values[j] > values[i]).any():
                mask[i] = False
                break
    return mask


def staircase_df() -> pd.DataFrame:
    # Front (acc max, cost min): (1, 1), (2, 2), (3, 3); (1.5, 2.5) and (0.5, 3) are dominated.
    return pd.DataFrame(
        {
            "acc": [1.0, 1.5, 2.0, 3.0, 0.5],
            "cost": [1.0, 2.5, 2.0, 3.0, 3.0],
            "config/lr": [0.1, 0.2, 0.3, 0.4, 0.5],
            "config/layers": [1, 2, 3, 4, 5],
        }
    )


# ---------------------------------------------------------------- pareto_front


def test_pareto_front_two_objectives_mixed_modes():
    front = pareto_front(staircase_df(), MAX_MIN)
    assert front.index.tolist() == [0, 2, 3]
    pd.testing.assert_frame_equal(front, staircase_df().iloc[[0, 2, 3]])


def test_pareto_front_depends_on_modes():
    df = staircase_df()
    assert pareto_front(df, {"acc": "max", "cost": "max"}).index.tolist() == [3]
    assert pareto_front(df, {"acc": "min", "cost": "min"}).index.tolist() == [0, 4]
    assert pareto_front(df, {"acc": "min", "cost": "max"}).index.tolist() == [4]


def test_pareto_front_accepts_objective_objects():
    objectives = [Objective("acc", "max"), Objective("cost", "min")]
    assert pareto_front(staircase_df(), objectives).index.tolist() == [0, 2, 3]


def test_pareto_front_keeps_identical_optimal_rows_and_original_index():
    df = pd.DataFrame(
        {"acc": [2.0, 1.0, 2.0, 0.5], "cost": [1.0, 1.0, 1.0, 0.5]}, index=[10, 7, 3, 5]
    )
    assert pareto_front(df, MAX_MIN).index.tolist() == [10, 3, 5]


def test_pareto_front_excludes_non_finite_rows_even_if_they_would_dominate():
    df = pd.DataFrame(
        {"acc": [1.0, np.nan, 9.0, np.inf, 2.0], "cost": [1.0, 0.0, np.nan, 0.0, 2.0]}
    )
    assert pareto_front(df, MAX_MIN).index.tolist() == [0, 4]


def test_pareto_front_treats_missing_and_unparsable_values_as_unfinished():
    df = pd.DataFrame({"acc": [1.0, None, "oops", 2.0], "cost": [1.0, 0.0, 0.0, 2.0]})
    assert pareto_front(df, MAX_MIN).index.tolist() == [0, 3]


def test_pareto_front_three_objectives():
    df = pd.DataFrame(
        {
            "a": [1.0, 0.0, 0.0, 0.5, 0.4],
            "b": [0.0, 1.0, 0.0, 0.5, 0.4],
            "c": [1.0, 1.0, 0.0, 0.5, 0.6],  # min: row 2 is best on c alone
        }
    )
    objectives = {"a": "max", "b": "max", "c": "min"}
    assert pareto_front(df, objectives).index.tolist() == [0, 1, 2, 3]


def test_pareto_front_single_objective_keeps_all_ties():
    df = pd.DataFrame({"loss": [0.3, 0.1, 0.2, 0.1]})
    assert pareto_front(df, {"loss": "min"}).index.tolist() == [1, 3]


def test_pareto_front_matches_brute_force_on_random_data():
    rng = np.random.default_rng(0)
    values = rng.integers(0, 6, size=(60, 3)).astype(float)  # small ints force ties
    df = pd.DataFrame(values, columns=["a", "b", "c"])
    expected = brute_force_front(values * np.array([1.0, -1.0, 1.0]))
    front = pareto_front(df, {"a": "max", "b": "min", "c": "max"})
    assert front.index.tolist() == np.flatnonzero(expected).tolist()


def test_pareto_front_empty_when_nothing_finished():
    df = pd.DataFrame({"acc": [np.nan, np.nan], "cost": [1.0, 2.0], "x": [1, 2]})
    front = pareto_front(df, MAX_MIN)
    assert front.empty and front.columns.tolist() == ["acc", "cost", "x"]
    assert pareto_front(df.iloc[:0], MAX_MIN).empty


def test_pareto_front_unknown_column_names_it_and_lists_available():
    with pytest.raises(ValueError, match=r"\['latency'\] not in the results.*'acc', 'cost'"):
        pareto_front(staircase_df(), {"acc": "max", "latency": "min"})


def test_finished_mask():
    df = pd.DataFrame({"acc": [1.0, np.nan, 2.0], "cost": [1.0, 1.0, np.inf]}, index=[5, 6, 7])
    pd.testing.assert_series_equal(
        finished_mask(df, MAX_MIN), pd.Series([True, False, False], index=[5, 6, 7])
    )


# ---------------------------------------------------------------- hypervolume


def test_hypervolume_two_d_staircase_maximise():
    # Rectangles from the reference (0, 0): 1x3 + 1x2 + 1x1.
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [3.0, 2.0, 1.0]})
    assert hypervolume(df, {"a": "max", "b": "max"}, {"a": 0.0, "b": 0.0}) == pytest.approx(6.0)


def test_hypervolume_mixed_modes_in_own_units():
    # Front (1, 1), (2, 2), (3, 3) with acc max, cost min, reference (0, 4):
    # slabs acc in [0,1] x cost in [1,4] = 3, [1,2] x [2,4] = 2, [2,3] x [3,4] = 1.
    assert hypervolume(staircase_df(), MAX_MIN, {"acc": 0.0, "cost": 4.0}) == pytest.approx(6.0)


def test_hypervolume_ignores_dominated_rows_and_rows_beyond_reference():
    df = staircase_df()
    reference = {"acc": 0.0, "cost": 4.0}
    front_only = hypervolume(pareto_front(df, MAX_MIN), MAX_MIN, reference)
    assert hypervolume(df, MAX_MIN, reference) == pytest.approx(front_only)
    # (3, 3) is worse than a reference cost of 2.5, so only (1, 1) and (2, 2) count: 1.5 + 0.5.
    assert hypervolume(df, MAX_MIN, {"acc": 0.0, "cost": 2.5}) == pytest.approx(2.0)
    assert hypervolume(df, MAX_MIN, {"acc": 10.0, "cost": 4.0}) == 0.0


def test_hypervolume_three_objectives():
    # Unit cube plus a 1 x 0.5 x 0.5 box sticking out along a.
    df = pd.DataFrame({"a": [1.0, 2.0], "b": [1.0, 0.5], "c": [-1.0, -0.5]})
    objectives = {"a": "max", "b": "max", "c": "min"}
    reference = {"a": 0.0, "b": 0.0, "c": 0.0}
    assert hypervolume(df, objectives, reference) == pytest.approx(1.25)


def test_hypervolume_single_objective_is_a_length():
    df = pd.DataFrame({"loss": [0.5, 0.2, np.nan]})
    assert hypervolume(df, {"loss": "min"}, {"loss": 1.0}) == pytest.approx(0.8)
    assert hypervolume(df, {"loss": "min"}, {"loss": 0.1}) == 0.0


def test_hypervolume_skips_non_finite_rows_and_handles_no_rows():
    df = pd.DataFrame({"acc": [np.nan, 5.0, 1.0], "cost": [0.0, np.inf, 1.0]})
    assert hypervolume(df, MAX_MIN, {"acc": 0.0, "cost": 2.0}) == pytest.approx(1.0)
    assert hypervolume(df.iloc[:0], MAX_MIN, {"acc": 0.0, "cost": 2.0}) == 0.0


def test_hypervolume_reference_point_errors():
    with pytest.raises(ValueError, match=r"lacks objective\(s\) \['cost'\]"):
        hypervolume(staircase_df(), MAX_MIN, {"acc": 0.0})
    with pytest.raises(ValueError, match="must be finite"):
        hypervolume(staircase_df(), MAX_MIN, {"acc": 0.0, "cost": math.nan})


# ---------------------------------------------------------------- default_reference_point


def test_default_reference_point_pushes_worst_value_by_a_tenth_of_the_range():
    reference = default_reference_point(staircase_df(), MAX_MIN)
    # acc worst 0.5, range 2.5; cost worst 3.0, range 2.0.
    assert reference == pytest.approx({"acc": 0.25, "cost": 3.2})


def test_default_reference_point_ignores_unfinished_rows():
    df = pd.DataFrame({"acc": [1.0, 2.0, -100.0], "cost": [1.0, 3.0, np.nan]})
    assert default_reference_point(df, MAX_MIN) == pytest.approx({"acc": 0.9, "cost": 3.2})


def test_default_reference_point_constant_objective():
    df = pd.DataFrame({"acc": [5.0, 5.0], "cost": [0.0, 0.0], "loss": [-2.0, -2.0]})
    reference = default_reference_point(df, {"acc": "max", "cost": "min", "loss": "min"})
    assert reference == pytest.approx({"acc": 4.5, "cost": 1.0, "loss": -1.8})


def test_default_reference_point_gives_every_front_point_positive_volume():
    df = staircase_df()
    reference = default_reference_point(df, MAX_MIN)
    for _, row in pareto_front(df, MAX_MIN).iterrows():
        assert hypervolume(row.to_frame().T, MAX_MIN, reference) > 0


def test_default_reference_point_needs_a_finished_row():
    df = pd.DataFrame({"acc": [np.nan], "cost": [1.0]})
    with pytest.raises(ValueError, match="none of the 1 rows"):
        default_reference_point(df, MAX_MIN)


# ---------------------------------------------------------------- hypervolume_trace


def test_hypervolume_trace_hand_computed_with_failed_trial():
    df = pd.DataFrame(
        {
            "acc": [1.0, np.nan, 0.5, 2.0, 3.0],
            "cost": [1.0, 0.0, 3.0, 2.0, 3.0],
        }
    )
    reference = {"acc": 0.0, "cost": 4.0}
    trace = hypervolume_trace(df, MAX_MIN, reference)
    assert trace.columns.tolist() == ["trial_number", "hypervolume"]
    assert trace["trial_number"].tolist() == [1, 2, 3, 4, 5]
    assert trace["hypervolume"].tolist() == pytest.approx([3.0, 3.0, 3.0, 5.0, 6.0])


def test_hypervolume_trace_follows_trial_order_column_else_index_order():
    # (0.5, 3) finished first, then (1, 1), which dominates it.
    df = pd.DataFrame({"acc": [1.0, 0.5], "cost": [1.0, 3.0], "trial_order": [2, 1]})
    reference = {"acc": 0.0, "cost": 4.0}

    def volumes(frame, **kwargs):
        return hypervolume_trace(frame, MAX_MIN, reference, **kwargs)["hypervolume"].tolist()

    assert volumes(df) == pytest.approx([0.5, 3.0])
    assert volumes(df, order_by=None) == pytest.approx([3.0, 3.0])
    assert volumes(df, order_by="no_such_column") == pytest.approx([3.0, 3.0])
    assert volumes(df.drop(columns="trial_order")) == pytest.approx([3.0, 3.0])
    assert volumes(df.rename(columns={"trial_order": "end_time"}), order_by="end_time") == (
        pytest.approx([0.5, 3.0])
    )


def test_hypervolume_trace_monotone_and_ends_at_full_hypervolume():
    rng = np.random.default_rng(1)
    df = pd.DataFrame(rng.normal(size=(80, 3)), columns=["a", "b", "c"])
    df.loc[rng.choice(80, size=10, replace=False), "b"] = np.nan
    objectives = [Objective("a", "max"), Objective("b", "min"), Objective("c", "max")]
    trace = hypervolume_trace(df, objectives)
    volumes = trace["hypervolume"].to_numpy()
    assert (np.diff(volumes) >= 0).all()
    reference = default_reference_point(df, objectives)
    assert volumes[-1] == pytest.approx(hypervolume(df, objectives, reference))
    for k in (5, 20, 41):
        assert volumes[k - 1] == pytest.approx(hypervolume(df.iloc[:k], objectives, reference))


def test_hypervolume_trace_without_finished_trials():
    df = pd.DataFrame({"acc": [np.nan, np.nan], "cost": [1.0, 2.0]})
    assert hypervolume_trace(df, MAX_MIN)["hypervolume"].tolist() == [0.0, 0.0]
    empty = hypervolume_trace(df.iloc[:0], MAX_MIN)
    assert empty.empty and empty.columns.tolist() == ["trial_number", "hypervolume"]


def test_normalised_hypervolume_trace_is_the_share_of_the_box_from_reference_to_best():
    df = staircase_df()
    raw = hypervolume_trace(df, MAX_MIN)
    trace = hypervolume_trace(df, MAX_MIN, normalise=True)
    # Default reference (0.25, 3.2); best acc 3, best cost 1: a box of 2.75 x 2.2.
    assert trace.attrs["reference_point"] == pytest.approx({"acc": 0.25, "cost": 3.2})
    assert trace.attrs["best_point"] == {"acc": 3.0, "cost": 1.0}
    assert trace["hypervolume"].to_numpy() == pytest.approx(raw["hypervolume"].to_numpy() / (2.75 * 2.2))
    assert 0 < trace["hypervolume"].iloc[-1] < 1
    assert trace.attrs["normalised"] and not raw.attrs["normalised"]


def test_normalised_hypervolume_trace_counts_objectives_of_any_scale_alike():
    df = staircase_df()
    rescaled = df.assign(cost=df["cost"] * 1e6 + 7.0)
    normalised = hypervolume_trace(df, MAX_MIN, normalise=True)["hypervolume"].to_numpy()
    rescaled_trace = hypervolume_trace(rescaled, MAX_MIN, normalise=True)
    assert rescaled_trace["hypervolume"].to_numpy() == pytest.approx(normalised)
    assert hypervolume_trace(rescaled, MAX_MIN)["hypervolume"].iloc[-1] > 1e5  # raw volume is not


def test_normalised_hypervolume_trace_reaches_one_when_a_trial_is_best_everywhere():
    df = pd.DataFrame({"acc": [1.0, 2.0, 3.0], "cost": [30.0, 20.0, 10.0], "size": [5.0, 5.0, 5.0]})
    objectives = {"acc": "max", "cost": "min", "size": "min"}  # a constant objective too
    trace = hypervolume_trace(df, objectives, normalise=True)
    assert trace["hypervolume"].tolist() == pytest.approx([1 / 11**2, 1 / 11**2 * 6**2, 1.0])


def test_hypervolume_trace_attrs_say_what_it_was_computed_against():
    df = staircase_df().assign(trial_order=[5, 4, 3, 2, 1])
    df.loc[0, "acc"] = np.nan
    include = [True, True, True, False, True]
    trace = hypervolume_trace(df, MAX_MIN, include=include, normalise=True)
    assert trace.attrs == {
        # Over the counted finished rows 1, 2, 4: acc 1.5, 2, 0.5 and cost 2.5, 2, 3.
        "reference_point": pytest.approx({"acc": 0.35, "cost": 3.1}),
        "best_point": {"acc": 2.0, "cost": 2.0},
        "normalised": True,
        "finished_trials": 3,
        "order_by": "trial_order",
    }
    explicit = hypervolume_trace(df, MAX_MIN, {"cost": 4, "acc": 0}, order_by=None)
    assert explicit.attrs["reference_point"] == {"acc": 0.0, "cost": 4.0}
    assert explicit.attrs["order_by"] is None and explicit.attrs["finished_trials"] == 4
    empty = hypervolume_trace(df.iloc[:0], MAX_MIN, normalise=True)
    assert empty.attrs["reference_point"] is None and empty.attrs["best_point"] is None


def test_normalised_hypervolume_trace_with_a_reference_better_than_every_value():
    df = staircase_df()
    trace = hypervolume_trace(df, MAX_MIN, {"acc": 10.0, "cost": 4.0}, normalise=True)
    assert trace["hypervolume"].tolist() == [0.0] * len(df)


# ---------------------------------------------------------------- save_results / load_results


def test_save_and_load_round_trip(tmp_path):
    df = staircase_df().assign(trial_id=[f"t{i}" for i in range(5)], trial_order=range(1, 6))
    df.loc[1, "acc"] = np.nan
    out_dir = tmp_path / "nested" / "experiment"
    paths = save_results(df, [Objective("acc", "max"), Objective("cost", "min")], out_dir)
    assert set(paths) == {"results_csv", "pareto_csv", "pareto_plot", "hypervolume_plot"}
    assert {name: path.name for name, path in paths.items()} == {
        "results_csv": "results.csv",
        "pareto_csv": "pareto_front.csv",
        "pareto_plot": "pareto_front.png",
        "hypervolume_plot": "hypervolume.png",
    }
    for path in paths.values():
        assert path.parent == out_dir and path.stat().st_size > 0
    for name in ("pareto_plot", "hypervolume_plot"):
        assert paths[name].read_bytes()[:8] == PNG_SIGNATURE
    loaded = load_results(out_dir)
    pd.testing.assert_frame_equal(loaded, df.reset_index(drop=True), check_dtype=False)
    pareto = pd.read_csv(paths["pareto_csv"])
    assert pareto["trial_id"].tolist() == ["t0", "t2", "t3"]


def test_save_results_with_explicit_reference_point_and_no_finished_trials(tmp_path):
    df = pd.DataFrame({"acc": [np.nan], "cost": [np.nan]})
    paths = save_results(df, MAX_MIN, tmp_path, reference_point={"acc": 0.0, "cost": 1.0})
    assert all(path.stat().st_size > 0 for path in paths.values())
    assert pd.read_csv(paths["pareto_csv"]).empty


def test_save_results_plots_the_normalised_trace_against_the_eligible_reference(tmp_path, monkeypatch):
    from orchestrator import results

    traces = []
    real_plot = results.plot_hypervolume_trace

    def recording_plot(trace, **kwargs):
        traces.append(trace)
        return real_plot(trace, **kwargs)

    monkeypatch.setattr(results, "plot_hypervolume_trace", recording_plot)
    df = staircase_df()
    df.loc[len(df)] = {"acc": 9.0, "cost": 0.5, "config/lr": 0.9, "config/layers": 9}  # not eligible
    eligible = [True] * 5 + [False]
    save_results(df, MAX_MIN, tmp_path, eligible=eligible)
    (trace,) = traces
    assert trace.attrs["normalised"] and trace.attrs["finished_trials"] == 5
    assert trace.attrs["reference_point"] == pytest.approx(default_reference_point(df.iloc[:5], MAX_MIN))
    assert trace["hypervolume"].iloc[-1] == pytest.approx(
        hypervolume(df.iloc[:5], MAX_MIN, trace.attrs["reference_point"]) / (2.75 * 2.2)
    )
    save_results(df, MAX_MIN, tmp_path, reference_point={"acc": 0.0, "cost": 4.0}, eligible=eligible)
    assert traces[-1].attrs["reference_point"] == {"acc": 0.0, "cost": 4.0}


def test_save_results_unknown_objective_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="'latency'"):
        save_results(staircase_df(), {"latency": "min"}, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_load_results_missing_directory_says_how_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no results\.csv in .*missing.*orchestrator run"):
        load_results(tmp_path / "missing")


# ---------------------------------------------------------------- format_pareto_table


def test_format_pareto_table_objectives_first_config_stripped_best_first():
    table = format_pareto_table(staircase_df(), MAX_MIN)
    lines = table.splitlines()
    assert lines[0].split() == ["acc", "cost", "lr", "layers"]
    assert [line.split() for line in lines[1:]] == [
        ["3", "3", "0.4", "4"],
        ["2", "2", "0.3", "3"],
        ["1", "1", "0.1", "1"],
    ]


def test_format_pareto_table_min_first_objective_sorts_ascending():
    table = format_pareto_table(staircase_df(), {"cost": "min", "acc": "max"})
    assert [line.split()[0] for line in table.splitlines()[1:]] == ["1", "2", "3"]


def test_format_pareto_table_float_formatting_and_explicit_columns():
    df = pd.DataFrame({"acc": [0.123456789, 0.2], "cost": [1e-7, 5.0], "note": ["a", "b"]})
    table = format_pareto_table(df, MAX_MIN, columns=["note"])
    assert table.splitlines()[0].split() == ["acc", "cost", "note"]
    assert "0.123457" in table and "1e-07" in table and "0.123456789" not in table


def test_format_pareto_table_shows_the_trial_between_objectives_and_hyperparameters():
    df = staircase_df().assign(
        checkpoint=[f"/exp/t{i}/checkpoint_000001" for i in range(5)],
        training_iteration=[2] * 5, status="completed", trial_id=[f"t{i}" for i in range(5)],
        time_total_s=1.0,
    )
    lines = format_pareto_table(df, MAX_MIN).splitlines()
    assert lines[0].split() == ["acc", "cost", "trial_id", "status", "training_iteration", "checkpoint", "lr", "layers"]
    assert lines[1].split() == ["3", "3", "t3", "completed", "2", "/exp/t3/checkpoint_000001", "0.4", "4"]
    # Explicit columns show just those, as before.
    assert format_pareto_table(df, MAX_MIN, columns=["config/lr"]).splitlines()[0].split() == ["acc", "cost", "lr"]


def test_format_pareto_table_unknown_column_and_empty_front():
    with pytest.raises(ValueError, match=r"\['config/missing'\]"):
        format_pareto_table(staircase_df(), MAX_MIN, columns=["config/missing"])
    df = pd.DataFrame({"acc": [np.nan], "cost": [1.0]})
    expected = "No finished trials with finite values for ['acc', 'cost']."
    assert format_pareto_table(df, MAX_MIN) == expected


# ---------------------------------------------------------------- NMT lookup table cross-check


@needs_nmthpo
@pytest.mark.parametrize("pair", NMTHPO_PAIRS or ["<no tables>"])
def test_pareto_front_matches_published_nmt_fronts(data_dir, pair):
    directory = data_dir / "nmthpo"
    evals = pd.read_csv(directory / f"{pair}.evals", sep=r"\s+", header=None)
    fronts = pd.read_csv(directory / f"{pair}.fronts", sep=r"\s+", header=None)[0]
    df = pd.DataFrame({"dev_bleu": evals[0], "dev_gpu_time": evals[1]})
    front = pareto_front(df, {"dev_bleu": "max", "dev_gpu_time": "min"})
    assert front.index.tolist() == np.flatnonzero(fronts.to_numpy() == 1).tolist()


def test_csv_and_png_show_the_same_front_when_some_trials_are_not_eligible(tmp_path, monkeypatch):
    """An infeasible trial that would dominate must be neither in pareto_front.csv nor red in the PNG."""
    from orchestrator import results

    figures = []
    real_plot = results.plot_pareto_front

    def recording_plot(*args, **kwargs):
        figures.append(real_plot(*args, **kwargs))
        return figures[-1]

    monkeypatch.setattr(results, "plot_pareto_front", recording_plot)
    df = staircase_df()
    df.loc[len(df)] = {"acc": 9.0, "cost": 0.5, "config/lr": 0.9, "config/layers": 9}  # dominates all
    eligible = pd.Series(True, index=df.index)
    eligible.iloc[-1] = False  # e.g. it broke a constraint
    paths = save_results(df, MAX_MIN, tmp_path, eligible=eligible)

    csv_front = pd.read_csv(paths["pareto_csv"])[["acc", "cost"]].to_numpy()
    (axes,) = figures[0].axes
    highlighted = axes.collections[-1].get_offsets()  # the red Pareto points, drawn last
    assert sorted(map(tuple, csv_front)) == [(1.0, 1.0), (2.0, 2.0), (3.0, 3.0)]
    assert sorted(map(tuple, np.asarray(highlighted))) == sorted(map(tuple, csv_front))
    with pytest.raises(ValueError, match="eligible: got 2 flags for 6 rows"):
        save_results(df, MAX_MIN, tmp_path, eligible=[True, False])
