"""Tests for orchestrator.plots: Pareto-front and hypervolume figures, read back from the Figure."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from orchestrator.plots import plot_hypervolume_trace, plot_pareto_front, use_log_scale
from orchestrator.results import default_reference_point, hypervolume_trace, pareto_front

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_MIN = {"acc": "max", "cost": "min"}


def two_objective_df() -> pd.DataFrame:
    # Front (acc max, cost min): (1, 1), (2, 2), (3, 3); row 1 dominated, row 4 failed.
    return pd.DataFrame(
        {"acc": [2.0, 1.5, 1.0, 3.0, np.nan], "cost": [2.0, 2.5, 1.0, 3.0, 0.0]}
    )


def matrix_df(count: int = 40) -> pd.DataFrame:
    # "params" spans four decades, the others less than one.
    rng = np.random.default_rng(0)
    return pd.DataFrame(
        {
            "acc": rng.uniform(0.5, 0.99, count),
            "params": 10 ** rng.uniform(2, 6, count),
            "latency": rng.uniform(1.0, 5.0, count),
        }
    )


MATRIX_OBJECTIVES = {"acc": "max", "params": "min", "latency": "min"}


def scatter_offsets(axes) -> list[np.ndarray]:
    return [np.asarray(collection.get_offsets()) for collection in axes.collections]


def grid_position(axes) -> tuple[int, int]:
    spec = axes.get_subplotspec()
    return spec.rowspan.start, spec.colspan.start


def panels_by_position(figure: Figure) -> dict[tuple[int, int], object]:
    return {grid_position(axes): axes for axes in figure.axes}


def as_rows(points) -> list[tuple[float, ...]]:
    return sorted(map(tuple, np.asarray(points, dtype=float).tolist()))


# ---------------------------------------------------------------- use_log_scale


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([1.0, 100.0], True),  # exactly two decades
        ([1.0, 99.0], False),
        ([3e2, 1e5, np.nan, np.inf], True),  # non-finite values are ignored
        ([0.0, 1.0, 1e6], False),  # a log axis would hide the zero
        ([-1.0, 1e6], False),
        ([5.0], False),
        ([], False),
    ],
)
def test_use_log_scale_needs_positive_values_spanning_two_decades(values, expected):
    assert use_log_scale(values) is expected


# ---------------------------------------------------------------- two objectives


def test_two_objectives_labels_points_and_front():
    figure = plot_pareto_front(two_objective_df(), MAX_MIN)
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    # The arrow says which way is better: right for a max objective, down (rotated left) for min.
    assert axes.get_xlabel() == "acc (max, better →)"
    assert axes.get_ylabel() == "cost (min, better ←)"
    assert (axes.get_xscale(), axes.get_yscale()) == ("linear", "linear")
    all_points, front_points = scatter_offsets(axes)
    assert len(all_points) == 4  # the failed row is not drawn
    assert front_points.tolist() == [[2.0, 2.0], [1.0, 1.0], [3.0, 3.0]]
    (legend,) = axes.figure.legends  # above the axes, where it hides no point
    assert [text.get_text() for text in legend.get_texts()] == ["finished trials", "Pareto front (3 trials)"]


def test_two_objectives_front_is_marked_on_top_with_its_own_colour_and_marker():
    (axes,) = plot_pareto_front(two_objective_df(), MAX_MIN).axes
    trials, front = axes.collections
    assert front.get_zorder() > trials.get_zorder()
    assert not np.allclose(front.get_facecolor()[0], trials.get_facecolor()[0])
    assert len(front.get_paths()[0].vertices) != len(trials.get_paths()[0].vertices)  # diamond, circle


def test_two_objectives_log_axis_only_where_values_span_decades():
    df = pd.DataFrame({"acc": [0.6, 0.7, 0.9], "params": [1e3, 5e4, 2e6]})
    (axes,) = plot_pareto_front(df, {"acc": "max", "params": "min"}).axes
    assert (axes.get_xscale(), axes.get_yscale()) == ("linear", "log")
    (axes,) = plot_pareto_front(df, {"params": "min", "acc": "max"}).axes
    assert (axes.get_xscale(), axes.get_yscale()) == ("log", "linear")


def test_two_objectives_highlight_exactly_the_front_given():
    df = two_objective_df()
    given = df.loc[[0, 1]]  # e.g. the front among feasible trials, computed elsewhere
    (axes,) = plot_pareto_front(df, MAX_MIN, front=given).axes
    assert scatter_offsets(axes)[-1].tolist() == [[2.0, 2.0], [1.5, 2.5]]
    assert axes.figure.legends[0].get_texts()[-1].get_text() == "Pareto front (2 trials)"


@pytest.mark.parametrize(
    ("modes", "rows", "expected"),
    [
        # Max/max: sorted by x, y falls; the boundary drops at each x.
        (("max", "max"), [(1, 3), (3, 1), (2, 2)], [(1, 3), (1, 2), (2, 2), (2, 1), (3, 1)]),
        # Max x, min y: more x costs more y; the boundary rises at each x.
        (("max", "min"), [(3, 3), (1, 1), (2, 2)], [(1, 1), (1, 2), (2, 2), (2, 3), (3, 3)]),
        # Min/min: dominated region up and right; the step comes after each point.
        (("min", "min"), [(1, 3), (3, 1), (2, 2)], [(3, 1), (3, 2), (2, 2), (2, 3), (1, 3)]),
        (("max", "max"), [(2, 2)], [(2, 2)]),
    ],
)
def test_two_objectives_front_is_drawn_as_staircase(modes, rows, expected):
    df = pd.DataFrame(rows, columns=["x", "y"], dtype=float)
    figure = plot_pareto_front(df, {"x": modes[0], "y": modes[1]})
    (line,) = figure.axes[0].get_lines()
    assert np.column_stack(line.get_data()).tolist() == [list(map(float, p)) for p in expected]


def test_two_objectives_with_an_empty_front_draws_the_trials_and_no_staircase():
    df = two_objective_df()
    (axes,) = plot_pareto_front(df, MAX_MIN, front=df.iloc[:0]).axes
    assert len(scatter_offsets(axes)[0]) == 4 and len(scatter_offsets(axes)[1]) == 0
    assert axes.get_lines() == []


# ---------------------------------------------------------------- three or more objectives


@pytest.mark.parametrize("count", [3, 4])
def test_matrix_has_only_the_lower_triangle_and_the_diagonal(count):
    rng = np.random.default_rng(count)
    names = [f"f{i}" for i in range(count)]
    df = pd.DataFrame(rng.normal(size=(25, count)), columns=names)
    figure = plot_pareto_front(df, dict.fromkeys(names, "max"))
    positions = [grid_position(axes) for axes in figure.axes]
    assert len(positions) == count * (count + 1) // 2
    assert set(positions) == {(row, column) for row in range(count) for column in range(row + 1)}
    assert all(axes.get_subplotspec().get_gridspec().get_geometry() == (count, count) for axes in figure.axes)


def test_matrix_labels_outer_axes_and_titles_the_diagonal():
    figure = plot_pareto_front(matrix_df(), MATRIX_OBJECTIVES)
    panels = panels_by_position(figure)
    labels = ["acc (max, better →)", "params (min, better ←)", "latency (min, better ←)"]
    assert [panels[2, column].get_xlabel() for column in range(3)] == labels
    assert [panels[row, 0].get_ylabel() for row in (1, 2)] == labels[1:]
    assert [panels[i, i].get_title() for i in range(3)] == labels
    assert panels[1, 0].get_xlabel() == "" and panels[2, 1].get_ylabel() == ""


def test_matrix_panels_plot_row_objective_against_column_objective_with_the_front_on_top():
    df = matrix_df()
    front = pareto_front(df, MATRIX_OBJECTIVES)
    assert 0 < len(front) < len(df)
    panels = panels_by_position(plot_pareto_front(df, MATRIX_OBJECTIVES))
    names = list(MATRIX_OBJECTIVES)
    for row, column in [(1, 0), (2, 0), (2, 1)]:
        trials, marked = panels[row, column].collections
        pair = [names[column], names[row]]
        np.testing.assert_allclose(trials.get_offsets(), df[pair].to_numpy())
        assert as_rows(marked.get_offsets()) == as_rows(front[pair].to_numpy())
        assert marked.get_zorder() > trials.get_zorder()
        assert not np.allclose(marked.get_facecolor()[0], trials.get_facecolor()[0])
    for i in range(3):
        counted = sum(patch.get_height() for patch in panels[i, i].patches)
        assert counted == len(df) + len(front)  # all trials, then the front over them


def test_matrix_legend_names_the_front():
    df = matrix_df()
    front = pareto_front(df, MATRIX_OBJECTIVES)
    figure = plot_pareto_front(df, MATRIX_OBJECTIVES)
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == [
        "finished trials",
        f"Pareto front ({len(front)} trials)",
    ]


def test_matrix_highlights_exactly_the_front_given():
    df = matrix_df()
    given = df.iloc[[3, 7]]
    panels = panels_by_position(plot_pareto_front(df, MATRIX_OBJECTIVES, front=given))
    assert as_rows(panels[2, 1].collections[-1].get_offsets()) == as_rows(given[["params", "latency"]])


def test_matrix_log_axes_follow_the_objective_that_spans_decades():
    panels = panels_by_position(plot_pareto_front(matrix_df(), MATRIX_OBJECTIVES))
    # "params" is objective 1: column 1 has a log x axis, row 1 a log y axis off the diagonal.
    for (row, column), axes in panels.items():
        assert axes.get_xscale() == ("log" if column == 1 else "linear"), (row, column)
        if row != column:
            assert axes.get_yscale() == ("log" if row == 1 else "linear"), (row, column)
    assert panels[1, 1].get_yscale() == "linear"  # the histogram's counts


# ---------------------------------------------------------------- one objective


def test_single_objective_best_so_far_in_trial_order():
    df = pd.DataFrame({"loss": [0.5, np.nan, 0.7, 0.2, 0.3], "trial_order": [1, 2, 3, 4, 5]})
    figure = plot_pareto_front(df, {"loss": "min"})
    (axes,) = figure.axes
    assert axes.get_xlabel() == "trial (creation order)" and axes.get_ylabel() == "loss (min, better ←)"
    assert axes.get_yscale() == "linear"
    (line,) = axes.get_lines()
    xs, ys = line.get_data()
    assert list(xs) == [1, 2, 3, 4, 5]
    assert list(ys) == pytest.approx([0.5, 0.5, 0.5, 0.2, 0.2])
    (points,) = scatter_offsets(axes)
    assert points.tolist() == [[1, 0.5], [3, 0.7], [4, 0.2], [5, 0.3]]


def test_single_objective_maximised_and_reordered():
    df = pd.DataFrame({"acc": [0.9, 0.1, 0.5], "trial_order": [3, 1, 2]})
    figure = plot_pareto_front(df, {"acc": "max"})
    _, ys = figure.axes[0].get_lines()[0].get_data()
    assert list(ys) == pytest.approx([0.1, 0.5, 0.9])


def test_single_objective_without_creation_order_and_spanning_decades():
    (axes,) = plot_pareto_front(pd.DataFrame({"loss": [3.0, 0.02, 0.5]}), {"loss": "min"}).axes
    assert axes.get_xlabel() == "trial" and axes.get_yscale() == "log"


# ---------------------------------------------------------------- shared behaviour


@pytest.mark.parametrize("objectives", [{"loss": "min"}, {"loss": "min", "cost": "min"},
                                        {"loss": "min", "cost": "min", "size": "max"}])
def test_no_finished_trials_draws_a_message(objectives):
    df = pd.DataFrame({"loss": [np.nan, np.nan], "cost": [1.0, 2.0], "size": [1.0, 1.0]})
    figure = plot_pareto_front(df, objectives)
    texts = [text.get_text() for axes in figure.axes for text in axes.texts]
    assert any(text.startswith("no finished trials") for text in texts)


def test_plot_pareto_front_rejects_unknown_objective():
    with pytest.raises(ValueError, match=r"\['latency'\] not in the results"):
        plot_pareto_front(two_objective_df(), {"latency": "min"})


@pytest.mark.parametrize("objectives", [MAX_MIN, MATRIX_OBJECTIVES])
def test_plot_pareto_front_saves_png(tmp_path, objectives):
    df = matrix_df() if len(objectives) == 3 else two_objective_df()
    path = tmp_path / "sub" / "front.png"
    plot_pareto_front(df, objectives, path=path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_plots_leave_the_matplotlib_backend_alone():
    backend = matplotlib.get_backend()
    plot_pareto_front(two_objective_df(), MAX_MIN)
    assert matplotlib.get_backend() == backend


# ---------------------------------------------------------------- hypervolume trace


def test_normalised_hypervolume_trace_plot_states_its_reference_and_scaling(tmp_path):
    df = pd.DataFrame(
        {"acc": [0.5, 0.7, 1.0, np.nan], "latency": [10.0, 14.0, 20.0, 1.0], "trial_order": [2, 1, 3, 4]}
    )
    objectives = {"acc": "max", "latency": "min"}
    trace = hypervolume_trace(df, objectives, normalise=True)
    path = tmp_path / "hv.png"
    (axes,) = plot_hypervolume_trace(trace, path=path).axes
    assert default_reference_point(df, objectives) == pytest.approx({"acc": 0.45, "latency": 21.0})
    first_line, rest = axes.get_title().split("\n", 1)
    assert first_line == "reference point (in objective units): acc=0.45, latency=21"
    assert " ".join(rest.split()) == (  # wrapped to the figure's width
        "objectives scaled to [0, 1] over 3 finished trials: reference point → 0, best (acc=1, latency=10) → 1"
    )
    assert axes.get_xlabel() == "trial (creation order)"
    assert axes.get_ylabel() == "hypervolume (normalised)"
    assert axes.get_ylim() == pytest.approx((0.0, 1.05))
    (line,) = axes.get_lines()
    xs, ys = line.get_data()
    assert list(xs) == [1, 2, 3, 4]
    assert list(ys) == pytest.approx(trace["hypervolume"].tolist())
    assert 0 < ys[0] < ys[-1] <= 1
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_hypervolume_trace_plot_with_an_explicit_reference_in_objective_units():
    df = pd.DataFrame({"acc": [1.0, 2.0], "cost": [2.0, 1.0]})
    trace = hypervolume_trace(df, MAX_MIN, {"acc": 0.0, "cost": 3.0}, order_by=None)
    (axes,) = plot_hypervolume_trace(trace).axes
    assert axes.get_title() == "reference point (in objective units): acc=0, cost=3"
    assert axes.get_xlabel() == "trial" and axes.get_ylabel() == "hypervolume"
    assert list(axes.get_lines()[0].get_data()[1]) == [1.0, 4.0]


def test_hypervolume_trace_plot(tmp_path):
    trace = pd.DataFrame({"trial_number": [1, 2, 3], "hypervolume": [0.0, 1.5, 2.0]})
    path = tmp_path / "hv.png"
    figure = plot_hypervolume_trace(trace, path=path, label="ax-mobo")
    (axes,) = figure.axes
    # A table without attrs says nothing it does not know.
    assert axes.get_xlabel() == "trial" and axes.get_ylabel() == "hypervolume"
    assert axes.get_title() == ""
    (line,) = axes.get_lines()
    assert line.get_label() == "ax-mobo"
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["ax-mobo"]
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert plot_hypervolume_trace(trace).axes[0].get_legend() is None


def test_hypervolume_trace_plot_empty_and_missing_columns():
    empty = hypervolume_trace(pd.DataFrame({"acc": [], "cost": []}), MAX_MIN, normalise=True)
    (axes,) = plot_hypervolume_trace(empty).axes
    assert axes.texts and axes.get_title() == ""
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['hypervolume'\].*hypervolume_trace"):
        plot_hypervolume_trace(pd.DataFrame({"trial_number": [1]}))
