"""How far `pool-mobo`'s model could take it: trials to find every Pareto model, given the rest of the pool.

`pool-mobo` learns one GP per objective from the results so far and evaluates the unevaluated
candidate most likely to be Pareto-optimal. The idealised searcher here chooses the same way,
but its beliefs about each unevaluated candidate are what a GP of the same class (rank-normal
scores of the results, the pool's features) predicts for it after fitting *every other candidate
of the pool*: the closed-form leave-one-out predictive (Rasmussen & Williams 2006, eq. 5.12)

    ``mu_i = y_i - [K^-1 (y - m)]_i / [K^-1]_ii``,  ``sigma_i^2 = 1 / [K^-1]_ii``,

``K`` the kernel matrix with the noise on its diagonal. Its trials-to-all is what `pool-mobo`
could reach if it learned as much from a few results as from the whole pool; the gap between
the two is room in *learning*, not in *choosing*. ``known`` makes objectives exactly known (an
oracle). The figures are a reference, not a bound: the leave-one-out predictive is not calibrated
for this use, and knowing one objective can make the search slower.

    python -m benchmarks.pool_ceiling --data ../shared/benchmarks --instances en-ja,ja-en,ru-en,zh-en \\
        --seeds 10 [--known bleu]

It prints one line per instance and, last, one JSON object: per instance the trials-to-all of
each seed, their mean, random search's expected value and the ratio; and the mean ratio.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from botorch.fit import fit_gpytorch_mll
from botorch.models import SingleTaskGP
from gpytorch.mlls import ExactMarginalLogLikelihood

from benchmarks.blackboxes import make_blackbox
from benchmarks.metrics import expected_random_iterations_to_all
from searchers._pool_encoding import rank_normal_scores
from searchers._threads import torch_thread_limit
from searchers.pool_multi_objective import non_dominated

__all__ = ["Beliefs", "beliefs", "idealised_trials_to_all", "loo_predictive", "main"]


def loo_predictive(features: np.ndarray, values: np.ndarray, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-out predictive mean and standard deviation of each row, one GP per column.

    Each column gets a ``SingleTaskGP`` (BoTorch's defaults, no outcome transform: pass
    standardised values) fitted by maximum marginal likelihood on every row; row ``i``'s
    predictive is that GP's posterior for ``y_i`` (noise included) conditioned on the other rows,
    with the same hyperparameters.

    Returns:
        ``(mean, sd)``, each shaped like ``values`` (``n x m``).
    """
    x = torch.tensor(np.asarray(features, dtype=float))
    values = np.asarray(values, dtype=float)
    mean, sd = np.empty_like(values), np.empty_like(values)
    for j in range(values.shape[1]):
        y = torch.tensor(values[:, j : j + 1])
        model = SingleTaskGP(x, y, outcome_transform=None)
        with torch_thread_limit(1), torch.random.fork_rng(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.manual_seed(seed)
            fit_gpytorch_mll(ExactMarginalLogLikelihood(model.likelihood, model))
        with torch.no_grad():
            kernel = model.covar_module(x).to_dense() + model.likelihood.noise * torch.eye(len(x), dtype=x.dtype)
            inverse = torch.linalg.inv(kernel)
            alpha = inverse @ (y.squeeze(-1) - model.mean_module.constant)
            diagonal = inverse.diagonal()
            mean[:, j] = (y.squeeze(-1) - alpha / diagonal).numpy()
            sd[:, j] = diagonal.rsqrt().numpy()
    return mean, sd


@dataclass(frozen=True)
class Beliefs:
    """What the idealised searcher knows: true scores, and the predictive of each unevaluated one."""

    scores: np.ndarray  # n x m, rank-normal scores of the true values, maximised
    mean: np.ndarray  # n x m
    sd: np.ndarray  # n x m; 0 where an objective is known
    pareto: np.ndarray  # indices of the Pareto-optimal candidates


def beliefs(blackbox, known: Sequence[str] = ()) -> Beliefs:
    """The leave-one-out beliefs for a pool blackbox (``candidate_features``, ``candidate_objectives``,
    ``known_pareto_indices``).

    Raises:
        ValueError: for a ``known`` name that is not one of the blackbox's objectives.
    """
    names = list(blackbox.objectives.names)
    unknown = [name for name in known if name not in names]
    if unknown:
        raise ValueError(f"known: {unknown} are not objectives of {blackbox!r}; choose from {names}.")
    table = blackbox.candidate_objectives()[names].to_numpy(dtype=float)
    scores = rank_normal_scores(blackbox.objectives.to_maximisation(table))
    mean, sd = loo_predictive(blackbox.candidate_features(), scores)
    for name in known:
        j = names.index(name)
        mean[:, j], sd[:, j] = scores[:, j], 0.0
    return Beliefs(scores, mean, sd, np.asarray(blackbox.known_pareto_indices(), dtype=int))


def idealised_trials_to_all(belief: Beliefs, *, seed: int, draws: int = 256) -> int:
    """Trials until every Pareto candidate is evaluated, choosing as `pool-mobo` does.

    Each step draws every unevaluated candidate ``draws`` times from its predictive (evaluated
    ones take their true scores), scores P(Pareto-optimal in the pool) as the share of draws in
    which it is non-dominated, and evaluates the most probable one (ties broken at random).
    ``pool-mobo`` estimates the same probability with less noise for two objectives
    (``prob_non_dominated_by_others``); this idealised searcher keeps the count, as measured.
    """
    rng = np.random.default_rng(seed)
    n = len(belief.scores)
    evaluated = np.zeros(n, dtype=bool)
    remaining = set(belief.pareto.tolist())
    for step in range(1, n + 1):
        noise = rng.standard_normal((draws, *belief.mean.shape))
        drawn = np.where(evaluated[:, None], belief.scores, belief.mean + belief.sd * noise)
        probability = non_dominated(torch.from_numpy(drawn)).double().mean(dim=0).numpy()
        probability[evaluated] = -1.0
        choice = int(rng.choice(np.flatnonzero(probability == probability.max())))
        evaluated[choice] = True
        remaining.discard(choice)
        if not remaining:
            return step
    raise AssertionError("every candidate was evaluated and a Pareto candidate is still missing")


def main(argv: Sequence[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.pool_ceiling", description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="the shared benchmarks folder (holding nmthpo/)")
    parser.add_argument("--benchmark", default="nmthpo", help="a pool benchmark (default nmthpo)")
    parser.add_argument("--instances", required=True, help="comma-separated, e.g. en-ja,ja-en,ru-en,zh-en")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--known", default="", help="comma-separated objectives known exactly (e.g. bleu)")
    parser.add_argument("--draws", type=int, default=256, help="posterior draws per step")
    args = parser.parse_args(argv)
    if args.seeds < 1 or args.draws < 1:
        parser.error("--seeds and --draws must be >= 1")
    known = [name for name in args.known.split(",") if name]
    report: dict = {"known": known, "instances": {}}
    for instance in [name for name in args.instances.split(",") if name]:
        try:
            blackbox = make_blackbox(args.benchmark, args.data, instance, None)
        except ValueError as error:  # unknown benchmark or instance: the message names the choices
            parser.error(str(error))
        if blackbox.candidates() is None:
            parser.error(f"{args.benchmark} {instance} has no candidate pool")
        try:
            belief = beliefs(blackbox, known)
        except ValueError as error:
            parser.error(str(error))
        trials = [idealised_trials_to_all(belief, seed=seed, draws=args.draws) for seed in range(args.seeds)]
        random = expected_random_iterations_to_all(len(belief.scores), len(belief.pareto))
        mean = float(np.mean(trials))
        report["instances"][instance] = {
            "trials_to_all": trials, "mean": mean, "random_expected": random, "ratio": mean / random,
        }
        print(f"{instance}: n={len(belief.scores)} k={len(belief.pareto)} trials to all {trials} "
              f"mean {mean:.1f} = {mean / random:.2f} of random's {random:.1f}", flush=True)
    report["mean_ratio"] = float(np.mean([row["ratio"] for row in report["instances"].values()]))
    print(json.dumps(report))
    return report


if __name__ == "__main__":
    main()
