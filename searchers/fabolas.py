"""Fabolas: Bayesian optimisation over the configuration and the training-set fraction, with cost.

Training on a fraction ``s`` of the data is cheap and says much about the full-data result.
:class:`FabolasSearch` (Klein et al., 2017, "Fast Bayesian optimization of machine learning
hyperparameters on large datasets") models the objective over ``(x, s)`` with BoTorch's
``SingleTaskMultiFidelityGP`` and its ``DownsamplingKernel``, learns the cost of an evaluation
from the measured cost of finished trials (:mod:`searchers._fabolas_cost`) and picks the
``(x, s)`` that tells most about the optimum at ``s = 1`` per unit of cost
(:mod:`searchers._fabolas_acquisition`). Every suggestion carries the fraction under a key the
user names (``data_fraction`` by default); the trainable subsamples its training set with it.

With ``min_fidelity=1`` every evaluation is at full data and the same machinery is plain GP
Bayesian optimisation with max-value entropy search: the ``gp-bo`` baseline of the benchmarks.

With two objectives (say accuracy and latency) the target is the Pareto front at ``s = 1``: one
downsampling-kernel GP per objective, and the ``(x, s)`` whose result is expected to grow the
hypervolume of the predicted full-data front the most per unit of cost (a discrete hypervolume
knowledge gradient, :func:`searchers._fabolas_acquisition.hypervolume_knowledge_gradient`).
:meth:`FabolasSearch.pareto_set` returns the configurations on that front.

Worked example: ``examples/fabolas_digits.py``.
"""

from __future__ import annotations

import logging
import math
import numbers
import pickle
import warnings
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import torch
from botorch.models import SingleTaskMultiFidelityGP
from botorch.models.transforms.outcome import Standardize
from ray.tune.search import Searcher

from multiobjective import Objectives, finite_or_none, pareto_mask, reference_point
from multiobjective.ranking import hypervolume_contributions
from searchers._fabolas_acquisition import (
    ACQUISITIONS,
    PARETO_ACQUISITIONS,
    candidate_set,
    choose_next,
    choose_next_pareto,
    fidelity_ladder,
)
from searchers._fabolas_cost import fit_cost_model
from searchers._fabolas_fit import fit_warm, needs_refit
from searchers._fabolas_space import DEFAULT_FIDELITY_KEY, UnitCubeSpace
from searchers._threads import torch_thread_limit

__all__ = ["DEFAULT_FIDELITY_KEY", "FabolasSearch", "Incumbent", "ParetoMember"]

logger = logging.getLogger(__name__)

DEFAULT_COST_METRIC = "time_total_s"
"""Ray Tune's wall time of a trial, reported with every result."""
_MIN_MODEL_OBSERVATIONS = 3
_LOCAL_ANCHORS = 4


@dataclass(frozen=True)
class Incumbent:
    """The configuration with the best value at full data, and that value.

    Attributes:
        config: The Tune config, its fraction key set to 1.
        predicted: The objective at ``s = 1``, in the metric's own units: the mean of the results
            measured there if ``evaluated_at_full``, else the posterior mean.
        evaluated_at_full: Whether this configuration has a finished evaluation at ``s = 1``.
    """

    config: dict[str, Any]
    predicted: float
    evaluated_at_full: bool


@dataclass(frozen=True)
class ParetoMember:
    """A configuration on the Pareto front recommended for full data (see :meth:`FabolasSearch.pareto_set`).

    Attributes:
        config: The Tune config, its fraction key set to 1.
        predicted: Each objective at ``s = 1``, in the metrics' own units: the mean of the
            results measured there if ``evaluated_at_full``, else the posterior mean.
        evaluated_at_full: Whether this configuration has a finished evaluation at ``s = 1``.
    """

    config: dict[str, Any]
    predicted: dict[str, float]
    evaluated_at_full: bool


