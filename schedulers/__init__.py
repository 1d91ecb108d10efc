"""Trial schedulers (early termination, pause/resume) for Ray Tune, and their catalogue by name.

Ray's schedulers take one metric. :class:`MultiObjectiveASHA` (stopping) and
:class:`MultiObjectivePromotionASHA` (pause and resume from checkpoints) rank the trials at a
rung by Pareto dominance; :class:`MultiObjectiveHyperBand` does the same in synchronous
HyperBand brackets. :class:`SynchronousHyperBand` fixes Ray's ``HyperBandScheduler``, whose first
bracket never fills when trials are created one at a time. :mod:`schedulers.catalogue` names
every scheduler with its defaults, for the experiment spec, the method catalogue and the
benchmarks alike. This
package never imports ``orchestrator``; names load on first use (PEP 562), so the catalogue is
read without importing Ray.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "DEFAULT_SCHEDULER": "schedulers.catalogue",
    "SchedulerConfig": "schedulers.catalogue",
    "describe_schedulers": "schedulers.catalogue",
    "scheduler_config": "schedulers.catalogue",
    "scheduler_names": "schedulers.catalogue",
    "SynchronousHyperBand": "schedulers.hyperband",
    "MultiObjectiveHyperBand": "schedulers.hyperband",
    "MultiObjectiveASHA": "schedulers.mo_asha",
    "MultiObjectivePromotionASHA": "schedulers.mo_asha",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'schedulers' has no attribute {name!r}")
