"""Keeping a scheduler's rung records across a driver crash: Tune checkpoints searchers, not schedulers.

Ray Tune 2.60 saves the searcher and the callbacks with every experiment checkpoint and restores
them on ``Tuner.restore``, but never saves the scheduler: after ``--resume`` an ASHA scheduler
starts with empty rungs, so the first trials to reach each rung go on whatever they report
(checked on ray 2.60.0: ``TuneController.save_to_dir`` writes the search algorithm and
``CallbackList`` states only). :class:`SchedulerStateCallback` closes the gap through Tune's
public callback-state API: its state is the scheduler's own ``save`` output, restored into the
fresh scheduler of the resumed run with ``restore``.

Only schedulers whose state is keyed by trial id survive this (:data:`RESTORABLE`): Ray's
``AsyncHyperBandScheduler`` and our multi-objective ASHA schedulers. HyperBand and the median
rule key their state by ``Trial`` objects, which a restored experiment recreates.

Example:
    >>> from schedulers.mo_asha import MultiObjectiveASHA
    >>> keeper = SchedulerStateCallback(MultiObjectiveASHA(metric=["acc", "ms"], mode=["max", "min"]))
    >>> sorted(keeper.get_state())
    ['scheduler', 'type']
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.schedulers import AsyncHyperBandScheduler

from schedulers.mo_asha import MultiObjectiveASHA

__all__ = ["RESTORABLE", "SchedulerStateCallback", "keeps_state"]

RESTORABLE = (AsyncHyperBandScheduler, MultiObjectiveASHA)
"""Scheduler classes whose ``save``/``restore`` state is keyed by trial id (subclasses included)."""


def keeps_state(scheduler: Any) -> bool:
    """Whether :class:`SchedulerStateCallback` can carry ``scheduler`` across a restore."""
    return isinstance(scheduler, RESTORABLE)


class SchedulerStateCallback(Callback):
    """A Tune callback whose checkpointed state is the scheduler's ``save`` output.

    Add it last to ``RunConfig(callbacks=...)`` (Tune matches callback states by position) with
    the same scheduler object passed to ``TuneConfig``; on restore, the scheduler gets its rung
    records back before any trial reports.
    """

    def __init__(self, scheduler: Any) -> None:
        if not keeps_state(scheduler):
            raise ValueError(
                f"scheduler: got {type(scheduler).__name__}, whose state holds Trial objects; "
                f"only {', '.join(cls.__name__ for cls in RESTORABLE)} (and subclasses) can be kept."
            )
        self._scheduler = scheduler

    def get_state(self) -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="scheduler-state-") as directory:
            path = Path(directory) / "scheduler.pkl"
            self._scheduler.save(str(path))
            return {"type": type(self._scheduler).__qualname__, "scheduler": path.read_bytes()}

    def set_state(self, state: dict[str, Any]) -> None:
        if state.get("type") != type(self._scheduler).__qualname__:
            return  # another scheduler saved this: the spec check refuses such a resume earlier
        with tempfile.TemporaryDirectory(prefix="scheduler-state-") as directory:
            path = Path(directory) / "scheduler.pkl"
            path.write_bytes(state["scheduler"])
            self._scheduler.restore(str(path))
