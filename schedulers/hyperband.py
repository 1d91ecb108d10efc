"""Synchronous HyperBand whose brackets hold ``n0`` trials however many are alive at once.

Ray's ``HyperBandScheduler`` calls a bracket full when its *live* trials number ``n0``. A trial
that finishes (every trial of the ``s = 0`` bracket runs to ``max_t``) leaves the bracket, so
unless ``n0`` trials are alive at the same moment the bracket never fills: every new trial joins
it and nothing is ever stopped. That is the normal case under Tune with a ``Searcher``, which
suggests one trial ahead of the free workers, and with a concurrency-limited searcher. Measured
in the simulated cluster on YAHPO ``lcbench`` (``max_t = 52``, 4 workers), Ray's scheduler
stopped 0 of 200 trials.

:class:`SynchronousHyperBand` counts every trial a bracket has ever taken: bracket ``s`` takes
exactly ``n0(s)`` trials, and the next one opens the next bracket, as in Li et al. (2018).
Everything else (bracket sizes, milestones, pausing, halving) is Ray's.
:class:`MultiObjectiveHyperBand` keeps all of that and ranks a bracket's trials at each milestone
by Pareto dominance (the order :class:`schedulers.mo_asha.MultiObjectiveASHA` uses) instead of
one metric.

This module is the one place that reaches into Ray's HyperBand internals, checked on ray 2.60.0:
Ray has no public bracket API, so ``_CountingBracket`` subclasses the private ``_Bracket`` (its
``_all_trials`` and ``_n0``) and ``SynchronousHyperBand`` overrides the private
``_create_bracket`` hook; ``_ParetoBracket`` overrides the private ``successive_halving``. ``tests/schedulers/test_hyperband.py`` fails loudly, naming the missing
piece, when a Ray release renames any of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ray.tune.experiment import Trial
from ray.tune.schedulers.hyperband import HyperBandScheduler, _Bracket

from multiobjective import Objectives
from multiobjective.ranking import nondominated_fronts, pareto_scores

__all__ = ["MultiObjectiveHyperBand", "SynchronousHyperBand", "pareto_order"]


class _CountingBracket(_Bracket):
    """A ``_Bracket`` that is full once it has taken ``n0`` trials, finished ones included."""

    def filled(self) -> bool:
        return len(self._all_trials) >= self._n0


class SynchronousHyperBand(HyperBandScheduler):
    """Ray's synchronous HyperBand with brackets filled by trials taken, not trials alive.

    With ``s_max = round(log_eta(max_t))``, bracket ``s`` takes
    ``n0(s) = ceil((s_max + 1) / (s + 1) * eta^s)`` trials, runs them to
    ``r0(s) = floor(max_t * eta^-s)`` and keeps the best ``1/eta`` at each milestone
    (brackets with ``r0 = 0`` are skipped). Arguments are those of Ray's ``HyperBandScheduler``.

    Example:
        >>> scheduler = SynchronousHyperBand(metric="val_accuracy", mode="max", max_t=27)
        >>> [scheduler._get_n0(s) for s in range(4)], [scheduler._get_r0(s) for s in range(4)]
        ([4, 6, 12, 27], [27, 9, 3, 1])
    """

    @property
    def min_concurrent_trials(self) -> int:
        """Live trials a searcher must allow at once, or a bracket can wait forever.

        A bracket with ``s >= 1`` pauses its trials at the first milestone until all ``n0(s)`` of
        them got there; a searcher capped at fewer live trials (paused ones count) suggests
        nothing more, and the experiment stalls. This is the largest such ``n0(s)`` (1 if no
        bracket ever pauses).
        """
        pausing = [self._get_n0(s) for s in range(1, self._s_max_1) if self._get_r0(s) > 0]
        return max(pausing, default=1)

    def _create_bracket(self, s: int) -> _Bracket:
        return self._bracket_type(
            time_attr=self._time_attr,
            max_trials=self._get_n0(s),
            init_t_attr=self._get_r0(s),
            max_t_attr=self._max_t_attr,
            eta=self._eta,
            s=s,
            stop_last_trials=self._stop_last_trials,
            **self._bracket_options(),
        )

    _bracket_type: type = _CountingBracket

    def _bracket_options(self) -> dict[str, Any]:
        return {}


def pareto_order(objectives: Objectives, results: Sequence[Mapping[str, Any] | None], keep: int) -> list[int]:
    """Indices of ``results`` best first, by Pareto dominance, the front around position ``keep`` refined.

    A result missing an objective, or with a NaN, goes last. With one objective the order is
    that of the value (ties keep their order).

    Example:
        >>> objectives = Objectives.from_spec(["acc", "ms"], ["max", "min"])
        >>> pareto_order(objectives, [{"acc": 0.5, "ms": 9}, {"acc": 0.9, "ms": 1}, None], keep=1)
        [1, 0, 2]
    """
    rows = []
    for result in results:
        try:
            rows.append([float(result[name]) for name in objectives.names])
        except (KeyError, TypeError, ValueError):
            rows.append([np.nan] * len(objectives))
    vectors = objectives.to_maximisation(np.array(rows, dtype=float).reshape(len(rows), len(objectives)))
    if len(objectives) == 1:
        scores = vectors[:, 0]
    else:
        fronts = nondominated_fronts(vectors)
        ordered = np.sort(fronts[fronts >= 0])
        refine = {int(ordered[p]) for p in (keep - 1, keep) if 0 <= p < len(ordered)}
        scores = pareto_scores(vectors, refine=refine, fronts=fronts)
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    return sorted(range(len(rows)), key=lambda i: -scores[i])


class _ParetoBracket(_CountingBracket):
    """A counting bracket whose successive halving keeps the best ``n / eta`` by Pareto dominance."""

    def __init__(self, *args: Any, objectives: Objectives, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.objectives = objectives

    def successive_halving(self, metric: str, metric_op: float) -> tuple[list[Trial], list[Trial]]:
        # Ray's bookkeeping (halves, n, r) and its split sizes; the order is ours.
        good, bad = super().successive_halving(metric, metric_op)
        trials = list(self._live_trials)
        order = pareto_order(self.objectives, [self._live_trials[t] for t in trials], keep=len(good))
        ranked = [trials[i] for i in order]
        return ranked[: len(good)], ranked[len(good):]


class MultiObjectiveHyperBand(SynchronousHyperBand):
    """Synchronous HyperBand whose milestones keep the top ``1/eta`` of a bracket by Pareto dominance.

    Brackets, milestones and pausing are :class:`SynchronousHyperBand`'s; at each milestone the
    bracket's trials are ordered by :func:`pareto_order` (non-dominated front first, exclusive
    hypervolume contribution inside the front where the cut falls). Paused trials resume from
    their checkpoints. ``metric``/``mode`` take lists; other arguments are Ray's.

    Example:
        >>> scheduler = MultiObjectiveHyperBand(metric=["acc", "ms"], mode=["max", "min"], max_t=27)
        >>> scheduler.objectives.names
        ('acc', 'ms')
    """

    pauses_trials = True
    _bracket_type = _ParetoBracket

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | Sequence[str] | None = None,
        mode: str | Sequence[str] | None = None,
        max_t: int = 81,
        reduction_factor: float = 3,
        stop_last_trials: bool = True,
    ) -> None:
        self.objectives: Objectives | None = None
        super().__init__(time_attr=time_attr, max_t=max_t, reduction_factor=reduction_factor,
                         stop_last_trials=stop_last_trials)
        if metric is not None:
            self.set_search_properties(metric, mode)

    def set_search_properties(self, metric: Any, mode: Any, **spec: Any) -> bool:
        if self.objectives is not None and metric:
            return False
        if metric:
            self.objectives = Objectives.from_spec(metric, mode)
            # Ray's checks want one metric and a sign; the ranking uses every objective.
            return super().set_search_properties(self.objectives.names[0], self.objectives.modes[0])
        return True

    def _bracket_options(self) -> dict[str, Any]:
        return {"objectives": self.objectives}
