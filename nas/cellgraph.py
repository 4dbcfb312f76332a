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

A genome holds its cells as `freeze_graph` copies: nothing in them can be changed in place, node
attributes included. `fingerprint` and `isomorphic` compare cells up to node names, keeping what
changes the function: labels (by default the node as written; `nas.identity` passes the resolved
form), input ports, the output, and the input order of concat and multiply merges.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import networkx as nx

from nas.errors import GenomeError
from nas.frozen import FrozenDict, freeze, thaw
from nas.limits import MAX_CELL_NODES, MAX_CELL_SIZE

INPUT = "in"
OUTPUT = "out"
MERGES = ("add", "concat", "mean", "multiply")
ORDERED_MERGES = ("concat", "multiply")  # merges whose input order is part of the function
NODE_FIELDS = {"merge": "add", "drop_path": 0.0, "global_drop": 0.0, "column": None}
NODE_FIELD_MEANINGS = {  # shown by `nas ops`
    "merge": f"how the node combines its inputs: {', '.join(MERGES)} (input order matters for {' and '.join(ORDERED_MERGES)})",
    "drop_path": "fractal drop-path: the local drop probability of each input of a 'mean' merge",
    "global_drop": "fractal drop-path: the probability that a batch keeps one global column only",
    "column": "fractal drop-path: the column the node belongs to",
}
OUT_TYPE = "int >= 1, or a token (@in, @out)"  # a node's `out` is a channel count, whatever the op (`_check_out`)


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
    if "out" in attrs["params"]:
        _check_out(attrs["params"]["out"], f"{where}.out")
    return attrs


def _check_out(value: Any, where: str) -> None:
    """A node's ``out`` is a channel count (every op, `nas.scale_genome` and the templates read it so): a positive
    integer, or what shape inference resolves to one: a token such as ``"@out"``, or arithmetic written as a
    one-key mapping such as ``{div: ["@out", 4]}`` (see `nas.expand`), whose result is checked there."""
    if isinstance(value, (str, Mapping)) or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
        return
    raise GenomeError(where, f"a channel count must be >= 1 and an integer (or a token such as '@out'), got {value!r}")


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
    """Add node `name` computing `op(merge(inputs))`; returns `name` (a small builder for templates).

    Refuses to grow a cell past `MAX_CELL_NODES` nodes or `MAX_CELL_SIZE` nodes and edges (counted every
    64 nodes), so a template asked for 10**9 layers stops at once; the stage expanding it names the place.
    """
    if len(graph) >= MAX_CELL_NODES or (
            len(graph) % 64 == 0 and len(graph) + graph.number_of_edges() + len(inputs) > MAX_CELL_SIZE):
        raise ValueError(f"a cell may have at most {MAX_CELL_NODES:,} nodes and {MAX_CELL_SIZE:,} nodes and edges")
    graph.add_node(name, **node_attrs({"op": op, "merge": merge, **params}, name))
    for source in inputs:
        graph.add_edge(source, name)
    return name


def chain(layers: Sequence[Mapping[str, Any]], where: str) -> nx.DiGraph:
    """A cell that applies `layers` one after another; the last layer is ``out``."""
    if isinstance(layers, (str, bytes)) or not isinstance(layers, Sequence) or not layers:
        raise GenomeError(where, "must be a non-empty list of layers")
    if len(layers) > MAX_CELL_NODES:
        raise GenomeError(where, f"a cell may have at most {MAX_CELL_NODES:,} nodes, got {len(layers):,}")
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
        if len(nodes) > MAX_CELL_NODES:
            raise GenomeError(f"{where}.nodes", f"a cell may have at most {MAX_CELL_NODES:,} nodes, got {len(nodes):,}")
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
    return freeze_graph(graph)


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
    """A node's label as written (the default for `fingerprint` and `isomorphic`); ``in`` for an input."""
    return json.dumps(node_spec(attrs), sort_keys=True, default=str) if "op" in attrs else INPUT


def input_ports(graph: nx.DiGraph) -> dict[Any, int]:
    """Input node -> port index (`input_nodes`: ``in`` alone, or the cell's ``inputs`` in port order)."""
    return {name: i for i, name in enumerate(input_nodes(graph))}


