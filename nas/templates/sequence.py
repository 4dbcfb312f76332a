"""A stage made of a plain list of layers (VGG and AlexNet stages, GoogLeNet's pools, transitions)."""
from __future__ import annotations

import networkx as nx

from nas.cellgraph import chain
from nas.templates.registry import REQUIRED, CellContext, template


@template("layers", scale_depth=None, layers=REQUIRED)
def layers(ctx: CellContext) -> nx.DiGraph:
    """The given `layers`, one after another (each a node dict: ``{op: conv, out: 64}``).

    Depth scaling leaves these stages alone: repeating one would repeat its pooling too.
    """
    return chain(ctx.params["layers"], "params.layers")
