"""Choosing the next ``(x, s)`` of a Fabolas search: candidate sets scored by a cost-aware acquisition.

``score(x, s) = information about the optimum at s = 1 gained by evaluating f(x, s) / cost(x, s)``,
with BoTorch's ``qMultiFidelityMaxValueEntropy`` (``"mes"``, the default) or
``qMultiFidelityKnowledgeGradient`` (``"kg"``), both wrapped in ``InverseCostWeightedUtility``
and projecting to the target fraction with ``project_to_target_fidelity``.

MES is scored on a finite candidate set (random points, points near the best ones, each at a
geometric ladder of fractions), which keeps a suggestion to about a second at a hundred
observations; KG is optimised with few restarts and its result snapped onto the space.

With two objectives (``"hvkg"``, :func:`choose_next_pareto`) the score is a discrete
hypervolume knowledge gradient per unit of cost: how much the hypervolume of the front predicted
at ``s = 1`` over the evaluated configurations is expected to grow once ``f(x, s)`` is known.
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
from botorch.utils.sampling import draw_sobol_normal_samples
from torch import Tensor

from multiobjective import hypervolume_2d_batch, reference_point

__all__ = [
    "ACQUISITIONS",
    "PARETO_ACQUISITIONS",
    "candidate_set",
    "choose_next",
    "choose_next_pareto",
    "fidelity_ladder",
    "hypervolume_knowledge_gradient",
    "target_projection",
]

ACQUISITIONS = ("mes", "kg")
"""Acquisitions for one objective."""
PARETO_ACQUISITIONS = ("hvkg",)
"""Acquisitions for two objectives."""
HVKG_FANTASIES = 32
"""Quasi-random fantasised outcomes per candidate in the hypervolume knowledge gradient."""
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
    grid = _grid(configs, fidelities)
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
    return _best_free(grid, scores, exclude)


def _grid(configs: np.ndarray, fidelities: np.ndarray) -> Tensor:
    """Every candidate configuration at every fraction: ``(n * len(fidelities)) x (d + 1)``."""
    return torch.tensor(
        np.concatenate([np.column_stack([configs, np.full(len(configs), s)]) for s in fidelities]),
        dtype=torch.double,
    )


def _best_free(grid: Tensor, scores: Tensor, exclude: Tensor | None) -> tuple[np.ndarray, float]:
    """The best-scoring row of ``grid`` that is not (within 1e-6) one of ``exclude``, as ``(x, s)``."""
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


def hypervolume_knowledge_gradient(
    model: Any,
    designs: Tensor,
    candidates: Tensor,
    *,
    num_fantasies: int = HVKG_FANTASIES,
    seed: int = 0,
) -> Tensor:
    r"""Expected growth of the predicted front's hypervolume at ``s = 1`` from evaluating each candidate.

    For a candidate ``c = (x, s)`` the designs are ``D_c = designs + {(x, 1)}`` (what can be
    recommended once ``c`` is evaluated: the evaluated configurations and ``x``), all at full
    data. Observing ``y_c`` moves the posterior mean of objective ``j`` on ``D_c`` along
    ``b_j = Cov_j(D_c, c) / sqrt(Var_j(c) + noise_j)``, by ``z_j ~ N(0, 1)`` (the objectives'
    GPs are independent), so

    ``value(c) = E_z[HV(mu(D_c) + b z)] - HV(mu(D_c))``,

    ``HV`` the hypervolume of the front of the posterior means (maximisation form), its reference
    point fixed from the current means on ``designs``. This is BoTorch's
    ``qMultiFidelityHypervolumeKnowledgeGradient`` with its inner optimisation over the whole
    space replaced by a choice among ``D_c``, the way discrete knowledge gradient restricts
    single-objective KG (Frazier et al., 2009): exact per fantasy, and thousands of candidates
    score in a fraction of a second. The same quasi-random ``z`` serve every candidate (common
    random numbers), so candidates are compared on the same fantasies.

    Args:
        model: Two-output model over ``(x, s)`` (maximisation form), e.g. a two-output
            ``SingleTaskMultiFidelityGP``; pending points already conditioned on.
        designs: ``n x D`` evaluated configurations with the fraction (last column) at 1.
        candidates: ``k x D`` points ``(x, s)`` to score.
        num_fantasies: Fantasised outcomes per candidate.
        seed: Seed of the quasi-random fantasies.

    Returns:
        ``k`` expected hypervolume gains (in the objectives' units, multiplied).
    """
    full = candidates.clone()
    full[:, -1] = 1.0
    num_designs = designs.shape[0]
    means, slopes = [], []
    with torch.no_grad():
        for output in range(2):
            single = model.subset_output([output])
            joint = single.posterior(torch.cat([designs, candidates]))
            covariance = joint.distribution.lazy_covariance_matrix
            cross = covariance[:num_designs, num_designs:].to_dense()  # n x k
            pairs = single.posterior(torch.stack([full, candidates], dim=-2))  # k x 2 points
            pair_cov = pairs.distribution.covariance_matrix  # k x 2 x 2
            noisy = single.posterior(candidates.unsqueeze(-2), observation_noise=True).variance.reshape(-1)
            scale = noisy.clamp_min(1e-12).sqrt()
            design_mean = joint.mean[:num_designs, 0]
            means.append(torch.cat([design_mean.expand(len(candidates), -1), pairs.mean[:, 0, :]], dim=-1))
            slopes.append(torch.cat([cross.T, pair_cov[:, 0, 1:2]], dim=-1) / scale.unsqueeze(-1))
    mean = torch.stack(means, dim=-1)  # k x (n + 1) x 2
    slope = torch.stack(slopes, dim=-1)
    reference = torch.as_tensor(reference_point(mean[0, :num_designs].numpy()), dtype=mean.dtype)
    z = draw_sobol_normal_samples(2, num_fantasies, dtype=mean.dtype, seed=seed)  # f x 2
    fantasised = mean.unsqueeze(1) + slope.unsqueeze(1) * z[None, :, None, :]  # k x f x (n + 1) x 2
    gain = hypervolume_2d_batch(fantasised, reference).mean(dim=-1) - hypervolume_2d_batch(mean, reference)
    return gain


def choose_next_pareto(
    model: Any,
    cost_model: Any,
    configs: np.ndarray,
    fidelities: np.ndarray,
    *,
    designs: np.ndarray,
    x_pending: Tensor | None,
    exclude: Tensor | None,
    seed: int = 0,
) -> tuple[np.ndarray, float]:
    """The next ``(x, s)`` for two objectives: the most expected hypervolume gain at ``s = 1`` per unit of cost.

    ``score(x, s) = hypervolume_knowledge_gradient(x, s) / cost(x, s)``. Pending points enter as
    observations at their posterior mean (the kriging believer): the model's uncertainty shrinks
    where trials are running, so parallel workers are sent elsewhere, and they are never chosen
    again.

    Args:
        model: A fitted two-output ``SingleTaskMultiFidelityGP`` over ``(x, s)``, maximised.
        cost_model: A BoTorch ``DeterministicModel`` giving ``cost(x, s)``.
        configs: ``n x d`` candidate configurations in ``[0, 1]^d``.
        fidelities: The fractions each candidate is scored at.
        designs: ``m x d`` evaluated configurations (the recommendable set).
        x_pending: ``p x (d + 1)`` points being evaluated.
        exclude: ``k x (d + 1)`` points never to suggest again (pending and evaluated).
        seed: Seed of the fantasies.
    """
    grid = _grid(configs, fidelities)
    design_points = torch.tensor(np.column_stack([designs, np.ones(len(designs))]), dtype=torch.double)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if x_pending is not None and len(x_pending):
            with torch.no_grad():
                believed = model.posterior(x_pending).mean
            model = model.condition_on_observations(x_pending, believed)
        gains = torch.cat([
            hypervolume_knowledge_gradient(model, design_points, batch, seed=seed)
            for batch in grid.split(_SCORING_BATCH)
        ])
        with torch.no_grad():
            cost = cost_model.posterior(grid.unsqueeze(-2)).mean.reshape(-1).clamp_min(1e-12)
    scores = gains / cost
    return _best_free(grid, scores, exclude)
