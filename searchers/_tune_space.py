"""Translation between Ray Tune search-space domains and Ax parameter configs.

Tune's ``randint``/``lograndint`` are upper-exclusive while Ax ranges are inclusive, quantised
domains become Ax ranges with ``step_size``, and categorical values Ax cannot hold (mixed types,
lists, ``None``) travel as their position in the category list. :class:`AxSpaceCodec` keeps
those decisions in one place so a config always makes the round trip
``Tune value -> Ax value -> Tune value`` with the type the trainable expects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np
from ray.tune.search.sample import (
    Categorical,
    Domain,
    Float,
    Function,
    Integer,
    LogUniform,
    Normal,
    Quantized,
)
from ray.tune.search.variant_generator import parse_spec_vars
from ray.tune.utils.util import unflatten_dict

_PRIMITIVE_TYPES: dict[type, str] = {bool: "bool", int: "int", float: "float", str: "str"}


@dataclass
class _Decoder:
    """How one Ax parameter value turns back into the value the trainable receives."""

    decode: Callable[[Any], Any]
    encode: Callable[[Any], Any]


@dataclass
class AxSpaceCodec:
    """Ax parameter configs for a Tune search space, and the maps between the two value spaces.

    Nested Tune configs are flattened with ``/`` (``{"optim": {"lr": ...}}`` becomes the Ax
    parameter ``optim/lr``); constants are kept aside and merged into every decoded config.

    Example:
        >>> from ray import tune
        >>> codec = AxSpaceCodec.from_tune({"lr": tune.loguniform(1e-4, 1e-1),
        ...                                 "layers": tune.randint(1, 5), "epochs": 10})
        >>> [p.name for p in codec.parameters]
        ['lr', 'layers']
        >>> codec.to_tune({"lr": 0.01, "layers": 4})
        {'epochs': 10, 'lr': 0.01, 'layers': 4}
    """

    parameters: list[Any]
    constants: dict[str, Any]
    decoders: dict[str, _Decoder] = field(default_factory=dict)

    @classmethod
    def from_tune(cls, space: Mapping[str, Any]) -> "AxSpaceCodec":
        """Convert a (possibly nested) Tune ``param_space``.

        Raises:
            ValueError: for grid search, unbounded (``randn``) or functional (``sample_from``)
                domains, empty ranges and categories, naming the parameter and the fix.
        """
        _, _, grid_vars = parse_spec_vars(dict(space))
        if grid_vars:
            names = ", ".join("/".join(map(str, path)) for path, _ in grid_vars)
            raise ValueError(
                f"Search space parameter(s) {names} use tune.grid_search, which a Bayesian "
                "searcher cannot sample. Use tune.choice([...]) instead, or run the grid with "
                "Ray's default BasicVariantGenerator (method='random' does not grid either)."
            )
        flat = flatten_search_space(space)
        parameters: list[Any] = []
        constants: dict[str, Any] = {}
        decoders: dict[str, _Decoder] = {}
        for name, value in flat.items():
            if not isinstance(value, Domain):
                constants[name] = value
                continue
            parameter, decoder = _convert_domain(name, value)
            if parameter is None:  # a one-value choice is a constant for Ax
                constants[name] = decoder.decode(None)
                continue
            parameters.append(parameter)
            decoders[name] = decoder
        if not parameters:
            raise ValueError(
                "The search space has no tunable parameter (only constants). Add at least one "
                "tune.uniform/loguniform/randint/choice domain."
            )
        return cls(parameters=parameters, constants=constants, decoders=decoders)

    @property
    def parameter_names(self) -> list[str]:
        return [p.name for p in self.parameters]

    def to_tune(self, ax_parameters: Mapping[str, Any]) -> dict[str, Any]:
        """Ax parameterisation -> nested Tune config (constants included, types restored)."""
        flat = dict(self.constants)
        for name, decoder in self.decoders.items():
            flat[name] = decoder.decode(ax_parameters[name])
        return unflatten_dict(flat, delimiter="/")

    def to_ax(self, tune_config: Mapping[str, Any]) -> dict[str, Any]:
        """Tune config (nested or flat) -> Ax parameterisation, for warm starts and attached trials.

        Raises:
            ValueError: when a tunable parameter is missing or a value is outside its domain.
        """
        result: dict[str, Any] = {}
        for name, decoder in self.decoders.items():
            found, value = _lookup(tune_config, name)
            if not found:
                raise ValueError(
                    f"Config {dict(tune_config)} lacks search-space parameter '{name}'; every "
                    "point to evaluate or warm-start row must set all tunable parameters."
                )
            result[name] = decoder.encode(value)
        return result


def flatten_search_space(space: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a": {"b": domain}}`` -> ``{"a/b": domain}``; empty dicts stay as constants.

    Raises:
        ValueError: for a key containing ``/`` or a domain inside a list or tuple.
    """
    flat = _flatten(space)
    _, domain_vars, _ = parse_spec_vars(dict(space))
    in_sequences = [name for name in ("/".join(map(str, path)) for path, _ in domain_vars) if name not in flat]
    if in_sequences:
        raise ValueError(
            f"Search space parameter(s) {', '.join(in_sequences)} sit inside a list or tuple, "
            "which a searcher cannot map to a parameter. Use a dict ({'0': ..., '1': ...}) "
            "or one named parameter per entry."
        )
    return flat


