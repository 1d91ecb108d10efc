"""The one place where ``AxMultiObjectiveSearch`` depends on Ax beyond its ``Client`` API.

``Client.configure_generation_strategy`` builds Ax's default generation strategy and installs
it without handing it out, and it has no option for two things a Tune searcher needs:

1. Early-stopped trials counted as *observed* for the Sobol -> model transition. Ax moves on
   only after ``min_observed_initialization_trials`` COMPLETED trials; under ASHA most trials
   end EARLY_STOPPED (with data), so without this Ax would stay quasi-random all experiment.
2. BoTorch acquisition-optimiser settings (``optimize_acqf*`` keyword arguments such as
   ``num_restarts``) for the model step.

So this module builds the same strategy the way ``Client`` does, adjusts it, and installs it.
It reads and writes no private attribute. What it relies on instead, checked against
ax-platform 1.3.1 (``AX_VERSION_CHECKED``):

- ``ax.api.utils.generation_strategy_dispatch.choose_generation_strategy`` with
  ``ax.api.utils.structs.GenerationStrategyDispatchStruct``: the function ``Client`` calls to
  build its default. Importable by that name, but not re-exported by ``ax`` or ``ax.api``, and
  its docstring says its behaviour may change.
- ``Client.set_generation_strategy(generation_strategy=...)``: a public method whose docstring
  says it is "not part of the API" and its signature may change.
- The layout of the default strategy, read through public attributes
  (``GenerationStrategy.nodes_by_name``, ``GenerationNode.transition_criteria`` and
  ``generator_specs``): the initialisation node holds a ``MinTrials`` criterion whose
  ``only_in_statuses`` is ``[TrialStatus.COMPLETED]``; the model node holds a
  ``Generators.BOTORCH_MODULAR`` ``GeneratorSpec`` whose
  ``generator_gen_kwargs["model_gen_options"]["optimizer_kwargs"]`` reaches BoTorch (the route
  documented on ``ax.generators.torch_base.TorchOptConfig``).

``tests/searchers/test_ax_adapter.py`` checks each of these and fails naming the one that moved.
The changes live in the strategy itself, so they survive ``Client.save_to_json_file``.

Example:
    >>> from ax import Client, RangeParameterConfig
    >>> client = Client()
    >>> client.configure_experiment(
    ...     parameters=[RangeParameterConfig(name="x", parameter_type="float", bounds=(0.0, 1.0))])
    >>> client.configure_optimization(objective="f")
    >>> configure_generation_strategy(client, method="fast", initialization_budget=4, seed=0,
    ...                               acquisition_options={"num_restarts": 4})
    >>> [client.get_next_trials(max_trials=1) != {} for _ in range(2)]
    [True, True]
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

logger = logging.getLogger(__name__)

# The ax-platform release whose generation strategy layout this module was checked against.
AX_VERSION_CHECKED = "1.3.1"


def configure_generation_strategy(
    client: Any,
    *,
    method: str,
    initialization_budget: int | None,
    seed: int | None,
    acquisition_options: Mapping[str, Any] | None,
) -> None:
    """Install ``build_generation_strategy(...)`` on an ``ax.Client`` whose experiment is set."""
    client.set_generation_strategy(
        generation_strategy=build_generation_strategy(
            method=method,
            initialization_budget=initialization_budget,
            seed=seed,
            acquisition_options=acquisition_options,
        )
    )


def build_generation_strategy(
    *,
    method: str,
    initialization_budget: int | None,
    seed: int | None,
    acquisition_options: Mapping[str, Any] | None,
) -> Any:
    """Ax's default strategy for ``method``, as ``Client.configure_generation_strategy`` builds it.

    Same nodes and seeds as ``configure_generation_strategy(method=method,
    initialization_budget=..., initialization_random_seed=seed,
    allow_exceeding_initialization_budget=True)``, then: early-stopped trials count as observed
    initialisation trials, and ``acquisition_options`` go to every BoTorch model node's
    acquisition optimiser. Exceeding the initialisation budget is allowed because trials that
    end early-stopped or failed would otherwise leave Ax refusing to generate while Tune waits.

    Returns:
        An ``ax.generation_strategy.generation_strategy.GenerationStrategy``.
    """
    from ax.api.utils.generation_strategy_dispatch import choose_generation_strategy
    from ax.api.utils.structs import GenerationStrategyDispatchStruct

    strategy = choose_generation_strategy(
        struct=GenerationStrategyDispatchStruct(
            method=method,
            initialization_budget=initialization_budget,
            initialization_random_seed=seed,
            allow_exceeding_initialization_budget=True,
        )
    )
    if not count_early_stopped_as_observed(strategy) and _has_initialisation_budget(strategy):
        _warn_layout_changed("no MinTrials criterion counts only COMPLETED trials")
    if acquisition_options and not set_acquisition_options(strategy, acquisition_options):
        if method != "random_search":
            _warn_layout_changed("no BOTORCH_MODULAR generator takes the acquisition_options")
    return strategy


def count_early_stopped_as_observed(strategy: Any) -> int:
    """Let early-stopped trials count wherever a transition counts only COMPLETED trials.

    Their data is used by the model either way; this only changes when the model takes over.

    Returns:
        How many transition criteria were changed.
    """
    from ax.core.trial_status import TrialStatus
    from ax.generation_strategy.transition_criterion import MinTrials

    changed = 0
    for criterion in _transition_criteria(strategy):
        if isinstance(criterion, MinTrials) and criterion.only_in_statuses == [TrialStatus.COMPLETED]:
            criterion.only_in_statuses = [TrialStatus.COMPLETED, TrialStatus.EARLY_STOPPED]
            changed += 1
    return changed


def set_acquisition_options(strategy: Any, optimizer_kwargs: Mapping[str, Any]) -> int:
    """Pass ``optimizer_kwargs`` to the acquisition optimiser of every BoTorch model node.

    Returns:
        How many generator specs now carry the options.
    """
    from ax.adapter.registry import Generators

    changed = 0
    for node in strategy.nodes_by_name.values():
        for spec in node.generator_specs:
            if spec.generator_enum is Generators.BOTORCH_MODULAR:
                options = spec.generator_gen_kwargs.setdefault("model_gen_options", {})
                options["optimizer_kwargs"] = dict(optimizer_kwargs)
                changed += 1
    return changed


def _transition_criteria(strategy: Any) -> list[Any]:
    return [c for node in strategy.nodes_by_name.values() for c in node.transition_criteria]


def _has_initialisation_budget(strategy: Any) -> bool:
    # Ax 1.3.1 drops its Sobol node (and with it every MinTrials) for budgets of 0 or 1.
    from ax.generation_strategy.transition_criterion import MinTrials

    return any(isinstance(c, MinTrials) for c in _transition_criteria(strategy))


def _warn_layout_changed(what: str) -> None:
    from importlib.metadata import version

    logger.warning(
        "Ax's default generation strategy changed: %s (ax-platform %s installed; "
        "searchers/_ax_adapter.py was checked against %s). Early-stopped trials may not count "
        "as observed, or acquisition_options may be ignored; run tests/searchers/test_ax_adapter.py.",
        what, version("ax-platform"), AX_VERSION_CHECKED,
    )
