"""Scaling a genome's width, depth and input resolution (Tan & Le 2019), genome in, genome out.

    >>> from nas import baselines, scale
    >>> b2 = scale(baselines.get("efficientnet_b0"), width=1.1, depth=1.2, resolution=260)

- **width** multiplies every channel count: each stage's ``out``, the ``out`` of every stem, head and
  explicit-cell node (and of node lists inside stage parameters, as in ``layers`` stages), and the
  parameters a cell template declares as widths (``scale_widths=`` in `nas.templates.template`, e.g. a
  dense block's growth rate). The product is rounded to a multiple of `divisor` (8) and never below
  90% of the unrounded product (`round_channels`). ``width=1.0`` leaves every channel count as written.
- **depth** multiplies each stage's ``repeats`` (``ceil(repeats * depth)``), or the parameter a template
  declares as its depth (``scale_depth=``: the layers of a dense block); templates that must not repeat
  (a transition that halves the resolution) declare ``scale_depth=None`` and are left alone.
- **resolution** replaces the input size (an int, or None to keep it).

`EFFICIENTNET` holds the released (width, depth, resolution) coefficients of EfficientNet-B1..B7 and
`efficientnet(base, "b3")` derives those networks from B0 as torchvision 0.29.1 builds them.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from nas.templates.registry import TEMPLATES
from nas.errors import GenomeError
from nas.genome import Genome
from nas.params import REQUIRED
from nas.rounding import round_channels  # re-exported: the rule lives in a leaf module

__all__ = ["EFFICIENTNET", "compound_coefficients", "efficientnet", "round_channels", "scale"]


def scale(genome: Genome, width: float = 1.0, depth: float = 1.0, resolution: int | None = None, *,
          name: str | None = None, divisor: int = 8) -> Genome:
    """A new genome with channels times `width`, stage depths times `depth` and input size `resolution`.

    Pure: `genome` is not changed. The result is named `name`, or the input's name with the
    factors appended (``resnet18-w1.5-d2``).
    """
    for label, factor in (("width", width), ("depth", depth)):
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not factor > 0:
            raise GenomeError("scale", f"{label} must be a positive number, got {factor!r}")
    if resolution is not None and (isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1):
        raise GenomeError("scale", f"resolution must be a positive integer or None, got {resolution!r}")

    def widen(channels: Any) -> Any:
        if width == 1.0 or isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
            return channels  # tokens such as "@out", and 0 meaning "unset", stay as they are
        return round_channels(channels * width, divisor)

    spec = genome.to_dict()
    for part in ("stem", "head"):
        spec[part] = _widen_cell(spec[part], widen)
    if "cells" in spec:
        spec["cells"] = {key: _widen_cell(cell, widen) for key, cell in spec["cells"].items()}
    spec["stages"] = [_scale_stage(stage, genome, widen, depth) for stage in spec["stages"]]
    if resolution is not None:
        spec["input"]["size"] = resolution
    spec["name"] = name or genome.name + _suffix(width, depth, resolution)
    return Genome.from_dict(spec)


def _suffix(width: float, depth: float, resolution: int | None) -> str:
    parts = [f"w{width:g}" if width != 1.0 else "", f"d{depth:g}" if depth != 1.0 else "",
             f"r{resolution}" if resolution is not None else ""]
    return "".join(f"-{part}" for part in parts if part)


def _widen_nodes(nodes: list[dict[str, Any]], widen: Any) -> list[dict[str, Any]]:
    return [{**node, "out": widen(node["out"])} if "out" in node else node for node in nodes]


def _map_cell(cell: Any, change: Any) -> Any:
    """A cell in dict form (a list of nodes, or nodes and edges) with `change` applied to its list of node dicts."""
    if isinstance(cell, list):
        return change(cell)
    names = list(cell["nodes"])
    changed = change([cell["nodes"][n] for n in names])
    return {**cell, "nodes": dict(zip(names, changed)), "edges": cell["edges"]}  # keeps the input ports


def _widen_cell(cell: Any, widen: Any) -> Any:
    return _map_cell(cell, lambda nodes: _widen_nodes(nodes, widen))


def _width_tokens(graph: Any) -> set[str]:
    """The tokens that an explicit cell's nodes use in their ``out`` (directly or inside arithmetic)."""
    from nas.expand import tokens_in  # on use: shape inference imports torch, and the CLI's --help imports this module

    return set().union(*(tokens_in(attrs.get("params", {}).get("out")) for _, attrs in graph.nodes(data=True)))


def _is_node_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) and "op" in v for v in value)


