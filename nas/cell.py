"""Cells as data: a cell is a `networkx.DiGraph` with ordered input nodes (ports) and one output node ``out``.

A cell has one input node, ``in``, unless it declares several ordered input ports (a cell that
reads the two previous cells, as in NASNet and DARTS, declares ``inputs: [prev_prev, prev]``).
Input nodes carry no op; the stage that uses the cell says where each port reads from (its
``reads``, see `nas.genome`). The ports' names are kept in the graph attribute ``inputs``.

Every other node carries:
  - ``op``: a name in the op registry,
  - ``params``: the op's parameters (a FrozenDict),
  - ``merge``: how its incoming edges are combined: add, concat, mean or multiply,
  - ``drop_path``, ``global_drop``, ``column``: fractal drop-path options of a ``mean`` merge
    (local drop probability of each input, probability of a global-column batch, and the
    column a node belongs to).

Concat order is the order in which a node's incoming edges were added. In dict form a
cell is ``{"inputs": [port, ...], "nodes": {name: {"op": ..., "merge": ..., **params}}, "edges": [[a, b], ...]}``
(``inputs`` may be left out: ``[in]``); a chain (stem, head, plain layer sequences) may be written as a
list of nodes. Every port must be read by some node. A cell with two ports, the second reading the
previous cell and the first the one before it (node ``a`` aligns the older input first)::

    inputs: [prev_prev, prev]
    nodes:
      a: {op: skip_connect, out: 32, stride: 2}
      out: {op: identity, merge: add}
    edges: [[prev_prev, a], [a, out], [prev, out]]
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


def new_cell(inputs: Sequence[str] = (INPUT,)) -> nx.DiGraph:
    """An empty cell with the given ordered input ports (one, ``in``, by default)."""
    graph = nx.DiGraph()
    for name in inputs:
        graph.add_node(name)
    if tuple(inputs) != (INPUT,):
        graph.graph["inputs"] = tuple(inputs)
    return graph


def input_nodes(graph: nx.DiGraph) -> tuple[str, ...]:
    """The cell's input ports, in order (``("in",)`` for a single-input cell)."""
    return tuple(graph.graph.get("inputs", (INPUT,)))


def is_input(graph: nx.DiGraph, name: str) -> bool:
    return name in input_nodes(graph)


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
    return input_nodes(graph) == (INPUT,) and all(graph.in_degree(n) <= 1 and graph.out_degree(n) <= 1 for n in graph)


def from_dict(spec: Any, where: str) -> nx.DiGraph:
    """Parse a cell from dict (graph) or list (chain) form, and validate its structure."""
    if isinstance(spec, Sequence) and not isinstance(spec, (str, bytes)):
        graph = chain(spec, where)
    elif isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"inputs", "nodes", "edges"})
        if unknown:
            raise GenomeError(where, f"unknown cell field {unknown[0]!r} (allowed: inputs, nodes, edges)")
        inputs = _ports(spec.get("inputs", [INPUT]), f"{where}.inputs")
        nodes, edges = spec.get("nodes"), spec.get("edges")
        if not isinstance(nodes, Mapping) or not nodes:
            raise GenomeError(f"{where}.nodes", "must be a non-empty mapping of node name -> node")
        if not isinstance(edges, Sequence) or isinstance(edges, (str, bytes)):
            raise GenomeError(f"{where}.edges", "must be a list of [source, target] pairs")
        graph = new_cell(inputs)
        for name, node in nodes.items():
            name = str(name)
            if name in inputs:
                raise GenomeError(f"{where}.nodes.{name}", "an input node takes no op; do not list it")
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


