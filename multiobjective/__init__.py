"""Objectives and Pareto maths shared by every layer: searchers, schedulers, the orchestrator and the benchmarks.

:class:`Objectives` is the one type objectives travel in (names, directions, thresholds);
:mod:`multiobjective.pareto` computes non-dominated sets, hypervolumes and the default reference
point, once, on BoTorch's ``is_non_dominated`` and ``DominatedPartitioning``. This package imports
none of the project's other packages, and PyTorch only when a Pareto function first runs, so
checking objectives stays light.

Example:
    >>> import numpy as np
    >>> objectives = Objectives.from_spec(["acc", "latency"], ["max", "min"])
    >>> values = objectives.to_maximisation(np.array([[0.9, 3.0], [0.8, 1.0], [0.7, 2.0]]))
    >>> pareto_mask(values).tolist()
    [True, True, False]
"""

from multiobjective.objectives import MODES, ObjectiveError, Objectives, finite_or_none, normalise_mode
from multiobjective.pareto import (
    REFERENCE_POINT_MARGIN,
    hypervolume,
    hypervolume_2d_batch,
    hypervolume_trace,
    pareto_mask,
    reference_point,
)

__all__ = [
    "MODES",
    "REFERENCE_POINT_MARGIN",
    "ObjectiveError",
    "Objectives",
    "finite_or_none",
    "hypervolume",
    "hypervolume_2d_batch",
    "hypervolume_trace",
    "normalise_mode",
    "pareto_mask",
    "reference_point",
]