def labelled(graph: nx.DiGraph, label: Callable[[Mapping[str, Any]], str] = node_label) -> nx.DiGraph:
    """The graph as identity sees it: node attribute ``label`` (`label` of the node; ``input:k`` for
    input port k; ``#out`` marks the output) and edge attribute ``pos``: the edge's place among its
    target's inputs where that order changes the function (concat, multiply), -1 where it does not."""
    ports = input_ports(graph)
    result = nx.DiGraph()
    for name, attrs in graph.nodes(data=True):
        text = f"input:{ports.get(name, '?')}" if "op" not in attrs else label(attrs)
        result.add_node(name, label=text + ("#out" if name == OUTPUT else ""))
    for target in graph:
        ordered = graph.nodes[target].get("merge") in ORDERED_MERGES
        for position, source in enumerate(graph.predecessors(target)):
            result.add_edge(source, target, pos=position if ordered else -1)
    return result


def labelled_hash(graph: nx.DiGraph) -> str:
    """A hash of a `labelled` graph that is the same for isomorphic ones (renaming nodes, reordering
    them or the edges of add/mean merges) and differs when a label or an ordered input changes.

    Colour refinement (Weisfeiler-Lehman) over predecessors (in input order for ordered merges) and
    successors (with the edge's place), until the partition of nodes is stable. Written here rather
    than with `networkx.weisfeiler_lehman_graph_hash` because fingerprints are stored in run folders and
    must not change when networkx does (its directed hashes changed in 3.5), and it must see edge order.
    """
    colour = {n: graph.nodes[n]["label"] for n in graph}
    classes = len(set(colour.values()))
    for _ in range(max(1, len(graph))):
        new = {}
        for n in graph:
            ins = [(graph.edges[p, n]["pos"], colour[p]) for p in graph.predecessors(n)]
            outs = [(graph.edges[n, s]["pos"], colour[s]) for s in graph.successors(n)]
            new[n] = _sha(json.dumps([colour[n], sorted(ins), sorted(outs)]))
        colour = new
        count = len(set(colour.values()))
        if count == classes:  # refinement only splits classes: no split now, none later
            break
        classes = count
    return _sha(json.dumps(sorted(colour.values())))


def same_labelled(a: nx.DiGraph, b: nx.DiGraph) -> bool:
    """Whether two `labelled` graphs are isomorphic, labels and ordered inputs included (the exact check)."""
    return nx.is_isomorphic(a, b, node_match=_same_label, edge_match=_same_position)


def _same_label(x: Mapping[str, Any], y: Mapping[str, Any]) -> bool:
    return x["label"] == y["label"]


def _same_position(x: Mapping[str, Any], y: Mapping[str, Any]) -> bool:
    return x["pos"] == y["pos"]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint(graph: nx.DiGraph, label: Callable[[Mapping[str, Any]], str] = node_label) -> str:
    """A hash of the cell, the same for isomorphic cells (same graph up to node names) and different
    when an op, a parameter (as `label` renders it), a port or a concat's input order changes."""
    return labelled_hash(labelled(graph, label))


def isomorphic(a: nx.DiGraph, b: nx.DiGraph, label: Callable[[Mapping[str, Any]], str] = node_label) -> bool:
    """Whether two cells compute the same function: isomorphic, with equal labels, ports and input orders."""
    return same_labelled(labelled(a, label), labelled(b, label))


def freeze_graph(graph: nx.DiGraph) -> nx.DiGraph:
    """A read-only copy of `graph`: no node or edge can be added or removed (`networkx.freeze`), and the
    node, edge and graph attributes are FrozenDicts (``g.nodes[n]["op"] = ...`` fails). Each node keeps
    the order of its inputs (a concat's order), which `nx.DiGraph.copy` does not promise."""
    if nx.is_frozen(graph) and isinstance(graph.graph, FrozenDict) and all(
            isinstance(attrs, FrozenDict) for _, attrs in graph.nodes(data=True)):
        return graph
    frozen = nx.DiGraph()
    frozen.add_nodes_from(graph)
    for target in graph:
        frozen.add_edges_from((source, target) for source in graph.predecessors(target))
    for name, attrs in graph.nodes(data=True):
        frozen._node[name] = FrozenDict((str(k), freeze(v)) for k, v in attrs.items())
    for source, target, data in graph.edges(data=True):  # one dict per edge, shared by _succ and _pred
        frozen._succ[source][target] = frozen._pred[target][source] = FrozenDict(freeze(dict(data)))
    frozen.graph = FrozenDict(freeze(dict(graph.graph)))
    return nx.freeze(frozen)