def _ports(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise GenomeError(where, f"must be a non-empty list of input node names, got {value!r}")
    names = tuple(str(v) if isinstance(v, (str, int)) and not isinstance(v, bool) else None for v in value)
    if None in names:
        raise GenomeError(where, f"input node names must be strings, got {list(value)!r}")
    if len(set(names)) != len(names):
        raise GenomeError(where, f"an input node is listed twice: {list(names)}")
    if OUTPUT in names:
        raise GenomeError(where, f"{OUTPUT!r} is the output node, not an input")
    return names


def to_dict(graph: nx.DiGraph) -> Any:
    """The dict form of a cell (list form for chains whose nodes are named n0, n1, ..., out)."""
    inputs = input_nodes(graph)
    order = [n for n in graph if n not in inputs]
    if is_chain(graph) and order == [f"n{i}" for i in range(len(order) - 1)] + [OUTPUT] and list(
        nx.topological_sort(graph)
    ) == [INPUT] + order:
        return [node_spec(graph.nodes[n]) for n in order]
    nodes = {n: node_spec(graph.nodes[n]) for n in order}
    edges = [[source, target] for target in order for source in graph.predecessors(target)]
    spec: dict[str, Any] = {"inputs": list(inputs)} if inputs != (INPUT,) else {}
    return {**spec, "nodes": nodes, "edges": edges}


def validate_structure(graph: nx.DiGraph, where: str) -> None:
    """Check that the graph is a DAG from its inputs to ``out`` with every node on such a path."""
    inputs = input_nodes(graph)
    if OUTPUT not in graph:
        raise GenomeError(where, f"cell has no output node {OUTPUT!r}")
    for port in inputs:
        if port not in graph:
            raise GenomeError(f"{where}.inputs", f"input node {port!r} is not in the graph")
        if graph.in_degree(port):
            raise GenomeError(f"{where}.nodes.{port}", "an input node cannot have incoming edges")
        if "op" in graph.nodes[port]:
            raise GenomeError(f"{where}.nodes.{port}", "an input node takes no op")
    if graph.out_degree(OUTPUT):
        raise GenomeError(f"{where}.nodes.{OUTPUT}", "the output node cannot have outgoing edges")
    if not nx.is_directed_acyclic_graph(graph):
        cycle = " -> ".join(str(edge[0]) for edge in nx.find_cycle(graph))
        raise GenomeError(where, f"cell has a cycle: {cycle}")
    reachable = set(inputs).union(*(nx.descendants(graph, port) for port in inputs))
    reaching = nx.ancestors(graph, OUTPUT) | {OUTPUT}
    for name in graph:
        if name not in reachable:
            raise GenomeError(f"{where}.nodes.{name}", "dangling node: not reachable from an input")
        if name not in reaching:
            what = "input node is read by no node" if name in inputs else "dangling node: does not lead to the output"
            raise GenomeError(f"{where}.nodes.{name}", what)
        if name not in inputs and "op" not in graph.nodes[name]:
            raise GenomeError(f"{where}.nodes.{name}", "node has no 'op'")


def topological_order(graph: nx.DiGraph) -> list[str]:
    """A fixed topological order: among ready nodes, the one added to the graph first."""
    rank = {name: i for i, name in enumerate(graph)}
    return list(nx.lexicographical_topological_sort(graph, key=rank.__getitem__))


def node_label(attrs: Mapping[str, Any]) -> str:
    return json.dumps(node_spec(attrs), sort_keys=True, default=str) if "op" in attrs else INPUT


def _end_labels(graph: nx.DiGraph) -> dict[str, str]:
    """Labels that tell the ends of a cell apart: port k (``in``, ``in#1``, ...) and the output."""
    labels = {port: INPUT if k == 0 else f"{INPUT}#{k}" for k, port in enumerate(input_nodes(graph))}
    labels[OUTPUT] = "#out"
    return labels


def _edge_positions(graph: nx.DiGraph) -> dict[tuple[str, str], str]:
    """Each edge into a concat merge labelled with its position in the concat (order changes the function)."""
    positions = {}
    for target in graph:
        ordered = graph.nodes[target].get("merge") == "concat" and graph.in_degree(target) > 1
        for k, source in enumerate(graph.predecessors(target)):
            positions[(source, target)] = str(k) if ordered else ""
    return positions


def fingerprint(graph: nx.DiGraph) -> str:
    """A hash of the cell that is the same for isomorphic cells (same graph up to node names).

    Ports are told apart by their position, and a concat's inputs by their order."""
    labelled = nx.DiGraph()
    ends = _end_labels(graph)
    for name, attrs in graph.nodes(data=True):
        label = node_label(attrs) if name not in ends or name == OUTPUT else ""
        labelled.add_node(name, label=label + ends.get(name, ""))
    positions = _edge_positions(graph)
    for edge, position in positions.items():
        labelled.add_edge(*edge, position=position)
    ordered = any(positions.values())  # without an ordered concat: the hash of the graph alone, as before
    with warnings.catch_warnings():  # networkx >= 3.5 warns that directed hashes changed in 3.5
        warnings.simplefilter("ignore", UserWarning)
        wl = nx.weisfeiler_lehman_graph_hash(labelled, node_attr="label", edge_attr="position" if ordered else None,
                                             iterations=max(3, len(graph)))
    return hashlib.sha256(wl.encode()).hexdigest()


def isomorphic(a: nx.DiGraph, b: nx.DiGraph) -> bool:
    """Whether the cells are equal up to node names (ports matched by position, concat inputs by order)."""
    def same(x: Mapping[str, Any], y: Mapping[str, Any]) -> bool:
        return node_label(x) == node_label(y) and x["end"] == y["end"]

    marked_a, marked_b = (_mark_ends(g) for g in (a, b))
    return nx.is_isomorphic(marked_a, marked_b, node_match=same,
                            edge_match=lambda x, y: x["position"] == y["position"])


def _mark_ends(graph: nx.DiGraph) -> nx.DiGraph:
    marked = nx.DiGraph(graph)
    ends = _end_labels(graph)
    for name in marked:
        marked.nodes[name]["end"] = ends.get(name, "")
    for edge, position in _edge_positions(graph).items():
        marked.edges[edge]["position"] = position
    return marked
