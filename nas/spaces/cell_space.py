"""The NASNet/DARTS micro space (Zoph et al. 2018; Liu et al. 2019): search a normal and a reduction cell.

Every cell reads the two previous cells' outputs (ports ``prev_prev`` and ``prev``; the first cells read
the stem twice), each preprocessed to the cell width C (ReLU, 1x1 conv, BN; a factorized reduce for
``prev_prev`` right after a reduction). Then B blocks: block i picks two inputs among the ports and
blocks 0..i-1, applies an op to each (ops reading a port have stride 2 in the reduction cell) and adds
the two. The cell concatenates the blocks no other block reads (``concat: unread``, as NASNet) or every
block (``concat: all``, as DARTS), so its output has k * C channels.

The network is DARTS's CIFAR network (`nas.darts`): a 3x3 conv stem of ``stem_multiplier * channels``,
then `stages` stages of `normal_cells` normal cells with a reduction cell (doubling C) between stages
(a normal cell instead where the maps would get too small, see `nas.spaces.layout.clip_strides`);
with 3 stages it is ``NetworkCIFAR(channels, layers=3 * normal_cells + 2)``. So every DARTS genotype whose
ops the space lists is a sample: DARTS-V2's, with ``blocks: 4``, ``concat: all``, channels 36 and 6
normal cells, realizes the genome of the ``darts_v2`` baseline.

Ops are named node chains whose parameters may use ``"@out"`` (the cell width C) and ``"@stride"``
(the op's stride: 2 for ops reading a port in the reduction cell, else 1).
"""
from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import networkx as nx

from nas.darts import PORTS, Pairs, cell_graph, network_dict
from nas.genome import Genome
from nas.spaces.base import Choice, SearchSpace, SpaceError
from nas.spaces.fields import Fields
from nas.spaces.layout import clip_strides

CELL_KINDS = ("normal", "reduce")
CONCATS = ("unread", "all")


def _layers(value: Any, where: str) -> list[dict[str, Any]]:
    """An op option: one node dict or a short chain (list) of them."""
    layers = value if isinstance(value, list) else [value]
    for i, layer in enumerate(layers):
        if not isinstance(layer, Mapping) or not isinstance(layer.get("op"), str):
            raise SpaceError(f"{where}[{i}]: an op option is a node like {{op: conv, kernel: 3}}, got {layer!r}")
        if "merge" in layer:
            raise SpaceError(f"{where}[{i}]: an op option takes no 'merge'")
    return [dict(layer) for layer in layers]


class _Op:
    """An op of the space at width C and stride s: its layers with ``@out`` and ``@stride`` filled in."""

    def __init__(self, layers: list[dict[str, Any]]):
        self.layers = layers

    def __call__(self, channels: int, stride: Any) -> list[dict[str, Any]]:
        tokens = {"@out": channels, "@stride": stride}
        return [{k: tokens.get(v, v) if isinstance(v, str) else v for k, v in layer.items()} for layer in self.layers]


class CellSpace(SearchSpace):
    """Choices ``channels``/``normal_cells`` (when given several values) and, per cell kind and block i,
    ``<kind>.b<i>.input_a``, ``op_a``, ``input_b`` and ``op_b``."""

    FIELDS = {"kind", "name", "description", "input", "num_classes", "blocks", "network", "ops", "concat", "combine"}

    def __init__(self, spec: Fields, *, input_channels: int, input_size: int, num_classes: int):
        spec.check_keys(self.FIELDS)
        self.blocks = spec.get("blocks", int, 5)
        if self.blocks < 1:
            raise SpaceError(f"{spec.where}.blocks: must be >= 1")
        network = spec.sub("network")
        network.check_keys({"channels", "normal_cells", "stages", "stem_multiplier"})
        self.channels = network.options("channels")
        self.normal_cells = network.options("normal_cells")
        for key, values in (("channels", self.channels), ("normal_cells", self.normal_cells)):
            if any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
                raise SpaceError(f"{network.where}.{key}: options must be integers >= 1, got {list(values)}")
        self.stages = network.get("stages", int, 3)
        if self.stages < 1:
            raise SpaceError(f"{network.where}.stages: must be >= 1")
        self.stem_multiplier = network.get("stem_multiplier", int, 3)
        self.concat = spec.get("concat", str, "unread")
        if self.concat not in CONCATS:
            raise SpaceError(f"{spec.where}.concat: must be one of {', '.join(CONCATS)}, got {self.concat!r}")
        if spec.options("combine", "add") != ("add",):
            raise SpaceError(f"{spec.where}.combine: a block adds its two inputs, as in NASNet and DARTS; "
                             "the only combine is [add]")
        ops = spec.sub("ops")
        self.ops = {str(name): _Op(_layers(value, f"{ops.where}.{name}")) for name, value in ops.data.items()}
        if not self.ops:
            raise SpaceError(f"{ops.where}: needs at least one op")
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
                inputs = (*PORTS, *(f"b{j}" for j in range(i)))
                for side in ("a", "b"):
                    choices.append(Choice(f"{kind}.b{i}.input_{side}", inputs))
                    choices.append(Choice(f"{kind}.b{i}.op_{side}", tuple(self.ops)))
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
    def genotype(self, sample: Mapping[str, Any], kind: str) -> tuple[Pairs, tuple[int, ...]]:
        """The `kind` cell of `sample` as DARTS (op, input) pairs and the concatenated states."""
        index = {port: k for k, port in enumerate(PORTS)} | {f"b{j}": j + 2 for j in range(self.blocks)}
        pairs = tuple((sample[f"{kind}.b{i}.op_{side}"], index[sample[f"{kind}.b{i}.input_{side}"]])
                      for i in range(self.blocks) for side in ("a", "b"))
        read = {k for _, k in pairs}
        states = range(2, 2 + self.blocks)
        concat = tuple(states) if self.concat == "all" else tuple(s for s in states if s not in read)
        return pairs, concat

    def cell(self, sample: Mapping[str, Any], kind: str, channels: int | None = None) -> nx.DiGraph:
        """The graph of the `kind` cell of `sample` at width `channels` (default: the sample's), not after a reduction."""
        width = channels or sample.get("channels", self.channels[0])
        return cell_graph(*self.genotype(sample, kind), width, kind == "reduce", False, self.ops)

    def reductions(self, sample: Mapping[str, Any]) -> list[bool]:
        """The network's cells in order, True for a reduction cell (also the layout of `nas.oneshot`'s supernet)."""
        normal_cells = sample.get("normal_cells", self.normal_cells[0])
        reductions = [False] * normal_cells
        for stride in clip_strides([2] * (self.stages - 1), self.input_size):
            reductions += [stride > 1] + [False] * normal_cells  # where maps would vanish: a normal cell instead
        return reductions

    def genome_of(self, sample: Mapping[str, Any]) -> Genome:
        return Genome.from_dict(network_dict(
            {kind: self.genotype(sample, kind) for kind in self.kinds()}, self.reductions(sample),
            self.genome_name(sample),
            channels=sample.get("channels", self.channels[0]), num_classes=self.num_classes,
            input_channels=self.input_channels, input_size=self.input_size, stem_multiplier=self.stem_multiplier,
            ops=self.ops))
