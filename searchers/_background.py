"""One daemon thread that runs a searcher's model steps while Tune goes on with its event loop.

Tune calls ``Searcher.suggest`` on its event loop: while a model is fitted there, no result is
processed, no checkpoint is written and every free worker waits. A searcher that owns a
``BackgroundWorker`` does its model steps in ``step`` instead, woken by ``wake()`` whenever a
result arrives or a prepared suggestion is taken, so ``suggest`` only hands out what is ready.

``step`` runs in the worker thread only, one call at a time. An exception it raises is kept
and re-raised, wrapped, by the next ``raise_error()`` on the caller's thread, so a failing model
step surfaces in the Tune hook that follows it instead of vanishing in a thread.

Example:
    >>> calls = []
    >>> worker = BackgroundWorker(lambda: calls.append("step"), name="example")
    >>> worker.wake()
    >>> worker.wait_idle()
    True
    >>> calls
    ['step']
    >>> worker.stop()
"""

from __future__ import annotations

import atexit
import logging
import math
import threading
import weakref
from typing import Callable, Sequence

logger = logging.getLogger(__name__)

# Workers still alive at interpreter exit: a daemon thread killed inside PyTorch or Ax aborts
# the process (SIGABRT), so each one finishes its step first (seen at the end of Tune runs).
_LIVE_WORKERS: "weakref.WeakSet[BackgroundWorker]" = weakref.WeakSet()
_EXIT_TIMEOUT_S = 60.0


@atexit.register
def _stop_live_workers() -> None:
    for worker in list(_LIVE_WORKERS):
        worker.stop(timeout=_EXIT_TIMEOUT_S)


def largest_backlog(times: Sequence[float], seconds_each: float) -> int:
    """The most of ``times`` that one maker, ``seconds_each`` per item, could not have served in time.

    ``times`` (ascending) are when items were wanted, e.g. when trials ended and each needed a
    new suggestion. Over every span ``[t_i, t_j]``, ``j - i + 1`` items were wanted while the
    maker finished only ``floor((t_j - t_i) / seconds_each)``: the largest difference is how
    many must be ready beforehand for none to wait. Trials that end together need one each;
    trials that end one model step apart or more need one.

    Example:
        >>> largest_backlog([0.0, 0.1, 0.2, 5.0, 9.0, 9.5], seconds_each=1.0)
        3
        >>> largest_backlog([0.0, 0.1, 2.0, 2.1], seconds_each=1.2)  # two pairs, 2 s apart
        3
        >>> largest_backlog([0.0, 2.5, 5.0, 7.5], seconds_each=1.0)
        1
        >>> largest_backlog([], seconds_each=1.0)
        0
    """
    if not seconds_each > 0:
        raise ValueError(f"seconds_each={seconds_each!r}: expected seconds > 0")
    return max(
        (j - i + 1 - math.floor((times[j] - times[i]) / seconds_each) for i in range(len(times)) for j in range(i, len(times))),
        default=0,
    )


class BackgroundWorkerError(RuntimeError):
    """A model step that ran in the background failed."""


class BackgroundWorker:
    """Runs ``step()`` in a daemon thread each time it is woken (wakes while busy coalesce).

    Args:
        step: The work; it reads what it needs from its owner under the owner's lock.
        name: Thread name, shown in stack dumps.
    """

    def __init__(self, step: Callable[[], None], name: str) -> None:
        self._step = step
        self._name = name
        self._condition = threading.Condition()
        self._wanted = False
        self._running = False
        self._stopping = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def wake(self) -> None:
        """Ask for one more ``step()`` after the one running, if any (starts the thread)."""
        with self._condition:
            if self._stopping:
                return
            self._wanted = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
                self._thread.start()
                _LIVE_WORKERS.add(self)
            self._condition.notify_all()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no step runs or is wanted; ``False`` if ``timeout`` passed first."""
        with self._condition:
            return self._condition.wait_for(lambda: not (self._wanted or self._running), timeout)

    @property
    def busy(self) -> bool:
        with self._condition:
            return self._wanted or self._running

    @property
    def stopping(self) -> bool:
        """``stop()`` was called: a long step should return at its next safe point."""
        return self._stopping

    def raise_error(self) -> None:
        """Re-raise (once) the exception of a failed background step."""
        with self._condition:
            error, self._error = self._error, None
        if error is not None:
            raise BackgroundWorkerError(f"the background model step failed: {error!r}") from error

    def stop(self, timeout: float | None = None) -> None:
        """Let the running step finish (waiting at most ``timeout`` seconds) and end the thread."""
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
            thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        _LIVE_WORKERS.discard(self)

    def _loop(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._wanted or self._stopping)
                if self._stopping:
                    self._condition.notify_all()
                    return
                self._wanted = False
                self._running = True
            try:
                self._step()
            except BaseException as error:  # kept for the caller's thread; the thread lives on
                logger.warning("background model step failed: %r", error)
                with self._condition:
                    self._error = error
            finally:
                with self._condition:
                    self._running = False
                    self._condition.notify_all()
