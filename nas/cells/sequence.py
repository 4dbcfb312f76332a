"""A stage made of a plain list of layers (VGG and AlexNet stages, GoogLeNet's pools, transitions)."""
from __future__ import annotations

import networkx as nx

from nas.cell import chain
from nas.cells.registry import REQUIRED, CellContext, template


@template("layers", layers=REQUIRED)
def layers(ctx: CellContext) -> nx.DiGraph:
    """The given `layers`, one after another (each a node dict: ``{op: conv, out: 64}``)."""
    return chain(ctx.params["layers"], "params.layers")
