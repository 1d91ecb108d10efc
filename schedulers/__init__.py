"""Trial schedulers (early termination, pause/resume) for Ray Tune.

Ray's own ``ASHAScheduler`` and ``HyperBandScheduler`` are used as they are; this package adds
what Ray lacks (multi-objective promotion) as later work lands. It never imports ``orchestrator``.
"""

__all__: list[str] = []
