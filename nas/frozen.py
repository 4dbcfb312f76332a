"""Immutable, hashable mirrors of plain JSON-like data (dicts, lists, scalars).

A `FrozenDict` keeps its items behind a read-only view and refuses attribute assignment, so
neither its public interface nor its internals can be changed in place.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any


class FrozenDict(Mapping):
    """A read-only, hashable dict. Keeps insertion order; compares like a dict."""

    __slots__ = ("_data", "_hash")

    def __init__(self, *args: Any, **kwargs: Any):
        object.__setattr__(self, "_data", MappingProxyType(dict(*args, **kwargs)))
        object.__setattr__(self, "_hash", None)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"FrozenDict is immutable; cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"FrozenDict is immutable; cannot delete {name!r}")

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            object.__setattr__(self, "_hash", hash(tuple(sorted(self._data.items(), key=lambda kv: kv[0]))))
        return self._hash

    def __repr__(self) -> str:
        return f"FrozenDict({dict(self._data)!r})"

    def __reduce__(self) -> tuple[Any, ...]:  # pickle and deepcopy rebuild from a plain dict
        return FrozenDict, (dict(self._data),)

    def copy(self) -> dict[str, Any]:
        """A mutable shallow copy, as `dict.copy` (networkx copies node attributes with it)."""
        return dict(self._data)

    def replace(self, **changes: Any) -> "FrozenDict":
        return FrozenDict({**self._data, **{k: freeze(v) for k, v in changes.items()}})


def freeze(value: Any) -> Any:
    """Recursively turn dicts into FrozenDicts and lists into tuples."""
    if isinstance(value, Mapping):
        return FrozenDict((str(k), freeze(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Inverse of `freeze`: plain dicts and lists, ready for YAML or JSON."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value
