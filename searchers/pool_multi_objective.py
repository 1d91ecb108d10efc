"""Multi-objective Bayesian optimisation over a finite pool of candidates.

For users who choose among a fixed list of options (architectures, pretrained models, rows of a
table of configurations) rather than a continuous search space: every suggestion is one of the
candidates, never evaluated twice. One Gaussian process per objective is fitted on the
candidates' feature vectors (by default to the normal scores of the objective's ranks, which keeps
the Pareto set and tames diverged runs) and the unevaluated candidates are ranked by the
probability that they are Pareto-optimal in the pool (by default: the goal is every
Pareto-optimal candidate, near-ties included) or by BoTorch's
``qLogNoisyExpectedHypervolumeImprovement`` (``acquisition="hypervolume"``).

The searcher also speaks the benchmark simulator's pool protocol (``set_candidates``, the
``"__candidate_index__"`` key in suggested configs).
"""

from __future__ import annotations

import logging
import math
import numbers
import pickle
import threading
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from botorch.acquisition.logei import qLogNoisyExpectedImprovement
from botorch.acquisition.multi_objective.logei import (
    qLogNoisyExpectedHypervolumeImprovement,
)
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from botorch.models.transforms.outcome import Standardize
from botorch.sampling import SobolQMCNormalSampler
from botorch.utils.multi_objective.box_decompositions.non_dominated import FastNondominatedPartitioning
from botorch.utils.multi_objective.pareto import is_non_dominated
from gpytorch.mlls import ExactMarginalLogLikelihood
from ray.tune.search import Searcher

from multiobjective import ObjectiveError, Objectives, reference_point
from searchers._background import BackgroundWorker
from searchers._threads import torch_thread_limit
from searchers._pool_encoding import encode_candidates, rank_normal_scores

__all__ = [
    "CANDIDATE_INDEX_KEY",
    "PoolMultiObjectiveSearch",
    "encode_candidates",
    "log_prob_non_dominated",
    "prob_non_dominated_by_others",
    "rank_normal_scores",
]

logger = logging.getLogger(__name__)

CANDIDATE_INDEX_KEY = "__candidate_index__"
"""Key of the suggested config holding the candidate's row position in the pool."""

OBJECTIVE_TRANSFORMS = ("rank", "none")
ACQUISITIONS = ("hypervolume", "pareto", "pareto+hypervolume")
_MC_SAMPLES = 128
# Above this many unevaluated candidates, "pareto" draws each candidate's value on its own
# (marginal posterior) instead of jointly: the joint draw needs an n x n Cholesky factor.
_JOINT_DRAW_LIMIT = 1500
_SCORING_BATCH = 512
_MIN_TRAINING_POINTS = 2
_POLL_S = 0.005  # how often a waiting suggest looks whether the worker's choice is ready
# GP hyperparameters are fitted (from their defaults) once the data has grown by a tenth since the
# last fit, at least 1 and at most FULL_REFIT_EVERY results; in between, the model conditions on
# the new results with the last fit's hyperparameters. A fit costs 1-5 s on two busy cores (about
# 90 L-BFGS evaluations), conditioning a few milliseconds.
FULL_REFIT_EVERY = 8


