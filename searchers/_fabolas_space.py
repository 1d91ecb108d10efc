"""The unit cube a Gaussian-process searcher works in, and the map to and from a Tune space.

Each tunable Tune domain becomes columns in ``[0, 1]``: one for a float or integer range (on
the log scale where the domain is log-uniform), one per category for ``tune.choice`` (one-hot,
since a candidate-set searcher never needs a continuous relaxation of the choice). Constants
are kept aside and merged into every decoded config.

This module imports no PyTorch or BoTorch, so the benchmark simulator can read
:data:`DEFAULT_FIDELITY_KEY` without loading them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from ray.tune.search.sample import Categorical, Domain, Float, Function, Integer, LogUniform, Normal, Quantized
from ray.tune.search.variant_generator import parse_spec_vars
from ray.tune.utils.util import unflatten_dict

from searchers._tune_space import _lookup, flatten_search_space

__all__ = ["DEFAULT_FIDELITY_KEY", "UnitCubeSpace"]

DEFAULT_FIDELITY_KEY = "data_fraction"
"""Config key under which a multi-fidelity searcher puts the training-set fraction it chose."""


@dataclass(frozen=True)
class _Column:
    """One tunable parameter: its name, the columns it occupies and how to decode them."""

    name: str
    kind: str  # "float", "int" or "choice"
    start: int
    width: int
    lower: float = 0.0
    upper: float = 1.0
    log: bool = False
    quantum: float | None = None
    categories: tuple = ()


class UnitCubeSpace:
    """A flat Tune search space encoded in ``[0, 1]^d``.

    ``u = (log x - log lower) / (log upper - log lower)`` for a log-scaled range, ``(x - lower) /
    (upper - lower)`` otherwise, and a one-hot block per categorical parameter.

    Example:
        >>> from ray import tune
        >>> space = UnitCubeSpace({"lr": tune.loguniform(1e-4, 1e-1), "act": tune.choice(["relu", "tanh"]),
        ...                        "epochs": 5})
        >>> space.dim
        3
        >>> space.decode(space.encode({"lr": 1e-2, "act": "tanh"}))
        {'epochs': 5, 'lr': 0.01, 'act': 'tanh'}

    Args:
        space: A (possibly nested) Tune search space.

    Raises:
        ValueError: for grid search, unbounded (``randn``), functional (``sample_from``) or
            empty domains, naming the parameter and the fix.
    """

    def __init__(self, space: Mapping[str, Any]) -> None:
        _, _, grid_vars = parse_spec_vars(dict(space))
        if grid_vars:
            names = ", ".join("/".join(map(str, path)) for path, _ in grid_vars)
            raise ValueError(
                f"space: {names} use tune.grid_search; use tune.choice([...]) for a model-based searcher."
            )
        self.constants: dict[str, Any] = {}
        self.columns: list[_Column] = []
        width = 0
        for name, value in flatten_search_space(space).items():
            if not isinstance(value, Domain):
                self.constants[name] = value
                continue
            column = _column(name, value, width)
            if column is None:  # an empty range: Tune always samples its one value
                self.constants[name] = _single_value(value)
                continue
            self.columns.append(column)
            width += column.width
        if not self.columns:
            raise ValueError(
                "space: got no tunable parameter (only constants); add a tune.uniform/loguniform/randint/choice domain."
            )
        self.dim = width

    @property
    def names(self) -> list[str]:
        """Flat names (``a/b`` for nested keys) of the tunable parameters."""
        return [column.name for column in self.columns]

    def sample(self, count: int, rng: np.random.Generator) -> np.ndarray:
        """``count x d`` uniform draws, snapped to valid points (integers rounded, one-hot blocks)."""
        points = rng.random((count, self.dim))
        return self.snap(points)

    def snap(self, points: np.ndarray) -> np.ndarray:
        """Rows moved onto the encoding of a real config (the decode-encode round trip, vectorised)."""
        points = np.clip(np.array(points, dtype=float, copy=True), 0.0, 1.0)
        for column in self.columns:
            block = points[:, column.start : column.start + column.width]
            if column.kind == "choice":
                hot = block.argmax(axis=1)
                block[:] = 0.0
                block[np.arange(len(block)), hot] = 1.0
            elif column.kind == "int" or column.quantum is not None:
                values = self._values(column, block[:, 0])
                block[:, 0] = self._units(column, values)
        return points

    def encode(self, config: Mapping[str, Any]) -> np.ndarray:
        """A config (nested or flat) as a ``d``-vector in ``[0, 1]``.

        Raises:
            ValueError: when a tunable parameter is missing or a category is unknown.
        """
        vector = np.zeros(self.dim)
        for column in self.columns:
            found, value = _lookup(config, column.name)
            if not found:
                raise ValueError(f"config: parameter {column.name!r} is missing from {dict(config)}; set every tunable parameter.")
            if column.kind == "choice":
                index = next((i for i, c in enumerate(column.categories) if c == value and type(c) is type(value)), None)
                if index is None:
                    raise ValueError(f"config.{column.name}: got {value!r}; use one of {list(column.categories)}.")
                vector[column.start + index] = 1.0
            else:
                vector[column.start] = float(self._units(column, np.array([float(value)]))[0])
        return vector

    def decode(self, vector: np.ndarray) -> dict[str, Any]:
        """A ``d``-vector in ``[0, 1]`` as the nested Tune config (constants included)."""
        vector = np.asarray(vector, dtype=float)
        flat = dict(self.constants)
        for column in self.columns:
            block = vector[column.start : column.start + column.width]
            if column.kind == "choice":
                flat[column.name] = column.categories[int(np.argmax(block))]
            else:
                value = self._values(column, np.array([block[0]]))[0]
                # 12 significant digits: exp(log(x)) must give back 0.01, not 0.010000000000000004.
                flat[column.name] = int(value) if column.kind == "int" else float(f"{value:.12g}")
        return unflatten_dict(flat, delimiter="/")

    @staticmethod
    def _values(column: _Column, units: np.ndarray) -> np.ndarray:
        units = np.clip(units, 0.0, 1.0)
        if column.log:
            values = np.exp(math.log(column.lower) + units * (math.log(column.upper) - math.log(column.lower)))
        else:
            values = column.lower + units * (column.upper - column.lower)
        if column.quantum is not None:
            q = column.quantum
            values = np.clip(np.round(values / q) * q, math.ceil(column.lower / q - 1e-9) * q,
                             math.floor(column.upper / q + 1e-9) * q)
        if column.kind == "int":
            values = np.clip(np.round(values), column.lower, column.upper)
        return values

    @staticmethod
    def _units(column: _Column, values: np.ndarray) -> np.ndarray:
        values = np.clip(values, column.lower, column.upper)
        if column.log:
            units = (np.log(values) - math.log(column.lower)) / (math.log(column.upper) - math.log(column.lower))
        else:
            units = (values - column.lower) / (column.upper - column.lower)
        return np.clip(units, 0.0, 1.0)


def _column(name: str, domain: Domain, start: int) -> _Column | None:
    """The encoding of one domain; ``None`` for a domain with a single value (then a constant)."""
    sampler = domain.get_sampler()
    quantum = None
    if isinstance(sampler, Quantized):
        quantum = float(sampler.q)
        sampler = sampler.get_sampler()
    if isinstance(domain, Function):
        raise ValueError(f"space.{name}: tune.sample_from cannot be modelled; use a bounded domain (tune.uniform, tune.choice).")
    if isinstance(sampler, Normal):
        raise ValueError(f"space.{name}: tune.randn is unbounded; use tune.uniform(lower, upper).")
    log = isinstance(sampler, LogUniform)
    if isinstance(domain, Categorical):
        categories = tuple(domain.categories)
        if not categories:
            raise ValueError(f"space.{name}: tune.choice([]) has no values; give at least one.")
        return _Column(name, "choice", start, len(categories), categories=categories)
    if isinstance(domain, Integer):
        # Tune's randint/lograndint never return ``upper``.
        lower, upper = float(domain.lower), float(domain.upper) - (1.0 if quantum in (None, 1.0) else 0.0)
        kind = "int"
    elif isinstance(domain, Float):
        lower, upper = float(domain.lower), float(domain.upper)
        kind = "float"
    else:
        raise ValueError(f"space.{name}: got unsupported domain {type(domain).__name__}; use uniform, loguniform, randint or choice.")
    if not (math.isfinite(lower) and math.isfinite(upper)) or upper < lower:
        raise ValueError(f"space.{name}: got bounds [{lower}, {upper}]; use finite bounds with lower <= upper.")
    if log and lower <= 0:
        raise ValueError(f"space.{name}: got a log scale with lower bound {lower}; use a positive lower bound.")
    if upper == lower:
        return None
    return _Column(name, kind, start, 1, lower=lower, upper=upper, log=log, quantum=quantum)


def _single_value(domain: Domain) -> Any:
    value = domain.lower
    return int(value) if isinstance(domain, Integer) else float(value)


