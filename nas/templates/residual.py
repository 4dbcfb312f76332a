"""Residual cells (He et al. 2016): basic, bottleneck, pre-activation and grouped (ResNeXt) blocks."""
from __future__ import annotations

import networkx as nx

from nas.cellgraph import INPUT, OUTPUT, add_node, new_cell
from nas.templates.registry import CellContext, template


def shortcut(graph: nx.DiGraph, ctx: CellContext, out: int, preact: bool = False, kind: str = "projection") -> str:
    """The identity, or when the shape changes a strided 1x1 projection (conv + BN; He et al.'s option B)
    or, with `kind` "pad", a parameter-free strided subsample padded with zero channels (option A)."""
    if ctx.stride == 1 and ctx.c_in == out:
        return INPUT
    if kind not in ("projection", "pad"):
        raise ValueError(f"shortcut must be 'projection' or 'pad', got {kind!r}")
    if kind == "pad":
        return add_node(graph, "shortcut", [INPUT], "pad_shortcut", out=out, stride=ctx.stride)
    if preact:
        return add_node(graph, "shortcut", [INPUT], "conv", out=out, kernel=1, stride=ctx.stride, norm="none", act="none")
    return add_node(graph, "shortcut", [INPUT], "conv", out=out, kernel=1, stride=ctx.stride, act="none")


def branch_end(graph: nx.DiGraph, ctx: CellContext, last: str) -> str:
    """Optional squeeze-and-excitation and drop-path after a residual branch."""
    if ctx.params["se"]:
        last = add_node(graph, "se", [last], "se", ratio=ctx.params["se"])
    if ctx.params["drop_path"]:
        last = add_node(graph, "drop_path", [last], "drop_path", p=ctx.params["drop_path"])
    return last


@template("basic", se=0.0, drop_path=0.0, shortcut="projection")
def basic(ctx: CellContext) -> nx.DiGraph:
    """Two 3x3 conv-BN layers plus shortcut, then ReLU (ResNet-18/34, CIFAR ResNets).

    `shortcut` is "projection" (1x1 conv + BN where the shape changes) or "pad" (parameter-free
    subsample and zero channels, option A of the CIFAR ResNets).
    """
    out = ctx.need_out("basic")
    graph = new_cell()
    a = add_node(graph, "conv1", [INPUT], "conv", out=out, kernel=3, stride=ctx.stride)
    b = add_node(graph, "conv2", [a], "conv", out=out, kernel=3, act="none")
    skip = shortcut(graph, ctx, out, kind=ctx.params["shortcut"])  # runs before the SE, as in timm's SE-ResNets
    b = branch_end(graph, ctx, b)
    add_node(graph, OUTPUT, [b, skip], "act", kind="relu")
    return graph


@template("bottleneck", expansion=4, groups=1, base_width=64, stride_on="3x3", se=0.0, drop_path=0.0)
def bottleneck(ctx: CellContext) -> nx.DiGraph:
    """1x1 reduce, 3x3 (grouped for ResNeXt), 1x1 expand, plus shortcut, then ReLU.

    The 3x3 width is ``int(out / expansion * base_width / 64) * groups``, as in torchvision;
    `stride_on` puts the stride on the "3x3" (ResNet v1.5) or the first "1x1" (Caffe, SENet).
    """
    out = ctx.need_out("bottleneck")
    p = ctx.params
    width = int(out // p["expansion"] * (p["base_width"] / 64.0)) * p["groups"]
    if p["stride_on"] not in ("1x1", "3x3"):
        raise ValueError(f"stride_on must be '1x1' or '3x3', got {p['stride_on']!r}")
    first_stride = ctx.stride if p["stride_on"] == "1x1" else 1
    graph = new_cell()
    a = add_node(graph, "conv1", [INPUT], "conv", out=width, kernel=1, stride=first_stride)
    b = add_node(graph, "conv2", [a], "conv", out=width, kernel=3, stride=ctx.stride // first_stride, groups=p["groups"])
    c = add_node(graph, "conv3", [b], "conv", out=out, kernel=1, act="none")
    skip = shortcut(graph, ctx, out)  # runs before the SE, as in timm's SE-ResNets
    c = branch_end(graph, ctx, c)
    add_node(graph, OUTPUT, [c, skip], "act", kind="relu")
    return graph


@template("resnext", groups=32, base_width=4, expansion=4, se=0.0, drop_path=0.0)
def resnext(ctx: CellContext) -> nx.DiGraph:
    """ResNeXt block (Xie et al. 2017): a bottleneck whose 3x3 is a grouped conv of `groups` paths."""
    params = ctx.params.replace(stride_on="3x3")
    return bottleneck(CellContext(ctx.c_in, ctx.out, ctx.stride, ctx.index, params))


@template("preact", bottleneck=False, expansion=4, se=0.0, drop_path=0.0)
def preact(ctx: CellContext) -> nx.DiGraph:
    """Pre-activation residual block (He et al. 2016b): BN-ReLU-conv layers, identity path kept clean."""
    out = ctx.need_out("preact")
    p = ctx.params
    graph = new_cell()
    if p["bottleneck"]:
        width = out // p["expansion"]
        a = add_node(graph, "conv1", [INPUT], "conv", out=width, kernel=1, preact=True)
        b = add_node(graph, "conv2", [a], "conv", out=width, kernel=3, stride=ctx.stride, preact=True)
        last = add_node(graph, "conv3", [b], "conv", out=out, kernel=1, preact=True)
    else:
        a = add_node(graph, "conv1", [INPUT], "conv", out=out, kernel=3, stride=ctx.stride, preact=True)
        last = add_node(graph, "conv2", [a], "conv", out=out, kernel=3, preact=True)
    last = branch_end(graph, ctx, last)
    add_node(graph, OUTPUT, [last, shortcut(graph, ctx, out, preact=True)], "identity")
    return graph
