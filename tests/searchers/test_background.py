"""searchers._background: the burst of trial ends that sizes a searcher's queue of ready suggestions."""

from __future__ import annotations

import pytest

from searchers._background import largest_burst


@pytest.mark.parametrize(
    ("times", "window", "expected"),
    [
        ([], 1.0, 0),
        ([3.0], 0.0, 1),
        ([0.0, 0.1, 0.2, 5.0, 9.0, 9.5], 1.0, 3),  # the wave at the start
        ([0.0, 2.5, 5.0, 7.5], 1.0, 1),  # trials out of step: one at a time
        ([0.0, 2.5, 5.0, 7.5], 2.5, 2),  # the span includes both of its ends
        ([1.0, 1.0, 1.0], 0.0, 3),  # ends at the same instant
        ([0.0, 10.0, 10.2, 10.3, 10.9], 1.0, 4),  # the wave later on
    ],
)
def test_largest_burst_counts_the_most_ends_within_one_window(times, window, expected):
    assert largest_burst(times, window) == expected


def test_largest_burst_refuses_a_negative_window():
    with pytest.raises(ValueError, match="window=-1.0: expected seconds >= 0"):
        largest_burst([0.0], -1.0)