def next_fit_size(fitted_size: int) -> int:
    """The number of results at which hyperparameters are fitted again after a fit on ``fitted_size``."""
    return fitted_size + min(FULL_REFIT_EVERY, max(1, fitted_size // 10))


def _fit_is_due(fitted: tuple[tuple[int, ...], dict, int] | None, key: tuple[int, ...]) -> bool:
    """Whether hyperparameters are fitted for training set ``key``, given the model cache ``fitted``."""
    return fitted is None or len(key) >= next_fit_size(fitted[2]) or not set(fitted[0]) <= set(key)


def _pool(candidates: Any, features: Any) -> tuple[pd.DataFrame, np.ndarray]:
    if isinstance(candidates, pd.DataFrame):
        table = candidates.reset_index(drop=True)
    elif isinstance(candidates, Sequence) and all(isinstance(row, dict) for row in candidates):
        table = pd.DataFrame(list(candidates))
    else:
        raise ValueError(
            f"candidates={type(candidates).__name__}: expected a pandas.DataFrame or a list of "
            "dicts, one per candidate"
        )
    if len(table) == 0:
        raise ValueError("candidates is empty; give at least one candidate")
    if not all(isinstance(name, str) for name in table.columns):
        raise ValueError(f"candidates columns {list(table.columns)!r} must all be strings")
    if features is None:
        return table, encode_candidates(table)
    matrix = np.asarray(features, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] != len(table):
        raise ValueError(
            f"features has shape {matrix.shape} but candidates has {len(table)} rows; pass an "
            "n x d array with one row per candidate, or features=None to derive it"
        )
    if not np.all(np.isfinite(matrix)):
        rows = np.flatnonzero(~np.isfinite(matrix).all(axis=1))[:5].tolist()
        raise ValueError(f"features has NaN or infinite values (rows {rows}); fill or drop them")
    if matrix.size and (matrix.min() < -1e-6 or matrix.max() > 1 + 1e-6):
        raise ValueError(
            f"features span [{matrix.min():g}, {matrix.max():g}] but must lie in [0, 1]; "
            "min-max scale them or pass features=None to derive them from candidates"
        )
    return table, np.clip(matrix, 0.0, 1.0)


def non_dominated(values: torch.Tensor) -> torch.Tensor:
    """``batch x n x m`` values (maximised) to a ``batch x n`` mask of the non-dominated ones.

    Two objectives take a sort and a running maximum (``O(n log n)`` per batch, where BoTorch's
    ``is_non_dominated`` compares all pairs): sorted by the first value, then the second, both
    descending, a point is dominated when one before it has a second value at least as large.
    Of exact duplicates only the first in that order is kept. More objectives use
    ``is_non_dominated``.
    """
    if values.shape[-1] != 2:
        return is_non_dominated(values, deduplicate=True)
    by_second = values[..., 1].argsort(dim=-1, descending=True, stable=True)
    first = values[..., 0].gather(-1, by_second)
    order = by_second.gather(-1, first.argsort(dim=-1, descending=True, stable=True))
    second = values[..., 1].gather(-1, order)
    best_before = torch.cat(
        [torch.full_like(second[..., :1], -math.inf), second.cummax(dim=-1).values[..., :-1]], dim=-1
    )
    return torch.empty_like(second, dtype=torch.bool).scatter_(-1, order, second > best_before)


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """``log(1 - exp(x))`` for ``x <= 0``, accurate at both ends (Maechler, 2012)."""
    return torch.where(x > -math.log(2.0), torch.log(-torch.expm1(x)), torch.log1p(-torch.exp(x)))


def _log_interval_probability(lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """``log(Phi(upper) - Phi(lower))`` for standardised bounds ``lower <= upper``, in either tail."""
    log_ndtr = torch.special.log_ndtr
    below = log_ndtr(upper) + _log1mexp((log_ndtr(lower) - log_ndtr(upper)).clamp_max(0.0))
    above = log_ndtr(-lower) + _log1mexp((log_ndtr(-upper) - log_ndtr(-lower)).clamp_max(0.0))
    return torch.where(lower >= 0, above, below)


def log_prob_non_dominated(mean: torch.Tensor, sd: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """log P(a point is dominated by none of ``values``), its objectives independent normals.

    ``mean`` and ``sd`` are ``n x m`` (one row per point), ``values`` is ``k x m``; all in
    maximisation form. The region nothing in ``values`` dominates is split into boxes by
    BoTorch's ``FastNondominatedPartitioning``; the probability of each box is a product of
    normal interval probabilities, summed in log space, so that points far behind the front
    still rank by how far. The boxes start at a reference point 50 standard deviations below
    every mean and value, which leaves out a probability below ``Phi(-50)``. With one
    objective it is the log-probability of beating the best value.

    Example:
        >>> front = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.double)
        >>> mean = torch.tensor([[0.5, 0.5], [-2.0, -2.0]], dtype=torch.double)
        >>> log_p = log_prob_non_dominated(mean, torch.full_like(mean, 0.5), front)
        >>> [round(v, 3) for v in log_p.exp().tolist()], [round(v, 1) for v in log_p.tolist()]
        ([0.758, 0.0], [-0.3, -19.6])
    """
    sd = sd.clamp_min(1e-12)
    if values.shape[-1] == 1:  # beating the best value
        return torch.special.log_ndtr((mean - values.max()) / sd).squeeze(-1)
    floor = torch.minimum((mean - 50.0 * sd).min(dim=0).values, values.min(dim=0).values) - 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cells = FastNondominatedPartitioning(ref_point=floor, Y=values).get_hypercell_bounds()
    lower = (cells[0].unsqueeze(0) - mean.unsqueeze(1)) / sd.unsqueeze(1)  # n x cells x m
    upper = (cells[1].unsqueeze(0) - mean.unsqueeze(1)) / sd.unsqueeze(1)
    return torch.logsumexp(_log_interval_probability(lower, upper).sum(dim=-1), dim=-1)


def _first_two_fronts(points: torch.Tensor) -> torch.Tensor:
    """``batch x n x 2`` values (maximised) to a mask of the points on the first two fronts.

    A point off them is dominated by at least two others, so leaving out any one point never
    puts it on the front: the two fronts decide every leave-one-out front.
    """
    first = non_dominated(points)
    rest = points.masked_fill(first.unsqueeze(-1), -math.inf)
    return first | (non_dominated(rest) & torch.isfinite(rest).all(dim=-1))


def prob_non_dominated_by_others(
    draws: torch.Tensor,
    conditional_mean: torch.Tensor,
    conditional_sd: torch.Tensor,
    observed: torch.Tensor,
    num_scored: int,
    chunk: int = 64,
) -> torch.Tensor:
    r"""Rao-Blackwellised P(candidate is Pareto-optimal), two objectives.

    ``P_i = mean_s P(y_i is dominated by none of observed, y^s_{-i} | y^s_{-i})``: in each joint
    draw ``s`` every other candidate keeps its drawn value and candidate ``i`` keeps its whole
    conditional normal distribution given them (``conditional_mean``, ``conditional_sd``),
    instead of the 0/1 count of its own draw. Same expectation as the count, smaller variance,
    and no ties at 0 once most candidates are rarely Pareto in a draw. The region the others
    dominate is a staircase; its probability is a sum over strips of the first objective.

    Args:
        draws: ``S x n x 2`` joint posterior draws of the unevaluated candidates (maximised).
        conditional_mean, conditional_sd: ``S x n x 2``, each candidate's distribution given
            the others' values in the same draw.
        observed: ``k x 2`` observed results (maximised).
        num_scored: the first ``num_scored`` candidates are scored; the rest only compete.
        chunk: candidates handled at once (memory: ``S x chunk x`` the two fronts' size).

    Returns:
        ``num_scored`` probabilities.

    Example:
        >>> observed = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.double)
        >>> draws = torch.tensor([[[0.5, 0.5], [-3.0, -3.0]]], dtype=torch.double)  # one draw
        >>> sd = torch.full_like(draws, 1e-6)
        >>> prob_non_dominated_by_others(draws, draws, sd, observed, 2).tolist()
        [1.0, 0.0]
    """
    samples = draws.shape[0]
    points = torch.cat([observed.expand(samples, *observed.shape), draws], dim=-2)
    keep = _first_two_fronts(points)
    width = int(keep.sum(dim=-1).max())
    # The two fronts of each draw, by the first objective descending, padded with -inf points.
    first_all = points[..., 0].masked_fill(~keep, -math.inf)
    order = first_all.argsort(dim=-1, descending=True, stable=True)[:, :width]
    first = first_all.gather(-1, order)
    second = points[..., 1].masked_fill(~keep, -math.inf).gather(-1, order)
    ndtr = torch.special.ndtr
    result = []
    for start in range(0, num_scored, chunk):
        rows = torch.arange(start, min(start + chunk, num_scored))
        itself = order.unsqueeze(1) == (observed.shape[0] + rows).view(1, -1, 1)  # S x b x width
        # Best second value among the other points whose first value is at least each breakpoint.
        reach = second.unsqueeze(1).masked_fill(itself, -math.inf).cummax(dim=-1).values
        mean = conditional_mean[:, rows].unsqueeze(-2)  # S x b x 1 x 2
        sd = conditional_sd[:, rows].unsqueeze(-2)
        below = ndtr((first.unsqueeze(1) - mean[..., 0]) / sd[..., 0])  # P(y_i1 <= breakpoint)
        strips = below - torch.cat([below[..., 1:], torch.zeros_like(below[..., :1])], dim=-1)
        beyond = ndtr((mean[..., 0] - first[:, None, :1]) / sd[..., 0]).squeeze(-1)  # past every first value
        escape = (strips.clamp_min(0.0) * ndtr((mean[..., 1] - reach) / sd[..., 1])).sum(dim=-1)
        result.append((beyond + escape).clamp(0.0, 1.0).mean(dim=0))
    return torch.cat(result) if result else torch.zeros(0, dtype=draws.dtype)


def _conditionals(model: Any, x: torch.Tensor, draws: torch.Tensor, joint: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Each candidate's normal distribution given the others' drawn values (``S x n x m`` each).

    Joint draws: Gaussian conditioning through the precision matrix ``P`` of each objective's
    posterior, ``mean_i - (P (y - mean))_i / P_ii`` and variance ``1 / P_ii``. Marginal draws
    are independent, so the conditional is the marginal.
    """
    means, sds = [], []
    for output in range(draws.shape[-1]):
        with torch.no_grad():
            posterior = model.subset_output([output]).posterior(x if joint else x.unsqueeze(1))
        mean = posterior.mean.detach().reshape(-1)
        if not joint:
            means.append(mean.expand(draws.shape[:-1]))
            sds.append(posterior.variance.detach().reshape(-1).clamp_min(1e-18).sqrt().expand(draws.shape[:-1]))
            continue
        covariance = posterior.distribution.covariance_matrix.detach()
        scale = max(float(covariance.diagonal().mean()), 1e-12)
        for jitter in (1e-9, 1e-7, 1e-5, 1e-3):  # near-duplicate candidates make it near singular
            factor, info = torch.linalg.cholesky_ex(
                covariance + jitter * scale * torch.eye(len(mean), dtype=covariance.dtype)
            )
            if int(info) == 0:
                break
        else:
            raise RuntimeError("the posterior covariance of the candidates is not positive definite")
        precision = torch.cholesky_inverse(factor)
        diagonal = precision.diagonal()
        drawn = draws[..., output]
        means.append(drawn - ((drawn - mean) @ precision) / diagonal)
        sds.append(diagonal.rsqrt().expand_as(drawn))
    return torch.stack(means, dim=-1), torch.stack(sds, dim=-1)


def _hyperparameters(state: dict) -> dict:
    """A GP's state without its outcome transform, whose buffers are the training data's scale."""
    return {name: value for name, value in state.items() if not name.startswith("outcome_transform.")}


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _python_value(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


class PoolMultiObjectiveSearch(Searcher):
    r"""Pick the next candidate of a finite pool: the one most likely to be Pareto-optimal.

    ``next = argmax_{x in pool \ (evaluated or pending)} P(x is Pareto-optimal in the pool)``
    under one independent GP per objective on the features (a multi-output ``SingleTaskGP``),
    fitted (by default) to the rank-normal scores of the results with ``min`` objectives
    negated. With ``acquisition="hypervolume"`` it is
    ``argmax qLogNEHVI(x | GP_1..GP_m, X_pending)`` instead, with the reference point at the
    worst modelled value minus 10% of the modelled range, so that the extremes of the front also
    add hypervolume. Hyperparameters are refitted as the data grows by a tenth (at least every
    ``FULL_REFIT_EVERY`` results); in between the GP conditions on the new results.

    The first ``num_initial`` suggestions are drawn at random (seeded); afterwards the model
    decides once at least two results are in (with several workers, pending candidates are
    passed as ``X_pending`` so concurrent suggestions spread out). A failed trial, or one whose
    result lacks a metric or has a non-finite value, is never suggested again and is not used
    for fitting. ``on_trial_result`` is ignored: only final results count. Suggested configs are
    rows of the pool plus ``"__candidate_index__"`` (the row position), which Tune passes on to
    the trainable.

    Args:
        candidates: The pool, one row (or dict) per candidate; ``None`` to set it later with
            ``set_candidates``.
        features: ``n x d`` array in ``[0, 1]`` describing the candidates; ``None`` derives it
            with ``encode_candidates``.
        metric: Name(s) of the objective(s) reported by the trainable, or an
            ``multiobjective.Objectives`` (then no ``mode``).
        mode: ``"max"`` or ``"min"`` per metric.
        num_initial: Number of random suggestions before the model takes over.
        seed: Seed for the random phase and the Monte-Carlo acquisition.
        max_concurrent: Maximum number of pending candidates; ``None`` for no limit.
        objective_transform: ``"rank"`` models each objective through the normal scores of its
            observed ranks (``rank_normal_scores``, the copula transform of Salinas et al., 2020):
            dominance, hence the Pareto set, is unchanged, while diverged trainings and skewed
            metrics such as latency no longer dominate the GP fit. ``"none"`` models the raw
            values (standardised).
        background: Prepare the next model-based choice in a background thread (the default)
            while trials run, with the running trials as pending points, so ``suggest``
            answers at once; a prepared choice is used only if its candidate is still free and
            fewer than ``refresh_after`` results arrived since it was made (otherwise ``suggest``
            computes anew). The worker makes its choice before fitting hyperparameters that are
            due, from the last fitted ones conditioned on every result, and fits after it; a
            ``suggest`` that finds nothing prepared while the worker fits conditions likewise
            (milliseconds) instead of waiting seconds for the fit. Which results and
            hyperparameters a choice saw then depends on timing: seeded runs repeat exactly only
            with ``background=False`` (the reproducible mode), which fits before choosing.
        refresh_after: See ``background``; ``None``: ``max(2, max_concurrent)``.
        acquisition: What ranks the unevaluated candidates once the model decides.
            ``"pareto"`` (default): the probability that the candidate is Pareto-optimal in the
            whole pool (for one objective: that it is the best), estimated from joint posterior
            draws of every unevaluated candidate (pending ones included) set against the
            observed results; with two objectives each draw contributes the candidate's exact
            probability given the other candidates' drawn values (Rao-Blackwellised: less
            noise, no ties late in a run). Choosing the most probable one maximises the expected number of
            Pareto-optimal candidates found per trial, near-ties included, which add almost no
            hypervolume. ``"hypervolume"``: ``qLogNEHVI``, the hypervolume the candidate is
            expected to add (``qLogNEI`` for one objective), which reaches the extremes of the
            front sooner. ``"pareto+hypervolume"``: the two in turn. Measured against each other in
            ``benchmarks/results/mobo/README.md``.

    Example:
        >>> pool = [{"layers": l, "width": w} for l in (2, 4, 6) for w in (256, 512)]
        >>> searcher = PoolMultiObjectiveSearch(
        ...     pool, metric=["accuracy", "latency"], mode=["max", "min"], num_initial=2, seed=0
        ... )
        >>> config = searcher.suggest("trial_1")
        >>> searcher.on_trial_complete("trial_1", {"accuracy": 0.9, "latency": 3.0})
    """

    def __init__(
        self,
        candidates: pd.DataFrame | list[dict] | None = None,
        features: np.ndarray | None = None,
        metric: str | list[str] | Objectives | None = None,
        mode: str | list[str] | None = None,
        num_initial: int = 10,
        seed: int | None = None,
        max_concurrent: int | None = None,
        objective_transform: str = "rank",
        background: bool = True,
        refresh_after: int | None = None,
        acquisition: str = "pareto",
    ) -> None:
        objectives = Objectives.optional(metric, mode)
        if not _is_integer(num_initial) or num_initial < 1:
            raise ValueError(f"num_initial={num_initial!r}: expected an integer >= 1")
        if seed is not None and not _is_integer(seed):
            raise ValueError(f"seed={seed!r}: expected an integer or None")
        self._check_max_concurrent(max_concurrent)
        if objective_transform not in OBJECTIVE_TRANSFORMS:
            raise ValueError(
                f"objective_transform={objective_transform!r}: expected one of {OBJECTIVE_TRANSFORMS}"
            )
        if acquisition not in ACQUISITIONS:
            raise ValueError(f"acquisition={acquisition!r}: expected one of {ACQUISITIONS}")
        if refresh_after is not None and (not _is_integer(refresh_after) or refresh_after < 1):
            raise ValueError(f"refresh_after={refresh_after!r}: expected an integer >= 1 or None")
        if candidates is None and features is not None:
            raise ValueError("features was given without candidates; pass both")
        super().__init__()
        self._set_objectives(objectives)
        self._candidates: pd.DataFrame | None = None
        self._features: np.ndarray | None = None
        if candidates is not None:
            self._candidates, self._features = _pool(candidates, features)
        self._num_initial = int(num_initial)
        self._seed = None if seed is None else int(seed)
        # Without a seed, one is drawn once so that save/restore still replays the same choices.
        self._model_seed = (
            self._seed if seed is not None else int(np.random.SeedSequence().entropy % 2**31)
        )
        self._max_concurrent = None if max_concurrent is None else int(max_concurrent)
        self._objective_transform = objective_transform
        self._acquisition_name = acquisition
        self._rng = np.random.default_rng(seed)
        self._pending: dict[str, int] = {}
        self._observations: dict[int, list[float]] = {}
        self._failed: set[int] = set()
        self._num_suggested = 0
        # (training indices, state_dict, training size at the last hyperparameter fit)
        self._fitted: tuple[tuple[int, ...], dict, int] | None = None
        if not isinstance(background, bool):
            raise ValueError(f"background={background!r}: expected True or False")
        self._background = background
        self._refresh_after = refresh_after
        self._start_background()

    def _start_background(self) -> None:
        self._lock = threading.Lock()  # guards _prepared, _fitting and the model cache _fitted
        # (candidate index, results it saw, suggestions made before it) from the worker
        self._prepared: tuple[int, int, int] | None = None
        self._fitting = False  # the worker is fitting hyperparameters (after preparing its choice)
        self._worker = BackgroundWorker(self._prepare, "PoolMultiObjectiveSearch-suggest") if self._background else None

    @staticmethod
    def _check_max_concurrent(max_concurrent: Any) -> None:
        if max_concurrent is None:
            return
        if not _is_integer(max_concurrent) or max_concurrent < 1:
            raise ValueError(f"max_concurrent={max_concurrent!r}: expected an integer >= 1 or None")

    def set_candidates(
        self, candidates: pd.DataFrame | list[dict], features: np.ndarray | None = None
    ) -> None:
        """Set the pool (the simulator's pool protocol); only before the first suggestion."""
        if self._num_suggested:
            raise RuntimeError(
                "set_candidates was called after suggestions were made; the candidate indices "
                "would no longer match, so create a new searcher for a new pool"
            )
        self._candidates, self._features = _pool(candidates, features)

    def set_search_properties(
        self,
        metric: str | list[str] | None,
        mode: str | list[str] | None,
        config: dict,
        **spec: Any,
    ) -> bool:
        """Take Tune's metric and mode unless set at construction (then ``False``, as Ray's do).

        ``config`` is not used: the search space is the pool.
        """
        if self._metric is not None or metric is None:
            return False
        self._set_objectives(Objectives.from_spec(metric, mode))
        return True

    def _set_objectives(self, objectives: Objectives | None) -> None:
        self._objectives = objectives
        self._metric = None if objectives is None else list(objectives.names)
        self._mode = None if objectives is None else list(objectives.modes)

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        self._check_max_concurrent(max_concurrent)
        self._max_concurrent = int(max_concurrent)
        return True

    def suggest(self, trial_id: str) -> dict | str | None:
        if self._candidates is None:
            raise RuntimeError(
                "PoolMultiObjectiveSearch has no candidates; pass candidates= or call set_candidates()"
            )
        if self._metric is None:
            raise RuntimeError(
                "PoolMultiObjectiveSearch has no metric/mode; pass them to the constructor or to "
                "tune.TuneConfig"
            )
        if self._max_concurrent is not None and len(self._pending) >= self._max_concurrent:
            return None
        available = self._available()
        if available.size == 0:
            return Searcher.FINISHED
        index = None
        if self._uses_model():
            index = self._take_prepared(available)
            if index is None:
                # Background mode: the last fitted hyperparameters, conditioned on every result
                # (milliseconds), rather than a fit here; the worker fits when one is due.
                index = self._model_choice(available, *self._model_inputs(), fit_due=self._worker is None)
        if index is None:
            index = int(self._rng.choice(available))
        self._pending[trial_id] = index
        self._num_suggested += 1
        self._prepare_next()
        return self.config_of(index)

    def _uses_model(self) -> bool:
        return self._num_suggested >= self._num_initial and len(self._observations) >= _MIN_TRAINING_POINTS

    def _refresh_limit(self) -> int:
        return self._refresh_after if self._refresh_after is not None else max(2, self._max_concurrent or 1)

    def _model_inputs(self) -> tuple[dict[int, list[float]], list[int], int]:
        """What a model choice depends on, copied so a worker can use it while hooks run."""
        return dict(self._observations), sorted(self._pending.values()), self._num_suggested

    def _take_prepared(self, available: np.ndarray) -> int | None:
        """The worker's choice if it is for this suggestion, still free and not stale.

        If there is none and the worker is computing one, waiting is cheaper than computing twice;
        if the worker is fitting hyperparameters instead (seconds), ``suggest`` computes its own.
        """
        if self._worker is None:
            return None
        self._worker.raise_error()
        index = self._usable_prepared(available)
        while index is None and self._worker.busy:
            with self._lock:
                if self._fitting:  # its choice, if any, is published already
                    break
            self._worker.wait_idle(timeout=_POLL_S)
            self._worker.raise_error()
            index = self._usable_prepared(available)
        return index

    def _usable_prepared(self, available: np.ndarray) -> int | None:
        with self._lock:
            prepared = self._prepared
            if prepared is None or not self._is_usable(prepared):
                return None
            self._prepared = None
        return prepared[0] if prepared[0] in set(available.tolist()) else None

    def _is_usable(self, prepared: tuple[int, int, int]) -> bool:
        _, seen, made_before = prepared
        return made_before == self._num_suggested and len(self._observations) - seen < self._refresh_limit()

    def _prepare_next(self) -> None:
        """Wake the worker unless a usable choice is already prepared."""
        if self._worker is None or not self._uses_model():
            return
        with self._lock:
            if self._prepared is not None and self._is_usable(self._prepared):
                return
        self._worker.wake()

    def _prepare(self) -> None:
        """Worker step: the model's choice for the next suggestion, from the current results.

        The choice comes first, from the last fitted hyperparameters conditioned on every result;
        a hyperparameter fit that is due (seconds) runs after it, for the choices that follow, so
        a trial that ends meanwhile finds its suggestion ready.
        """
        observations, pending, num_suggested = self._model_inputs()
        taken = set(observations) | self._failed | set(pending)
        available = np.array([i for i in range(len(self._candidates)) if i not in taken], dtype=int)
        if available.size == 0:
            return
        index = self._model_choice(available, observations, pending, num_suggested, fit_due=False)
        train_x, train_y, key = self._training_data(observations)
        due = self._fit_is_due(key)
        with self._lock:
            if index is not None:
                self._prepared = (index, len(observations), num_suggested)
            self._fitting = due
        if not due:
            return
        try:
            # A suggest may condition the model meanwhile on Tune's thread; torch's global
            # generator is shared, so which draws each sees depends on timing, as background
            # mode already allows (the fit only draws when L-BFGS fails and restarts).
            with torch_thread_limit(1), torch.random.fork_rng():
                self._fit(train_x, train_y, key)
        except Exception as exc:  # the next choice conditions on the last fit instead
            logger.warning("hyperparameter fit failed (%s); the last fitted ones stay in use", exc)
        finally:
            with self._lock:
                self._fitting = False

    def config_of(self, index: int) -> dict:
        """The config of candidate ``index`` (row position) as plain Python values."""
        # One-row frame, not ``iloc[index]``: a row Series would upcast ints to a shared float dtype.
        row = self._candidates.iloc[[index]].to_dict("records")[0]
        config = {name: _python_value(value) for name, value in row.items()}
        config[CANDIDATE_INDEX_KEY] = int(index)
        return config

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        """Ignored: a candidate is scored by its final result only."""

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        index = self._pending.pop(trial_id, None)
        if index is None:
            logger.warning("on_trial_complete for unknown trial %r ignored", trial_id)
            return
        if error or result is None:
            logger.warning(
                "trial %r (candidate %d) failed; it will not be suggested again", trial_id, index
            )
            self._failed.add(index)
            return
        try:
            values = self._objectives.validate(result)
        except ObjectiveError as reason:
            logger.warning(
                "trial %r (candidate %d) is counted as evaluated but not used to fit the model: %s",
                trial_id, index, reason,
            )
            self._failed.add(index)
            return
        self._observations[index] = list(values.values())
        self._prepare_next()

    @property
    def evaluated_indices(self) -> list[int]:
        """Candidates with a usable result, in completion order."""
        return list(self._observations)

    def _available(self) -> np.ndarray:
        taken = set(self._observations) | self._failed | set(self._pending.values())
        return np.array([i for i in range(len(self._candidates)) if i not in taken], dtype=int)

    def _training_data(
        self, observations: dict[int, list[float]]
    ) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
        indices = tuple(sorted(observations))
        values = self._objectives.to_maximisation(np.array([observations[i] for i in indices]))
        if self._objective_transform == "rank":
            values = rank_normal_scores(values)
        train_x = torch.tensor(self._features[list(indices)], dtype=torch.double)
        return train_x, torch.tensor(values, dtype=torch.double), indices

    def _fit_is_due(self, key: tuple[int, ...]) -> bool:
        """Whether the hyperparameters are to be fitted for training set ``key`` (see ``next_fit_size``)."""
        with self._lock:
            fitted = self._fitted
        return _fit_is_due(fitted, key)

    def _fit(
        self, train_x: torch.Tensor, train_y: torch.Tensor, key: tuple[int, ...], *, fit_due: bool = True
    ) -> Any:
        """The GP on this data: hyperparameters fitted when due (``fit_due=False``: only if none were yet)."""
        def new_model() -> SingleTaskGP:
            # A multi-output SingleTaskGP is a batch of independent GPs, one per objective with
            # its own hyperparameters (the model of a ModelListGP of SingleTaskGPs, fitted at once).
            return SingleTaskGP(train_x, train_y, outcome_transform=Standardize(m=train_y.shape[1]))

        with self._lock:
            fitted = self._fitted
        # Without fit_due a fit still happens when there is no earlier one to condition on.
        refit = _fit_is_due(fitted, key) and (fit_due or fitted is None or not set(fitted[0]) <= set(key))
        if refit or fitted[0] != key:
            model = new_model()
            if refit:
                # Seeded by the data alone, so the fit is a function of the data; a restored
                # searcher also has the last fit it saved, so it conditions the same way.
                with torch.random.fork_rng(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    torch.manual_seed(self._derived_seed(len(key)))
                    fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
            else:  # hyperparameters only: the outcome transform holds this data's scale
                model.load_state_dict(_hyperparameters(fitted[1]), strict=False)
            fitted = (key, model.state_dict(), len(key) if refit else fitted[2])
            with self._lock:  # never replace a fit with a model of older hyperparameters
                if self._fitted is None or fitted[2] >= self._fitted[2]:
                    self._fitted = fitted
        # Always a fresh model from the fitted hyperparameters: the numbers must not depend on
        # posterior caches left by an earlier suggestion, or a restored searcher could diverge.
        model = new_model()
        model.load_state_dict(fitted[1])
        return model.eval()

    def _derived_seed(self, salt: int) -> int:
        return (self._model_seed * 1_000_003 + salt) % 2**31

    def _model_choice(
        self,
        available: np.ndarray,
        observations: dict[int, list[float]],
        pending: list[int],
        num_suggested: int,
        *,
        fit_due: bool = True,
    ) -> int | None:
        train_x, train_y, key = self._training_data(observations)
        # BoTorch draws from torch's global generator (fit restarts, baseline pruning): a private,
        # seeded stream keeps the choices reproducible and leaves the caller's stream untouched.
        try:
            # small GPs beside running trials: threads only contend
            with torch_thread_limit(1), torch.random.fork_rng():
                model = self._fit(train_x, train_y, key, fit_due=fit_due)
                torch.manual_seed(self._derived_seed(num_suggested))
                if self._acquisition_for(num_suggested) == "pareto":
                    scores = self._pareto_probability(model, train_y, available, pending, num_suggested)
                    scores = self._break_ties(scores, model, train_y, available)
                else:
                    acquisition = self._acquisition(model, train_x, train_y, pending, num_suggested)
                    scores = self._scores(acquisition, available)
        except Exception as exc:  # a numerical failure must not end a long tuning run
            logger.warning("model-based choice failed (%s); falling back to a random candidate", exc)
            return None
        finite = torch.isfinite(scores)
        if not finite.any():
            return None
        scores[~finite] = -math.inf
        return int(available[int(scores.argmax())])

    def _acquisition(
        self, model: Any, train_x: torch.Tensor, train_y: torch.Tensor, pending: list[int], num_suggested: int
    ) -> Any:
        x_pending = torch.tensor(self._features[pending], dtype=torch.double) if pending else None
        sampler = SobolQMCNormalSampler(torch.Size([_MC_SAMPLES]), seed=self._derived_seed(num_suggested))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if train_y.shape[1] == 1:
                return qLogNoisyExpectedImprovement(
                    model,
                    X_baseline=train_x,
                    sampler=sampler,
                    X_pending=x_pending,
                    prune_baseline=True,
                )
            return qLogNoisyExpectedHypervolumeImprovement(
                model,
                ref_point=reference_point(train_y.numpy()).tolist(),
                X_baseline=train_x,
                sampler=sampler,
                X_pending=x_pending,
                prune_baseline=True,
            )

    def _acquisition_for(self, num_suggested: int) -> str:
        """``"pareto+hypervolume"`` alternates: P(Pareto) for even suggestions, hypervolume for odd."""
        if self._acquisition_name == "pareto+hypervolume":
            return "hypervolume" if num_suggested % 2 else "pareto"
        return self._acquisition_name

    def _pareto_probability(
        self, model: Any, train_y: torch.Tensor, available: np.ndarray, pending: list[int], num_suggested: int
    ) -> torch.Tensor:
        """P(candidate is Pareto-optimal in the pool) for each of ``available``, by Monte Carlo.

        Each draw samples every unevaluated candidate (``available`` then ``pending``) from the
        posterior; the observed results enter as they are (the pool's results are what the user
        will compare). With two objectives each candidate scores, per draw, the probability that
        nothing observed or drawn dominates it given the others' drawn values
        (``prob_non_dominated_by_others``, Rao-Blackwellised); otherwise it counts in a draw when
        nothing observed or drawn dominates its own draw.
        """
        unevaluated = np.concatenate([available, np.asarray(pending, dtype=int)])
        x = torch.tensor(self._features[unevaluated], dtype=torch.double)
        sample_shape = torch.Size([_MC_SAMPLES])
        joint = len(unevaluated) <= _JOINT_DRAW_LIMIT
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if joint:
                sampler = SobolQMCNormalSampler(sample_shape, seed=self._derived_seed(num_suggested))
                draws = sampler(model.posterior(x))  # samples x candidates x objectives
            else:
                posterior = model.posterior(x.unsqueeze(1))  # candidates x 1 x objectives, marginals
                generator = torch.Generator().manual_seed(self._derived_seed(num_suggested))
                noise = torch.randn(sample_shape + posterior.mean.shape, generator=generator, dtype=x.dtype)
                draws = (posterior.mean + posterior.variance.sqrt() * noise).squeeze(-2)
            if train_y.shape[1] == 2:
                mean, sd = _conditionals(model, x, draws, joint)
                return prob_non_dominated_by_others(draws, mean, sd, train_y, len(available))
        observed = train_y.expand(_MC_SAMPLES, *train_y.shape)
        optimal = non_dominated(torch.cat([observed, draws], dim=-2))
        start = train_y.shape[0]
        return optimal[:, start : start + len(available)].double().mean(dim=0)

    def _break_ties(
        self, probability: torch.Tensor, model: Any, train_y: torch.Tensor, available: np.ndarray
    ) -> torch.Tensor:
        """``probability`` (of being Pareto, per available candidate) with its ties broken.

        Late in a run the estimates can tie: at 0 where they underflow (Rao-Blackwellised, two
        objectives), at multiples of 1/128 (counts, other numbers of objectives), and an argmax
        over ties would follow the pool's row order. Ties go to the exact log-probability of
        escaping the observed front (``log_prob_non_dominated``, each candidate's marginal
        posterior). The addition stays below half the smallest gap between distinct estimates,
        so it never reorders candidates that the estimates tell apart.
        """
        x = torch.tensor(self._features[available], dtype=torch.double).unsqueeze(1)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            marginal = model.posterior(x)
            log_escape = log_prob_non_dominated(
                marginal.mean.squeeze(-2), marginal.variance.sqrt().squeeze(-2), train_y
            )
        order = log_escape.argsort(stable=True).argsort(stable=True).double()  # 0: least likely
        distinct = probability.unique()  # sorted
        gap = float(distinct.diff().min()) if len(distinct) > 1 else 1.0
        return probability + order / len(available) * (0.5 * gap)

    def _scores(self, acquisition: Any, available: np.ndarray) -> torch.Tensor:
        candidates_x = torch.tensor(self._features[available], dtype=torch.double).unsqueeze(1)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # linear_operator's sparse-tensor notice, once per call
            return torch.cat(
                [acquisition(batch) for batch in candidates_x.split(_SCORING_BATCH)]
            ).detach()

    _STATE = (
        "_objectives", "_candidates", "_features", "_num_initial", "_seed", "_model_seed",
        "_max_concurrent", "_objective_transform", "_pending", "_observations", "_failed",
        "_num_suggested", "_acquisition_name", "_fitted",
    )

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for name in ("_lock", "_worker", "_prepared", "_fitting"):  # threads do not pickle; remade on load
            state.pop(name, None)
        return state

    def __setstate__(self, state: dict) -> None:
        state.setdefault("_background", False)  # pickles of releases before background mode
        state.setdefault("_refresh_after", None)
        state.setdefault("_acquisition_name", "hypervolume")  # the only one before the option existed
        if state.get("_fitted") is not None and len(state["_fitted"]) != 3:  # older cache layout
            state["_fitted"] = None
        self.__dict__.update(state)
        self._start_background()

    def save(self, checkpoint_path: str) -> None:
        state = {name: getattr(self, name) for name in self._STATE}
        state["rng_state"] = self._rng.bit_generator.state
        with open(checkpoint_path, "wb") as file:
            pickle.dump(state, file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            state = pickle.load(file)
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = state.pop("rng_state")
        state.setdefault("_acquisition_name", "hypervolume")  # the only one before the option existed
        for name, value in state.items():
            setattr(self, name, value)
        self._set_objectives(self._objectives)
        if self._worker is not None:
            self._worker.wait_idle()
        with self._lock:  # the restored fit (absent from older checkpoints) is where the next one starts
            self._prepared = None
            if "_fitted" not in state:
                self._fitted = None
