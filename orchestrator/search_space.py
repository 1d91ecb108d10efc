"""Search-space parameters written as plain mappings, checked and converted to Ray Tune domains.

A parameter is a Ray Tune domain (``tune.loguniform(1e-4, 1e-1)``), a mapping such as
``{type: loguniform, low: 1.0e-4, high: 0.1}`` (what YAML can express) or a constant. The
mapping types are named after the ``ray.tune`` functions they become, with ``low``/``high`` for
``lower``/``upper``: ``randint``'s ``high`` is exclusive, the quantised integer types' ``high`` is
inclusive, exactly as in Tune. There is no grid: every method of the orchestrator runs a
``Searcher``, which suggests one configuration at a time and cannot expand
``tune.grid_search`` (Ray's ``BasicVariantGenerator``, which can, is not one of the methods), so
a grid is refused here, before Ray starts, with ``choice`` as the fix.

Example:
    >>> check_parameter({"type": "randint", "low": 1, "high": 5})
    {'type': 'randint', 'low': 1, 'high': 5}
    >>> type(to_tune_domain({"type": "randint", "low": 1, "high": 5})).__name__
    'Integer'
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from orchestrator._validation import SpecError, check_integer, check_keys, check_number, suggest

__all__ = [
    "PARAMETER_TYPES",
    "check_parameter",
    "is_tunable",
    "is_tune_domain",
    "parameter_to_dict",
    "to_tune_domain",
]

# type -> (required keys, optional keys). `base` is accepted for compatibility and not passed on:
# Ray deprecated it, and a log-uniform draw does not depend on the logarithm's base.
PARAMETER_TYPES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "uniform": (("low", "high"), ()),
    "quniform": (("low", "high", "q"), ()),
    "loguniform": (("low", "high"), ("base",)),
    "qloguniform": (("low", "high", "q"), ("base",)),
    "randint": (("low", "high"), ()),
    "qrandint": (("low", "high"), ("q",)),
    "lograndint": (("low", "high"), ("base",)),
    "qlograndint": (("low", "high", "q"), ("base",)),
    "choice": (("values",), ()),
}
_NO_GRID = (
    "every search method suggests one configuration at a time and cannot expand a grid; "
    "use {{type: choice, values: {values!r}}} to let the searcher pick among the values."
)
_ENTRY_KEYS = ("type", "low", "high", "q", "values", "base")
_INTEGER_TYPES = {"randint", "qrandint", "lograndint", "qlograndint"}
_LOG_TYPES = {"loguniform", "qloguniform", "lograndint", "qlograndint"}
_CONSTANT_TYPES = (str, int, float, bool, type(None), list, tuple)


def is_tune_domain(value: Any) -> bool:
    """Whether ``value`` is a Ray Tune domain, without importing Ray for plain values."""
    # A Domain can only exist once its module is imported, so an absent module means "no".
    sample = sys.modules.get("ray.tune.search.sample")
    return sample is not None and isinstance(value, sample.Domain)


def check_parameter(value: Any) -> Any:
    """Validate one search-space value and return its normal form.

    Mappings come back with a lower-case ``type``, numeric bounds and a ``values`` list; Tune
    domains and constants come back unchanged (tuples as lists).

    Raises:
        SpecError: with the field relative to the parameter (``"low"``, ``"type"``).
    """
    if is_tune_domain(value):
        as_mapping = parameter_to_dict(value)
        if as_mapping is not value:
            _check_mapping(as_mapping)
        return value
    if isinstance(value, Mapping):
        if "grid_search" in value and len(value) == 1:  # also what tune.grid_search([...]) returns
            values = value["grid_search"]
            raise SpecError(f"got a grid {values!r}; " + _NO_GRID.format(values=values), "grid_search")
        return _check_mapping(value)
    if isinstance(value, _CONSTANT_TYPES):
        return list(value) if isinstance(value, tuple) else value
    raise SpecError(
        f"unsupported value {value!r} of type {type(value).__name__}; use a Ray Tune domain, "
        f"a mapping with 'type' (one of {', '.join(PARAMETER_TYPES)}), or a constant."
    )


def is_tunable(value: Any) -> bool:
    """Whether a checked search-space value is something to tune (a domain or a ``{type}`` mapping).

    Example:
        >>> is_tunable({"type": "choice", "values": [16, 32]}), is_tunable(8)
        (True, False)
    """
    return is_tune_domain(value) or (isinstance(value, Mapping) and "type" in value)


def _values(values: Any, field: str) -> list[Any]:
    if isinstance(values, (str, Mapping)) or not isinstance(values, (list, tuple)):
        raise SpecError(f"got {values!r}; use a list of candidate values.", field)
    if not values:
        raise SpecError("is empty; list at least one value.", field)
    return list(values)


def _unused_key_hint(kind: str, key: str) -> str:
    if key == "q" and f"q{kind}" in PARAMETER_TYPES:
        return f" Use type 'q{kind}' for a quantised range."
    if key == "values":
        return " Use type 'choice' for a list of values."
    if key in ("low", "high"):
        return " Use a range type such as 'uniform' or 'randint' for bounds."
    return ""


def _check_mapping(value: Mapping[str, Any]) -> dict[str, Any]:
    check_keys(value, _ENTRY_KEYS)
    if "type" not in value:
        raise SpecError(
            f"missing 'type' in {dict(value)!r}; use one of {', '.join(PARAMETER_TYPES)}. "
            "Constant mappings belong in the experiment's `config`."
        )
    raw_kind = value["type"]
    kind = raw_kind.strip().lower() if isinstance(raw_kind, str) else raw_kind
    if kind == "grid":
        values = value.get("values", [])
        raise SpecError(f"got {raw_kind!r}; " + _NO_GRID.format(values=values), "type")
    if kind not in PARAMETER_TYPES:
        raise SpecError(
            f"unknown type {raw_kind!r}{suggest(raw_kind, PARAMETER_TYPES)}; "
            f"use one of {', '.join(PARAMETER_TYPES)}.",
            "type",
        )
    required, optional = PARAMETER_TYPES[kind]
    for key in value:
        if key != "type" and key not in required + optional:
            raise SpecError(
                f"type {kind!r} does not take {key!r}; it takes {', '.join(required + optional)}."
                + _unused_key_hint(kind, key),
                key,
            )
    for key in required:
        if key not in value:
            raise SpecError(f"missing; type {kind!r} needs {', '.join(required)}.", key)
    if kind == "choice":
        return {"type": kind, "values": _values(value["values"], "values")}

    integral = kind in _INTEGER_TYPES
    bound = check_integer if integral else check_number
    low, high = bound(value["low"], "low"), bound(value["high"], "high")
    if low >= high:
        exclusive = " (high is exclusive)" if kind in ("randint", "lograndint") else ""
        raise SpecError(
            f"low={low!r} is not below high={high!r}{exclusive}; swap them or widen the range."
        )
    if kind in _LOG_TYPES and low <= 0:
        linear = kind.replace("log", "")
        raise SpecError(
            f"got {low!r}; a log-scale range needs low > 0 (e.g. 1.0e-5), or use type {linear!r}.",
            "low",
        )
    entry: dict[str, Any] = {"type": kind, "low": low, "high": high}
    if "q" in value:
        if integral:
            entry["q"] = check_integer(value["q"], "q", minimum=1)
        else:
            entry["q"] = check_number(value["q"], "q", above=0)
    if "base" in value:
        entry["base"] = check_number(value["base"], "base", above=0)
        if entry["base"] == 1:
            raise SpecError("got 1; a logarithm base must be > 0 and not 1 (e.g. 10).", "base")
    return entry


def to_tune_domain(value: Any) -> Any:
    """A ``{type, ...}`` mapping as the Ray Tune domain it names; anything else unchanged.

    Example:
        >>> to_tune_domain({"type": "choice", "values": [16, 32]}).categories
        [16, 32]
    """
    if not (isinstance(value, Mapping) and "type" in value):
        return value
    entry = _check_mapping(value)
    from ray import tune  # Ray is imported only when a trial space is actually built

    kind = entry["type"]
    if kind == "choice":
        return tune.choice(entry["values"])
    arguments = (entry["low"], entry["high"]) + ((entry["q"],) if "q" in entry else ())
    return getattr(tune, kind)(*arguments)


def parameter_to_dict(value: Any) -> Any:
    """A Tune domain as its ``{type, ...}`` mapping; values without one (``tune.randn``) unchanged.

    Example:
        >>> from ray import tune
        >>> parameter_to_dict(tune.qrandint(8, 64, 8))
        {'type': 'qrandint', 'low': 8, 'high': 64, 'q': 8}
    """
    if not is_tune_domain(value):
        return value
    sample = sys.modules["ray.tune.search.sample"]
    sampler, q = value.get_sampler(), None
    if isinstance(sampler, sample.Quantized):
        sampler, q = sampler.get_sampler(), sampler.q
    if isinstance(value, sample.Categorical) and isinstance(sampler, sample.Uniform) and q is None:
        return {"type": "choice", "values": list(value.categories)}
    if isinstance(value, (sample.Float, sample.Integer)) and isinstance(
        sampler, (sample.Uniform, sample.LogUniform)
    ):
        log = isinstance(sampler, sample.LogUniform)
        if isinstance(value, sample.Float):
            kind = "loguniform" if log else "uniform"
        else:
            kind = "lograndint" if log else "randint"
        entry = {"type": kind if q is None else f"q{kind}", "low": value.lower, "high": value.upper}
        return entry if q is None else {**entry, "q": q}
    return value
