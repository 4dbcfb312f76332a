"""A strategy's options as one typed dataclass: default, type, range and help in one place.

    @dataclass(frozen=True)
    class Options:
        population: int | None = option(None, "population size P; none: clamp(trials // 5, 8, 100)", minimum=1)
        sampler: str = option("tpe", "tpe or nsga2", choices=("tpe", "nsga2"))

`--option KEY=VALUE` values are checked against the field's type (int, float, str, bool, lists of those,
alternatives with ``|``, None where the type allows it), its range and its choices; `--help-options`
and docs/reference/strategies.md are generated from the same fields.
"""
from __future__ import annotations

import dataclasses
import functools
import math
import types
import typing
from collections.abc import Mapping
from typing import Any

_HELP, _MIN, _MAX, _CHOICES = "help", "minimum", "maximum", "choices"


def option(default: Any, help: str, *, minimum: float | None = None, maximum: float | None = None,
           choices: tuple[str, ...] | None = None) -> Any:
    """A dataclass field of an options class: its default, one line of help, and the range (numbers,
    also each number of a list) or choices (text, also each text of a list) its values must be in."""
    metadata = {_HELP: help, _MIN: minimum, _MAX: maximum, _CHOICES: tuple(choices) if choices else None}
    if isinstance(default, list):
        frozen = tuple(default)
        return dataclasses.field(default_factory=lambda: list(frozen), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _alternatives(hint: Any) -> list[Any]:
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return list(typing.get_args(hint))
    return [hint]


def type_name(hint: Any) -> str:
    """``int | list[float] | None`` -> ``"int or list of float or none"``."""
    names = []
    for alternative in _alternatives(hint):
        if alternative is type(None):
            names.append("none")
        elif typing.get_origin(alternative) is list:
            (item,) = typing.get_args(alternative) or (Any,)
            names.append(f"list of {type_name(item)}")
        else:
            names.append(getattr(alternative, "__name__", str(alternative)))
    return " or ".join(names)


def _fits(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint) or (Any,)
        return isinstance(value, list) and all(_fits(v, item) for v in value)
    return isinstance(value, hint) if isinstance(hint, type) else True


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, list):
        return [n for v in value for n in _numbers(v)]
    return []


@functools.lru_cache(maxsize=None)
def _type_hints(options: type) -> dict[str, Any]:
    """An options class's resolved hints, once per class (resolving them evaluates every annotation)."""
    return typing.get_type_hints(options)


def fields_of(options: type) -> dict[str, tuple[Any, Any, Mapping[str, Any]]]:
    """name -> (default, type hint, metadata) of an options dataclass (defaults made afresh on each call)."""
    hints = _type_hints(options)
    result = {}
    for field in dataclasses.fields(options):
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            raise TypeError(f"option {field.name!r} of {options.__qualname__} has no default")
        result[field.name] = (default, hints[field.name], field.metadata)
    return result


WORDS = {int: "a whole number", float: "a number", str: "a name", bool: "true or false"}


def _words(hint: Any, meta: Mapping[str, Any]) -> str:
    """What a value of type `hint` within `meta`'s range must be, in words: ``a whole number >= 1 or none``."""
    low, high = meta.get(_MIN), meta.get(_MAX)
    bounds = (f" in [{low}, {high}]" if low is not None and high is not None
              else f" >= {low}" if low is not None else f" <= {high}" if high is not None else "")
    parts = []
    for alternative in _alternatives(hint):
        if alternative is type(None):
            continue
        if typing.get_origin(alternative) is list:
            (item,) = typing.get_args(alternative) or (Any,)
            parts.append(f"a list of {WORDS.get(item, type_name(item)).removeprefix('a ')}s{bounds}"
                         if item in (int, float) else f"a list of {type_name(item)}")
        elif alternative in (int, float):
            parts.append(WORDS[alternative] + bounds)
        else:
            parts.append(WORDS.get(alternative, type_name(alternative)))
    if type(None) in _alternatives(hint):
        parts.append("none")
    return " or ".join(parts)


def check(strategy: str, options: type, key: str, value: Any) -> str | None:
    """Why `value` is not a valid option `key` (None when it is)."""
    _, hint, meta = fields_of(options)[key]
    expected = f"expected {_words(hint, meta)}, got {value!r}"
    if not any(_fits(value, alternative) for alternative in _alternatives(hint)):
        return expected
    low, high, choices = meta.get(_MIN), meta.get(_MAX), meta.get(_CHOICES)
    for number in _numbers(value):
        if (low is not None and number < low) or (high is not None and number > high):
            return expected
    for text in value if isinstance(value, list) else [value]:  # a text, or each text of a list
        if choices and isinstance(text, str) and text not in choices:
            return f"expected one of {', '.join(choices)}, got {text!r}"
    return None


def defaults(options: type) -> dict[str, Any]:
    return {name: default for name, (default, _, _) in fields_of(options).items()}


def help_table(options: type) -> dict[str, tuple[str, str]]:
    """option -> (type, meaning): what `--help-options` shows beside the defaults."""
    table = {}
    for name, (_, hint, meta) in fields_of(options).items():
        kind = type_name(hint).replace(" or none", "")
        low, high = meta.get(_MIN), meta.get(_MAX)
        if low is not None and high is not None:
            kind += f" in [{low}, {high}]"
        elif low is not None:
            kind += f" >= {low}"
        elif high is not None:
            kind += f" <= {high}"
        if meta.get(_CHOICES):
            kind += ": " + " or ".join(meta[_CHOICES])
        table[name] = (kind, meta.get(_HELP, ""))
    return table
