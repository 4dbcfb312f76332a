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
from nas.ops.activations import check_activation
from nas.params import REQUIRED, resolve_params
from nas.plugins import GROUPS
from nas.registry import Registry
from nas.suggest import did_you_mean

__all__ = ["OPS", "OpSpec", "REQUIRED", "get_op", "op"]

Factory = Callable[[int, Mapping[str, Any]], nn.Module]


@dataclass(frozen=True)
class OpSpec:
    """One registered op: its factory and its parameters with their defaults."""

    name: str
    factory: Factory
    defaults: Mapping[str, Any]
    doc: str
    pairs: tuple[str, ...] = ()  # integer parameters that also take [height, width] (non-square kernels)
    activations: tuple[str, ...] = ()  # parameters naming an activation (checked when a genome is validated)
    types: Mapping[str, str] = FrozenDict()  # what a parameter takes, in words, where its default cannot say

    def type_of(self, key: str) -> str | None:
        """What parameter `key` takes, in words (None: as its default's type says)."""
        if key in self.types:
            return self.types[key]
        if key in self.pairs:
            return "int or [height, width]"
        if key in self.activations:
            return "activation (see `nas ops act`)"
        return None

    def resolve(self, params: Mapping[str, Any], where: str) -> FrozenDict:
        """Check `params` against this op's parameters and fill in the defaults."""
        pairs = {key: params[key] for key in self.pairs if isinstance(params.get(key), (list, tuple))}
        for key, value in pairs.items():
            if len(value) != 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in value):
                raise GenomeError(where, f"parameter {key!r} of op {self.name!r} must be an integer or "
                                         f"[height, width] integers, got {list(value)!r}")
        plain = {key: pairs[key][0] if key in pairs else value for key, value in params.items()}  # type-checked as one int
        resolved = resolve_params(f"op {self.name!r}", self.defaults, plain, where)
        for key in self.activations:
            try:
                check_activation(resolved[key])
            except ValueError as error:
                raise GenomeError(where, f"op {self.name!r}, parameter {key!r}: {error}") from None
        return resolved.replace(**pairs) if pairs else resolved

    def build(self, c_in: int, params: Mapping[str, Any]) -> nn.Module:
        return self.factory(c_in, params)


def _op_entry(name: str, entry: Any) -> OpSpec:
    if isinstance(entry, OpSpec):
        return entry
    if callable(entry):
        return OpSpec(name, entry, freeze({}), (entry.__doc__ or "").strip())
    raise TypeError(f"an op must be an OpSpec or a factory(c_in, params), got {entry!r}")


OPS: Registry[OpSpec] = Registry("op", GROUPS["ops"], _op_entry)


ACTIVATION_PARAMS = ("act", "gate")  # parameters of these names always name an activation


def op(name: str, *, pairs: tuple[str, ...] = (), activations: tuple[str, ...] = (), types: Mapping[str, str] | None = None,
       **defaults: Any) -> Callable[[Factory], Factory]:
    """Register the decorated factory as op `name` with parameters `defaults`; the integer parameters
    named in `pairs` also accept ``[height, width]`` (e.g. ``kernel: [1, 7]``); the parameters in
    `activations` (and any called ``act`` or ``gate``) name an activation; `types` says in words what
    a parameter takes where its default cannot (for `nas ops`)."""
    named = tuple(dict.fromkeys([*activations, *(key for key in ACTIVATION_PARAMS if key in defaults)]))

    def make(factory: Factory) -> OpSpec:
        return OpSpec(name, factory, freeze(defaults), (factory.__doc__ or "").strip(), tuple(pairs), named,
                      freeze(dict(types or {})))

    return OPS.decorator(name, make)


def get_op(name: str, where: str = "") -> OpSpec:
    if name not in OPS:
        known = ", ".join(OPS.names())
        raise GenomeError(where, f"unknown op {name!r} (known: {known})" + did_you_mean(name, OPS.names()))
    return OPS.get(name)
