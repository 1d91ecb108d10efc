"""The objectives of an experiment: which metrics, which direction, which bounds.

One :class:`Objectives` value travels from the experiment spec to the searchers, the schedulers,
the results tables, the plots and the benchmark metrics, so the names and directions are checked
here once and nowhere else.

Example:
    >>> objectives = Objectives.from_spec({"acc": "max", "latency": "min"}, thresholds={"latency": 5})
    >>> objectives.names, objectives.modes
    (('acc', 'latency'), ('max', 'min'))
    >>> objectives.validate({"acc": 0.9, "latency": 3.2})
    {'acc': 0.9, 'latency': 3.2}
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["MODES", "ObjectiveError", "Objectives", "finite_or_none", "normalise_mode"]

MODES = ("max", "min")


class ObjectiveError(ValueError):
    """Invalid objectives, or a result without usable values for them.

    The message says what is wrong and how to fix it; ``problems`` maps each offending objective
    to its reason when the error is about a result.
    """

    def __init__(self, message: str, problems: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.problems = dict(problems or {})


def normalise_mode(mode: Any) -> str:
    """``"max"`` or ``"min"`` from any capitalisation, or :class:`ObjectiveError`.

    Example:
        >>> normalise_mode(" MAX ")
        'max'
    """
    normalised = mode.strip().lower() if isinstance(mode, str) else mode
    if normalised not in MODES:
        raise ObjectiveError(
            f"got {mode!r}; use 'max' (larger is better) or 'min' (smaller is better)."
        )
    return normalised


def _value_problem(value: Any) -> str | None:
    """Why ``value`` is not a usable objective value, or ``None`` when it is a finite number."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return f"not a number ({value!r})"
    try:
        number = float(value)
    except (TypeError, ValueError):
        return f"not a number ({value!r})"
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "infinite" if number > 0 else "-infinite"
    return None


