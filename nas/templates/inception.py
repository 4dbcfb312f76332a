"""Inception module (Szegedy et al. 2015, GoogLeNet): four parallel branches, concatenated."""
from __future__ import annotations

import networkx as nx

from nas.cellgraph import INPUT, OUTPUT, add_node, new_cell
from nas.templates.registry import REQUIRED, CellContext, template

BRANCH_WIDTHS = ("c1", "c3_reduce", "c3", "c5_reduce", "c5", "pool_proj")


@template("inception", scale_widths=BRANCH_WIDTHS, c1=REQUIRED, c3_reduce=REQUIRED, c3=REQUIRED, c5_reduce=REQUIRED,
          c5=REQUIRED, pool_proj=REQUIRED, c5_kernel=5, reduce_kernel=3, eps=1e-5)
def inception(ctx: CellContext) -> nx.DiGraph:
    """1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max pool -> 1x1 projection, concatenated in that order.

    Outputs ``c1 + c3 + c5 + pool_proj`` channels; leave the stage's ``out`` unset (width scaling
    rounds each branch, so a written-out sum would no longer match). A strided cell first max-pools
    with `reduce_kernel` and its stride (ceil mode), as GoogLeNet does between module groups.
    `c5_kernel` is the "5x5" branch's kernel: torchvision's GoogLeNet uses 3 there. Every conv is
    conv-BN(`eps`)-ReLU.
    """
    p = ctx.params
    width = p["c1"] + p["c3"] + p["c5"] + p["pool_proj"]
    if ctx.out is not None and ctx.out != width:
        raise ValueError(f"out={ctx.out} but the branches give c1 + c3 + c5 + pool_proj = {width}")
    graph = new_cell()
    source = INPUT
    if ctx.stride > 1:
        source = add_node(graph, "reduce", [INPUT], "maxpool", kernel=p["reduce_kernel"], stride=ctx.stride,
                          ceil_mode=True)

    def conv(name: str, inputs: list[str], out: int, kernel: int) -> str:
        return add_node(graph, name, inputs, "conv", out=out, kernel=kernel, eps=p["eps"])

    branches = [conv("b1x1", [source], p["c1"], 1)]
    branches.append(conv("b3x3", [conv("b3x3_reduce", [source], p["c3_reduce"], 1)], p["c3"], 3))
    branches.append(conv("b5x5", [conv("b5x5_reduce", [source], p["c5_reduce"], 1)], p["c5"], p["c5_kernel"]))
    pool = add_node(graph, "pool", [source], "maxpool", kernel=3, stride=1, padding=1)
    branches.append(conv("pool_proj", [pool], p["pool_proj"], 1))
    add_node(graph, OUTPUT, branches, "identity", merge="concat")
    return graph
