"""Multi-objective asynchronous successive halving (ASHA) for Ray Tune: stopping and promotion.

Ray's schedulers take one metric (a list crashes them). These take several: at each rung
(``time_attr`` = ``grace_period * reduction_factor**k``) the trials' recorded objective vectors
are ordered by Pareto dominance (:func:`multiobjective.ranking.pareto_scores`: non-dominated
front first; inside the front where the cut falls, largest exclusive hypervolume contribution
first), and the top ``1 / reduction_factor`` go on.

* :class:`MultiObjectiveASHA` stops trials, like Ray's ``ASHAScheduler``: a trial reaching a rung
  continues iff its score is at least the ``1 - 1/reduction_factor`` percentile of the scores the
  rung recorded before it (Ray's rule). With one objective the score is the value itself, so the
  decisions are Ray's ASHA's.
* :class:`MultiObjectivePromotionASHA` pauses instead (Li et al. 2020, "promotion" ASHA): a trial
  reaching a rung is paused unless it is already in the rung's top ``floor(n / reduction_factor)``;
  when a worker frees up, a paused trial that has entered its rung's top fraction is resumed from
  its checkpoint before any new trial starts.

Both stop a trial at once when a result is worse than one of ``objective_thresholds`` (give only
bounds that training cannot recover from, such as latency or size), and stop a trial whose
objectives are NaN at a rung. A result missing an objective is not used for a decision (Ray
skips a result missing its metric the same way).

Example:
    >>> scheduler = MultiObjectiveASHA(metric=["acc", "latency"], mode=["max", "min"], max_t=9)
    >>> scheduler.milestones
    [1, 3, 9]
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from ray.tune.experiment import Trial
from ray.tune.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler

from multiobjective import Objectives
from multiobjective.ranking import nondominated_fronts, pareto_scores

__all__ = ["MultiObjectiveASHA", "MultiObjectivePromotionASHA", "rung_milestones"]

logger = logging.getLogger(__name__)


def rung_milestones(grace_period: float, max_t: float, reduction_factor: float) -> list[float]:
    """``grace_period * reduction_factor**k`` for ``k = 0..K``, as Ray's ASHA places its rungs.

    ``K = int(log(max_t / grace_period) / log(reduction_factor))`` (Ray's formula), so ``max_t``
    itself is a rung only when it is such a power.

    Example:
        >>> rung_milestones(1, 52, 3)
        [1, 3, 9, 27]
    """
    count = int(np.log(max_t / grace_period) / np.log(reduction_factor) + 1)
    return [grace_period * reduction_factor**k for k in range(count)]


def _check(name: str, value: Any, low: float, *, strict: bool = True) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
        value > low if strict else value >= low
    ) or not math.isfinite(value):
        relation = ">" if strict else ">="
        raise ValueError(f"{name}: got {value!r}; pass a number {relation} {low}.")
    return value


class MultiObjectiveASHA(FIFOScheduler):
    """Asynchronous successive halving that ranks the trials at a rung by Pareto dominance.

    A trial reaching rung ``r`` with objective vector ``y`` continues iff
    ``score(y) >= percentile(scores of the rung's earlier trials, 100 * (1 - 1/reduction_factor))``,
    scores from :func:`multiobjective.ranking.pareto_scores` (the value itself with one objective).

    Args:
        time_attr: result key that counts training progress (must increase).
        metric: objective name or list of names (``None``: set later through Tune).
        mode: ``"max"``/``"min"``, one per objective.
        max_t: a trial is stopped when ``time_attr`` reaches it.
        grace_period: first rung; no trial is stopped before it.
        reduction_factor: ``eta``: rungs are ``eta`` apart and ``1/eta`` of the trials go on.
        objective_thresholds: ``{name: bound}``; a result worse than a bound stops the trial.

    Example:
        >>> scheduler = MultiObjectiveASHA(metric=["acc", "ms"], mode=["max", "min"], max_t=27,
        ...                                objective_thresholds={"ms": 5.0})
        >>> scheduler.objectives.names, scheduler.milestones
        (('acc', 'ms'), [1, 3, 9, 27])
    """

    def __init__(
        self,
        time_attr: str = "training_iteration",
        metric: str | Sequence[str] | None = None,
        mode: str | Sequence[str] | None = None,
        max_t: float = 100,
        grace_period: float = 1,
        reduction_factor: float = 3,
        objective_thresholds: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        self._max_t = _check("max_t", max_t, 0)
        self._grace_period = _check("grace_period", grace_period, 0)
        if grace_period > max_t:
            raise ValueError(f"grace_period: got {grace_period!r} > max_t={max_t!r}; pass grace_period <= max_t.")
        self._reduction_factor = _check("reduction_factor", reduction_factor, 1)
        self._time_attr = time_attr
        self._thresholds = dict(objective_thresholds or {})
        self._objectives: Objectives | None = None
        if metric is not None or mode is not None:
            self._set_objectives(metric, mode)
        self.milestones = rung_milestones(self._grace_period, self._max_t, self._reduction_factor)
        # rung k: {trial_id: objective vector in maximisation form}, as recorded when the trial got there
        self._rungs: list[dict[str, np.ndarray]] = [{} for _ in self.milestones]
        self._num_stopped = 0
        self._warned_missing: set[str] = set()

    # ------------------------------------------------------------------ objectives
    @property
    def objectives(self) -> Objectives | None:
        """The objectives ranked at each rung (``None`` until a metric is set)."""
        return self._objectives

    def _set_objectives(self, metric: Any, mode: Any) -> None:
        names = Objectives.from_spec(metric, mode).names
        unknown = sorted(set(self._thresholds) - set(names))
        if unknown:
            raise ValueError(
                f"objective_thresholds: got a bound for {unknown[0]!r}, which is not an objective "
                f"({', '.join(names)}); bound one of the objectives or drop it."
            )
        self._objectives = Objectives.from_spec(metric, mode, self._thresholds or None)

    def set_search_properties(self, metric: str | Sequence[str] | None, mode: str | Sequence[str] | None, **spec: Any) -> bool:
        if self._objectives is not None and metric:
            return False
        if metric:
            self._set_objectives(metric, mode)
        return True

    def on_trial_add(self, tune_controller: Any, trial: Trial) -> None:
        if self._objectives is None:
            raise ValueError(
                f"metric: {type(self).__name__} has no objectives; pass metric=[...] and mode=[...] "
                "when creating it (TuneConfig takes one metric only)."
            )

    def _vector(self, result: Mapping[str, Any]) -> np.ndarray | None:
        """The result's objectives in maximisation form (NaN where not a number); ``None`` if one is missing."""
        missing = [name for name in self._objectives.names if name not in result]
        if missing:
            if missing[0] not in self._warned_missing:
                self._warned_missing.add(missing[0])
                logger.warning(
                    "%s: a result has no %r; results without every objective are not ranked at rungs.",
                    type(self).__name__, missing[0],
                )
            return None
        values = []
        for name in self._objectives.names:
            try:
                values.append(float(result[name]))
            except (TypeError, ValueError):
                values.append(math.nan)
        return self._objectives.to_maximisation(np.array(values))

    def _past_threshold(self, vector: np.ndarray) -> bool:
        bounds = self._objectives.threshold_vector()
        return bool(np.any(np.isfinite(bounds) & (vector < bounds)))

    # ------------------------------------------------------------------ ranking
    def _scores(self, vectors: np.ndarray, cut_positions: Sequence[float]) -> np.ndarray:
        """Scores of the rows; fronts holding a best-first position in ``cut_positions`` are refined."""
        if vectors.shape[1] == 1:
            return vectors[:, 0].copy()
        fronts = nondominated_fronts(vectors)
        finite = np.sort(fronts[fronts >= 0])
        refine = {int(finite[int(p)]) for p in cut_positions if 0 <= int(p) < len(finite)}
        refine |= {int(finite[int(math.ceil(p))]) for p in cut_positions if 0 <= math.ceil(p) < len(finite)}
        return pareto_scores(vectors, refine=refine, fronts=fronts)

    def _continues(self, recorded: Mapping[str, np.ndarray], vector: np.ndarray) -> bool:
        """Ray's ASHA rule on scores: ``score >= percentile(earlier scores, 100 (1 - 1/eta))``."""
        if not np.isfinite(vector).all():
            return False
        if not recorded:
            return True
        quantile = 100 * (1 - 1 / self._reduction_factor)
        vectors = np.vstack([*recorded.values(), vector])
        earlier_finite = int(np.isfinite(vectors[:-1]).all(axis=1).sum())
        if earlier_finite == 0:
            return True
        # The cut lies at best-first position (1 - q) * (n_earlier - 1) among the earlier rows;
        # the newcomer may sit ahead of it, so refine the fronts around both neighbours.
        cut = (1 - quantile / 100) * (earlier_finite - 1)
        scores = self._scores(vectors, [cut, cut + 1])
        cutoff = np.nanpercentile(scores[:-1], quantile)
        return bool(scores[-1] >= cutoff)

    def _rung_to_record(self, trial_id: str, t: float) -> int | None:
        """Ray's walk over the rungs, highest first: the first one reached and not yet recorded."""
        for index in reversed(range(len(self.milestones))):
            if t < self.milestones[index] or trial_id in self._rungs[index]:
                continue
            return index
        return None

    # ------------------------------------------------------------------ Tune hooks
    def on_trial_result(self, tune_controller: Any, trial: Trial, result: dict) -> str:
        if self._time_attr not in result:
            return TrialScheduler.CONTINUE
        t = result[self._time_attr]
        if t >= self._max_t:
            self._num_stopped += 1
            return TrialScheduler.STOP
        vector = self._vector(result)
        if vector is None:
            return TrialScheduler.CONTINUE
        if t >= self._grace_period and self._past_threshold(vector):
            self._num_stopped += 1
            return TrialScheduler.STOP
        action = self._decide(tune_controller, trial, t, vector)
        if action == TrialScheduler.STOP:
            self._num_stopped += 1
        return action

    def _decide(self, tune_controller: Any, trial: Trial, t: float, vector: np.ndarray) -> str:
        rung = self._rung_to_record(trial.trial_id, t)
        if rung is None:
            return TrialScheduler.CONTINUE
        recorded = self._rungs[rung]
        action = TrialScheduler.CONTINUE if self._continues(recorded, vector) else TrialScheduler.STOP
        recorded[trial.trial_id] = vector
        return action

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        if self._time_attr not in result or self._objectives is None:
            return
        vector = self._vector(result)
        rung = self._rung_to_record(trial.trial_id, result[self._time_attr])
        if vector is not None and rung is not None:
            self._rungs[rung][trial.trial_id] = vector

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        pass  # what the trial recorded at its rungs stays: later trials are compared with it

    def debug_string(self) -> str:
        rungs = " | ".join(f"{milestone:g}: {len(recorded)}" for milestone, recorded in zip(self.milestones, self._rungs))
        return f"Using {type(self).__name__}: num_stopped={self._num_stopped}; trials recorded per rung {rungs}"

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__dict__, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__dict__.update(pickle.load(file))


class MultiObjectivePromotionASHA(MultiObjectiveASHA):
    """Promotion ASHA: pause at each rung, resume from the checkpoint once in the rung's top fraction.

    Trial ``i`` at rung ``r`` (``n_r`` trials recorded there) is *promotable* when fewer than
    ``floor(n_r / reduction_factor)`` recorded trials rank above it. A trial reaching a rung
    continues at once if promotable, else it is paused (Tune saves its checkpoint). When Tune asks
    what to run next, the promotable paused trial of the highest rung goes first, then pending
    trials. When nothing runs or waits and no paused trial is promotable (the searcher is done, or
    capped by a concurrency limit that counts paused trials), the lowest-ranked paused trial of the
    lowest rung is stopped; repeated, this ends the experiment, or frees a slot for a new trial.

    The trainable must report a checkpoint with its results (``orchestrator.trainable.report_epoch``
    does) and start from ``ray.tune.get_checkpoint()`` (``restore_from_checkpoint``), or a resumed
    trial starts over. Arguments are those of :class:`MultiObjectiveASHA`.

    Example:
        >>> scheduler = MultiObjectivePromotionASHA(metric=["acc", "ms"], mode=["max", "min"], max_t=9)
        >>> scheduler.pauses_trials
        True
    """

    pauses_trials = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._promoted: list[set[str]] = [set() for _ in self.milestones]
        self._paused_at: dict[str, int] = {}  # trial_id -> rung it waits at
        self._top_cache: dict[int, tuple[int, set[str]]] = {}
        self._num_paused = 0
        self._num_promoted = 0

    def _top_of_rung(self, rung: int) -> set[str]:
        """Trials of the rung with fewer than ``floor(n / eta)`` recorded trials ranked above them.

        Cached until the rung records another trial (rungs only grow).
        """
        recorded = self._rungs[rung]
        cached = self._top_cache.get(rung)
        if cached is not None and cached[0] == len(recorded):
            return cached[1]
        top = int(len(recorded) // self._reduction_factor)
        ids = list(recorded)
        chosen: set[str] = set()
        if top > 0:
            scores = self._scores(np.vstack([recorded[i] for i in ids]), [top - 1])
            finite = np.isfinite(scores)
            for index, trial_id in enumerate(ids):
                if finite[index] and int(np.sum(scores[finite] > scores[index])) < top:
                    chosen.add(trial_id)
        self._top_cache[rung] = (len(recorded), chosen)
        return chosen

    def _promotable(self, rung: int, trial_id: str) -> bool:
        return trial_id not in self._promoted[rung] and trial_id in self._top_of_rung(rung)

    def _decide(self, tune_controller: Any, trial: Trial, t: float, vector: np.ndarray) -> str:
        rung = self._rung_to_record(trial.trial_id, t)
        if rung is None:
            return TrialScheduler.CONTINUE
        self._rungs[rung][trial.trial_id] = vector
        if not np.isfinite(vector).all():
            return TrialScheduler.STOP
        if self._promotable(rung, trial.trial_id):
            self._promoted[rung].add(trial.trial_id)
            return TrialScheduler.CONTINUE
        self._paused_at[trial.trial_id] = rung
        self._num_paused += 1
        return TrialScheduler.PAUSE

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        trials = tune_controller.get_trials()
        if self._paused_at:
            paused = {trial.trial_id: trial for trial in trials if trial.status == Trial.PAUSED}
            # A trial whose pause Tune is still saving is RUNNING; any other status means it
            # was stopped or failed while it waited.
            saving = {trial.trial_id for trial in trials if trial.status == Trial.RUNNING}
            for trial_id in [i for i in self._paused_at if i not in paused and i not in saving]:
                del self._paused_at[trial_id]
            for rung in reversed(range(len(self.milestones))):
                for trial_id, at in list(self._paused_at.items()):
                    if at == rung and trial_id in paused and self._promotable(rung, trial_id):
                        self._promoted[rung].add(trial_id)
                        del self._paused_at[trial_id]
                        self._num_promoted += 1
                        return paused[trial_id]
        for trial in trials:
            if trial.status == Trial.PENDING:
                return trial
        if self._paused_at and not any(trial.status in (Trial.RUNNING, Trial.PENDING) for trial in trials):
            self._stop_worst_paused(tune_controller, trials)
        return None

    def _stop_worst_paused(self, tune_controller: Any, trials: Sequence[Trial]) -> None:
        by_id = {trial.trial_id: trial for trial in trials}
        lowest = min(self._paused_at.values())
        waiting = [i for i, at in self._paused_at.items() if at == lowest and i in by_id]
        recorded = self._rungs[lowest]
        ids = list(recorded)
        scores = self._scores(np.vstack([recorded[i] for i in ids]), [0])
        worst = min(waiting, key=lambda i: (np.nan_to_num(scores[ids.index(i)], nan=-np.inf), i))
        del self._paused_at[worst]
        logger.info("%s: nothing runs or waits; stopping paused trial %s (not promotable).", type(self).__name__, worst)
        tune_controller.stop_trial(by_id[worst])

    def on_trial_remove(self, tune_controller: Any, trial: Trial) -> None:
        self._paused_at.pop(trial.trial_id, None)

    def on_trial_complete(self, tune_controller: Any, trial: Trial, result: dict) -> None:
        self._paused_at.pop(trial.trial_id, None)
        super().on_trial_complete(tune_controller, trial, result)

    def debug_string(self) -> str:
        return (
            super().debug_string()
            + f"; paused {self._num_paused}, promoted {self._num_promoted}, waiting {len(self._paused_at)}"
        )
