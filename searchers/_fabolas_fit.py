"""Fitting a small GP quickly: hyperparameters warm-started from the previous fit.

A searcher conditions its Gaussian processes on every new result, but the hyperparameters barely
move between two results: :func:`needs_refit` optimises them again only when the data grew by
about a tenth since the last optimisation, and :func:`fit_warm` starts L-BFGS from the last
optimum with few iterations. Together they keep a suggestion within about a second at a hundred
observations on one core, where a cold fit with restarts after every result takes several.
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import torch
from botorch.fit import fit_gpytorch_mll
from gpytorch.mlls import ExactMarginalLogLikelihood

__all__ = ["fit_warm", "needs_refit"]

WARM_MAXITER = 25
"""L-BFGS iterations of a warm-started fit (a cold fit runs to convergence)."""
ALWAYS_REFIT_BELOW = 20
"""Below this many observations the hyperparameters are optimised after every result."""


def needs_refit(observations: int, at_last_fit: int) -> bool:
    """Whether to optimise the hyperparameters again: always below :data:`ALWAYS_REFIT_BELOW`
    observations, then once the data grew by a tenth (every 10 results at 100).

    Example:
        >>> needs_refit(12, 11), needs_refit(100, 95), needs_refit(100, 90)
        (True, False, True)
    """
    return observations < ALWAYS_REFIT_BELOW or observations - at_last_fit >= max(1, observations // 10)


def fit_warm(
    model: Any, previous: Mapping[str, torch.Tensor] | None = None, optimise: bool = True
) -> dict[str, torch.Tensor]:
    """Fit ``model``'s hyperparameters by maximum marginal likelihood, starting from ``previous``.

    With ``optimise=False`` (and ``previous`` given) the model only takes ``previous`` and
    conditions on its new training data.

    ``previous`` is what an earlier call returned: the hyperparameters only, never the training
    data nor the outcome transform's statistics, which belong to the new data.

    Example:
        >>> from botorch.models import SingleTaskGP
        >>> train_x = torch.rand(8, 2, dtype=torch.double)
        >>> state = fit_warm(SingleTaskGP(train_x, train_x.sum(-1, keepdim=True)))
        >>> state = fit_warm(SingleTaskGP(train_x, train_x.prod(-1, keepdim=True)), state)
        >>> any("lengthscale" in name for name in state)
        True

    Returns:
        The fitted hyperparameters, to pass as ``previous`` next time.
    """
    options: dict[str, Any] = {}
    if previous:
        current = model.state_dict()
        compatible = {
            name: value for name, value in previous.items()
            if name in current and current[name].shape == value.shape
        }
        model.load_state_dict(compatible, strict=False)
        options = {"optimizer_kwargs": {"options": {"maxiter": WARM_MAXITER}}}
        if not optimise:
            model.eval()
            return dict(previous)
    mll = ExactMarginalLogLikelihood(model.likelihood, model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notices of a capped L-BFGS are expected
        try:
            fit_gpytorch_mll(mll, **options)
        except Exception:  # a warm start in a bad basin: retry cold, with BoTorch's restarts
            if not previous:
                raise
            return fit_warm(model, None)
    model.eval()
    return {
        name: value.detach().clone() for name, value in model.state_dict().items()
        if _is_hyperparameter(name)
    }


def _is_hyperparameter(name: str) -> bool:
    return not (name.startswith("outcome_transform") or name.startswith("input_transform") or "train_" in name)
