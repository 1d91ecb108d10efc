"""Tests for benchmarks._sim_events: the simulated clock and its event heap."""

from __future__ import annotations

from benchmarks._sim_events import EventQueue


def drain(events: EventQueue) -> list[tuple[object, float]]:
    popped = []
    while (target := events.pop()) is not None:
        popped.append((target, events.now))
    return popped


def test_events_pop_in_time_order_and_ties_in_push_order():
    events = EventQueue()
    for delay, target in [(3.0, "c"), (1.0, "a1"), (2.0, "b"), (1.0, "a2"), (0.0, "now")]:
        events.push(delay, target)
    assert drain(events) == [("now", 0.0), ("a1", 1.0), ("a2", 1.0), ("b", 2.0), ("c", 3.0)]


def test_delays_count_from_the_current_time():
    events = EventQueue()
    events.push(2.0, "first")
    assert events.pop() == "first" and events.now == 2.0
    events.push(0.5, "second")
    assert drain(events) == [("second", 2.5)]


def test_cancel_drops_queued_events_only_and_does_not_move_the_clock():
    events = EventQueue()
    events.push(5.0, "stopped")
    events.push(1.0, "runs")
    events.cancel("stopped")
    assert drain(events) == [("runs", 1.0)]
    assert events.now == 1.0  # the cancelled event at 5.0 never advanced the clock
    events.push(1.0, "stopped")  # a trial resumed after a pause queues again
    assert drain(events) == [("stopped", 2.0)]
