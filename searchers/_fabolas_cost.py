"""The cost of an evaluation as a function of the configuration and the training-set fraction.

Fabolas (Klein et al., 2017) weighs the information an evaluation brings by what it costs, so it
needs ``cost(x, s)`` before running it. :func:`fit_cost_model` learns it from the measured costs
of finished trials: ``log cost`` is a trend in ``log s`` (training time grows with the data) plus
a Gaussian process over ``(x, s)`` for what the configuration adds (more trees, deeper nets).
Before there are enough measurements, an affine prior in ``s`` stands in.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import torch
from botorch.models import SingleTaskGP
from botorch.models.cost import AffineFidelityCostModel
from botorch.models.deterministic import DeterministicModel
from botorch.models.transforms.outcome import Standardize
from torch import Tensor

from searchers._fabolas_fit import fit_warm

__all__ = ["LogCostModel", "fit_cost_model"]

MIN_COST_OBSERVATIONS = 3
"""Measured costs needed before the learned model replaces the affine prior."""
MIN_RESIDUAL_OBSERVATIONS = 8
"""Measured costs needed before a GP models what the configuration adds to the trend."""
_SLOPE_PRIOR, _SLOPE_PRECISION = 1.0, 2.0  # cost proportional to s until the data say otherwise


class LogCostModel(DeterministicModel):
    """``cost(x, s) = exp(a + b * log s + r(x, s))``, ``r`` the posterior mean of a GP on residuals.

    ``a`` and ``b`` come from a ridge regression of the measured log costs on ``log s`` (``b``
    shrunk towards 1, cost proportional to data, and kept ``>= 0``); the GP ``r`` models what
    the configuration adds. Build it with :func:`fit_cost_model`.

    Example:
        >>> train_x = torch.tensor([[0.2, 0.1], [0.7, 0.25], [0.4, 0.5], [0.9, 1.0]], dtype=torch.double)
        >>> model = LogCostModel(intercept=0.0, slope=1.0, fidelity_dim=1)
        >>> model(torch.tensor([[[0.5, 0.5]]], dtype=torch.double)).item()
        0.5

    Args:
        intercept: ``a``.
        slope: ``b``.
        fidelity_dim: Column of ``s`` in the inputs.
        residual: A fitted single-output GP over all input columns, or ``None``.
    """

    _num_outputs = 1

    def __init__(self, intercept: float, slope: float, fidelity_dim: int, residual: Any = None) -> None:
        super().__init__()
        self.intercept = float(intercept)
        self.slope = float(slope)
        self.fidelity_dim = int(fidelity_dim)
        self.residual = residual

    def forward(self, X: Tensor) -> Tensor:
        s = X[..., self.fidelity_dim].clamp_min(1e-6)
        log_cost = self.intercept + self.slope * torch.log(s)
        if self.residual is not None:
            with torch.no_grad():
                log_cost = log_cost + self.residual.posterior(X).mean[..., 0]
        return torch.exp(log_cost).unsqueeze(-1)


def fit_cost_model(
    train_x: Tensor,
    costs: Tensor,
    fidelity_dim: int,
    *,
    prior_fixed_cost: float = 0.1,
    previous: Mapping[str, Tensor] | None = None,
    optimise: bool = True,
) -> tuple[DeterministicModel, dict[str, Tensor] | None]:
    """A cost model for the acquisition, and the residual GP's hyperparameters (for warm starts).

    ``cost(s) = prior_fixed_cost + s`` (an ``AffineFidelityCostModel``) with fewer than
    :data:`MIN_COST_OBSERVATIONS` costs; a :class:`LogCostModel` after.

    Args:
        train_x: ``n x D`` inputs, the training-set fraction in column ``fidelity_dim``.
        costs: ``n`` measured costs (seconds, GPU-seconds, ...); values ``<= 0`` are raised to a
            small positive floor, since a log cost must exist.
        fidelity_dim: Column of the fraction.
        prior_fixed_cost: Cost of an evaluation at ``s = 0`` relative to one at ``s = 1`` minus it,
            before data.
        previous: Hyperparameters returned by an earlier call.
        optimise: ``False`` reuses ``previous`` without optimising (see ``needs_refit``).

    Example:
        >>> s = torch.tensor([0.05, 0.1, 0.2, 0.4], dtype=torch.double)
        >>> train_x = torch.stack([torch.rand(4, dtype=torch.double), s], dim=-1)
        >>> model, _ = fit_cost_model(train_x, 10 * s, fidelity_dim=1)
        >>> round(model(torch.tensor([[[0.5, 1.0]]], dtype=torch.double)).item(), 1)
        10.0
    """
    if costs.numel() < MIN_COST_OBSERVATIONS:
        return AffineFidelityCostModel({fidelity_dim: 1.0}, fixed_cost=prior_fixed_cost).to(train_x), None
    positive = costs[costs > 0]
    floor = 1e-3 * (positive.median().item() if positive.numel() else 1.0)
    log_cost = torch.log(costs.clamp_min(floor if floor > 0 else 1e-9))
    log_s = torch.log(train_x[:, fidelity_dim].clamp_min(1e-6))
    intercept, slope = _ridge_trend(log_s, log_cost)
    residuals = log_cost - intercept - slope * log_s
    residual_model, state = None, None
    if costs.numel() >= MIN_RESIDUAL_OBSERVATIONS and residuals.std() > 1e-6:
        residual_model = SingleTaskGP(train_x, residuals.unsqueeze(-1), outcome_transform=Standardize(m=1))
        state = fit_warm(residual_model, previous, optimise=optimise)
    return LogCostModel(intercept, slope, fidelity_dim, residual_model), state


def _ridge_trend(log_s: Tensor, log_cost: Tensor) -> tuple[float, float]:
    """``(a, b)`` minimising ``sum (log c - a - b log s)^2 + precision * (b - 1)^2``, then ``b >= 0``."""
    centred_s = log_s - log_s.mean()
    spread = float((centred_s**2).sum())
    covariance = float((centred_s * (log_cost - log_cost.mean())).sum())
    slope = (covariance + _SLOPE_PRECISION * _SLOPE_PRIOR) / (spread + _SLOPE_PRECISION)
    slope = max(slope, 0.0)
    intercept = float(log_cost.mean()) - slope * float(log_s.mean())
    if not math.isfinite(intercept):
        intercept = 0.0
    return intercept, slope