class FabolasSearch(Searcher):
    r"""Cost-aware multi-fidelity Bayesian optimisation over ``(x, s)``, ``s`` the training-set fraction.

    ``(x, s)_next = argmax_{x, s} I(f(., 1)^*; f(x, s)) / cost(x, s)``, ``f ~ GP(0, k_x(x, x') *
    (c + (1 - s)^(1 + delta) (1 - s')^(1 + delta)))`` (the downsampling kernel), ``cost`` learned.
    With two objectives, one such GP per objective and
    ``(x, s)_next = argmax_{x, s} (E[HV(front_{n+1})] - HV(front_n)) / cost(x, s)``, the fronts
    those of the posterior means at ``s = 1`` over the evaluated configurations (and ``x``).

    The first ``num_initial`` suggestions are random configurations at the small fractions
    ``min_fidelity * (1, 2, 4)`` (cheap, and they span the fraction axis); then the model
    decides. Pending trials are fantasised by the acquisition and never suggested twice, so
    parallel workers get different points. With ``incumbent_share > 0`` that share of the
    suggestions re-evaluates the current :meth:`incumbent` at ``s = 1`` (once per incumbent), so
    the run ends with a fully trained model of the configuration it recommends (with two
    objectives: the members of :meth:`pareto_set` not yet evaluated at ``s = 1``, the largest
    hypervolume contribution first).

    Args:
        space: Tune search space (domains, constants, nested dicts); may come from the Tuner.
            It must not contain ``fidelity_key``.
        metric: Objective name, or two names for a Pareto front (or a ``multiobjective.Objectives``).
        mode: ``"min"`` or ``"max"`` (one per metric).
        fidelity_key: Config key of the fraction ``s`` handed to the trainable.
        min_fidelity: Smallest fraction, in ``(0, 1]``; ``1`` gives full-fidelity GP BO.
        cost_metric: Result key holding the measured cost of a trial (default: Tune's wall time
            ``time_total_s``; e.g. ``"gpu_seconds"``).
        acquisition: One objective: ``"mes"`` (multi-fidelity max-value entropy, scored on
            candidate sets; the default) or ``"kg"`` (multi-fidelity knowledge gradient,
            optimised; slower). Two objectives: ``"hvkg"`` (the default; the hypervolume
            knowledge gradient, scored on candidate sets). ``None``: the default for the
            number of objectives.
        num_initial: Random suggestions before the model takes over.
        incumbent_share: Share of the suggestions, in ``[0, 1)``, spent evaluating the incumbent
            at ``s = 1``.
        num_candidates: Random configurations per suggestion (as many again near the best ones).
        fidelity_levels: Fractions each candidate is scored at (log-spaced from ``min_fidelity``).
        seed: Seed of the random design, the candidate sets and the Monte-Carlo acquisition.
        max_concurrent: Most trials pending at once (``None``: no limit).
        max_trials: After this many suggestions ``suggest`` returns ``Searcher.FINISHED``.
        torch_threads: PyTorch threads while fitting and scoring (``None``: leave as is).

    Example:
        >>> from ray import tune
        >>> searcher = FabolasSearch({"lr": tune.loguniform(1e-4, 1e-1)}, metric="loss", mode="min",
        ...                          num_initial=2, seed=0)
        >>> config = searcher.suggest("t1")
        >>> sorted(config), config["data_fraction"] < 0.1
        (['data_fraction', 'lr'], True)
        >>> searcher.on_trial_complete("t1", {"loss": 0.3, "time_total_s": 2.0})
    """

    def __init__(
        self,
        space: Mapping[str, Any] | None = None,
        metric: str | Objectives | None = None,
        mode: str | None = None,
        *,
        fidelity_key: str = DEFAULT_FIDELITY_KEY,
        min_fidelity: float = 1 / 32,
        cost_metric: str = DEFAULT_COST_METRIC,
        acquisition: str | None = None,
        num_initial: int = 5,
        incumbent_share: float = 0.0,
        num_candidates: int = 256,
        fidelity_levels: int = 6,
        seed: int | None = None,
        max_concurrent: int | None = None,
        max_trials: int | None = None,
        torch_threads: int | None = 1,
    ) -> None:
        _check_text("fidelity_key", fidelity_key)
        _check_text("cost_metric", cost_metric)
        if isinstance(min_fidelity, bool) or not isinstance(min_fidelity, numbers.Real) or not 0 < min_fidelity <= 1:
            raise ValueError(f"min_fidelity: got {min_fidelity!r}; use a fraction in (0, 1], e.g. 1/32.")
        if acquisition is not None and acquisition not in ACQUISITIONS + PARETO_ACQUISITIONS:
            raise ValueError(
                f"acquisition: got {acquisition!r}; use one of {list(ACQUISITIONS)} for one objective, "
                f"{list(PARETO_ACQUISITIONS)} for two, or None for the default."
            )
        for name, value, low in (("num_initial", num_initial, 1), ("num_candidates", num_candidates, 8),
                                 ("fidelity_levels", fidelity_levels, 2)):
            _check_int(name, value, low)
        if isinstance(incumbent_share, bool) or not isinstance(incumbent_share, numbers.Real) or not 0 <= incumbent_share < 1:
            raise ValueError(f"incumbent_share: got {incumbent_share!r}; use a share in [0, 1), e.g. 0.1.")
        if seed is not None:
            _check_int("seed", seed, 0)
        for name, value in (("max_concurrent", max_concurrent), ("max_trials", max_trials)):
            if value is not None:
                _check_int(name, value, 1)
        super().__init__()
        self._acquisition = acquisition
        self._set_objectives(Objectives.optional(metric, mode))
        self._fidelity_key = fidelity_key
        self._min_fidelity = float(min_fidelity)
        self._cost_metric = cost_metric
        self._num_initial = int(num_initial)
        self._incumbent_share = float(incumbent_share)
        self._num_candidates = int(num_candidates)
        self._fidelities = fidelity_ladder(self._min_fidelity, int(fidelity_levels))
        self._seed = int(np.random.SeedSequence().entropy % 2**31) if seed is None else int(seed)
        self._max_concurrent = max_concurrent
        self._max_trials = max_trials
        self._torch_threads = torch_threads
        self._rng = np.random.default_rng(self._seed)
        self._space: UnitCubeSpace | None = None
        if space is not None:
            self._set_space(space)
        self._pending: dict[str, tuple[np.ndarray, float]] = {}
        # trial_id -> (x, s, objective in maximisation form, cost or nan)
        self._observations: dict[str, tuple[np.ndarray, float, float, float]] = {}
        self._num_suggested = 0
        self._num_incumbent_runs = 0
        self._incumbent_runs: set[tuple] = set()
        self._objective_seen = False
        self._cost_seen = False
        # Hyperparameters of the last optimisation (warm starts) and the data size it saw.
        self._states: dict[str, Any] = {"model": None, "cost": None, "model_n": 0, "cost_n": 0}
        self._fitted: tuple[int, Any] | None = None

    # ------------------------------------------------------------------ Tune protocol
    def set_search_properties(self, metric: str | None, mode: str | None, config: dict, **spec: Any) -> bool:
        """Take Tune's metric, mode and ``param_space`` for whatever the constructor left unset."""
        if self._metric is not None and self._space is not None:
            return False
        if self._metric is None and metric is not None:
            self._set_objectives(Objectives.from_spec(metric, mode))
        if self._space is None and config:
            self._set_space(config)
        return True

    def set_max_concurrency(self, max_concurrent: int) -> bool:
        _check_int("max_concurrent", max_concurrent, 1)
        self._max_concurrent = int(max_concurrent)
        return True

    def suggest(self, trial_id: str) -> dict | str | None:
        if self._space is None:
            raise RuntimeError("FabolasSearch has no search space: pass space= or a Tuner param_space.")
        if self._metric is None:
            raise RuntimeError("FabolasSearch has no metric: pass metric= and mode= or set them in tune.TuneConfig.")
        if self._max_trials is not None and self._num_suggested >= self._max_trials:
            return Searcher.FINISHED
        if self._max_concurrent is not None and len(self._pending) >= self._max_concurrent:
            return None
        point = self._incumbent_point() if self._wants_incumbent_run() else None
        if point is not None:
            self._num_incumbent_runs += 1
            self._incumbent_runs.add(tuple(np.round(point[0], 9)))
        elif len(self._observations) >= _MIN_MODEL_OBSERVATIONS and self._num_suggested >= self._num_initial:
            point = self._model_point()
        if point is None:
            point = self._random_point()
        x, s = point
        self._pending[trial_id] = (x, s)
        self._num_suggested += 1
        config = self._space.decode(x)
        config[self._fidelity_key] = float(s)
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        """Record the objective and the cost of a finished trial.

        Raises:
            ValueError: when the result lacks the objective or the cost metric and no earlier
                trial reported it (the trainable never reports it), naming the keys it did report.
        """
        point = self._pending.pop(trial_id, None)
        if point is None or error or not result:
            return
        names = list(self._objectives.names)
        values = [result.get(name) for name in names]
        cost = result.get(self._cost_metric)
        checks = [(name, "metric", value is not None, self._objective_seen) for name, value in zip(names, values)]
        checks.append((self._cost_metric, "cost_metric", cost is not None, self._cost_seen))
        for name, argument, present, seen in checks:
            if not present and not seen:
                raise ValueError(
                    f"{argument}: got {name!r}, but trial {trial_id} finished without reporting it "
                    f"(it reported {sorted(k for k in result if not k.startswith('config/'))}); report "
                    f"{name!r} from the trainable with tune.report, or pass {argument}= one of those keys."
                )
        self._objective_seen |= all(value is not None for value in values)
        self._cost_seen |= cost is not None
        numbers = [finite_or_none(value) for value in values]
        if any(number is None for number in numbers):
            logger.warning(
                "trial %s reported %s; it is not used to fit the model", trial_id,
                ", ".join(f"{name}={value!r}" for name, value in zip(names, values)),
            )
            return
        signed = tuple(float(v) for v in self._objectives.to_maximisation(np.array([numbers]))[0])
        cost_value = finite_or_none(cost)
        self._observations[trial_id] = (point[0], point[1], signed, math.nan if cost_value is None else cost_value)

    # ------------------------------------------------------------------ public queries
    def incumbent(self) -> Incumbent | None:
        """The evaluated configuration with the best value at ``s = 1`` (``None`` before any result).

        A configuration's value at ``s = 1`` is the mean of its results there when it was
        evaluated at full data, and the posterior mean otherwise (as in :meth:`pareto_set`): a
        model already trained on all the data competes with what it measured, not with what the
        GP smooths it to.
        With fewer than three results there is no model yet, and the best value observed at the
        largest fraction stands in for the prediction.

        Raises:
            ValueError: with two objectives, which have a front, not one best configuration
                (see :meth:`pareto_set`).
        """
        if self._objectives is not None and len(self._objectives) > 1:
            raise ValueError(
                f"incumbent: the search has {len(self._objectives)} objectives {list(self._objectives.names)}, "
                "so there is a front, not one best configuration; call pareto_set() instead."
            )
        if not self._observations or self._space is None:
            return None
        configs, predicted = self._values_at_full()
        best = int(np.argmax(predicted[:, 0]))
        x = configs[best]
        sign = 1.0 if self._objectives.modes[0] == "max" else -1.0
        return Incumbent(
            config=self._full_config(x), predicted=sign * float(predicted[best, 0]),
            evaluated_at_full=self._evaluated_at_full(x),
        )

    def pareto_set(self) -> list[ParetoMember]:
        """The evaluated configurations whose values at ``s = 1`` are Pareto-optimal.

        A configuration's values at ``s = 1`` are what was measured there when it was evaluated
        at full data (the mean of its results), and the posterior means otherwise: a model
        trained on all the data is recommended for what it did, not for what the GP smooths it
        to. With one objective, the configurations tied for the best value. Ordered by the
        first objective, best first; empty before any result. With fewer than three results the
        values observed at the largest fraction stand in for the predictions.
        """
        if not self._observations or self._space is None:
            return []
        configs, predicted = self._values_at_full()
        members = _front(predicted)
        natural = self._objectives.to_maximisation(predicted)  # the signs undo themselves
        return [
            ParetoMember(
                config=self._full_config(configs[i]),
                predicted={name: float(natural[i, j]) for j, name in enumerate(self._objectives.names)},
                evaluated_at_full=self._evaluated_at_full(configs[i]),
            )
            for i in members
        ]

    @property
    def fidelity_key(self) -> str:
        """Config key of the training-set fraction."""
        return self._fidelity_key

    def model(self) -> SingleTaskMultiFidelityGP | None:
        """The objectives' GP over ``(x, s)`` (one output per objective, maximisation form) fitted
        to the results so far, or ``None`` before three results."""
        if len(self._observations) < _MIN_MODEL_OBSERVATIONS:
            return None
        with torch_thread_limit(self._torch_threads):
            return self._fit_model()

    def cost_model(self) -> Any:
        """The cost model ``cost(x, s)`` the acquisition divides by (a BoTorch ``DeterministicModel``)."""
        with torch_thread_limit(self._torch_threads):
            return self._fit_cost()

    # ------------------------------------------------------------------ choices
    def _random_point(self) -> tuple[np.ndarray, float]:
        x = self._space.sample(1, self._rng)[0]
        if self._num_suggested < self._num_initial:
            s = min(1.0, self._min_fidelity * 2.0 ** (self._num_suggested % 3))
        else:
            s = float(self._rng.choice(self._fidelities))
        return x, s

    def _wants_incumbent_run(self) -> bool:
        if self._incumbent_share <= 0 or self._min_fidelity >= 1 or len(self._observations) < _MIN_MODEL_OBSERVATIONS:
            return False
        return self._num_incumbent_runs < self._incumbent_share * (self._num_suggested + 1)

    def _incumbent_point(self) -> tuple[np.ndarray, float] | None:
        with torch_thread_limit(self._torch_threads):
            configs, predicted = self._predict_full()
        if predicted.shape[1] == 1:
            order = [int(np.argmax(predicted[:, 0]))]
        else:  # the front's members not yet run at full data, largest hypervolume contribution first
            members = np.flatnonzero(pareto_mask(predicted))
            contribution = hypervolume_contributions(predicted[members], reference_point(predicted))
            order = [int(members[k]) for k in np.argsort(contribution, kind="stable")[::-1]
                     if not self._evaluated_at_full(configs[members[k]])]
        for index in order:
            x = configs[index]
            busy = any(np.allclose(px, x) and ps >= 1.0 for px, ps in self._pending.values())
            if tuple(np.round(x, 9)) not in self._incumbent_runs and not busy:
                return x, 1.0
            if predicted.shape[1] == 1:
                break
        return None

    def _model_point(self) -> tuple[np.ndarray, float] | None:
        try:
            with torch_thread_limit(self._torch_threads), torch.random.fork_rng():
                torch.manual_seed((self._seed * 1_000_003 + self._num_suggested) % 2**31)
                model = self._fit_model()
                cost_model = self._fit_cost()
                train_x, _ = self._training_data()
                configs, predicted = self._predict_full(model)
                candidates = candidate_set(self._space, self._rng, self._num_candidates, _anchors(configs, predicted))
                pending = [np.append(x, s) for x, s in self._pending.values()]
                x_pending = torch.tensor(np.array(pending), dtype=torch.double) if pending else None
                exclude = train_x if x_pending is None else torch.cat([train_x, x_pending])
                if predicted.shape[1] > 1:
                    return choose_next_pareto(
                        model, cost_model, candidates, self._fidelities, designs=configs,
                        x_pending=x_pending, exclude=exclude,
                        seed=(self._seed * 1_000_003 + self._num_suggested) % 2**31,
                    )
                return choose_next(
                    self._acquisition_name(), model, cost_model, candidates, self._fidelities,
                    x_pending=x_pending, exclude=exclude, best_value=float(predicted[:, 0].max()),
                    min_fidelity=self._min_fidelity, snap=self._space.snap,
                )
        except Exception as error:  # a numerical failure must not end a long tuning run
            logger.warning("FabolasSearch: model-based choice failed (%s); suggesting a random point", error)
            return None

    # ------------------------------------------------------------------ models
    def _training_data(self) -> tuple[torch.Tensor, torch.Tensor]:
        rows = list(self._observations.values())
        train_x = torch.tensor(np.array([np.append(x, s) for x, s, _, _ in rows]), dtype=torch.double)
        train_y = torch.tensor(np.array([np.atleast_1d(y) for _, _, y, _ in rows]), dtype=torch.double)
        return train_x, train_y

    def _fit_model(self) -> SingleTaskMultiFidelityGP:
        if self._fitted is not None and self._fitted[0] == len(self._observations):
            return self._fitted[1]
        train_x, train_y = self._training_data()
        model = SingleTaskMultiFidelityGP(
            train_x, train_y, data_fidelities=[train_x.shape[1] - 1], linear_truncated=False,
            outcome_transform=Standardize(m=train_y.shape[1]),
        )
        count = len(self._observations)
        optimise = self._states["model"] is None or needs_refit(count, self._states["model_n"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self._states["model"] = fit_warm(model, self._states["model"], optimise=optimise)
        if optimise:
            self._states["model_n"] = count
        self._fitted = (len(self._observations), model)
        return model

    def _fit_cost(self) -> Any:
        rows = [(np.append(x, s), c) for x, s, _, c in self._observations.values() if math.isfinite(c)]
        dim = (self._space.dim if self._space is not None else 0) + 1
        train_x = torch.tensor(np.array([r for r, _ in rows]).reshape(-1, dim), dtype=torch.double)
        costs = torch.tensor([c for _, c in rows], dtype=torch.double)
        count = len(rows)
        optimise = self._states["cost"] is None or needs_refit(count, self._states["cost_n"])
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model, state = fit_cost_model(
                train_x, costs, dim - 1, previous=self._states["cost"], optimise=optimise
            )
        if state is not None:
            self._states["cost"] = state
            if optimise:
                self._states["cost_n"] = count
        return model

    def _predict_full(self, model: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Distinct evaluated configurations and their predicted objectives at ``s = 1``
        (``configurations x objectives``, maximisation form)."""
        rows = list(self._observations.values())
        configs = np.unique(np.array([x for x, _, _, _ in rows]), axis=0)
        if model is None and len(rows) >= _MIN_MODEL_OBSERVATIONS:
            model = self._fit_model()
        if model is None:  # too few results for a model: the values seen at the largest fraction
            best = {}
            for x, s, y, _ in rows:
                key, y = tuple(x), tuple(np.atleast_1d(y))
                if key not in best or (s, y) > best[key]:
                    best[key] = (s, y)
            return configs, np.array([best[tuple(x)][1] for x in configs], dtype=float)
        full = torch.tensor(np.column_stack([configs, np.ones(len(configs))]), dtype=torch.double)
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mean = model.posterior(full).mean
        return configs, mean.numpy().reshape(len(configs), -1)

    def _values_at_full(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_predict_full`, with the mean of the results measured at ``s = 1`` in place of the
        prediction for each configuration evaluated there: a model trained on all the data is
        recommended for what it did, not for what the GP smooths it to."""
        configs, predicted = self._predict_full()
        measured: dict[int, list[np.ndarray]] = {}
        for x, s, y, _ in self._observations.values():
            if s >= 1.0:
                for index in np.flatnonzero(np.all(np.isclose(configs, x), axis=1)):
                    measured.setdefault(int(index), []).append(np.atleast_1d(y))
        for index, values in measured.items():
            predicted[index] = np.mean(values, axis=0)
        return configs, predicted

    def _full_config(self, x: np.ndarray) -> dict[str, Any]:
        config = self._space.decode(x)
        config[self._fidelity_key] = 1.0
        return config

    def _evaluated_at_full(self, x: np.ndarray) -> bool:
        return any(s >= 1.0 and np.allclose(ox, x) for ox, s, _, _ in self._observations.values())

    def _acquisition_name(self) -> str:
        if self._acquisition is not None:
            return self._acquisition
        return PARETO_ACQUISITIONS[0] if self._objectives is not None and len(self._objectives) > 1 else "mes"

    # ------------------------------------------------------------------ set-up and state
    def _set_objectives(self, objectives: Objectives | None) -> None:
        if objectives is not None and len(objectives) > 2:
            raise ValueError(
                f"metric: got {list(objectives.names)}; FabolasSearch optimises one objective or a Pareto "
                "front of two, give one or two metrics."
            )
        if objectives is not None and self._acquisition is not None:
            several = len(objectives) > 1
            if several != (self._acquisition in PARETO_ACQUISITIONS):
                allowed = PARETO_ACQUISITIONS if several else ACQUISITIONS
                raise ValueError(
                    f"acquisition: got {self._acquisition!r} for {len(objectives)} objective(s) "
                    f"{list(objectives.names)}; use one of {list(allowed)}, or None for the default."
                )
        self._objectives = objectives
        single = objectives is not None and len(objectives) == 1
        self._metric = None if objectives is None else (objectives.names[0] if single else list(objectives.names))
        self._mode = None if objectives is None else (objectives.modes[0] if single else list(objectives.modes))

    def _set_space(self, space: Mapping[str, Any]) -> None:
        if self._fidelity_key in space:
            raise ValueError(
                f"space: holds {self._fidelity_key!r}, the fidelity_key FabolasSearch sets itself; "
                "remove it from the space or pass another fidelity_key."
            )
        self._space = UnitCubeSpace(space)

    _STATE = (
        "_objectives", "_fidelity_key", "_min_fidelity", "_cost_metric", "_acquisition", "_num_initial",
        "_incumbent_share", "_num_candidates", "_fidelities", "_seed", "_max_concurrent", "_max_trials",
        "_space", "_pending", "_observations", "_num_suggested", "_num_incumbent_runs", "_incumbent_runs",
        "_objective_seen", "_cost_seen", "_states",
    )

    def save(self, checkpoint_path: str) -> None:
        state = {name: getattr(self, name) for name in self._STATE}
        state["rng"] = self._rng.bit_generator.state
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(state, handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            state = pickle.load(handle)
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = state.pop("rng")
        for name, value in state.items():
            setattr(self, name, value)
        self._set_objectives(self._objectives)
        self._fitted = None


def _front(values: np.ndarray) -> np.ndarray:
    """Rows of ``values`` (maximisation form) on the Pareto front, best first objective first."""
    members = np.flatnonzero(pareto_mask(values))
    return members[np.argsort(-values[members, 0], kind="stable")]


def _anchors(configs: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """Configurations to search near: the best predicted ones (with two objectives, members of
    the predicted front spread along it)."""
    if predicted.shape[1] == 1:
        return configs[np.argsort(-predicted[:, 0])[:_LOCAL_ANCHORS]]
    members = _front(predicted)
    if len(members) > _LOCAL_ANCHORS:
        members = members[np.unique(np.linspace(0, len(members) - 1, _LOCAL_ANCHORS).round().astype(int))]
    return configs[members]


def _check_int(name: str, value: Any, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{name}: got {value!r}; use an integer >= {low}.")


def _check_text(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: got {value!r}; use a non-empty string such as the result key.")

