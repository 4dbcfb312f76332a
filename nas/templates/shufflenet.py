"""The ShuffleNet V2 unit (Ma et al. 2018): channel split, one light branch, concatenation, channel shuffle."""
from __future__ import annotations

import networkx as nx

from nas.cellgraph import INPUT, OUTPUT, add_node, new_cell
from nas.templates.registry import CellContext, template


@template("shufflenet_v2", kernel=3, act="relu")
def shufflenet_v2(ctx: CellContext) -> nx.DiGraph:
    """ShuffleNet V2 unit: half the stage's `out` channels per branch, concatenated, then a channel shuffle of 2 groups.

    With stride 1 the input is split in two channel halves: the first passes unchanged, the second goes
    through 1x1 conv-BN-act, k x k depthwise conv-BN, 1x1 conv-BN-act. With a larger stride (the first unit
    of a stage) both branches read the whole input: one is a strided depthwise conv-BN then 1x1 conv-BN-act,
    the other the three-layer branch with the depthwise conv strided.
    """
    out = ctx.need_out("shufflenet_v2")
    p = ctx.params
    if out % 2:
        raise ValueError(f"out must be even (two branches of out / 2 channels), got {out}")
    half = out // 2
    graph = new_cell()
    if ctx.stride == 1:
        if ctx.c_in != out:
            raise ValueError(f"a unit with stride 1 keeps the width: input has {ctx.c_in} channels, out={out}")
        left = add_node(graph, "split_left", [INPUT], "chunk", chunks=2, index=0)
        right = add_node(graph, "split_right", [INPUT], "chunk", chunks=2, index=1)
    else:
        left = add_node(graph, "left_dw", [INPUT], "dwconv", kernel=p["kernel"], stride=ctx.stride, act="none")
        left = add_node(graph, "left_pw", [left], "conv", out=half, kernel=1, act=p["act"])
        right = INPUT
    right = add_node(graph, "right_pw1", [right], "conv", out=half, kernel=1, act=p["act"])
    right = add_node(graph, "right_dw", [right], "dwconv", kernel=p["kernel"], stride=ctx.stride, act="none")
    right = add_node(graph, "right_pw2", [right], "conv", out=half, kernel=1, act=p["act"])
    add_node(graph, OUTPUT, [left, right], "channel_shuffle", merge="concat", groups=2)
    return graph
