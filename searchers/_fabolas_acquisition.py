"""Choosing the next ``(x, s)`` of a Fabolas search: candidate sets scored by a cost-aware acquisition.

``score(x, s) = information about the optimum at s = 1 gained by evaluating f(x, s) / cost(x, s)``,
with BoTorch's ``qMultiFidelityMaxValueEntropy`` (``"mes"``, the default) or
``qMultiFidelityKnowledgeGradient`` (``"kg"``), both wrapped in ``InverseCostWeightedUtility``
and projecting to the target fraction with ``project_to_target_fidelity``.

MES is scored on a finite candidate set (random points, points near the best ones, each at a
geometric ladder of fractions), which keeps a suggestion to about a second at a hundred
observations; KG is optimised with few restarts and its result snapped onto the space.
"""

from __future__ import annotations

import functools
import warnings
from typing import Any, Callable

import numpy as np
import torch
from botorch.acquisition import qMultiFidelityKnowledgeGradient, qMultiFidelityMaxValueEntropy
from botorch.acquisition.cost_aware import InverseCostWeightedUtility
from botorch.acquisition.utils import project_to_target_fidelity
from botorch.optim import optimize_acqf
from torch import Tensor

__all__ = ["ACQUISITIONS", "candidate_set", "choose_next", "fidelity_ladder", "target_projection"]

ACQUISITIONS = ("mes", "kg")
_SCORING_BATCH = 1024
_PENDING_FANTASIES = 2


def fidelity_ladder(min_fidelity: float, levels: int) -> np.ndarray:
    """``levels`` fractions from ``min_fidelity`` to 1, equally spaced on the log scale.

    Example:
        >>> fidelity_ladder(0.125, 4).tolist()
        [0.125, 0.25, 0.5, 1.0]
    """
    if min_fidelity >= 1.0 or levels < 2:
        return np.array([1.0])
    ladder = np.array([float(f"{v:.12g}") for v in np.exp(np.linspace(np.log(min_fidelity), 0.0, levels))])
    ladder[0], ladder[-1] = min_fidelity, 1.0
    return ladder


def target_projection(dim: int) -> Callable[[Tensor], Tensor]:
    """``X -> X`` with the fraction (the last of ``dim`` columns) set to 1: BoTorch's ``project``."""
    return functools.partial(project_to_target_fidelity, target_fidelities={dim - 1: 1.0}, d=dim)


def candidate_set(
    space: Any, rng: np.random.Generator, count: int, anchors: np.ndarray, spread: float = 0.08
) -> np.ndarray:
    """``count`` uniform configurations plus Gaussian steps around each of the ``anchors`` (rows in ``[0, 1]^d``).

    The local half finds the refinements a purely random set misses once the model is sharp.
    """
    points = [space.sample(count, rng)]
    if len(anchors):
        per_anchor = max(1, count // (2 * len(anchors)))
        for anchor in anchors:
            steps = rng.normal(0.0, spread, size=(per_anchor, space.dim))
            points.append(space.snap(anchor + steps))
    return np.concatenate(points)


def choose_next(
    kind: str,
    model: Any,
    cost_model: Any,
    configs: np.ndarray,
    fidelities: np.ndarray,
    *,
    x_pending: Tensor | None,
    exclude: Tensor | None,
    best_value: float,
    min_fidelity: float,
    snap: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, float]:
    """The next ``(x, s)``: the best-scoring candidate not already pending or evaluated.

    Args:
        kind: ``"mes"`` or ``"kg"``.
        model: A fitted ``SingleTaskMultiFidelityGP`` over ``(x, s)``, maximised.
        cost_model: A BoTorch ``DeterministicModel`` giving ``cost(x, s)``.
        configs: ``n x d`` candidate configurations in ``[0, 1]^d``.
        fidelities: The fractions each candidate is scored at.
        x_pending: ``m x (d + 1)`` points being evaluated (fantasised by the acquisition).
        exclude: ``k x (d + 1)`` points never to suggest again (pending and evaluated).
        best_value: Best posterior mean at ``s = 1`` (KG's current value).
        min_fidelity: Lower bound of the fraction (KG's box).
        snap: Maps rows in ``[0, 1]^d`` onto valid configurations (KG's continuous optimum).
    """
    dim = configs.shape[1] + 1
    utility = InverseCostWeightedUtility(cost_model=cost_model, use_mean=True)
    project = target_projection(dim)
    grid = torch.tensor(
        np.concatenate([np.column_stack([configs, np.full(len(configs), s)]) for s in fidelities]),
        dtype=torch.double,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "kg":
            return _knowledge_gradient(model, utility, project, dim, x_pending, best_value, min_fidelity, snap)
        acquisition = qMultiFidelityMaxValueEntropy(
            model,
            candidate_set=torch.tensor(configs, dtype=torch.double),
            # Pending points act through the fantasy models' smaller posterior variance, which
            # every fantasy shares; two keep a suggestion with 8 pending trials near 1 s.
            num_fantasies=_PENDING_FANTASIES,
            num_mv_samples=10,
            num_y_samples=64,
            X_pending=x_pending,
            cost_aware_utility=utility,
            project=project,
        )
        with torch.no_grad():
            scores = torch.cat([acquisition(batch.unsqueeze(1)) for batch in grid.split(_SCORING_BATCH)])
    if exclude is not None and len(exclude):
        taken = torch.cdist(grid, exclude).min(dim=1).values < 1e-6
        scores[taken] = -torch.inf
    scores[~torch.isfinite(scores)] = -torch.inf
    best = int(scores.argmax())
    return grid[best, :-1].numpy(), float(grid[best, -1])


def _knowledge_gradient(
    model: Any, utility: Any, project: Callable, dim: int, x_pending: Tensor | None,
    best_value: float, min_fidelity: float, snap: Callable[[np.ndarray], np.ndarray],
) -> tuple[np.ndarray, float]:
    acquisition = qMultiFidelityKnowledgeGradient(
        model,
        num_fantasies=16,
        current_value=torch.tensor(best_value, dtype=torch.double),
        cost_aware_utility=utility,
        project=project,
        X_pending=x_pending,
    )
    bounds = torch.zeros(2, dim, dtype=torch.double)
    bounds[1] = 1.0
    bounds[0, -1] = min_fidelity
    candidate, _ = optimize_acqf(
        acquisition, bounds=bounds, q=1, num_restarts=2, raw_samples=64, options={"maxiter": 30, "batch_limit": 8}
    )
    point = candidate.detach().numpy()[0]
    return snap(point[None, :-1])[0], float(np.clip(point[-1], min_fidelity, 1.0))
