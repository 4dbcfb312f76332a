"""Depthwise-separable cells: the Xception block (Chollet 2017) and the MobileNet V1 block (Howard et al. 2017)."""
from __future__ import annotations

import networkx as nx

from nas.cellgraph import INPUT, OUTPUT, add_node, new_cell
from nas.templates.registry import CellContext, template


@template("xception", reps=3, start_with_relu=True, grow_first=True, kernel=3)
def xception(ctx: CellContext) -> nx.DiGraph:
    """Xception block: `reps` times (ReLU, separable conv, BN), a 3x3 max pool with the cell's stride
    when it is > 1, plus a shortcut (identity, or a strided 1x1 conv + BN when the shape changes).

    The separable conv is depthwise then pointwise with no norm between. `grow_first` widens to the
    stage's `out` in the first separable conv (else in the last); `start_with_relu` false leaves out
    the first ReLU (the first entry-flow block, whose input has just been through one).
    """
    out = ctx.need_out("xception")
    p = ctx.params
    if p["reps"] < 1:
        raise ValueError(f"reps must be >= 1, got {p['reps']}")
    graph = new_cell()
    last = INPUT
    for i in range(p["reps"]):
        channels = out if p["grow_first"] or i == p["reps"] - 1 else ctx.c_in
        act = "relu" if i > 0 or p["start_with_relu"] else "none"
        last = add_node(graph, f"sep{i + 1}", [last], "sepconv", out=channels, kernel=p["kernel"], preact=True, act=act)
    if ctx.stride > 1:
        last = add_node(graph, "pool", [last], "maxpool", kernel=3, stride=ctx.stride, padding=1)
    skip = INPUT
    if ctx.stride != 1 or ctx.c_in != out:  # added after the separable convs, so it runs after them (as in timm)
        skip = add_node(graph, "skip", [INPUT], "conv", out=out, kernel=1, stride=ctx.stride, act="none")
    add_node(graph, OUTPUT, [last, skip], "identity")
    return graph


@template("dwsep", kernel=3, act="relu")
def dwsep(ctx: CellContext) -> nx.DiGraph:
    """MobileNet V1 block: depthwise k x k conv (with the cell's stride) + BN + act, pointwise 1x1 conv + BN + act.

    MobileNet V1 uses ReLU in the paper; timm's `mobilenetv1_100` uses ReLU6 (``act: relu6``).
    """
    out = ctx.need_out("dwsep")
    p = ctx.params
    graph = new_cell()
    depthwise = add_node(graph, "dw", [INPUT], "dwconv", kernel=p["kernel"], stride=ctx.stride, act=p["act"])
    add_node(graph, OUTPUT, [depthwise], "pwconv", out=out, act=p["act"])
    return graph
