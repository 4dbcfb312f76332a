"""Squeeze-and-excitation around any cell (Hu et al. 2018): ``{cell: se, params: {cell: basic, ratio: 0.0625}}``."""
from __future__ import annotations

from collections.abc import Mapping

import networkx as nx

from nas.cellgraph import INPUT, OUTPUT, add_node
from nas.templates.registry import REQUIRED, CellContext, get_template, template
from nas.errors import GenomeError

# Single-input ops that only regularise a branch; the SE goes before them, on the branch's own output.
_BRANCH_TAIL_OPS = ("drop_path",)


@template("se", cell=REQUIRED, ratio=0.0625, params={})
def se(ctx: CellContext) -> nx.DiGraph:
    """The cell template `cell` (with its `params`) plus squeeze-and-excitation with `ratio` hidden channels
    per channel (Hu et al. use 1/16).

    Where the inner cell is residual (its output merges by addition the input or one shortcut node
    with deeper branches), the SE goes on each branch just before the add, as Hu et al. place it;
    otherwise it goes on the cell's output.
    """
    inner = _inner_cell(ctx)
    shortcut, branches = residual_branches(inner)
    if shortcut is None:
        return _after_output(inner, ctx.params["ratio"])
    graph = _copy(inner)
    for branch in branches:
        source, consumer = _branch_end(graph, branch)
        name = add_node(graph, _fresh_name(graph, "se"), [source], "se", ratio=ctx.params["ratio"])
        _replace_input(graph, consumer, source, name)
    return graph


def _inner_cell(ctx: CellContext) -> nx.DiGraph:
    name, params = ctx.params["cell"], ctx.params["params"]
    if not isinstance(name, str):
        raise ValueError(f"'cell' must name a cell template, got {name!r}")
    if not isinstance(params, Mapping):
        raise ValueError(f"'params' must be a mapping of the inner cell's parameters, got {params!r}")
    try:
        spec = get_template(name, "params.cell")
        resolved = spec.resolve(params, "params.params")
    except GenomeError as error:
        raise ValueError(f"{error.where}: {error.message}") from None
    return spec.factory(CellContext(ctx.c_in, ctx.out, ctx.stride, ctx.index, resolved))


def residual_branches(graph: nx.DiGraph) -> tuple[str | None, list[str]]:
    """(shortcut, branches) of a residual cell, or (None, []) when the cell is not residual.

    A cell is residual when its output node adds two or more inputs of which exactly one is the
    shallowest (fewest nodes on its longest path from the input): that one is the shortcut, the
    others are the residual branches.
    """
    if graph.nodes[OUTPUT]["merge"] != "add" or graph.in_degree(OUTPUT) < 2:
        return None, []
    depth = _longest_path_lengths(graph)
    sources = list(graph.predecessors(OUTPUT))
    shallowest = min(depth[s] for s in sources)
    shortcuts = [s for s in sources if depth[s] == shallowest]
    if len(shortcuts) != 1:
        return None, []
    return shortcuts[0], [s for s in sources if s != shortcuts[0]]


def _longest_path_lengths(graph: nx.DiGraph) -> dict[str, int]:
    depth = {INPUT: 0}
    for name in nx.topological_sort(graph):
        if name != INPUT:
            depth[name] = 1 + max(depth[s] for s in graph.predecessors(name))
    return depth


def _branch_end(graph: nx.DiGraph, node: str) -> tuple[str, str]:
    """(end, consumer): the branch's last node, walking back from `node` past drop-path-like ops that
    only this branch uses, and the node that reads it on the way to the output."""
    consumer = OUTPUT
    while (graph.nodes[node].get("op") in _BRANCH_TAIL_OPS and graph.in_degree(node) == 1
           and graph.out_degree(node) == 1):
        node, consumer = next(iter(graph.predecessors(node))), node
    return node, consumer


def _fresh_name(graph: nx.DiGraph, base: str) -> str:
    name, i = base, 1
    while name in graph:
        i += 1
        name = f"{base}{i}"
    return name


def _replace_input(graph: nx.DiGraph, node: str, old: str, new: str) -> None:
    """Make `node` read `new` where it read `old`, in the same position among its inputs."""
    inputs = list(graph.predecessors(node))
    for source in inputs:
        graph.remove_edge(source, node)
    for source in inputs:
        graph.add_edge(new if source == old else source, node)


def _copy(graph: nx.DiGraph, rename: Mapping[str, str] | None = None) -> nx.DiGraph:
    """A mutable copy with nodes renamed by `rename`, keeping node order and each node's input order."""
    rename = rename or {}
    copy = nx.DiGraph()
    for name, attrs in graph.nodes(data=True):
        copy.add_node(rename.get(name, name), **attrs)
    for name in graph:
        for source in graph.predecessors(name):
            copy.add_edge(rename.get(source, source), rename.get(name, name))
    return copy


def _after_output(inner: nx.DiGraph, ratio: float) -> nx.DiGraph:
    body = _fresh_name(inner, "body")
    graph = _copy(inner, {OUTPUT: body})
    add_node(graph, OUTPUT, [body], "se", ratio=ratio)
    return graph
