"""Cells as data: a cell is a `networkx.DiGraph` with one input node ``in`` and one output node ``out``.

Every node but ``in`` carries:
  - ``op``: a name in the op registry,
  - ``params``: the op's parameters (a FrozenDict),
  - ``merge``: how its incoming edges are combined: add, concat, mean or multiply,
  - ``drop_path``, ``global_drop``, ``column``: fractal drop-path options of a ``mean`` merge
    (local drop probability of each input, probability of a global-column batch, and the
    column a node belongs to).

Concat order is the order in which a node's incoming edges were added. In dict form a
cell is ``{"nodes": {name: {"op": ..., "merge": ..., **params}}, "edges": [[a, b], ...]}``;
a chain (stem, head, plain layer sequences) may be written as a list of nodes.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import networkx as nx

from nas.errors import GenomeError
from nas.frozen import freeze, thaw

INPUT = "in"
OUTPUT = "out"
MERGES = ("add", "concat", "mean", "multiply")
NODE_FIELDS = {"merge": "add", "drop_path": 0.0, "global_drop": 0.0, "column": None}


def node_attrs(spec: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Split a flat node dict ``{op, merge, ..., **params}`` into graph node attributes."""
    if not isinstance(spec, Mapping):
        raise GenomeError(where, f"a node must be a mapping with an 'op', got {spec!r}")
    if "op" not in spec:
        raise GenomeError(where, "node has no 'op'")
    if not isinstance(spec["op"], str):
        raise GenomeError(where, f"'op' must be a name, got {spec['op']!r}")
    attrs = {"op": spec["op"]}
    for field, default in NODE_FIELDS.items():
        attrs[field] = spec.get(field, default)
    if attrs["merge"] not in MERGES:
        raise GenomeError(where, f"unknown merge {attrs['merge']!r} (known: {', '.join(MERGES)})")
    for field in ("drop_path", "global_drop"):
        value = attrs[field]
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0.0 <= value < 1.0:
            raise GenomeError(where, f"{field} must be a probability in [0, 1), got {value!r}")
        if value and attrs["merge"] != "mean":
            raise GenomeError(where, f"{field} needs merge 'mean', not {attrs['merge']!r}")
    if attrs["column"] is not None and (not isinstance(attrs["column"], int) or isinstance(attrs["column"], bool)):
        raise GenomeError(where, f"column must be an integer, got {attrs['column']!r}")
    attrs["params"] = freeze({k: v for k, v in spec.items() if k != "op" and k not in NODE_FIELDS})
    return attrs


def node_spec(attrs: Mapping[str, Any]) -> dict[str, Any]:
    """Inverse of `node_attrs`: the flat dict of a node, leaving out fields at their defaults."""
    spec: dict[str, Any] = {"op": attrs["op"]}
    for field, default in NODE_FIELDS.items():
        if attrs.get(field, default) != default:
            spec[field] = attrs[field]
    spec.update(thaw(attrs.get("params", {})))
    return spec


def new_cell() -> nx.DiGraph:
    graph = nx.DiGraph()
    graph.add_node(INPUT)
    return graph


def add_node(graph: nx.DiGraph, name: str, inputs: Sequence[str], op: str, merge: str = "add", **params: Any) -> str:
    """Add node `name` computing `op(merge(inputs))`; returns `name` (a small builder for templates)."""
    graph.add_node(name, **node_attrs({"op": op, "merge": merge, **params}, name))
    for source in inputs:
        graph.add_edge(source, name)
    return name


def chain(layers: Sequence[Mapping[str, Any]], where: str) -> nx.DiGraph:
    """A cell that applies `layers` one after another; the last layer is ``out``."""
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or not layers:
        raise GenomeError(where, "must be a non-empty list of layers")
    graph = new_cell()
    previous = INPUT
    for i, layer in enumerate(layers):
        name = OUTPUT if i == len(layers) - 1 else f"n{i}"
        graph.add_node(name, **node_attrs(layer, f"{where}[{i}]"))
        graph.add_edge(previous, name)
        previous = name
    return graph


def is_chain(graph: nx.DiGraph) -> bool:
    return all(graph.in_degree(n) <= 1 and graph.out_degree(n) <= 1 for n in graph)


