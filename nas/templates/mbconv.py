"""Inverted residual cells (MobileNetV2, Sandler et al. 2018; MBConv of EfficientNet, Tan & Le 2019; MobileNetV3,
Howard et al. 2019) and the Fused-MBConv of EfficientNetV2 (Tan & Le 2021)."""
from __future__ import annotations

import networkx as nx

from nas.cellgraph import INPUT, OUTPUT, add_node, new_cell
from nas.templates.registry import CellContext, template
from nas.rounding import round_channels


@template("mbconv", scale_widths=("expanded",), expansion=6.0, expanded=0, kernel=3, act="relu6", se=0.0, se_op="se",
          se_act=None, se_gate="sigmoid", se_of="input", se_divisor=1, expand_divisor=1, drop_path=0.0, eps=1e-5,
          momentum=0.1)
def mbconv(ctx: CellContext) -> nx.DiGraph:
    """Optional 1x1 expansion, depthwise k x k with the stride, optional squeeze-and-excitation,
    linear 1x1 projection; plus the input when stride is 1 and channels are kept.

    The expanded width is `expanded` when given (MobileNetV3 lists it per block), else ``c_in * expansion``
    rounded to a multiple of `expand_divisor` (1: to the nearest integer, as MobileNetV2; 8: as
    EfficientNet); no expansion layer when it equals ``c_in``. `se` is the squeeze width as a fraction
    (0: no SE) of the block's input channels (`se_of` "input", EfficientNet) or of the expanded ones
    ("expanded", MobileNetV3), truncated, then rounded to a multiple of `se_divisor` when it is > 1
    (MobileNetV3's make_divisible(expanded // 4, 8)); the op `se_op` gets ``squeeze``, ``act``
    (`se_act`, default the block's `act`) and ``gate``. `drop_path` drops the residual branch of
    samples in training.
    """
    out = ctx.need_out("mbconv")
    p = ctx.params
    norm = {"eps": p["eps"], "momentum": p["momentum"]}
    if p["expanded"] < 0 or p["se_of"] not in ("input", "expanded") or p["se_divisor"] < 1:
        raise ValueError(f"need expanded >= 0, se_of 'input' or 'expanded' and se_divisor >= 1, got "
                         f"{p['expanded']}, {p['se_of']!r}, {p['se_divisor']}")
    expanded = p["expanded"] or round_channels(ctx.c_in * p["expansion"], p["expand_divisor"])
    graph = new_cell()
    last = INPUT
    if expanded != ctx.c_in:
        last = add_node(graph, "expand", [last], "conv", out=expanded, kernel=1, act=p["act"], **norm)
    last = add_node(graph, "depthwise", [last], "dwconv", kernel=p["kernel"], stride=ctx.stride, act=p["act"], **norm)
    if p["se"]:
        squeeze = max(1, int((ctx.c_in if p["se_of"] == "input" else expanded) * p["se"]))
        if p["se_divisor"] > 1:
            squeeze = round_channels(squeeze, p["se_divisor"])
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


@template("fused_mbconv", expansion=4.0, kernel=3, act="silu", expand_divisor=8, drop_path=0.0, eps=1e-5, momentum=0.1)
def fused_mbconv(ctx: CellContext) -> nx.DiGraph:
    """Fused-MBConv (EfficientNetV2): a k x k conv with the stride to ``c_in * expansion`` channels (rounded to
    a multiple of `expand_divisor`), then a linear 1x1 projection; a single k x k conv-BN-act to the output
    when the expansion leaves the width unchanged. Plus the input when stride is 1 and channels are kept.
    """
    out = ctx.need_out("fused_mbconv")
    p = ctx.params
    norm = {"eps": p["eps"], "momentum": p["momentum"]}
    expanded = round_channels(ctx.c_in * p["expansion"], p["expand_divisor"])
    residual = ctx.stride == 1 and ctx.c_in == out
    graph = new_cell()
    if expanded != ctx.c_in:
        last = add_node(graph, "expand", [INPUT], "conv", out=expanded, kernel=p["kernel"], stride=ctx.stride,
                        act=p["act"], **norm)
        body = dict(op="conv", out=out, kernel=1, act="none", **norm)
    else:
        last, body = INPUT, dict(op="conv", out=out, kernel=p["kernel"], stride=ctx.stride, act=p["act"], **norm)
    if not residual:
        add_node(graph, OUTPUT, [last], **body)
        return graph
    last = add_node(graph, "project", [last], **body)
    if p["drop_path"]:
        last = add_node(graph, "drop_path", [last], "drop_path", p=p["drop_path"])
    add_node(graph, OUTPUT, [last, INPUT], "identity")
    return graph
