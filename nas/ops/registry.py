"""The op registry: every op a cell node can carry, by name.

Each entry pairs a factory ``factory(c_in: int, params: Mapping) -> nn.Module``
with the op's parameters and their defaults. Adding an op is one decorated
function in one of the files of this package::

    @op("my_op", out=REQUIRED, kernel=3)
    def my_op(c_in, p):
        return nn.Conv2d(c_in, p["out"], p["kernel"])

`c_in` is the channel count of the node's (merged) input, or the feature count
for flat (N, F) inputs.

Another package adds ops through entry points in group ``nas.ops`` (see `nas.plugins`): an entry
point names a module whose ``@op`` functions register when it is imported, an `OpSpec`, or a plain
factory (an op without parameters).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from torch import nn

from nas.errors import GenomeError
from nas.frozen import FrozenDict, freeze
from nas.params import REQUIRED, resolve_params
from nas.plugins import GROUPS
from nas.registry import Registry

__all__ = ["OPS", "OpSpec", "REQUIRED", "get_op", "op"]

Factory = Callable[[int, Mapping[str, Any]], nn.Module]


@dataclass(frozen=True)
class OpSpec:
    """One registered op: its factory and its parameters with their defaults."""

    name: str
    factory: Factory
    defaults: Mapping[str, Any]
    doc: str

    def resolve(self, params: Mapping[str, Any], where: str) -> FrozenDict:
        """Check `params` against this op's parameters and fill in the defaults."""
        return resolve_params(f"op {self.name!r}", self.defaults, params, where)

    def build(self, c_in: int, params: Mapping[str, Any]) -> nn.Module:
        return self.factory(c_in, params)


def _op_entry(name: str, entry: Any) -> OpSpec:
    if isinstance(entry, OpSpec):
        return entry
    if callable(entry):
        return OpSpec(name, entry, freeze({}), (entry.__doc__ or "").strip())
    raise TypeError(f"an op must be an OpSpec or a factory(c_in, params), got {entry!r}")


OPS: Registry[OpSpec] = Registry("op", GROUPS["ops"], _op_entry)


def op(name: str, **defaults: Any) -> Callable[[Factory], Factory]:
    """Register the decorated factory as op `name` with parameters `defaults`."""

    def make(factory: Factory) -> OpSpec:
        return OpSpec(name, factory, freeze(defaults), (factory.__doc__ or "").strip())

    return OPS.decorator(name, make)


def get_op(name: str, where: str = "") -> OpSpec:
    if name not in OPS:
        known = ", ".join(OPS.names())
        raise GenomeError(where, f"unknown op {name!r} (known: {known})")
    return OPS.get(name)
