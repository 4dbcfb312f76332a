"""The cell-template registry: functions that expand a stage's cell parameters into a cell graph.

A template is ``factory(ctx: CellContext) -> networkx.DiGraph``; the graph has an ``in``
node and an ``out`` node (see `nas.cellgraph`) and concrete op parameters. Register one with::

    @template("basic", expansion=1)
    def basic(ctx): ...

Another package adds templates through entry points in group ``nas.templates`` (see `nas.plugins`):
an entry point names a module whose ``@template`` functions register when it is imported, a
`TemplateSpec`, or a plain factory (a template without parameters).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import networkx as nx

from nas.errors import GenomeError
from nas.frozen import FrozenDict, freeze
from nas.params import REQUIRED, resolve_params
from nas.plugins import GROUPS
from nas.registry import Registry

__all__ = ["CellContext", "REQUIRED", "TEMPLATES", "TemplateSpec", "get_template", "template"]


@dataclass(frozen=True)
class CellContext:
    """What a template knows when it expands one cell of a stage."""

    c_in: int  # channels of the cell's input
    out: int | None  # the stage's output channels (None where the template decides)
    stride: int  # stride of this cell (the stage's stride for its first cell, 1 after)
    index: int  # position of this cell in its stage (0 for the first)
    params: FrozenDict  # the stage's cell parameters, defaults filled in
    c_ins: tuple[int, ...] = ()  # channels of each input port, in order (for cells with several inputs)

    def __post_init__(self) -> None:
        if not self.c_ins:
            object.__setattr__(self, "c_ins", (self.c_in,))

    def need_out(self, template: str) -> int:
        if self.out is None:
            raise ValueError(f"cell template {template!r} needs the stage's 'out' channels")
        return self.out


TemplateFactory = Callable[[CellContext], nx.DiGraph]


@dataclass(frozen=True)
class TemplateSpec:
    name: str
    factory: TemplateFactory
    defaults: Mapping[str, Any]
    doc: str
    widths: tuple[str, ...] = ()  # parameters holding channel counts, scaled with the width (see `nas.scale_genome`)
    depth: str | None = "repeats"  # what depth scaling multiplies: "repeats", a parameter's name, or None

    def resolve(self, params: Mapping[str, Any], where: str) -> FrozenDict:
        return resolve_params(f"cell template {self.name!r}", self.defaults, params, where)


def _template_entry(name: str, entry: Any) -> TemplateSpec:
    if isinstance(entry, TemplateSpec):
        return entry
    if callable(entry):
        return TemplateSpec(name, entry, freeze({}), (entry.__doc__ or "").strip())
    raise TypeError(f"a cell template must be a TemplateSpec or a factory(ctx), got {entry!r}")


TEMPLATES: Registry[TemplateSpec] = Registry("cell template", GROUPS["templates"], _template_entry)


def template(name: str, *, scale_widths: tuple[str, ...] = (), scale_depth: str | None = "repeats",
             **defaults: Any) -> Callable[[TemplateFactory], TemplateFactory]:
    """Register the decorated function as cell template `name` with parameters `defaults`.

    `scale_widths` names the parameters that count channels (scaled like a stage's ``out`` by
    `nas.scale_genome.scale`); `scale_depth` says what depth scaling multiplies: the stage's
    ``"repeats"``, the name of a parameter (e.g. the layers of a dense block), or None for a
    cell that must not be repeated (e.g. a transition that halves the resolution).
    """

    def make(factory: TemplateFactory) -> TemplateSpec:
        return TemplateSpec(name, factory, freeze(defaults), (factory.__doc__ or "").strip(),
                            tuple(scale_widths), scale_depth)

    return TEMPLATES.decorator(name, make)


def get_template(name: str, where: str) -> TemplateSpec:
    if name not in TEMPLATES:
        raise GenomeError(where, f"unknown cell {name!r}: neither a cell template ({', '.join(TEMPLATES.names())})"
                          " nor a cell defined under 'cells'")
    return TEMPLATES.get(name)
