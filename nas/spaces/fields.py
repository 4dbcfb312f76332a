"""Reading the fields of a search-space file, with errors that name the file and the field."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.spaces.base import SpaceError

MISSING: Any = object()


class Fields:
    """A view of one mapping in a space file; `where` prefixes every error (e.g. ``cells.yaml: ops``)."""

    def __init__(self, data: Any, where: str):
        if not isinstance(data, Mapping):
            raise SpaceError(f"{where}: must be a mapping, got {_shown(data)}")
        self.data = data
        self.where = where

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = MISSING) -> Any:
        if key not in self.data:
            if default is MISSING:
                raise SpaceError(f"{self.where}: missing field {key!r}")
            return default
        value = self.data[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _as_tuple(kind)):
            names = "/".join(k.__name__ for k in _as_tuple(kind))
            raise SpaceError(f"{self.where}.{key}: must be {names}, got {_shown(value)}")
        return value

    def options(self, key: str, default: Any = MISSING) -> tuple[Any, ...]:
        """A choice's options: a list, or one value (a constant, i.e. a choice with one option)."""
        value = self.data.get(key, default)
        if value is MISSING:
            raise SpaceError(f"{self.where}: missing field {key!r}")
        if isinstance(value, list):
            if not value:
                raise SpaceError(f"{self.where}.{key}: an empty list of options")
            return tuple(value)
        return (value,)

    def sub(self, key: str, default: Any = MISSING) -> "Fields":
        return Fields(self.get(key, Mapping, default), f"{self.where}.{key}")

    def check_keys(self, allowed: set[str]) -> None:
        unknown = sorted(set(self.data) - allowed)
        if unknown:
            raise SpaceError(f"{self.where}: unknown field {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _as_tuple(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


def _shown(value: Any, limit: int = 80) -> str:
    """`value` as an error message shows it: its repr, cut to `limit` characters."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."
