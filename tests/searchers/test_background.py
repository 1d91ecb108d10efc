"""searchers._background: the burst of trial ends that sizes a searcher's queue of ready suggestions."""

from __future__ import annotations

import pytest

from searchers._background import largest_backlog


@pytest.mark.parametrize(
    ("times", "seconds_each", "expected"),
    [
        ([], 1.0, 0),
        ([3.0], 1.0, 1),
        ([0.0, 0.1, 0.2, 5.0, 9.0, 9.5], 1.0, 3),  # the wave at the start
        ([0.0, 2.5, 5.0, 7.5], 1.0, 1),  # trials out of step, each a model step apart or more
        ([0.0, 0.9, 1.8, 2.7], 1.0, 2),  # each a little sooner than a step: the backlog grows
        ([1.0, 1.0, 1.0], 1.0, 3),  # ends at the same instant
        ([0.0, 0.1, 2.0, 2.1], 1.2, 3),  # two pairs 2 s apart: one made between them
        ([0.0, 10.0, 10.2, 10.3, 10.9], 1.0, 4),  # the wave later on
    ],
)
def test_largest_backlog_counts_what_one_maker_could_not_serve_in_time(times, seconds_each, expected):
    assert largest_backlog(times, seconds_each) == expected


@pytest.mark.parametrize("seconds_each", [0.0, -1.0])
def test_largest_backlog_refuses_a_step_that_takes_no_time(seconds_each):
    with pytest.raises(ValueError, match="expected seconds > 0"):
        largest_backlog([0.0], seconds_each)
