"""NMT hyperparameter lookup tables (Zhang & Duh, TACL 2020) as a finite-pool blackbox.

Each language pair ``<pair>`` is four row-aligned whitespace-separated files: ``.hyps``
(hyperparameters), ``.hyps_scaled`` (the same in ``[0, 1]``), ``.evals`` (measurements) and
``.fronts`` (the published bleu/decode-time front). ``learning_curves.json`` adds the dev
perplexity at every checkpoint for most rows.

Modelling choices (the tables give no wall-clock training time):

* cost is counted in *updates*: a full evaluation costs ``num_updates``; training up to
  checkpoint ``t`` of a ``c``-checkpoint curve costs ``num_updates * t / c``;
* the fidelity is the checkpoint index (kind ``"epoch"``). Only dev perplexity is recorded at
  intermediate checkpoints, so a partial evaluation reports ``{"ppl", "cost"}`` and nothing
  else. ``ppl`` at checkpoint ``t`` is the best perplexity so far, because training keeps the
  best checkpoint (at the last checkpoint this equals the table's ``dev_ppl``). From checkpoint
  ``c`` on, training has already stopped early: the final values are returned at full cost;
* rows whose curve is missing or ambiguous answer every fidelity with their final values at
  full cost;
* the search space is a ``tune.choice`` over the values observed in the table for each
  hyperparameter (the grid the table was sampled from). Configs outside the table are answered
  by the nearest row in feature space.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmarks.blackboxes.base import Blackbox, Fidelity, select_objectives
from multiobjective import pareto_mask

HYPERPARAMETERS = ("bpe_symbols", "num_layers", "num_embed", "ff_num_hidden", "attention_heads", "initial_lr")
EVAL_COLUMNS = ("dev_bleu", "dev_gpu_time", "dev_ppl", "num_updates", "gpu_memory", "num_param")
# objective name -> (column of .evals, mode)
OBJECTIVES = {
    "bleu": ("dev_bleu", "max"),
    "decode_time": ("dev_gpu_time", "min"),
    "ppl": ("dev_ppl", "min"),
    "params": ("num_param", "min"),
    "gpu_memory": ("gpu_memory", "min"),
}
DEFAULT_OBJECTIVES = ("bleu", "decode_time")
TABLE_SUFFIXES = (".hyps", ".hyps_scaled", ".evals", ".fronts")
LEARNING_CURVES_FILE = "learning_curves.json"
# .hyps_scaled is printed with 3 decimals; perplexities with 6.
SCALED_TOLERANCE = 1e-3
PPL_TOLERANCE = 5e-7


def _table_dir(data_dir: str | Path) -> Path:
    data_dir = Path(data_dir)
    return data_dir / "nmthpo" if (data_dir / "nmthpo").is_dir() else data_dir


def available_instances(data_dir: str | Path) -> list[str]:
    """Language pairs in ``data_dir`` (the ``nmthpo`` folder or its parent) with all four files.

    Example:
        >>> available_instances("/work/shared/benchmarks")  # doctest: +SKIP
        ['en-ja', 'ja-en', 'ru-en', 'zh-en']
    """
    directory = _table_dir(data_dir)
    pairs = {path.name[: -len(".evals")] for path in directory.glob("*.evals")}
    return sorted(p for p in pairs if all((directory / f"{p}{s}").is_file() for s in TABLE_SUFFIXES))


def _load_matrix(path: Path, columns: int | None) -> np.ndarray:
    matrix = np.loadtxt(path, ndmin=2)
    if columns is not None and matrix.shape[1] != columns:
        raise ValueError(f"{path} has {matrix.shape[1]} columns; expected {columns}.")
    return matrix


@lru_cache(maxsize=8)
def _load_learning_curves(path: Path) -> tuple[dict, ...]:
    if not path.is_file():
        return ()
    with path.open() as handle:
        return tuple(json.load(handle))


def _match_curves(pair: str, dev_ppl: np.ndarray, records: Sequence[dict]) -> list[list[float] | None]:
    """Join curves to rows on ``dataset_name`` ending in ``-<pair>`` and optimum == ``dev_ppl``.

    A row matched by records whose curves differ is ambiguous and gets ``None``: the tables
    hold rows that share ``dev_ppl`` (e.g. runs differing only in a hyperparameter that the
    curve records do not distinguish), and guessing would attach the wrong learning curve.
    """
    candidates = [r for r in records if str(r.get("dataset_name", "")).endswith("-" + pair)]
    curves: list[list[float] | None] = []
    for ppl in dev_ppl:
        found = {
            tuple(float(x) for x in r["perplexity_curve"])
            for r in candidates
            if math.isclose(float(r["perplexity_optimal"]), float(ppl), rel_tol=1e-9, abs_tol=PPL_TOLERANCE)
        }
        curves.append(list(found.pop()) if len(found) == 1 else None)
    return curves


class _ColumnScaling:
    """Maps one hyperparameter to ``[0, 1]`` the way the table's ``.hyps_scaled`` does.

    Tries min-max of the raw values, then min-max of their logarithm, and keeps the first that
    reproduces the published scaled column; otherwise interpolates the published mapping.
    """

    def __init__(self, values: np.ndarray, scaled: np.ndarray) -> None:
        self.kind = "interpolated"
        transforms = [("linear", lambda x: x)]
        if np.all(values > 0):
            transforms.append(("log", np.log))
        for kind, transform in transforms:
            transformed = transform(values)
            low, high = transformed.min(), transformed.max()
            if high > low and np.allclose((transformed - low) / (high - low), scaled, atol=SCALED_TOLERANCE):
                self.kind, self._transform, self._low, self._high = kind, transform, low, high
                return
        distinct = np.unique(values)
        self._points = distinct
        self._targets = np.array([scaled[values == v].mean() for v in distinct])

    def __call__(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=float)
        if self.kind == "interpolated":
            return np.clip(np.interp(values, self._points, self._targets), 0.0, 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            transformed = self._transform(values)
        return np.clip((transformed - self._low) / (self._high - self._low), 0.0, 1.0)


class NMTBlackbox(Blackbox):
    """One language pair of the NMT tables: a pool of trained Transformers to choose among.

    ``cost = num_updates * t / len(curve)`` at checkpoint ``t``; ``num_updates`` when full.

    Args:
        data_dir: the ``nmthpo`` folder (or its parent) holding ``<instance>.*`` files.
        instance: the language pair, e.g. ``"zh-en"`` (see :func:`available_instances`).
        objectives: names from ``bleu`` (max), ``decode_time`` (min), ``ppl`` (min), ``params``
            (min), ``gpu_memory`` (min; rows with gpu_memory 0 are then dropped from the pool).

    Example:
        >>> box = NMTBlackbox("/work/shared/benchmarks", "zh-en")  # doctest: +SKIP
        >>> box.evaluate_candidate(box.known_pareto_indices()[0])  # doctest: +SKIP
        {'bleu': 13.92, 'decode_time': 200.5678, 'ppl': 26.444219, 'cost': 38000.0}
    """

    name = "nmthpo"

    def __init__(
        self,
        data_dir: str | Path,
        instance: str,
        objectives: str | Sequence[str] | Mapping[str, str] | None = DEFAULT_OBJECTIVES,
    ) -> None:
        self._init_args = (str(data_dir), instance, objectives)
        directory = _table_dir(data_dir)
        pairs = available_instances(directory)
        if instance not in pairs:
            raise ValueError(f"instance={instance!r} has no tables in {directory}; available: {pairs}.")
        self.instance = instance
        self.objectives = select_objectives(
            objectives, {name: mode for name, (_, mode) in OBJECTIVES.items()}, DEFAULT_OBJECTIVES
        )
        hyps = _load_matrix(directory / f"{instance}.hyps", len(HYPERPARAMETERS))
        scaled = _load_matrix(directory / f"{instance}.hyps_scaled", len(HYPERPARAMETERS))
        evals = _load_matrix(directory / f"{instance}.evals", len(EVAL_COLUMNS))
        fronts = np.loadtxt(directory / f"{instance}.fronts", ndmin=1)
        if not len(hyps) == len(scaled) == len(evals) == len(fronts):
            raise ValueError(
                f"{instance} files are not row-aligned: {len(hyps)} .hyps, {len(scaled)} .hyps_scaled, "
                f"{len(evals)} .evals, {len(fronts)} .fronts rows."
            )
        self._scalings = [_ColumnScaling(hyps[:, j], scaled[:, j]) for j in range(hyps.shape[1])]
        curves = _match_curves(instance, evals[:, EVAL_COLUMNS.index("dev_ppl")],
                               _load_learning_curves(directory / LEARNING_CURVES_FILE))

        keep = np.ones(len(evals), dtype=bool)
        if "gpu_memory" in self.objectives:
            # The dataset authors' instruction: 0 means the memory was not measured.
            keep &= evals[:, EVAL_COLUMNS.index("gpu_memory")] != 0
        #: Row of each candidate in the original files (candidates are re-numbered 0..n-1).
        self.table_rows = np.flatnonzero(keep)
        self.published_front = fronts[keep].astype(bool)
        self._evals = pd.DataFrame(evals[keep], columns=EVAL_COLUMNS)
        self._curves = [curves[row] for row in self.table_rows]
        self._candidates = pd.DataFrame(
            {
                name: hyps[keep, j].astype(int) if np.all(hyps[:, j] == np.round(hyps[:, j])) else hyps[keep, j]
                for j, name in enumerate(HYPERPARAMETERS)
            }
        )
        self._features = self._scale(self._candidates.to_numpy(dtype=float))
        self._pareto: list[int] | None = None
        lengths = [len(curve) for curve in self._curves if curve]
        self.fidelity = (
            Fidelity("checkpoint", 1.0, float(max(lengths)), "epoch", [float(t) for t in range(1, max(lengths) + 1)])
            if lengths
            else None
        )

    # ----------------------------------------------------------------------------- pool
    def candidates(self) -> pd.DataFrame:
        return self._candidates.copy()

    def candidate_features(self) -> np.ndarray:
        return self._features.copy()

    def candidate_objectives(self) -> pd.DataFrame:
        return pd.DataFrame({name: self._evals[OBJECTIVES[name][0]] for name in self.objectives})

    def evaluations(self) -> pd.DataFrame:
        """All ``.evals`` columns of the pool (row ``i`` is candidate ``i``)."""
        return self._evals.copy()

    def known_pareto_indices(self) -> list[int]:
        """Candidates whose objective vector no other candidate dominates.

        Exact ties are all kept (``deduplicate=False``): two configurations with identical
        objective values are both Pareto-optimal models a user may want to find.
        """
        if self._pareto is None:
            values = self.objectives.to_maximisation(self.candidate_objectives().to_numpy(dtype=float))
            self._pareto = [int(i) for i in np.flatnonzero(pareto_mask(values))]
        return list(self._pareto)

    def objective_bounds(self) -> dict[str, tuple[float, float]]:
        table = self.candidate_objectives()
        return {name: (float(table[name].min()), float(table[name].max())) for name in self.objectives}

    def curve_length(self, index: int) -> int | None:
        """Number of checkpoints recorded for candidate ``index`` (``None``: no curve)."""
        curve = self._curves[self._check_index(index)]
        return len(curve) if curve else None

    def full_fidelity(self, index: int | None = None) -> float | None:
        if self.fidelity is None:
            return None
        if index is None:
            return self.fidelity.max
        length = self.curve_length(index)
        return float(length) if length else self.fidelity.min

    def intermediate_metric(self) -> tuple[str, str] | None:
        """``("ppl", "min")``: dev perplexity is the only metric recorded at every checkpoint."""
        return None if self.fidelity is None else ("ppl", OBJECTIVES["ppl"][1])

    def intermediate_objectives(self) -> dict[str, str]:
        """``{"ppl": "min"}``: BLEU and decode time exist for the final model only, so a
        multi-objective scheduler ranks checkpoints on dev perplexity alone."""
        return {"ppl": OBJECTIVES["ppl"][1]}

    def learning_curve(self, index: int) -> list[dict[str, float]] | None:
        """Per checkpoint: raw dev ``ppl``, ``best_ppl`` so far and the ``cost`` to get there."""
        curve = self._curves[self._check_index(index)]
        if not curve:
            return None
        updates = float(self._evals.at[index, "num_updates"])
        best = np.minimum.accumulate(curve)
        return [
            {"checkpoint": float(t), "ppl": float(curve[t - 1]), "best_ppl": float(best[t - 1]),
             "cost": updates * t / len(curve)}
            for t in range(1, len(curve) + 1)
        ]

    def evaluate_candidate(self, index: int, fidelity: float | None = None) -> dict[str, float]:
        """Final values at full cost, or ``{"ppl", "cost"}`` at a checkpoint before the curve ends.

        Without any learning curve (``fidelity is None``) the ``fidelity`` argument is ignored.
        """
        index = self._check_index(index)
        row = self._evals.iloc[index]
        curve = self._curves[index]
        if fidelity is not None and self.fidelity is not None:
            checkpoint = int(self.fidelity.validate(fidelity))
            if curve and checkpoint < len(curve):
                return {
                    "ppl": float(min(curve[:checkpoint])),
                    "cost": float(row["num_updates"]) * checkpoint / len(curve),
                }
        result = {name: float(row[OBJECTIVES[name][0]]) for name in self.objectives}
        result.setdefault("ppl", float(row["dev_ppl"]))
        result["cost"] = float(row["num_updates"])
        return result

    # ----------------------------------------------------------------------------- configs
    def __reduce__(self) -> tuple[type, tuple]:
        # Rebuilt from the tables, so a blackbox crosses into benchmark worker processes.
        return type(self), self._init_args

    def search_space(self) -> dict[str, Any]:
        from ray import tune

        return {name: tune.choice(sorted(self._candidates[name].unique().tolist())) for name in HYPERPARAMETERS}

    def features_of(self, config: Mapping[str, Any]) -> np.ndarray:
        missing = [name for name in HYPERPARAMETERS if name not in config]
        if missing:
            raise KeyError(f"config is missing hyperparameters {missing}; expected {list(HYPERPARAMETERS)}.")
        return self._scale(np.array([[float(config[name]) for name in HYPERPARAMETERS]]))[0]

    def candidate_index_of(self, config: Mapping[str, Any]) -> int:
        """The candidate equal to ``config``, else the nearest one in feature space."""
        features = self.features_of(config)
        return int(np.argmin(((self._features - features) ** 2).sum(axis=1)))

    def evaluate(self, config: Mapping[str, Any], fidelity: float | None = None) -> dict[str, float]:
        return self.evaluate_candidate(self.candidate_index_of(config), fidelity)

    # ----------------------------------------------------------------------------- helpers
    def _scale(self, values: np.ndarray) -> np.ndarray:
        return np.column_stack([scale(values[:, j]) for j, scale in enumerate(self._scalings)])

    def _check_index(self, index: int) -> int:
        if not 0 <= int(index) < len(self._candidates) or int(index) != index:
            raise IndexError(f"candidate index={index} is outside [0, {len(self._candidates) - 1}].")
        return int(index)