def finite_or_none(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else ``None``.

    Example:
        >>> finite_or_none("2.5"), finite_or_none(float("nan")), finite_or_none(None)
        (2.5, None, None)
    """
    return None if _value_problem(value) is not None else float(value)


@dataclass(frozen=True, eq=False)
class Objectives(Mapping):
    """Ordered objectives ``f_1..f_m``, each maximised or minimised, with optional thresholds.

    It is a read-only mapping ``name -> "max" | "min"`` in order (``list(objectives)`` gives the
    names, ``objectives.items()`` the pairs), so it stands wherever a ``{name: mode}`` dict did;
    it equals such a dict when it has no thresholds.

    A threshold ``t_i`` is the worst value still of interest: ``f_i >= t_i`` for a ``max``
    objective, ``f_i <= t_i`` for a ``min`` one. In *maximisation form* every objective is
    multiplied by its sign (``+1`` for max, ``-1`` for min), so larger is better everywhere; the
    Pareto and hypervolume functions of :mod:`multiobjective.pareto` work in that form.

    Build it with :meth:`from_spec`, which accepts every shape a user may write.

    Example:
        >>> objectives = Objectives(("acc", "params"), ("max", "min"))
        >>> objectives.to_maximisation([[0.9, 300.0]]).tolist()
        [[0.9, -300.0]]
    """

    names: tuple[str, ...]
    modes: tuple[str, ...]
    thresholds: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = (self.names,) if isinstance(self.names, str) else tuple(self.names)
        modes = (self.modes,) if isinstance(self.modes, str) else tuple(self.modes)
        if not names:
            raise ObjectiveError("objectives: got none; give at least one, e.g. {'val_loss': 'min'}.")
        for name in names:
            if not isinstance(name, str) or not name.strip():
                raise ObjectiveError(f"objective name: got {name!r}; use a non-empty string.")
        names = tuple(name.strip() for name in names)
        if len(modes) != len(names):
            raise ObjectiveError(
                f"mode: got {len(modes)} modes {list(modes)} for {len(names)} objectives "
                f"{list(names)}; give one 'max' or 'min' per objective."
            )
        checked = []
        for name, mode in zip(names, modes):
            try:
                checked.append(normalise_mode(mode))
            except ObjectiveError as error:
                raise ObjectiveError(f"mode of objective {name!r}: {error}") from None
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ObjectiveError(f"objectives: got {duplicates} more than once; list each objective once.")
        thresholds = {}
        for name, bound in dict(self.thresholds or {}).items():
            if name not in names:
                raise ObjectiveError(
                    f"thresholds.{name}: not an objective (objectives are {list(names)}); "
                    "bound other metrics with an outcome constraint such as 'num_params <= 100000'."
                )
            if _value_problem(bound) is not None:
                raise ObjectiveError(f"thresholds.{name}: got {bound!r}; use a finite number.")
            thresholds[name] = float(bound)
        object.__setattr__(self, "names", names)
        object.__setattr__(self, "modes", tuple(checked))
        object.__setattr__(self, "thresholds", thresholds)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_spec(
        cls,
        metric: Any,
        mode: str | Sequence[str] | None = None,
        thresholds: Mapping[str, float] | None = None,
    ) -> Objectives:
        """Objectives from any of the shapes users write.

        Args:
            metric: an :class:`Objectives`; a mapping ``{name: "max"|"min"}``; a sequence of
                objects with ``.name`` and ``.mode`` (e.g. the spec's ``Objective``) or of
                ``(name, mode)`` pairs; or a name / list of names, with ``mode``.
            mode: ``"max"``/``"min"``, one per name; only with names.
            thresholds: ``{objective: bound}``; replaces those of an :class:`Objectives` given.

        Raises:
            ObjectiveError: naming what is wrong and the fix.

        Example:
            >>> Objectives.from_spec("loss", "min").as_dict()
            {'loss': 'min'}
        """
        if isinstance(metric, Objectives):
            if mode is not None:
                raise ObjectiveError("mode: got a mode beside an Objectives value; it carries its own.")
            return metric if thresholds is None else cls(metric.names, metric.modes, thresholds)
        if isinstance(metric, Mapping):
            if mode is not None:
                raise ObjectiveError("mode: got a mode beside a {name: mode} mapping; put the modes in it.")
            return cls(tuple(metric), tuple(metric.values()), thresholds or {})
        if isinstance(metric, str):
            if mode is None:
                raise ObjectiveError(f"mode: missing for objective {metric!r}; give mode='max' or 'min'.")
            return cls((metric,), (mode,) if isinstance(mode, str) else tuple(mode), thresholds or {})
        if isinstance(metric, Sequence) and not isinstance(metric, bytes):
            items = list(metric)
            if items and all(hasattr(item, "name") and hasattr(item, "mode") for item in items):
                return cls(tuple(i.name for i in items), tuple(i.mode for i in items), thresholds or {})
            if items and all(isinstance(i, tuple) and len(i) == 2 for i in items) and mode is None:
                return cls(tuple(n for n, _ in items), tuple(m for _, m in items), thresholds or {})
            if mode is None:
                raise ObjectiveError(
                    f"mode: missing for objectives {items}; give one 'max' or 'min' per objective."
                )
            modes = (mode,) if isinstance(mode, str) else tuple(mode)
            return cls(tuple(items), modes, thresholds or {})
        raise ObjectiveError(
            f"objectives: got {metric!r}; use a mapping like {{'acc': 'max', 'latency': 'min'}} "
            "or metric=[...] with mode=[...]."
        )

    @classmethod
    def optional(cls, metric: Any, mode: Any = None, thresholds: Mapping[str, float] | None = None) -> Objectives | None:
        """``None`` when neither ``metric`` nor ``mode`` is given (Tune sets them later), else :meth:`from_spec`.

        Example:
            >>> Objectives.optional(None) is None
            True
        """
        if metric is None:
            if mode is not None:
                raise ObjectiveError(f"metric: missing beside mode={mode!r}; give both or neither.")
            return None
        return cls.from_spec(metric, mode, thresholds)

    # ------------------------------------------------------------------ mapping name -> mode
    def __getitem__(self, name: str) -> str:
        try:
            return self.modes[self.names.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.names)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Objectives):
            return (self.names, self.modes, dict(self.thresholds)) == (other.names, other.modes, dict(other.thresholds))
        if isinstance(other, Mapping):
            return not self.thresholds and list(self.items()) == list(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        thresholds = f", thresholds={dict(self.thresholds)}" if self.thresholds else ""
        return f"Objectives({self.as_dict()}{thresholds})"

    def as_dict(self) -> dict[str, str]:
        """``{name: mode}`` in order."""
        return dict(zip(self.names, self.modes))

    def mode_of(self, name: str) -> str:
        """The mode of objective ``name``."""
        try:
            return self[name]
        except KeyError:
            raise ObjectiveError(f"{name!r} is not an objective; objectives are {list(self.names)}.") from None

    @property
    def signs(self) -> np.ndarray:
        """``+1`` for each max objective, ``-1`` for each min one."""
        return np.array([1.0 if mode == "max" else -1.0 for mode in self.modes])

    def to_maximisation(self, values: Any) -> Any:
        """``values`` (``... x m``, NumPy array, list or torch tensor) with min objectives negated."""
        if hasattr(values, "new_tensor"):  # a torch tensor: keep its type, dtype and device
            return values * values.new_tensor(self.signs)
        return np.asarray(values, dtype=float) * self.signs

    def threshold_vector(self) -> np.ndarray:
        """Thresholds in maximisation form, ``-inf`` where an objective has none."""
        return np.array([
            self.thresholds[name] * sign if name in self.thresholds else -math.inf
            for name, sign in zip(self.names, self.signs)
        ])

    def threshold_constraints(self) -> list[str]:
        """Thresholds as constraint strings, ``"acc >= 0.9"`` or ``"latency <= 5.0"`` (Ax's syntax)."""
        return [
            f"{name} {'>=' if self.mode_of(name) == 'max' else '<='} {bound!r}"
            for name, bound in self.thresholds.items()
        ]

    # ------------------------------------------------------------------ results
    def problems(self, result: Mapping[str, Any]) -> dict[str, str]:
        """``{objective: reason}`` for each objective ``result`` lacks a finite value for.

        Example:
            >>> Objectives.from_spec(["a", "b", "c"], ["max"] * 3).problems({"a": float("nan"), "b": "x"})
            {'a': 'NaN', 'b': "not a number ('x')", 'c': 'missing'}
        """
        reasons = {name: _value_problem(result.get(name)) for name in self.names}
        return {name: reason for name, reason in reasons.items() if reason is not None}

    def validate(self, result: Mapping[str, Any]) -> dict[str, float]:
        """``{objective: float value}`` from a reported result.

        Raises:
            ObjectiveError: naming each objective that is missing, NaN, infinite or not a
                number (``error.problems`` holds them).
        """
        problems = self.problems(result)
        if problems:
            described = ", ".join(f"{name} is {reason}" for name, reason in problems.items())
            raise ObjectiveError(
                f"result: {described}; report a finite number for every objective "
                f"({', '.join(self.names)}).",
                problems,
            )
        return {name: float(result[name]) for name in self.names}

    def values_in(self, frame: Any) -> np.ndarray:
        """``n x m`` float array of the objective columns of a ``DataFrame``; unusable entries are NaN.

        Raises:
            ObjectiveError: if a column is missing.
        """
        import pandas as pd

        missing = [name for name in self.names if name not in frame.columns]
        if missing:
            raise ObjectiveError(
                f"objective column(s) {missing} not in the results; available columns: "
                f"{list(map(str, frame.columns))}."
            )
        columns = [pd.to_numeric(frame[name], errors="coerce").to_numpy(dtype=float) for name in self.names]
        return np.column_stack(columns) if len(frame) else np.empty((0, len(self.names)))
