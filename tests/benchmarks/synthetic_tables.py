"""Synthetic benchmarks for the runner, CLI and report tests, so they run without the shared data.

``write_nmt_tables`` writes small NMT-format tables (``.hyps``, ``.hyps_scaled``, ``.evals``,
``.fronts``, learning curves) for the real ``NMTBlackbox`` code path, under language-pair names
no real table uses; ``Quadratic`` is a surrogate-style blackbox without a pool.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from botorch.utils.multi_objective.pareto import is_non_dominated
from ray import tune

from benchmarks.blackboxes.base import Blackbox, Fidelity

SYNTHETIC_PAIR = "qq-zz"
"""The pair of the shared ``tables`` fixture (``tests/benchmarks/conftest.py``); no real table uses it."""


def write_nmt_tables(
    directory: Path, pair: str = SYNTHETIC_PAIR, rows: int = 40, seed: int = 0, curves: bool = True
) -> Path:
    """Writes ``rows`` random models of pair ``pair`` into ``directory/nmthpo``; returns ``directory``."""
    rng = np.random.default_rng(seed)
    hyps = np.column_stack([
        rng.choice([10000, 30000, 50000], rows),  # bpe_symbols
        rng.choice([2, 4, 6], rows),  # num_layers
        rng.choice([256, 512, 1024], rows),  # num_embed
        rng.choice([1024, 2048], rows),  # ff_num_hidden
        rng.choice([8, 16], rows),  # attention_heads
        rng.choice([0.0003, 0.0006, 0.001], rows),  # initial_lr
    ]).astype(float)
    low, high = hyps.min(axis=0), hyps.max(axis=0)
    scaled = (hyps - low) / np.where(high > low, high - low, 1.0)
    bleu = np.round(10 + 0.004 * hyps[:, 2] + 2 * rng.random(rows), 2)
    decode = np.round(40 + 0.05 * hyps[:, 2] * hyps[:, 1] / 4 + 10 * rng.random(rows), 4)
    ppl = np.round(20 + 10 * rng.random(rows), 6)
    updates = rng.integers(10, 50, rows) * 1000.0
    evals = np.column_stack([bleu, decode, ppl, updates, 1000 + 10 * hyps[:, 2], 1e4 * hyps[:, 2]])
    front = is_non_dominated(torch.tensor(np.column_stack([bleu, -decode])), deduplicate=False).numpy()

    folder = Path(directory) / "nmthpo"
    folder.mkdir(parents=True, exist_ok=True)
    np.savetxt(folder / f"{pair}.hyps", hyps, fmt="%g")
    np.savetxt(folder / f"{pair}.hyps_scaled", scaled, fmt="%.3f")
    np.savetxt(folder / f"{pair}.evals", evals, fmt="%.6f")
    np.savetxt(folder / f"{pair}.fronts", front.astype(int), fmt="%d")
    if curves:
        records = []
        for value in ppl:
            length = int(rng.integers(4, 10))
            curve = list(np.round(value + np.linspace(30.0, 0.0, length), 6))
            records.append({"dataset_name": f"synthetic-{pair}", "perplexity_curve": curve,
                            "perplexity_optimal": float(value)})
        (folder / "learning_curves.json").write_text(json.dumps(records))
    return Path(directory)


class Quadratic(Blackbox):
    """Surrogate-style single objective ``loss = (x - 0.3)^2 + 1 / epoch``; no pool."""

    name, instance = "quadratic", "any"

    def __init__(self, with_fidelity: bool = True) -> None:
        self.objectives = {"loss": "min"}
        self.fidelity = Fidelity("epoch", 1, 9, "epoch", [float(e) for e in range(1, 10)]) if with_fidelity else None

    def search_space(self) -> dict:
        return {"x": tune.uniform(0.0, 1.0)}

    def evaluate(self, config, fidelity=None) -> dict:
        epoch = 9.0 if fidelity is None else float(fidelity)
        return {"loss": (config["x"] - 0.3) ** 2 + 1.0 / epoch, "cost": 2.0 * epoch}

    def features_of(self, config) -> np.ndarray:
        return np.array([config["x"]])

    def objective_bounds(self) -> dict:
        return {"loss": (1.0 / 9.0, 0.49 + 1.0 / 9.0)}