def _flatten(space: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    # Unlike Ray's flatten_dict, an empty dict stays a constant instead of vanishing.
    flat: dict[str, Any] = {}
    for key, value in space.items():
        if "/" in str(key):
            raise ValueError(f"Search space key {key!r} contains '/', which separates nested keys.")
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(_flatten(value, prefix=f"{name}/"))
        else:
            flat[name] = value
    return flat


def _lookup(config: Mapping[str, Any], name: str) -> tuple[bool, Any]:
    # Walk the nested path rather than flattening the config: a categorical value may itself be
    # a dict, which flattening would take apart.
    if name in config:
        return True, config[name]
    node: Any = config
    for key in name.split("/"):
        if not isinstance(node, Mapping) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _convert_domain(name: str, domain: Domain) -> tuple[Any, _Decoder]:
    from ax import ChoiceParameterConfig, RangeParameterConfig

    sampler = domain.get_sampler()
    quantum = None
    if isinstance(sampler, Quantized):
        quantum = sampler.q
        sampler = sampler.get_sampler()
    if isinstance(domain, Function):
        raise ValueError(
            f"Search space parameter '{name}' uses tune.sample_from, which cannot be modelled. "
            "Replace it with a bounded domain (tune.uniform, tune.choice, ...)."
        )
    if isinstance(sampler, Normal):
        raise ValueError(
            f"Search space parameter '{name}' uses tune.randn/qrandn, an unbounded domain. "
            "Give it bounds with tune.uniform(lower, upper) instead."
        )
    log_scale = isinstance(sampler, LogUniform)

    if isinstance(domain, Categorical):
        return _convert_categorical(name, list(domain.categories), ChoiceParameterConfig)

    if isinstance(domain, Integer):
        if quantum is not None:
            values = _quantized_integer_values(name, domain, int(quantum))
            lower, upper = values[0], values[-1]
            step = int(quantum) if len(values) > 1 else None
        else:
            # Tune's randint/lograndint never return ``upper``; Ax ranges include it.
            lower, upper = int(domain.lower), int(domain.upper) - 1
            step = None
        _check_bounds(name, lower, upper, log_scale)
        if lower == upper:
            return None, _Decoder(decode=lambda _: lower, encode=lambda v: v)
        parameter = RangeParameterConfig(
            name=name,
            bounds=(lower, upper),
            parameter_type="int",
            step_size=step,
            scaling="log" if log_scale and step is None else "linear",
        )
        return parameter, _Decoder(
            decode=lambda v: int(round(v)), encode=_range_encoder(name, lower, upper, integer=True)
        )

    if isinstance(domain, Float):
        lower, upper = float(domain.lower), float(domain.upper)
        _check_bounds(name, lower, upper, log_scale)
        if lower == upper:  # Ax rejects an empty range; Tune always samples this value
            return None, _Decoder(decode=lambda _: lower, encode=lambda v: v)
        if quantum is not None:
            # Tune rounds a quantised float to the nearest multiple of q; Ax's step grid
            # starts at the lower bound, so snap the bounds onto multiples of q first.
            q = float(quantum)
            lower_index, upper_index = math.ceil(lower / q - 1e-9), math.floor(upper / q + 1e-9)
            if upper_index < lower_index:
                raise ValueError(
                    f"Search space parameter '{name}': no multiple of q={q} lies inside "
                    f"[{domain.lower}, {domain.upper}]. Widen the bounds or lower q."
                )
            lower, upper = float(np.round(lower_index * q, 12)), float(np.round(upper_index * q, 12))
            if upper_index == lower_index:  # Tune samples this single multiple every time
                return None, _Decoder(decode=lambda _: lower, encode=lambda v: v)
            parameter = RangeParameterConfig(
                name=name, bounds=(lower, upper), parameter_type="float", step_size=q
            )
            return parameter, _Decoder(
                decode=lambda v: float(np.round(round(v / q) * q, 12)),
                encode=_range_encoder(name, lower, upper, integer=False),
            )
        parameter = RangeParameterConfig(
            name=name,
            bounds=(lower, upper),
            parameter_type="float",
            scaling="log" if log_scale else "linear",
        )
        return parameter, _Decoder(decode=float, encode=_range_encoder(name, lower, upper, integer=False))

    raise ValueError(
        f"Search space parameter '{name}' has an unsupported domain {type(domain).__name__}; "
        "use tune.uniform, loguniform, quniform, qloguniform, randint, lograndint, qrandint "
        "or choice."
    )


def _convert_categorical(name: str, categories: list[Any], config_cls: type) -> tuple[Any, _Decoder]:
    if not categories:
        raise ValueError(f"Search space parameter '{name}': tune.choice([]) has no values.")
    if len(categories) == 1:
        only = categories[0]
        return None, _Decoder(decode=lambda _: only, encode=lambda v: v)
    kinds = {type(value) for value in categories}
    if len(kinds) == 1 and next(iter(kinds)) in _PRIMITIVE_TYPES and len(set(categories)) == len(categories):
        kind = next(iter(kinds))
        ordered = kind in (int, float)
        parameter = config_cls(
            name=name,
            values=list(categories),
            parameter_type=_PRIMITIVE_TYPES[kind],
            is_ordered=ordered,
        )
        return parameter, _Decoder(decode=kind, encode=_member_encoder(name, categories, kind))
    # Mixed, compound or repeated values: Ax sees the position, the trainable the value.
    labels = [str(index) for index in range(len(categories))]
    parameter = config_cls(name=name, values=labels, parameter_type="str", is_ordered=False)

    def encode(value: Any) -> str:
        for index, candidate in enumerate(categories):
            if candidate == value and type(candidate) is type(value):
                return labels[index]
        raise ValueError(f"Value {value!r} of parameter '{name}' is not one of {categories}.")

    return parameter, _Decoder(decode=lambda label: categories[int(label)], encode=encode)


def _member_encoder(name: str, categories: list[Any], kind: type) -> Callable[[Any], Any]:
    # Ax attaches out-of-domain values with a mere warning, so reject them here.
    def encode(value: Any) -> Any:
        try:
            converted = kind(value)
        except (TypeError, ValueError):
            converted = None
        # str() is lenient on purpose: CSV readers turn the category "32" into the number 32.
        exact = kind is str or converted == value
        if converted is None or not exact or converted not in categories:
            raise ValueError(f"Value {value!r} of parameter '{name}' is not one of {categories}.")
        return converted

    return encode


def _range_encoder(name: str, lower: float, upper: float, *, integer: bool) -> Callable[[Any], Any]:
    tolerance = 1e-9 * max(1.0, abs(lower), abs(upper))

    def encode(value: Any) -> Any:
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not lower - tolerance <= number <= upper + tolerance or (integer and not number.is_integer()):
            kind = "an integer" if integer else "a number"
            raise ValueError(
                f"Value {value!r} of parameter '{name}' is not {kind} in [{lower}, {upper}]."
            )
        return int(number) if integer else number

    return encode


def _quantized_integer_values(name: str, domain: Integer, q: int) -> list[int]:
    # Mirrors ray.tune.search.sample.Quantized.sample for integer domains.
    lower_index = math.ceil(domain.lower / q)
    upper_index = math.floor(domain.upper / q)
    upper_exclusive = upper_index + (0 if q == 1 else 1)
    values = [index * q for index in range(lower_index, upper_exclusive)]
    if not values:
        raise ValueError(
            f"Search space parameter '{name}': no multiple of q={q} lies in "
            f"[{domain.lower}, {domain.upper}]. Widen the bounds or lower q."
        )
    return values


def _check_bounds(name: str, lower: float, upper: float, log_scale: bool) -> None:
    if not (math.isfinite(lower) and math.isfinite(upper)):
        raise ValueError(f"Search space parameter '{name}' needs finite bounds, got [{lower}, {upper}].")
    if upper < lower:
        raise ValueError(
            f"Search space parameter '{name}' has lower bound {lower} above upper bound {upper}; "
            "swap them (randint's upper bound is exclusive, so randint(a, a) is empty too)."
        )
    if log_scale and lower <= 0:
        raise ValueError(
            f"Search space parameter '{name}' is log-scaled but its lower bound is {lower}; "
            "log scale needs positive bounds. Use a positive lower bound or a linear domain."
        )
