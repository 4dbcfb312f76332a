"""Checking user-given parameters against declared defaults, shared by ops and cell templates."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from nas.errors import GenomeError
from nas.frozen import FrozenDict, freeze


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


REQUIRED: Any = _Required()


def _type_ok(value: Any, default: Any) -> bool:
    if default is None or default is REQUIRED:
        return True
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, (tuple, list)):
        return isinstance(value, (tuple, list))
    return isinstance(value, type(default))


def resolve_params(what: str, defaults: Mapping[str, Any], params: Mapping[str, Any], where: str) -> FrozenDict:
    """Fill in `defaults` under `params`, rejecting unknown names, missing required ones and wrong types.

    `what` names the owner in messages (e.g. ``op 'conv'``); `where` locates it in the genome, and an
    error about one parameter names it too (``stages[2].params.expansion``).
    """
    unknown = sorted(set(params) - set(defaults))
    if unknown:
        allowed = ", ".join(sorted(defaults)) or "none"
        raise GenomeError(_field(where, unknown[0]), f"{what} has no parameter {unknown[0]!r} (allowed: {allowed})")
    resolved = {}
    for key, default in defaults.items():
        if key not in params:
            if default is REQUIRED:
                raise GenomeError(where, f"{what} needs parameter {key!r}")
            resolved[key] = default
            continue
        value = params[key]
        if not _type_ok(value, default):
            expected = type(default).__name__
            raise GenomeError(_field(where, key), f"parameter {key!r} of {what} must be {expected}, got {value!r}")
        resolved[key] = value
    return freeze(resolved)


def _field(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key
