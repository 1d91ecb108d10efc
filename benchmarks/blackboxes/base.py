"""The interface every benchmark blackbox implements: a search space, objectives and a fidelity.

A blackbox answers "what would training this configuration up to fidelity ``t`` have produced,
and what would it have cost?" without training anything. Finite tables (NMT) also expose their
pool of candidates and the true Pareto front among them; surrogates (YAHPO) do not.
See :mod:`benchmarks.blackboxes.nmthpo` and :mod:`benchmarks.blackboxes.yahpo`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from multiobjective import Objectives

FIDELITY_KINDS = ("epoch", "fraction")


@dataclass(frozen=True)
class Fidelity:
    """The resource axis along which a configuration can be evaluated partially.

    ``kind="epoch"`` fidelities take integer values ``min, min+1, ..., max``; ``kind="fraction"``
    fidelities take any real value in ``[min, max]`` (e.g. the fraction of training data).
    ``steps`` are the levels that schedulers should report at, in increasing order.

    Example:
        >>> Fidelity("epoch", 1, 52, "epoch", [float(t) for t in range(1, 53)]).clip(60)
        52.0
    """

    name: str
    min: float
    max: float
    kind: Literal["epoch", "fraction"]
    steps: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.kind not in FIDELITY_KINDS:
            raise ValueError(f"Fidelity kind={self.kind!r} is not supported; use one of {FIDELITY_KINDS}.")
        if not self.min <= self.max:
            raise ValueError(f"Fidelity min={self.min} must be <= max={self.max}.")
        steps = [float(step) for step in self.steps]
        if not steps:
            raise ValueError(f"Fidelity {self.name!r} needs at least one step in [{self.min}, {self.max}].")
        if steps != sorted(steps) or steps[0] < self.min or steps[-1] > self.max:
            raise ValueError(
                f"Fidelity steps={steps} must be increasing and lie in [min={self.min}, max={self.max}]."
            )
        object.__setattr__(self, "steps", steps)

    def validate(self, value: float) -> float:
        """Return ``value`` as a float after checking it lies on this fidelity's axis.

        Raises:
            ValueError: if ``value`` is outside ``[min, max]`` or, for epochs, not an integer.
        """
        value = float(value)
        if not self.min <= value <= self.max:
            raise ValueError(f"fidelity={value} is outside [{self.min}, {self.max}] for {self.name!r}.")
        if self.kind == "epoch" and value != round(value):
            raise ValueError(f"fidelity={value} must be a whole number of {self.name!r} steps.")
        return value

    def clip(self, value: float) -> float:
        """Clamp ``value`` into ``[min, max]`` (rounding to whole steps for epochs)."""
        value = min(max(float(value), self.min), self.max)
        return float(round(value)) if self.kind == "epoch" else value


def select_objectives(
    requested: str | Sequence[str] | Mapping[str, str] | None,
    known: Mapping[str, str],
    default: Sequence[str],
) -> Objectives:
    """Resolve a user's objective request into :class:`multiobjective.Objectives`.

    Args:
        requested: ``None`` for ``default``; names as a sequence or one comma-separated string
            (their modes come from ``known``); or a mapping ``name -> mode`` to override modes.
        known: every objective the blackbox can report, with its natural mode.
        default: the names used when ``requested`` is ``None``.

    Example:
        >>> select_objectives("bleu, decode_time", {"bleu": "max", "decode_time": "min"}, ["bleu"])
        Objectives({'bleu': 'max', 'decode_time': 'min'})
    """
    if requested is None:
        requested = list(default)
    if isinstance(requested, str):
        requested = [name.strip() for name in requested.split(",") if name.strip()]
    names = list(requested)
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ValueError(f"objective {unknown[0]!r} is not available; choose from {sorted(known)}.")
    if isinstance(requested, Mapping):
        return Objectives.from_spec(requested)
    return Objectives.from_spec(names, [known[name] for name in names])


class Blackbox(ABC):
    """A benchmark problem: evaluate configurations at a fidelity, at a simulated cost.

    Subclasses set ``name`` (the benchmark family, e.g. ``"nmthpo"``), ``instance`` (the task
    within it), ``objectives`` (:class:`multiobjective.Objectives`, a mapping
    ``{name: "max"|"min"}`` in order) and ``fidelity``
    (:class:`Fidelity` or ``None`` when only full evaluations exist).

    ``evaluate`` returns the objective values at that fidelity plus ``"cost"``: the simulated
    resource spent training from scratch up to that fidelity.
    """

    name: str
    instance: str
    objectives: Objectives
    fidelity: Fidelity | None

    @abstractmethod
    def search_space(self) -> dict[str, Any]:
        """Ray Tune search space (``tune.choice``/``tune.uniform``/... domains) over the configs."""

    @abstractmethod
    def evaluate(self, config: Mapping[str, Any], fidelity: float | None = None) -> dict[str, float]:
        """Objective values and ``"cost"`` for ``config`` at ``fidelity`` (``None``: full)."""

    @abstractmethod
    def features_of(self, config: Mapping[str, Any]) -> np.ndarray:
        """Map any configuration of the search space to a ``d``-vector in ``[0, 1]``."""

    def candidates(self) -> pd.DataFrame | None:
        """The finite pool of configurations (one row per candidate), or ``None`` for surrogates."""
        return None

    def candidate_features(self) -> np.ndarray | None:
        """``n x d`` array in ``[0, 1]``: ``features_of`` applied to each candidate, or ``None``."""
        return None

    def candidate_objectives(self) -> pd.DataFrame | None:
        """``n x m`` objective values of every candidate at full fidelity, or ``None``."""
        return None

    def evaluate_candidate(self, index: int, fidelity: float | None = None) -> dict[str, float]:
        """Like :meth:`evaluate` for the candidate in row ``index`` of :meth:`candidates`."""
        raise ValueError(f"{self!r} has no candidate pool; call evaluate(config) instead.")

    def known_pareto_indices(self) -> list[int] | None:
        """Candidate indices of the true Pareto front under ``objectives`` (finite pools only)."""
        return None

    def learning_curve(self, index: int) -> list[dict[str, float]] | None:
        """Per-step metrics of candidate ``index`` when recorded, else ``None``."""
        return None

    def objective_bounds(self) -> dict[str, tuple[float, float]] | None:
        """``{objective: (low, high)}`` used to normalise objectives to ``[0, 1]``, if known."""
        return None

    def full_fidelity(self, index: int | None = None) -> float | None:
        """Smallest fidelity at which candidate ``index`` (or any config) reports final values."""
        return None if self.fidelity is None else self.fidelity.max

    def intermediate_metric(self) -> tuple[str, str] | None:
        """``(name, mode)`` of a metric reported at every fidelity step, for early stopping.

        The default is the first objective, which surrogates report at any fidelity; tables
        that record fewer metrics at partial fidelities override this. ``None`` without a
        fidelity: there is nothing to stop early.
        """
        if self.fidelity is None:
            return None
        name, mode = next(iter(self.objectives.items()))
        return name, mode

    def intermediate_objectives(self) -> dict[str, str]:
        """``{name: mode}`` of the objectives reported at every fidelity step, for multi-objective
        early stopping: all of them for surrogates; tables that record fewer at partial fidelities
        override this."""
        return dict(self.objectives)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(instance={self.instance!r}, objectives={self.objectives})"
