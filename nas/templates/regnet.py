"""RegNet's residual bottleneck with group convolution and optional squeeze-and-excitation (Radosavovic et al. 2020)."""
from __future__ import annotations

import networkx as nx

from nas.cellgraph import INPUT, OUTPUT, add_node, new_cell
from nas.templates.registry import REQUIRED, CellContext, template
from nas.templates.residual import shortcut


@template("regnet", group_width=REQUIRED, bottleneck=1.0, se=0.0, act="relu",
          drop_path=0.0)
def regnet(ctx: CellContext) -> nx.DiGraph:
    """X block (Y block with `se`): 1x1 conv-BN-act to ``round(out * bottleneck)`` channels, 3x3 grouped conv-BN-act
    with the stride (groups of `group_width` channels), optional SE with ``round(se * c_in)`` hidden channels
    (RegNetY: 0.25), 1x1 conv-BN; plus the shortcut (a strided 1x1 conv-BN where the shape changes, run
    first as torchvision runs it), then the activation.
    """
    out = ctx.need_out("regnet")
    p = ctx.params
    width = int(round(out * p["bottleneck"]))
    if p["group_width"] < 1 or width % p["group_width"]:
        raise ValueError(f"group_width={p['group_width']} must divide the bottleneck width {width}")
    graph = new_cell()
    skip = shortcut(graph, ctx, out)
    last = add_node(graph, "a", [INPUT], "conv", out=width, kernel=1, act=p["act"])
    last = add_node(graph, "b", [last], "conv", out=width, kernel=3, stride=ctx.stride, groups=width // p["group_width"],
                    act=p["act"])
    if p["se"]:
        last = add_node(graph, "se", [last], "se", squeeze=max(1, int(round(p["se"] * ctx.c_in))), act=p["act"])
    last = add_node(graph, "c", [last], "conv", out=out, kernel=1, act="none")
    if p["drop_path"]:
        last = add_node(graph, "drop_path", [last], "drop_path", p=p["drop_path"])
    add_node(graph, OUTPUT, [last, skip], "act", kind=p["act"])
    return graph
