"""Tests for orchestrator.plots: Pareto-front and hypervolume figures."""

from __future__ import annotations

import matplotlib
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from orchestrator.plots import plot_hypervolume_trace, plot_pareto_front
from orchestrator.results import pareto_front

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def two_objective_df() -> pd.DataFrame:
    # Front (acc max, cost min): (1, 1), (2, 2), (3, 3); row 1 dominated, row 4 failed.
    return pd.DataFrame(
        {"acc": [2.0, 1.5, 1.0, 3.0, np.nan], "cost": [2.0, 2.5, 1.0, 3.0, 0.0]}
    )


def scatter_offsets(axes) -> list[np.ndarray]:
    return [np.asarray(collection.get_offsets()) for collection in axes.collections]


def test_two_objectives_labels_points_and_front():
    figure = plot_pareto_front(two_objective_df(), {"acc": "max", "cost": "min"})
    assert isinstance(figure, Figure)
    (axes,) = figure.axes
    assert axes.get_xlabel() == "acc (max)" and axes.get_ylabel() == "cost (min)"
    all_points, front_points = scatter_offsets(axes)
    assert len(all_points) == 4  # the failed row is not drawn
    assert front_points.tolist() == [[2.0, 2.0], [1.0, 1.0], [3.0, 3.0]]
    assert [text.get_text() for text in axes.get_legend().get_texts()] == [
        "finished trials",
        "Pareto front",
    ]


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


def test_three_objectives_scatter_matrix():
    rng = np.random.default_rng(0)
    df = pd.DataFrame(rng.normal(size=(20, 3)), columns=["a", "b", "c"])
    figure = plot_pareto_front(df, {"a": "max", "b": "min", "c": "max"})
    assert len(figure.axes) == 9
    grid = np.array(figure.axes).reshape(3, 3)
    assert [axes.get_xlabel() for axes in grid[2]] == ["a (max)", "b (min)", "c (max)"]
    assert [axes.get_ylabel() for axes in grid[:, 0]] == ["a (max)", "b (min)", "c (max)"]
    all_points, front_points = scatter_offsets(grid[1][0])  # b against a
    np.testing.assert_allclose(all_points, df[["a", "b"]].to_numpy())
    front = pareto_front(df, {"a": "max", "b": "min", "c": "max"})
    np.testing.assert_allclose(front_points, front[["a", "b"]].to_numpy())
    assert 0 < len(front) < 20
    assert len(grid[0][0].patches) > 0  # histograms on the diagonal


def test_single_objective_best_so_far_in_trial_order():
    df = pd.DataFrame({"loss": [0.5, np.nan, 0.7, 0.2, 0.3], "trial_order": [1, 2, 3, 4, 5]})
    figure = plot_pareto_front(df, {"loss": "min"})
    (axes,) = figure.axes
    assert axes.get_xlabel() == "trial" and axes.get_ylabel() == "loss (min)"
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


def test_plot_pareto_front_saves_png(tmp_path):
    path = tmp_path / "sub" / "front.png"
    plot_pareto_front(two_objective_df(), {"acc": "max", "cost": "min"}, path=path)
    assert path.read_bytes()[:8] == PNG_SIGNATURE


def test_plots_leave_the_matplotlib_backend_alone():
    backend = matplotlib.get_backend()
    plot_pareto_front(two_objective_df(), {"acc": "max", "cost": "min"})
    assert matplotlib.get_backend() == backend


def test_hypervolume_trace_plot(tmp_path):
    trace = pd.DataFrame({"trial_number": [1, 2, 3], "hypervolume": [0.0, 1.5, 2.0]})
    path = tmp_path / "hv.png"
    figure = plot_hypervolume_trace(trace, path=path, label="ax-mobo")
    (axes,) = figure.axes
    assert axes.get_xlabel() == "trial" and axes.get_ylabel() == "hypervolume"
    (line,) = axes.get_lines()
    assert line.get_label() == "ax-mobo"
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["ax-mobo"]
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert plot_hypervolume_trace(trace).axes[0].get_legend() is None


def test_hypervolume_trace_plot_empty_and_missing_columns():
    empty = pd.DataFrame({"trial_number": [], "hypervolume": []})
    assert plot_hypervolume_trace(empty).axes[0].texts
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['hypervolume'\].*hypervolume_trace"):
        plot_hypervolume_trace(pd.DataFrame({"trial_number": [1]}))
