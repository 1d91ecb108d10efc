"""Trial schedulers (early termination, pause/resume) for Ray Tune.

Ray's ``ASHAScheduler`` is used as it is. :class:`SynchronousHyperBand` fixes Ray's
``HyperBandScheduler``, whose first bracket never fills when trials are created one at a time.
Multi-objective promotion lands here later. This package never imports ``orchestrator``.
"""

from schedulers.hyperband import SynchronousHyperBand

__all__ = ["SynchronousHyperBand"]
