"""Compose searchers, schedulers and cluster settings into experiments; run them; report Pareto fronts.

Example:
    >>> from orchestrator import load_experiment  # doctest: +SKIP
    >>> from orchestrator.run import run  # doctest: +SKIP
    >>> result = run(load_experiment("examples/digits.yaml"))  # doctest: +SKIP
    >>> result.pareto  # doctest: +SKIP

Names are imported on first use (PEP 562), so ``python -m orchestrator --help`` and spec
validation load neither Ray nor PyTorch; ``orchestrator.run`` (``run``, ``report``) starts Ray.
"""

from importlib import import_module
from typing import Any

_EXPORTS = {
    "Budget": "orchestrator.spec",
    "Experiment": "orchestrator.spec",
    "Objective": "orchestrator.spec",
    "Resources": "orchestrator.spec",
    "SchedulerSpec": "orchestrator.spec",
    "SpecError": "orchestrator.spec",
    "load_experiment": "orchestrator.spec",
    "save_experiment": "orchestrator.spec",
    "format_pareto_table": "orchestrator.results",
    "hypervolume": "orchestrator.results",
    "hypervolume_trace": "orchestrator.results",
    "load_results": "orchestrator.results",
    "pareto_front": "orchestrator.results",
    "save_results": "orchestrator.results",
    "export_pareto": "orchestrator.export",
    "load_checkpoint": "orchestrator.export",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
