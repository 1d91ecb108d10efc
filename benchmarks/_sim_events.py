"""The simulated clock of the simulated cluster and its heap of future events.

Like Syne Tune's ``syne_tune/backend/simulator_backend/events.py``, the event heap lives in a
module of its own: the cluster pushes "target reports at time t" and pops the earliest one,
which moves the clock forward. A trial stopped or paused from outside still has its next step
queued; instead of searching the heap for it, ``cancel(target)`` bumps the target's token and
the stale event is skipped when it surfaces.
"""

from __future__ import annotations

import heapq
from collections.abc import Hashable

__all__ = ["EventQueue"]


class EventQueue:
    """Future events ``(time, target)`` in time order, and the clock ``now`` they advance.

    ``push(delay, target)`` queues ``target`` at ``now + delay``; ``pop()`` returns the target of
    the earliest event still valid and sets ``now`` to its time (equal times: push order).
    ``cancel(target)`` invalidates every event queued for ``target`` so far.

    Example:
        >>> events = EventQueue()
        >>> events.push(2.0, "a"); events.push(1.0, "b"); events.push(1.0, "c")
        >>> events.cancel("b")
        >>> events.pop(), events.now
        ('c', 1.0)
        >>> events.pop(), events.now
        ('a', 2.0)
        >>> events.pop() is None
        True
    """

    __slots__ = ("now", "_heap", "_pushed", "_tokens")

    def __init__(self) -> None:
        self.now = 0.0
        # (time, push number, target, target's token at push); the push number breaks ties in
        # push order, so targets themselves are never compared.
        self._heap: list[tuple[float, int, Hashable, int]] = []
        self._pushed = 0
        self._tokens: dict[Hashable, int] = {}

    def push(self, delay: float, target: Hashable) -> None:
        """Queues ``target`` at ``now + delay`` (``delay >= 0``)."""
        self._pushed += 1
        heapq.heappush(self._heap, (self.now + delay, self._pushed, target, self._tokens.get(target, 0)))

    def cancel(self, target: Hashable) -> None:
        """Invalidates the events already queued for ``target``; later pushes are valid again."""
        self._tokens[target] = self._tokens.get(target, 0) + 1

    def pop(self) -> Hashable | None:
        """Target of the earliest valid event, with ``now`` moved to its time; ``None`` when none is left."""
        while self._heap:
            time, _, target, token = heapq.heappop(self._heap)
            if token == self._tokens.get(target, 0):
                self.now = time
                return target
        return None
