"""Checks behind the experiment specification: :class:`SpecError`, value checks, trainable import.

Every check raises :class:`SpecError` with the field relative to the object being checked
(``"low"``); :func:`within` prefixes the enclosing path (``"search_space.lr"``) on the way out,
so the user sees ``search_space.lr.low: got -1; ...``.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from multiobjective.objectives import ObjectiveError, normalise_mode



class SpecError(ValueError):
    """An invalid experiment specification; the message names the field, the bad value and the fix.

    Example:
        >>> str(SpecError("got 'maximize'; use 'max' or 'min'.", "mode").within("objectives[1]"))
        "objectives[1].mode: got 'maximize'; use 'max' or 'min'."
    """

    def __init__(self, message: str, field: str | None = None, source: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        self.source = source

    def __str__(self) -> str:
        return ": ".join(part for part in (self.source, self.field, self.message) if part)

    def within(self, prefix: str) -> SpecError:
        """The same error with ``prefix`` prepended to its field path."""
        if not self.field:
            path = prefix
        elif self.field.startswith("["):
            path = prefix + self.field
        else:
            path = f"{prefix}.{self.field}"
        return SpecError(self.message, path, self.source)

    def located(self, source: str) -> SpecError:
        """The same error attributed to the file ``source``."""
        return SpecError(self.message, self.field, source)


@contextmanager
def within(prefix: str) -> Iterator[None]:
    """Prefix the field path of any :class:`SpecError` raised inside the block."""
    try:
        yield
    except SpecError as error:
        raise error.within(prefix) from error


def suggest(value: Any, options: Collection[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest option, or ``""`` when none is close."""
    matches = difflib.get_close_matches(str(value), list(options), n=1)
    if not matches:
        lowered = {option.lower(): option for option in options}
        matches = difflib.get_close_matches(str(value).lower(), list(lowered), n=1)
        matches = [lowered[match] for match in matches]
    return f" (did you mean {matches[0]!r}?)" if matches else ""


def check_keys(mapping: Mapping[Any, Any], allowed: Collection[str]) -> None:
    """Reject keys outside ``allowed``, naming the closest valid key."""
    for key in mapping:
        if key not in allowed:
            raise SpecError(
                f"unknown key {key!r}{suggest(key, allowed)}; valid keys are {', '.join(allowed)}.",
                str(key),
            )


def check_required(mapping: Mapping[Any, Any], required: Collection[str]) -> None:
    """Reject a mapping that lacks any of the ``required`` keys."""
    missing = [key for key in required if key not in mapping]
    if missing:
        raise SpecError(
            f"missing required key(s) {', '.join(missing)}; it needs {', '.join(required)}."
        )


def check_integer(value: Any, field: str, minimum: int | None = None) -> int:
    """``value`` as an ``int`` (``>= minimum`` if given); integral floats like ``20.0`` pass."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f"got {value!r}; use an integer.", field)
    if minimum is not None and value < minimum:
        raise SpecError(f"got {value!r}; use an integer >= {minimum}.", field)
    return value


def check_number(
    value: Any, field: str, *, above: float | None = None, at_least: float | None = None
) -> float:
    """``value`` as a real number, optionally ``> above`` or ``>= at_least``."""
    if isinstance(value, str):
        # PyYAML (YAML 1.1) reads `1e-4`, written without a dot, as a string.
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
        raise SpecError(f"got {value!r}; use a number.", field)
    if above is not None and value <= above:
        raise SpecError(f"got {value!r}; use a number > {above}.", field)
    if at_least is not None and value < at_least:
        raise SpecError(f"got {value!r}; use a number >= {at_least}.", field)
    return value


def check_mode(value: Any, field: str) -> str:
    """``"max"`` or ``"min"``, case-insensitive (:func:`multiobjective.normalise_mode`)."""
    try:
        return normalise_mode(value)
    except ObjectiveError as error:
        raise SpecError(str(error), field) from None


def check_name(value: Any, field: str) -> str:
    """A non-empty string, stripped."""
    if not isinstance(value, str) or not value.strip():
        raise SpecError(f"got {value!r}; use a non-empty string.", field)
    return value.strip()


def import_trainable(path: str) -> Callable[..., Any]:
    """Import the callable named by ``"module:function"`` (or ``"module:Class.method"``)."""
    example = "e.g. 'orchestrator.demo:train_digits'"
    module_name, colon, attribute = path.strip().partition(":")
    if not colon or not module_name or not attribute:
        guess = ":".join(path.rsplit(".", 1))
        hint = f" (did you mean {guess!r}?)" if "." in path and not colon else ""
        raise SpecError(f"{path!r} is not in 'module:function' form{hint}; {example}.", "trainable")
    try:
        target: Any = importlib.import_module(module_name)
    except Exception as error:  # importing runs user code, which may raise anything
        raise SpecError(
            f"cannot import module {module_name!r} for {path!r}: {type(error).__name__}: {error}. "
            "Check the module name and that it is importable from the current directory.",
            "trainable",
        ) from error
    for part in attribute.split("."):
        if not hasattr(target, part):
            names = [candidate for candidate in dir(target) if not candidate.startswith("_")]
            raise SpecError(
                f"{path!r}: {module_name!r} has no attribute {attribute!r}"
                f"{suggest(part, names)}; check the name after ':'.",
                "trainable",
            )
        target = getattr(target, part)
    if not callable(target):
        raise SpecError(
            f"{path!r} names a {type(target).__name__}, which is not callable; "
            "point it at a Tune function trainable `def train(config): ...`.",
            "trainable",
        )
    return target


def check_trainable_signature(trainable: Callable[..., Any], shown: str) -> None:
    """Reject a function that Tune cannot call as ``trainable(config)``.

    Tune's rule (``ray.tune.trainable.function_trainable.wrap_function``, ray 2.60): the
    signature must bind one positional argument. Classes pass here (Tune's class API), and so do
    callables without an introspectable signature (Tune decides for those).

    Example:
        >>> check_trainable_signature(lambda config, data=None: None, "train")
        >>> check_trainable_signature(lambda: None, "train")
        Traceback (most recent call last):
        ...
        orchestrator._validation.SpecError: trainable: got train taking (); Tune calls ... the trial's config: ...
    """
    if inspect.isclass(trainable):
        return
    try:
        signature = inspect.signature(trainable)
    except (TypeError, ValueError):
        return
    try:
        signature.bind({})
    except TypeError:
        parameters = ", ".join(signature.parameters)
        raise SpecError(
            f"got {shown} taking ({parameters}); Tune calls a function trainable with one argument, "
            "the trial's config: define it as `def train(config): ...` and pass other data with "
            "ray.tune.with_parameters or functools.partial.",
            "trainable",
        ) from None


def trainable_path(trainable: Callable[..., Any]) -> str | Callable[..., Any]:
    """``"module:qualname"`` when that imports back to ``trainable``, else ``trainable`` itself."""
    module = getattr(trainable, "__module__", None)
    qualname = getattr(trainable, "__qualname__", "")
    if module and qualname and "<" not in qualname:  # "<locals>", "<lambda>" cannot be imported
        path = f"{module}:{qualname}"
        try:
            if import_trainable(path) is trainable:
                return path
        except SpecError:
            pass
    return trainable
