"""Optuna's samplers as peers to compare with: Ray's ``OptunaSearch`` with several objectives.

What a Ray Tune user would pick instead of our searchers is Ray's ``OptunaSearch`` with a list
``metric``/``mode`` and one of Optuna 5's samplers: ``GPSampler`` (GP with LogEHVI for several
objectives), ``TPESampler`` (multi-objective TPE, Optuna's default) or ``NSGAIISampler``.
:class:`OptunaPeerSearch` is exactly that, plus two things the comparison needs: a Tune space
with constants (Ray's class drops them when given a space directly) and a seed per sampler.

Example:
    >>> from ray import tune
    >>> searcher = OptunaPeerSearch({"x": tune.uniform(0, 1), "epochs": 3}, ["acc", "ms"], ["max", "min"],
    ...                             sampler="nsga2", seed=0)
    >>> sorted(searcher.suggest("t1"))
    ['epochs', 'x']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch
from ray.tune.search.sample import Domain
from ray.tune.utils.util import flatten_dict, unflatten_dict

from multiobjective import Objectives
from searchers._tune_space import flatten_search_space

__all__ = ["SAMPLERS", "OptunaPeerSearch"]

SAMPLERS = ("gp", "tpe", "nsga2")
"""Names of the Optuna samplers :class:`OptunaPeerSearch` builds."""


def _sampler(name: str, seed: int | None) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    raise ValueError(f"sampler: got {name!r}; use one of {', '.join(SAMPLERS)}.")


class OptunaPeerSearch(OptunaSearch):
    """Ray's ``OptunaSearch`` over a Tune space, several objectives, a named seeded sampler.

    Args:
        space: Tune search space (domains, constants, nested dicts).
        metric: objective name(s) or a ``multiobjective.Objectives``.
        mode: ``"max"``/``"min"`` per objective.
        sampler: ``"gp"``, ``"tpe"`` or ``"nsga2"``.
        seed: the sampler's seed.
    """

    def __init__(
        self,
        space: Mapping[str, Any],
        metric: str | Sequence[str] | Objectives,
        mode: str | Sequence[str] | None = None,
        *,
        sampler: str = "tpe",
        seed: int | None = None,
    ) -> None:
        objectives = Objectives.from_spec(metric, mode)
        flat = flatten_search_space(space)
        self._constants = {name: value for name, value in flat.items() if not isinstance(value, Domain)}
        domains = unflatten_dict({name: value for name, value in flat.items() if isinstance(value, Domain)},
                                 delimiter="/")
        single = len(objectives) == 1
        super().__init__(
            OptunaSearch.convert_search_space(domains),
            metric=objectives.names[0] if single else list(objectives.names),
            mode=objectives.modes[0] if single else list(objectives.modes),
            sampler=_sampler(sampler, seed),
        )

    def suggest(self, trial_id: str) -> dict | None:
        config = super().suggest(trial_id)
        if config is None or config == Searcher.FINISHED:
            return config
        return unflatten_dict({**self._constants, **flatten_dict(config, delimiter="/")}, delimiter="/")