def from_dict(spec: Any, where: str) -> nx.DiGraph:
    """Parse a cell from dict (graph) or list (chain) form, and validate its structure."""
    if isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
        graph = chain(spec, where)
    elif isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"nodes", "edges"})
        if unknown:
            raise GenomeError(where, f"unknown cell field {unknown[0]!r} (allowed: nodes, edges)")
        nodes, edges = spec.get("nodes"), spec.get("edges")
        if not isinstance(nodes, Mapping) or not nodes:
            raise GenomeError(f"{where}.nodes", "must be a non-empty mapping of node name -> node")
        if not isinstance(edges, Sequence) or isinstance(edges, (str, bytes)):
            raise GenomeError(f"{where}.edges", "must be a list of [source, target] pairs")
        graph = new_cell()
        for name, node in nodes.items():
            name = str(name)
            if name == INPUT:
                raise GenomeError(f"{where}.nodes.{INPUT}", "the input node takes no op; do not list it")
            graph.add_node(name, **node_attrs(node, f"{where}.nodes.{name}"))
        for i, edge in enumerate(edges):
            if not isinstance(edge, Sequence) or isinstance(edge, (str, bytes)) or len(edge) != 2:
                raise GenomeError(f"{where}.edges[{i}]", f"an edge is a [source, target] pair, got {edge!r}")
            source, target = (str(e) for e in edge)
            for end in (source, target):
                if end not in graph:
                    raise GenomeError(f"{where}.edges[{i}]", f"edge names unknown node {end!r}")
            if graph.has_edge(source, target):
                raise GenomeError(f"{where}.edges[{i}]", f"duplicate edge {source} -> {target}")
            graph.add_edge(source, target)
    else:
        raise GenomeError(where, f"a cell is a list of layers or a mapping with nodes and edges, got {spec!r}")
    validate_structure(graph, where)
    return nx.freeze(graph)


def to_dict(graph: nx.DiGraph) -> Any:
    """The dict form of a cell (list form for chains whose nodes are named n0, n1, ..., out)."""
    order = [n for n in graph if n != INPUT]
    if is_chain(graph) and order == [f"n{i}" for i in range(len(order) - 1)] + [OUTPUT] and list(
        nx.topological_sort(graph)
    ) == [INPUT] + order:
        return [node_spec(graph.nodes[n]) for n in order]
    nodes = {n: node_spec(graph.nodes[n]) for n in order}
    edges = [[source, target] for target in order for source in graph.predecessors(target)]
    return {"nodes": nodes, "edges": edges}


def validate_structure(graph: nx.DiGraph, where: str) -> None:
    """Check that the graph is a DAG from ``in`` to ``out`` with every node on such a path."""
    if OUTPUT not in graph:
        raise GenomeError(where, f"cell has no output node {OUTPUT!r}")
    if graph.in_degree(INPUT):
        raise GenomeError(f"{where}.nodes.{INPUT}", "the input node cannot have incoming edges")
    if graph.out_degree(OUTPUT):
        raise GenomeError(f"{where}.nodes.{OUTPUT}", "the output node cannot have outgoing edges")
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " -> ".join(str(edge[0]) for edge in nx.find_cycle(graph))
        raise GenomeError(where, f"cell has a cycle: {cycle}")
    reachable = nx.descendants(graph, INPUT) | {INPUT}
    reaching = nx.ancestors(graph, OUTPUT) | {OUTPUT}
    for name in graph:
        if name not in reachable:
            raise GenomeError(f"{where}.nodes.{name}", "dangling node: not reachable from the input")
        if name not in reaching:
            raise GenomeError(f"{where}.nodes.{name}", "dangling node: does not lead to the output")


def topological_order(graph: nx.DiGraph) -> list[str]:
    """A fixed topological order: among ready nodes, the one added to the graph first."""
    rank = {name: i for i, name in enumerate(graph)}
    return list(nx.lexicographical_topological_sort(graph, key=rank.__getitem__))


def node_label(attrs: Mapping[str, Any]) -> str:
    return json.dumps(node_spec(attrs), sort_keys=True, default=str) if "op" in attrs else INPUT


def fingerprint(graph: nx.DiGraph) -> str:
    """A hash of the cell that is the same for isomorphic cells (same graph up to node names)."""
    labelled = nx.DiGraph()
    for name, attrs in graph.nodes(data=True):
        label = node_label(attrs)
        labelled.add_node(name, label=label + ("#out" if name == OUTPUT else ""))
    labelled.add_edges_from(graph.edges)
    with warnings.catch_warnings():  # networkx >= 3.5 warns that directed hashes changed in 3.5
        warnings.simplefilter("ignore", UserWarning)
        wl = nx.weisfeiler_lehman_graph_hash(labelled, node_attr="label", iterations=max(3, len(graph)))
    return hashlib.sha256(wl.encode()).hexdigest()


def isomorphic(a: nx.DiGraph, b: nx.DiGraph) -> bool:
    def same(x: Mapping[str, Any], y: Mapping[str, Any]) -> bool:
        return node_label(x) == node_label(y)

    marked_a, marked_b = (_mark_ends(g) for g in (a, b))
    return nx.is_isomorphic(marked_a, marked_b, node_match=lambda x, y: same(x, y) and x["end"] == y["end"])


def _mark_ends(graph: nx.DiGraph) -> nx.DiGraph:
    marked = nx.DiGraph(graph)
    for name in marked:
        marked.nodes[name]["end"] = name if name in (INPUT, OUTPUT) else ""
    return marked

