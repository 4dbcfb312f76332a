"""Checking a genome against the registries and by shape inference: the layer above the genome data.

`nas.genome` checks a genome's structure itself (fields, types, bounds, graphs that are DAGs from
input to output) and imports nothing above the data layer. Whether its ops and templates exist, take
the parameters given and fit together in shape is known only to the registries and shape inference
(`nas.expand`), which sit above it; `Genome.__post_init__` calls `validate` (imported on first use,
never at import time), so a Genome that exists is valid, and the layers still point one way:
data (genome, cell) -> registries (ops, templates) -> shape inference (expand) -> validation, identity.

Errors name what the user wrote: a node of a stem or head written as a list is ``stem[1]``, not the
internal ``stem.nodes.n1``; a node of an explicit cell is ``cells.NAME.nodes.NODE`` (with the stage
that used it after it), not just ``stages[2][0].nodes.NODE``.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

import networkx as nx

from nas import cellgraph
from nas.errors import GenomeError
from nas.expand import expand
from nas.identity import Identity, identity

if TYPE_CHECKING:
    from nas.genome import Genome

_NODE = re.compile(r"^(?P<part>[a-z_]+)\.nodes\.(?P<node>[^.\[\s]+)(?P<rest>.*)$", re.S)
_CELL = re.compile(r"^(?P<stage>stages\[(?P<s>\d+)\]\[\d+\])(?:\.nodes\.(?P<node>[^.\[\s]+))?(?P<rest>.*)$", re.S)


def validate(genome: "Genome") -> Identity:
    """Check `genome`'s ops, parameters and shapes; return its identity. GenomeError names the user's field."""
    try:
        expand(genome)
    except GenomeError as error:
        where, message = user_where(genome, error.where, error.message)
        raise GenomeError(where, message) from None
    return identity(genome)


def node_where(prefix: str, graph: nx.DiGraph, node: str) -> str:
    """How the user wrote `node` of `graph` found at `prefix`: ``prefix[i]`` in list form, else ``prefix.nodes.NODE``."""
    if isinstance(cellgraph.to_dict(graph), list):
        order = [n for n in graph if n != cellgraph.INPUT]
        if node in order:
            return f"{prefix}[{order.index(node)}]"
    return f"{prefix}.nodes.{node}"


def user_where(genome: "Genome", where: str, message: str) -> tuple[str, str]:
    """(where, message) of an error found while expanding `genome`, located as the user wrote the genome."""
    match = _NODE.match(where)
    if match and isinstance(getattr(genome, match["part"], None), nx.DiGraph):
        return node_where(match["part"], getattr(genome, match["part"]), match["node"]) + match["rest"], message
    match = _CELL.match(where)
    if match and match["node"] is not None:
        name = genome.stages[int(match["s"])].cell
        if name in genome.cells and match["node"] in genome.cells[name]:
            return node_where(f"cells.{name}", genome.cells[name], match["node"]) + match["rest"], \
                f"at {where}: {message}"
    return where, message