def _scale_stage(stage: dict[str, Any], genome: Genome, widen: Any, depth: float) -> dict[str, Any]:
    stage = dict(stage)
    if "out" in stage:
        stage["out"] = widen(stage["out"])
    if stage["cell"] in genome.cells or stage["cell"] not in TEMPLATES:
        # a single cell that reads earlier cells (a reduction, or the cell after one that aligns its older input)
        # is not repeated: a copy would read different inputs
        if stage.get("repeats", 1) > 1 or stage.get("reads", [1]) == [1]:
            stage["repeats"] = math.ceil(stage.get("repeats", 1) * depth)
        if stage["cell"] in genome.cells:  # an explicit cell's params that count channels: those its nodes' `out` reads
            widths = _width_tokens(genome.cells[stage["cell"]])
            for part in ("params", "first"):
                if part in stage:
                    stage[part] = {k: widen(v) if f"@{k}" in widths else v for k, v in stage[part].items()}
        return stage
    spec = TEMPLATES.get(stage["cell"])
    params = dict(stage.get("params", {}))
    for key, value in params.items():
        if _is_node_list(value):
            params[key] = _widen_nodes(value, widen)
    for key in spec.widths:
        value = params.get(key, spec.defaults[key])
        if value is not REQUIRED and widen(value) != value:
            params[key] = widen(value)
    if "first" in stage:  # the first cell's own params: widths and node lists scale like the stage's
        first = {k: _widen_nodes(v, widen) if _is_node_list(v) else v for k, v in stage["first"].items()}
        stage["first"] = {k: widen(v) if k in spec.widths else v for k, v in first.items()}
    if spec.depth == "repeats":
        stage["repeats"] = math.ceil(stage.get("repeats", 1) * depth)
    elif spec.depth is not None:
        value = params.get(spec.depth, spec.defaults[spec.depth])
        if value is not REQUIRED and depth != 1.0:
            params[spec.depth] = math.ceil(value * depth)
    if params:
        stage["params"] = params
    return stage


# ----- compound scaling and the EfficientNet family -----

def compound_coefficients(phi: float, alpha: float = 1.2, beta: float = 1.1, gamma: float = 1.15) -> tuple[float, float, float]:
    """(width, depth, resolution multiplier) = (beta^phi, alpha^phi, gamma^phi): Tan & Le's compound scaling,
    with the grid-searched alpha, beta, gamma (alpha * beta^2 * gamma^2 ~ 2, so FLOPs grow ~2^phi)."""
    return beta ** phi, alpha ** phi, gamma ** phi


# Released EfficientNet coefficients (width, depth, resolution) and, as torchvision sets them, the
# classifier dropout and the batch-norm (eps, momentum) of B5-B7 (TensorFlow's 1e-3 and 0.99).
EFFICIENTNET: dict[str, dict[str, Any]] = {
    "b1": {"width": 1.0, "depth": 1.1, "resolution": 240, "dropout": 0.2},
    "b2": {"width": 1.1, "depth": 1.2, "resolution": 260, "dropout": 0.3},
    "b3": {"width": 1.2, "depth": 1.4, "resolution": 300, "dropout": 0.3},
    "b4": {"width": 1.4, "depth": 1.8, "resolution": 380, "dropout": 0.4},
    "b5": {"width": 1.6, "depth": 2.2, "resolution": 456, "dropout": 0.4, "norm": (1e-3, 0.01)},
    "b6": {"width": 1.8, "depth": 2.6, "resolution": 528, "dropout": 0.5, "norm": (1e-3, 0.01)},
    "b7": {"width": 2.0, "depth": 3.1, "resolution": 600, "dropout": 0.5, "norm": (1e-3, 0.01)},
}


def efficientnet(base: Genome, variant: str) -> Genome:
    """EfficientNet-`variant` (b1..b7) from the B0 genome `base`: scaled, with the variant's dropout and BN settings.

    torchvision sizes the last 1x1 conv as 4x the scaled last stage; for every released width that
    equals the head's 1280 rounded like any channel count, so scaling the head's ``out`` matches it.
    """
    if variant not in EFFICIENTNET:
        raise GenomeError("scale", f"unknown EfficientNet variant {variant!r} (known: {', '.join(EFFICIENTNET)})")
    config = EFFICIENTNET[variant]
    name = base.name.replace("b0", variant) if "b0" in base.name else f"{base.name}-{variant}"
    scaled = scale(base, config["width"], config["depth"], config["resolution"], name=name)
    spec = scaled.to_dict()
    spec["head"] = _map_cell(spec["head"], lambda nodes: [
        {**node, "p": config["dropout"]} if node["op"] == "dropout" else node for node in nodes])
    if "norm" in config:
        eps, momentum = config["norm"]
        spec = _with_norm(spec, eps, momentum)
    return Genome.from_dict(spec)


def _with_norm(spec: dict[str, Any], eps: float, momentum: float) -> dict[str, Any]:
    """`spec` with every node and stage template that takes ``eps``/``momentum`` set to these."""
    from nas.ops.registry import OPS  # deferred: torch (as tokens_in above)

    def retune(node: dict[str, Any]) -> dict[str, Any]:
        defaults = OPS.get(node["op"]).defaults if node["op"] in OPS else {}
        return {**node, "eps": eps, "momentum": momentum} if "eps" in defaults and "momentum" in defaults else node

    spec = dict(spec)
    for part in ("stem", "head"):
        spec[part] = _map_cell(spec[part], lambda nodes: [retune(node) for node in nodes])
    stages = []
    for stage in spec["stages"]:
        defaults = TEMPLATES.get(stage["cell"]).defaults if stage["cell"] in TEMPLATES else {}
        if "eps" in defaults and "momentum" in defaults:
            stage = {**stage, "params": {**stage.get("params", {}), "eps": eps, "momentum": momentum}}
        stages.append(stage)
    spec["stages"] = stages
    return spec
