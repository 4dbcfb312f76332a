"""Densely connected cells (Huang et al. 2017, DenseNet): a whole dense block as one cell, and transitions."""
from __future__ import annotations

import networkx as nx

from nas.cellgraph import INPUT, OUTPUT, add_node, new_cell
from nas.templates.registry import REQUIRED, CellContext, template


@template("dense", scale_widths=("growth",), scale_depth="layers", layers=REQUIRED, growth=REQUIRED, bn_size=4,
          bottleneck=True, dropout=0.0)
def dense(ctx: CellContext) -> nx.DiGraph:
    """`layers` layers, each reading the concatenation of the block input and every earlier layer's output.

    A layer is BN-ReLU-conv1x1(`bn_size` * `growth`)-BN-ReLU-conv3x3(`growth`) (DenseNet-B), or
    BN-ReLU-conv3x3(`growth`) without `bottleneck`, then dropout if `dropout` > 0. The cell outputs
    the concatenation of its input and all `layers` outputs: ``c_in + layers * growth`` channels
    (a stage's ``out`` may be left out). Depth scaling multiplies `layers`.
    """
    p = ctx.params
    if p["layers"] < 1 or p["growth"] < 1:
        raise ValueError(f"layers and growth must be >= 1, got layers={p['layers']}, growth={p['growth']}")
    width = ctx.c_in + p["layers"] * p["growth"]
    if ctx.out is not None and ctx.out != width:
        raise ValueError(f"out={ctx.out} but c_in + layers * growth = {width}")
    if ctx.stride != 1:
        raise ValueError("a dense block keeps the resolution (stride 1); reduce in a 'transition'")
    graph = new_cell()
    features = [INPUT]
    for i in range(1, p["layers"] + 1):
        last = features
        if p["bottleneck"]:
            last = [add_node(graph, f"layer{i}_1x1", last, "conv", merge="concat", out=p["bn_size"] * p["growth"],
                             kernel=1, preact=True)]
        last = add_node(graph, f"layer{i}", last, "conv", merge="concat", out=p["growth"], kernel=3, preact=True)
        if p["dropout"]:
            last = add_node(graph, f"layer{i}_dropout", [last], "dropout", p=p["dropout"])
        features.append(last)
    add_node(graph, OUTPUT, features, "identity", merge="concat")
    return graph


@template("transition", scale_depth=None, compression=0.5)
def transition(ctx: CellContext) -> nx.DiGraph:
    """BN-ReLU-conv1x1, then (when strided) average pooling with the stride as kernel.

    Outputs the stage's ``out`` channels, or ``floor(c_in * compression)`` when it has none.
    Depth scaling leaves transitions alone (repeating one would halve the resolution again).
    """
    compression = ctx.params["compression"]
    out = ctx.out if ctx.out is not None else int(ctx.c_in * compression)
    if out < 1:
        raise ValueError(f"compression {compression} leaves no channels of {ctx.c_in}")
    graph = new_cell()
    if ctx.stride == 1:
        add_node(graph, OUTPUT, [INPUT], "conv", out=out, kernel=1, preact=True)
        return graph
    conv = add_node(graph, "conv", [INPUT], "conv", out=out, kernel=1, preact=True)
    add_node(graph, OUTPUT, [conv], "avgpool", kernel=ctx.stride)
    return graph
