"""Inverted residual cells (MobileNetV2, Sandler et al. 2018; MBConv of EfficientNet, Tan & Le 2019)."""
from __future__ import annotations

import networkx as nx

from nas.cell import INPUT, OUTPUT, add_node, new_cell
from nas.cells.registry import CellContext, template
from nas.rounding import round_channels


@template("mbconv", expansion=6.0, kernel=3, act="relu6", se=0.0, se_op="se", se_act=None, se_gate="sigmoid",
          expand_divisor=1, drop_path=0.0, eps=1e-5, momentum=0.1)
def mbconv(ctx: CellContext) -> nx.DiGraph:
    """Optional 1x1 expansion, depthwise k x k with the stride, optional squeeze-and-excitation,
    linear 1x1 projection; plus the input when stride is 1 and channels are kept.

    The expanded width is ``c_in * expansion`` rounded to a multiple of `expand_divisor` (1: to the
    nearest integer, as MobileNetV2; 8: as EfficientNet); no expansion layer when it equals ``c_in``.
    `se` is the squeeze width as a fraction of the BLOCK INPUT channels (0: no SE); the op `se_op`
    gets ``squeeze``, ``act`` (`se_act`, default the block's `act`) and ``gate``. `drop_path` drops
    the residual branch of samples in training.
    """
    out = ctx.need_out("mbconv")
    p = ctx.params
    norm = {"eps": p["eps"], "momentum": p["momentum"]}
    expanded = round_channels(ctx.c_in * p["expansion"], p["expand_divisor"])
    graph = new_cell()
    last = INPUT
    if expanded != ctx.c_in:
        last = add_node(graph, "expand", [last], "conv", out=expanded, kernel=1, act=p["act"], **norm)
    last = add_node(graph, "depthwise", [last], "dwconv", kernel=p["kernel"], stride=ctx.stride, act=p["act"], **norm)
    if p["se"]:
        squeeze = max(1, int(ctx.c_in * p["se"]))
        se_act = p["se_act"] if p["se_act"] is not None else p["act"]
        last = add_node(graph, "se", [last], p["se_op"], squeeze=squeeze, act=se_act, gate=p["se_gate"])
    residual = ctx.stride == 1 and ctx.c_in == out
    if not residual:
        add_node(graph, OUTPUT, [last], "conv", out=out, kernel=1, act="none", **norm)
        return graph
    last = add_node(graph, "project", [last], "conv", out=out, kernel=1, act="none", **norm)
    if p["drop_path"]:
        last = add_node(graph, "drop_path", [last], "drop_path", p=p["drop_path"])
    add_node(graph, OUTPUT, [last, INPUT], "identity")
    return graph
