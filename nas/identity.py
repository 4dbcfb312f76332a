"""A genome's identity: its canonical, resolved form, the fingerprint hashed from it, and the exact check.

Like nasbench's ``ModelSpec``: canonicalise first, then hash. The canonical form
  - fills in every default (an op's or a cell template's parameters, a node's merge) and writes
    numbers one way (``6`` and ``6.0`` alike), so how a value was written does not matter;
  - leaves out names: the genome's, its nodes' (cells are hashed up to isomorphism, with input ports
    and the output labelled distinctly) and its explicit cells' (a stage refers to its cell by content);
  - keeps everything that changes the function: every op and parameter, the order of a concat's (and
    a multiply's) inputs, which port an input is, every stage field.

A hash is not an identity by itself (colour refinement cannot tell every pair of graphs apart), so
`Identity.__eq__` confirms equal digests with an isomorphism check of every graph.

Layering: this module reads the op and template registries; the genome (data) does not import it,
`nas.validation` computes a genome's identity when the genome is created.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import networkx as nx

import nas.templates  # noqa: F401  (registers the cell templates)
import nas.ops  # noqa: F401  (registers the ops)
from nas import cellgraph
from nas.templates.registry import TEMPLATES
from nas.ops.registry import OPS
from nas.params import REQUIRED

if TYPE_CHECKING:
    from nas.genome import Genome


def canonical(value: Any) -> Any:
    """Plain data written one way: mappings with sorted keys, lists for sequences, integral floats as ints."""
    if isinstance(value, Mapping):
        return {str(k): canonical(value[k]) for k in sorted(value, key=str)}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def resolved_label(attrs: Mapping[str, Any]) -> str:
    """A node's label with every field present and the op's defaults filled in (tokens such as ``@out`` kept)."""
    spec = {"op": attrs["op"], **{field: attrs.get(field, default) for field, default in cellgraph.NODE_FIELDS.items()}}
    params = dict(attrs.get("params", {}))
    if attrs["op"] in OPS:
        params = {**{k: v for k, v in OPS.get(attrs["op"]).defaults.items() if v is not REQUIRED}, **params}
    spec["params"] = params
    return json.dumps(canonical(spec), sort_keys=True, default=repr)


def _resolved_nodes(value: Any) -> Any:
    """A template parameter that is a list of nodes (the ``layers`` of a plain stage) with each node
    resolved like a graph's; any other value as it is."""
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) and "op" in v for v in value):
        return [json.loads(resolved_label(cellgraph.node_attrs(v, "params"))) for v in value]
    return value


@dataclass(frozen=True, eq=False)
class Identity:
    """The canonical form of a genome: `text` (everything but the graphs, which appear as their hashes),
    `graphs` (each graph slot's labelled graph, for the exact check) and `digest` (the fingerprint)."""

    text: str
    graphs: tuple[tuple[str, nx.DiGraph | None], ...]
    digest: str

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Identity):
            return NotImplemented
        if self.digest != other.digest or self.text != other.text or len(self.graphs) != len(other.graphs):
            return False
        checked: dict[tuple[int, int], bool] = {}
        for (slot, a), (other_slot, b) in zip(self.graphs, other.graphs):
            if slot != other_slot or (a is None) != (b is None):
                return False
            if a is None:
                continue
            if (id(a), id(b)) not in checked:  # an explicit cell used by several stages is checked once
                checked[id(a), id(b)] = cellgraph.same_labelled(a, b)
            if not checked[id(a), id(b)]:
                return False
        return True

    def __hash__(self) -> int:
        return int(self.digest[:16], 16)


def identity(genome: "Genome") -> Identity:
    """The canonical form of `genome` (which must be valid: `nas.validation` calls this after checking it)."""
    spec = genome.to_dict()
    del spec["name"]
    spec.pop("cells", None)
    graphs: list[tuple[str, nx.DiGraph | None]] = []
    explicit: dict[str, tuple[str, nx.DiGraph]] = {}

    def graph_slot(slot: str, graph: nx.DiGraph) -> dict[str, str]:
        marked = cellgraph.labelled(graph, resolved_label)
        graphs.append((slot, marked))
        return {"graph": cellgraph.labelled_hash(marked)}

    for key in list(spec):
        if isinstance(getattr(genome, key, None), nx.DiGraph):
            spec[key] = graph_slot(key, getattr(genome, key))
    stages = []
    for i, (stage, written) in enumerate(zip(genome.stages, spec["stages"])):
        written = dict(written)
        if stage.cell in genome.cells:
            if stage.cell not in explicit:
                marked = cellgraph.labelled(genome.cells[stage.cell], resolved_label)
                explicit[stage.cell] = (cellgraph.labelled_hash(marked), marked)
            digest, marked = explicit[stage.cell]
            written["cell"] = {"graph": digest}
            graphs.append((f"stages[{i}]", marked))
        else:
            params = TEMPLATES.get(stage.cell).resolve(stage.params, f"stages[{i}].params")
            written["params"] = {key: _resolved_nodes(value) for key, value in params.items()}
            graphs.append((f"stages[{i}]", None))
        written.setdefault("repeats", stage.repeats)
        written.setdefault("stride", stage.stride)
        stages.append(written)
    spec["stages"] = stages
    text = json.dumps(canonical(spec), sort_keys=True, default=repr)
    return Identity(text, tuple(graphs), hashlib.sha256(text.encode()).hexdigest())
