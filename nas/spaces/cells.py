"""The NASNet-style micro space (Zoph et al. 2018): search a normal and a reduction cell, stack them.

A cell preprocesses its input with a 1x1 conv to the stage width (node ``pre``), then has B blocks.
Block i picks two inputs among ``in`` (the preprocessed cell input) and blocks 0..i-1, applies an op
to each and combines the two by add, mean or concat (concat is followed by a 1x1 conv back to the
stage width, so every block outputs the stage width). The cell's output concatenates the blocks
that no other block reads and projects them with a 1x1 conv to the stage width.

In the reduction cell, ops reading the cell input take the cell's stride (the ``@stride`` token);
ops reading blocks always run at stride 1. The network: a small stem, then for each of `stages`
stages `normal_cells` normal cells, with a reduction cell (doubling the width) between stages.

Inception-like (several ops on ``in``, all concatenated), residual-like (op(in) + identity(in)),
dense-like (blocks concatenating earlier blocks) and fractal-like (mean of a deep and a shallow
path) cells are all samples of this space.
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import networkx as nx

from nas.cell import INPUT, OUTPUT, add_node, new_cell, to_dict
from nas.genome import Genome
from nas.spaces.base import Choice, SearchSpace, SpaceError
from nas.spaces.fields import Fields
from nas.spaces.layout import clip_strides, stem_layers

CELL_KINDS = ("normal", "reduce")
PRE = "pre"  # the node that preprocesses the cell input; samples call it "in"
MERGES = ("add", "mean", "concat")


def _layers(value: Any, where: str) -> list[dict[str, Any]]:
    """An op option: one node dict or a short chain (list) of them."""
    layers = value if isinstance(value, list) else [value]
    for i, layer in enumerate(layers):
        if not isinstance(layer, Mapping) or not isinstance(layer.get("op"), str):
            raise SpaceError(f"{where}[{i}]: an op option is a node like {{op: conv, kernel: 3}}, got {layer!r}")
        if "merge" in layer:
            raise SpaceError(f"{where}[{i}]: an op option takes no 'merge'")
    return [dict(layer) for layer in layers]


def _at_stride_one(layer: Mapping[str, Any]) -> dict[str, Any]:
    return {key: (1 if value == "@stride" else value) for key, value in layer.items()}


class CellSpace(SearchSpace):
    """Choices ``channels``/``normal_cells`` (when given several values) and, per cell kind and block i,
    ``<kind>.b<i>.input_a``, ``op_a``, ``input_b``, ``op_b`` and ``combine``."""

    FIELDS = {"kind", "name", "description", "input", "num_classes", "blocks", "network", "ops", "combine",
              "cell_input", "cell_output", "combine_ops"}

    def __init__(self, spec: Fields, *, input_channels: int, input_size: int, num_classes: int):
        spec.check_keys(self.FIELDS)
        self.blocks = spec.get("blocks", int)
        if self.blocks < 1:
            raise SpaceError(f"{spec.where}.blocks: must be >= 1")
        network = spec.sub("network")
        network.check_keys({"channels", "normal_cells", "stages", "width_multiplier", "stem_max_size"})
        self.channels = network.options("channels")
        self.normal_cells = network.options("normal_cells")
        self.stages = network.get("stages", int, 3)
        if self.stages < 1:
            raise SpaceError(f"{network.where}.stages: must be >= 1")
        self.width_multiplier = network.get("width_multiplier", int, 2)
        self.stem_max_size = network.get("stem_max_size", int, 32)
        ops = spec.sub("ops")
        self.ops = {str(name): _layers(value, f"{ops.where}.{name}") for name, value in ops.data.items()}
        if not self.ops:
            raise SpaceError(f"{ops.where}: needs at least one op")
        self.combines = spec.options("combine", list(MERGES))
        bad = [m for m in self.combines if m not in MERGES]
        if bad:
            raise SpaceError(f"{spec.where}.combine: unknown combine {bad[0]!r} (known: {', '.join(MERGES)})")
        self.cell_input = spec.get("cell_input", Mapping, {"op": "conv", "kernel": 1, "out": "@out"})
        self.cell_output = spec.get("cell_output", Mapping, {"op": "conv", "kernel": 1, "out": "@out"})
        self.combine_ops = {"add": {"op": "identity"}, "mean": {"op": "identity"},
                            "concat": {"op": "conv", "kernel": 1, "out": "@out"},
                            **spec.get("combine_ops", Mapping, {})}
        super().__init__(spec.get("name", str, "cells"), self._choices(), input_channels=input_channels,
                         input_size=input_size, num_classes=num_classes)

    def _choices(self) -> list[Choice]:
        choices = []
        if len(self.channels) > 1:
            choices.append(Choice("channels", self.channels))
        if len(self.normal_cells) > 1:
            choices.append(Choice("normal_cells", self.normal_cells))
        for kind in self.kinds():
            for i in range(self.blocks):
                inputs = (INPUT, *(f"b{j}" for j in range(i)))
                for side in ("a", "b"):
                    choices.append(Choice(f"{kind}.b{i}.input_{side}", inputs))
                    choices.append(Choice(f"{kind}.b{i}.op_{side}", tuple(self.ops)))
                choices.append(Choice(f"{kind}.b{i}.combine", self.combines))
        return choices

    def grown(self, blocks: int) -> "CellSpace":
        """This space with `blocks` blocks per cell (progressive search grows cells one block at a time).

        The choices of blocks below `blocks` keep their names and options, so a sample of this space
        with fewer blocks is a prefix of the samples of a grown one that extend it.
        """
        if not isinstance(blocks, int) or isinstance(blocks, bool) or blocks < 1:
            raise SpaceError(f"space {self.name!r}: blocks must be a positive integer, got {blocks!r}")
        space = copy.copy(self)
        space.blocks = blocks
        SearchSpace.__init__(space, self.name, space._choices(), input_channels=self.input_channels,
                             input_size=self.input_size, num_classes=self.num_classes)
        return space

    def kinds(self) -> tuple[str, ...]:
        """The cells searched: a reduction cell only when there is more than one stage."""
        return CELL_KINDS if self.stages > 1 else CELL_KINDS[:1]

    # ----- realization -----
    def cell(self, sample: Mapping[str, Any], kind: str) -> nx.DiGraph:
        """The graph of the `kind` cell of `sample` (node names are internal; isomorphic cells hash alike)."""
        graph = new_cell()
        add_node(graph, PRE, [INPUT], **self.cell_input)
        read: set[str] = set()
        for i in range(self.blocks):
            ends = []
            for side in ("a", "b"):
                source = sample[f"{kind}.b{i}.input_{side}"]
                read.add(source)
                layers = self.ops[sample[f"{kind}.b{i}.op_{side}"]]
                if source != INPUT:
                    layers = [_at_stride_one(layer) for layer in layers]
                previous = PRE if source == INPUT else source
                for k, layer in enumerate(layers):
                    previous = add_node(graph, f"b{i}_{side}{k}", [previous], **layer)
                ends.append(previous)
            combine = sample[f"{kind}.b{i}.combine"]
            add_node(graph, f"b{i}", ends, merge=combine, **self.combine_ops[combine])
        unused = [f"b{i}" for i in range(self.blocks) if f"b{i}" not in read]
        add_node(graph, OUTPUT, unused, merge="concat", **self.cell_output)
        return graph

    def build(self, sample: Mapping[str, Any]) -> Genome:
        channels = sample.get("channels", self.channels[0])
        normal_cells = sample.get("normal_cells", self.normal_cells[0])
        stem, size = stem_layers(channels, self.input_size, self.stem_max_size)
        strides = clip_strides([2] * (self.stages - 1), size)
        stages: list[dict[str, Any]] = []
        for k in range(self.stages):
            width = channels * self.width_multiplier**k
            if k:
                stages.append({"cell": "reduce", "out": width, "stride": strides[k - 1]})
            stages.append({"cell": "normal", "out": width, "repeats": normal_cells})
        return Genome.from_dict({
            "name": self.genome_name(sample),
            "input": {"channels": self.input_channels, "size": self.input_size},
            "num_classes": self.num_classes,
            "stem": stem,
            "stages": stages,
            "head": [{"op": "global_avgpool"}],
            "cells": {kind: to_dict(self.cell(sample, kind)) for kind in self.kinds()},
        })
