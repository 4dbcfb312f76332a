"""The fractal block of FractalNet (Larsson et al. 2016) as one cell graph, with local and global drop-path."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import networkx as nx

from nas.cellgraph import INPUT, OUTPUT, add_node, new_cell
from nas.templates.registry import CellContext, template


@template("fractal", columns=3, kernel=3, drop_path=0.15, global_drop=0.5, dropout=0.0)
def fractal(ctx: CellContext) -> nx.DiGraph:
    """A fractal block of C = `columns` columns: f_1(z) = conv(z), f_{C+1}(z) = join(f_C(f_C(z)), conv(z)).

    Every conv is k x k conv + BN + ReLU with the stage's `out` channels (then dropout when `dropout` > 0).
    Nested joins that end at the same place are one join, as in the paper's figure, so a join
    averages one input per column it meets. Joins are ``mean`` merges with local drop-path
    `drop_path` (each input dropped with that probability, at least one kept) and `global_drop`,
    the probability that a training batch uses one column for the whole network. Column k
    (0 = shallowest) holds 2^k convs; each conv carries its ``column``. A stride > 1 makes the
    last join a max pool of that size (the paper pools 2x2 after every block).
    """
    out = ctx.need_out("fractal")
    p = ctx.params
    if p["columns"] < 1:
        raise ValueError(f"columns must be >= 1, got {p['columns']}")
    builder = _FractalBuilder(new_cell(), out, p)
    ends = builder.expand(INPUT, p["columns"], 0)
    pool = {"op": "maxpool", "kernel": ctx.stride} if ctx.stride > 1 else {"op": "identity"}
    builder.join(ends, OUTPUT, **pool)
    return builder.graph


class _FractalBuilder:
    """Adds the convs and joins of the fractal expansion to `graph`, naming them in creation order."""

    def __init__(self, graph: nx.DiGraph, out: int, params: Mapping[str, Any]):
        self.graph, self.out, self.p = graph, out, params
        self.convs = 0
        self.joins = 0

    def expand(self, source: str, columns: int, column: int) -> list[str]:
        """Build f_columns on `source` whose shallowest column is `column`; returns the column ends, deepest first."""
        if columns == 1:
            return [self.conv(source, column)]
        first = self.expand(source, columns - 1, column + 1)
        middle = self.join(first) if len(first) > 1 else first[0]
        return self.expand(middle, columns - 1, column + 1) + [self.conv(source, column)]

    def conv(self, source: str, column: int) -> str:
        self.convs += 1
        name = add_node(self.graph, f"conv{self.convs}", [source], "conv", out=self.out, kernel=self.p["kernel"],
                        column=column)
        if self.p["dropout"]:
            name = add_node(self.graph, f"dropout{self.convs}", [name], "dropout", p=self.p["dropout"], column=column)
        return name

    def join(self, sources: list[str], name: str | None = None, op: str = "identity", **params: Any) -> str:
        if name is None:
            self.joins += 1
            name = f"join{self.joins}"
        if len(sources) == 1:
            return add_node(self.graph, name, sources, op, **params)
        return add_node(self.graph, name, sources, op, merge="mean", drop_path=self.p["drop_path"],
                        global_drop=self.p["global_drop"], **params)
