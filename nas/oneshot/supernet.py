"""A supernet derived from a search space: one network holding every choice, weights shared by the paths.

`supernet_for(space)` derives it from the space's own description, never from code written per space:
for a space of kind ``cells`` (`nas.spaces.cell_space.CellSpace`, any space file or plug-in subclass of that
kind) it reads the ops table, the number of blocks, the concat rule and the network layout
(`CellSpace.reductions`), and builds every module with the op registry from the very node dicts the space
writes into its genomes (`nas.darts.cell_graph`), so a fixed path is the genome's network, weight for
weight.

Layout: the stem and head of the space's network; per cell, the preprocessing of its two inputs and, per
block i and input j (the two cell inputs, then blocks 0..i-1), one edge holding every op (`MixedEdge`).
Both sides of a block that read the same input share that edge, as in DARTS (one edge per (input, block)).
Network-level choices (``channels``, ``normal_cells``) are fixed for the supernet (weight sharing across
widths and depths is not offered): `fixed_space` is the space with those set, whose samples are the paths.

A path is a sample of that fixed space. `forward(x, path=sample)` runs that path alone;
`forward(x, weights=...)` runs the relaxed network (DARTS: per kind, an [edges x ops] weight matrix;
PC-DARTS also an edge weight per input). With ``concat: unread`` a path's cell outputs only the blocks
nobody reads: the supernet keeps every block's channel slot and puts zeros where a block is not
concatenated, which equals the genome's narrower concat followed by the next layer's weights restricted
to the concatenated slots (ReLU(0) = 0, convolutions without bias, average pooling): `extract` copies
exactly those slices. The relaxed network concatenates every block (DARTS's choice).

`extract(path)` returns `(genome, network)`: ``nas.build(genome)`` loaded with the supernet's weights;
in eval mode its outputs equal `forward(x, path=path)` (tests/test_oneshot.py). With partial channels
(``partial=K > 1``) the edges' ops are 1/K wide: no path of it is a genome's network, so `extract` refuses.

The stage spaces (``macro``, ``compact``, ``mobile``, any space of kind ``stages``) get the supernet of
`nas.oneshot.stage_supernet`: weights shared by slicing (Once-for-All), single paths only (SPOS, RSWS).
"""
from __future__ import annotations

import copy
import random
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas import cellgraph
from nas.compiler import build, compile_cell
from nas.darts import PORTS, cell_graph
from nas.errors import NasError
from nas.expand import expand, infer_cell
from nas.genome import Genome
from nas.modules import DagCell, Network
from nas.oneshot.mixed import MixedEdge, PartialEdge, layer, op_chain
from nas.ops.registry import get_op
from nas.spaces.base import SearchSpace
from nas.spaces.cell_space import CellSpace
from nas.spaces.stages import StageSpace
from nas.spaces.layout import reduced


class OneShotError(NasError, ValueError):
    """A space without a supernet, or a request a supernet cannot answer."""


def fixed_space(space: CellSpace, channels: int | None = None, normal_cells: int | None = None) -> CellSpace:
    """`space` with its network-level choices fixed (default: their first options): its samples are the paths."""
    channels = channels or space.channels[0]
    normal_cells = normal_cells or space.normal_cells[0]
    fixed = copy.copy(space)
    fixed.channels, fixed.normal_cells = (channels,), (normal_cells,)
    SearchSpace.__init__(fixed, space.name, fixed._choices(), input_channels=space.input_channels,
                         input_size=space.input_size, num_classes=space.num_classes)
    return fixed


def supernet_for(space: SearchSpace, **options: Any) -> "CellSupernet":
    """The supernet of `space` (see the module's docstring); a one-line OneShotError for spaces without one."""
    if isinstance(space, CellSpace):
        return CellSupernet(space, **options)
    if isinstance(space, StageSpace):
        from nas.oneshot.stage_supernet import StageSupernet  # a cycle: stage_supernet imports this module

        return StageSupernet(space, **options)
    raise OneShotError(f"space {space.name!r} ({type(space).__name__}) has no supernet: one-shot search covers "
                       "spaces of kind 'cells' and 'stages'")


def state_index(name: str) -> int:
    """A block input's state index: 0, 1 for the cell inputs (prev_prev, prev), 2 + j for block j."""
    return PORTS.index(name) if name in PORTS else 2 + int(name[1:])


def state_name(index: int) -> str:
    return PORTS[index] if index < 2 else f"b{index - 2}"


class SuperCell(nn.Module):
    """One cell of the supernet: the preprocessing of both inputs and every (block, input, op) edge."""

    def __init__(self, space: CellSpace, kind: str, channels: int, reduction: bool, reduction_prev: bool,
                 in_shapes: tuple[tuple[int, int, int], tuple[int, int, int]], partial: int, where: str):
        super().__init__()
        self.kind, self.channels, self.blocks, self.concat_all = kind, channels, space.blocks, space.concat == "all"
        # the preprocessing, from the cell the space writes when both inputs are read
        pairs = tuple((next(iter(space.ops)), j) for j in (0, 1)) + tuple(
            (next(iter(space.ops)), 1) for _ in range(2 * space.blocks - 2))
        graph = cell_graph(pairs, tuple(range(2, 2 + space.blocks)), channels, reduction, reduction_prev, space.ops)
        plan = infer_cell(graph, in_shapes, where, tokens={"@stride": 2 if reduction else 1})
        self.pre_names: list[list[str]] = []
        pre = {}
        for k, port in enumerate(PORTS):
            names, node = [], port
            while node != f"pre{k}":
                (node,) = plan.graph.successors(node)
                names.append(node)
            self.pre_names.append(names)
            for name in names:
                attrs = plan.graph.nodes[name]
                pre[name] = get_op(attrs["op"]).build(attrs["in_shape"][0], attrs["params"])
        self.pre = nn.ModuleDict(pre)
        size = in_shapes[1][1]
        out_size = reduced(size, 2) if reduction else size
        width = channels // partial if partial > 1 else channels
        self.edges = nn.ModuleList()
        self.edge_index: dict[tuple[int, int], int] = {}
        for i in range(space.blocks):
            for j in range(2 + i):
                stride = 2 if reduction and j < 2 else 1
                shape = (width, size if j < 2 else out_size, size if j < 2 else out_size)
                ops = {name: op_chain(make(width, stride), shape, f"{where}.b{i}.{state_name(j)}.{name}")
                       for name, make in space.ops.items()}
                self.edge_index[(i, j)] = len(self.edges)
                self.edges.append(PartialEdge(ops, partial, stride) if partial > 1 else MixedEdge(ops))
        self.op_names = list(space.ops)

    def _preprocess(self, k: int, x: torch.Tensor) -> torch.Tensor:
        for name in self.pre_names[k]:
            x = self.pre[name](x)
        return x

    def forward(self, s0: torch.Tensor, s1: torch.Tensor, path: Mapping[str, Any] | None = None,
                weights: torch.Tensor | None = None, edge_weights: list[torch.Tensor] | None = None) -> torch.Tensor:
        if path is not None:
            return self._path(s0, s1, path)
        states = [self._preprocess(0, s0), self._preprocess(1, s1)]
        for i in range(self.blocks):
            total = 0
            for j in range(2 + i):
                e = self.edge_index[(i, j)]
                out = self.edges[e](states[j], weights[e])
                total = total + (out * edge_weights[i][j] if edge_weights is not None else out)
            states.append(total)
        return torch.cat(states[2:], 1)

    def choice(self, path: Mapping[str, Any], i: int, side: str) -> tuple[int, int]:
        """(input state, op index) of side `side` of block `i` on `path`."""
        return (state_index(path[f"{self.kind}.b{i}.input_{side}"]),
                self.op_names.index(path[f"{self.kind}.b{i}.op_{side}"]))

    def concat(self, path: Mapping[str, Any]) -> list[int]:
        """The states (2..) the path's cell concatenates."""
        read = {self.choice(path, i, side)[0] for i in range(self.blocks) for side in "ab"}
        return [s for s in range(2, 2 + self.blocks) if self.concat_all or s not in read]

    def _path(self, s0: torch.Tensor, s1: torch.Tensor, path: Mapping[str, Any]) -> torch.Tensor:
        states: list[torch.Tensor | None] = [None, None]
        inputs = (s0, s1)
        for i in range(self.blocks):
            total = None
            for side in "ab":
                j, op = self.choice(path, i, side)
                if states[j] is None:  # a cell input only the path reads is preprocessed (BN statistics)
                    states[j] = self._preprocess(j, inputs[j])
                out = self.edges[self.edge_index[(i, j)]](states[j], index=op)
                total = out if total is None else total + out
            states.append(total)
        kept = set(self.concat(path))
        return torch.cat([s if k in kept else torch.zeros_like(s) for k, s in enumerate(states) if k >= 2], 1)

    def module_for(self, node: str, path: Mapping[str, Any]) -> nn.Module | None:
        """The supernet module of a node of the path's cell graph (as `nas.darts.cell_graph` names them);
        None for nodes without one (the identity of a state's sum, the output's concat)."""
        if node in self.pre:
            return self.pre[node]
        if node.startswith("s") and "_" in node:  # s<n>_<side><k>: layer k of side's op chain of state n
            state, rest = node[1:].split("_")
            i, side, k = int(state) - 2, rest[0], int(rest[1:])
            j, op = self.choice(path, i, side)
            edge = self.edges[self.edge_index[(i, j)]]
            return layer(edge.ops[op], k, edge.layers[op])
        return None


class CellSupernet(nn.Module):
    """The supernet of a `cells` space (see the module's docstring)."""

    def __init__(self, space: CellSpace, *, channels: int | None = None, normal_cells: int | None = None,
                 partial: int = 1):
        super().__init__()
        if not isinstance(partial, int) or partial < 1:
            raise OneShotError(f"partial channels K must be an integer >= 1, got {partial!r}")
        self.space = fixed_space(space, channels, normal_cells)
        self.channels = self.space.channels[0]
        if partial > 1 and self.channels % partial:
            raise OneShotError(f"partial channels K = {partial} must divide the cell width {self.channels}")
        self.partial = partial
        self.kinds = self.space.kinds()
        self.reductions = self.space.reductions({})
        reference = self.space.realize(self.space.complete({}, random.Random(0)))
        plan = expand(reference)
        self.stem = compile_cell(plan.stem)
        self.head = compile_cell(plan.head)
        size = plan.stem.out_shape[1]
        width = self.channels
        shapes = [plan.stem.out_shape, plan.stem.out_shape]  # (prev_prev, prev): the first cell reads the stem twice
        self.cells = nn.ModuleList()
        reduction_prev = False
        for k, reduction in enumerate(self.reductions):
            width *= 2 if reduction else 1
            kind = "reduce" if reduction else "normal"
            cell = SuperCell(self.space, kind, width, reduction, reduction_prev, (shapes[0], shapes[1]), partial,
                             f"cells[{k}]")
            self.cells.append(cell)
            size = reduced(size, 2) if reduction else size
            shapes = [shapes[1], (self.space.blocks * width, size, size)]
            reduction_prev = reduction
        self.classifier = nn.Linear(shapes[1][0], self.space.num_classes)
        nn.init.normal_(self.classifier.weight, 0.0, 0.01)
        nn.init.zeros_(self.classifier.bias)

    def edges_per_cell(self) -> int:
        return len(self.cells[0].edges)

    def forward(self, x: torch.Tensor, path: Mapping[str, Any] | None = None,
                weights: Mapping[str, torch.Tensor] | None = None,
                edge_weights: Mapping[str, list[torch.Tensor]] | None = None) -> torch.Tensor:
        """The path's network (`path`: a sample of `self.space`), else the relaxed one (`weights` per cell kind)."""
        if path is None and weights is None:
            raise OneShotError("the supernet runs a path (path=sample) or the relaxed network (weights=...)")
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            if path is not None:
                out = cell(s0, s1, path=path)
            else:
                out = cell(s0, s1, weights=weights[cell.kind],
                           edge_weights=edge_weights[cell.kind] if edge_weights is not None else None)
            s0, s1 = s1, out
        return self.classifier(self.head(s1))

    # ----- a path as a genome and its network -----
    def genome(self, path: Mapping[str, Any]) -> Genome:
        return self.space.realize(path)

    def extract(self, path: Mapping[str, Any]) -> tuple[Genome, Network]:
        """`(genome, nas.build(genome))` with the supernet's weights (and BN statistics) of the path."""
        if self.partial > 1:
            raise OneShotError("a partial-channel supernet's edges are 1/K wide: no path of it is a genome's "
                               "network (retrain the derived genome)")
        genome = self.genome(path)
        network = build(genome)
        plan = expand(genome)
        _copy(self.stem, network.stem, None)
        columns = [None]  # per cell output (0: the stem), the channels of the supernet's slots the genome keeps
        for cell in self.cells:
            keep = cell.concat(path)
            columns.append(torch.cat([torch.arange((s - 2) * cell.channels, (s - 1) * cell.channels) for s in keep]))
        k = 0
        for stage_plans, stage in zip(plan.stages, network.stages):
            for cell_plan, module in zip(stage_plans, stage):
                supercell = self.cells[k]
                graph = cell_plan.graph
                ports = cellgraph.input_nodes(graph)
                order = [n for n in cellgraph.topological_order(graph) if n not in ports]
                ops = module.ops if isinstance(module, DagCell) else [module]
                reads = {f"pre{PORTS.index(port)}": k + 1 - (2, 1)[PORTS.index(port)] for port in ports}
                for node, target in zip(order, ops):
                    source = supercell.module_for(node, path)
                    if source is None:
                        continue
                    port_cell = next((c for pre, c in reads.items() if node.startswith(pre)), None)
                    _copy(source, target, columns[max(port_cell, 0)] if port_cell is not None else None)
                k += 1
        _copy(self.classifier, network.classifier, columns[-1])
        return genome, network


def _copy(source: nn.Module, target: nn.Module, columns: torch.Tensor | None) -> None:
    """Load `source`'s state into `target`; tensors wider in dimension 1 keep the `columns` given."""
    state = {}
    for name, value in source.state_dict().items():
        if columns is not None and value.dim() >= 2 and value.shape[1] != target.state_dict()[name].shape[1]:
            value = value.index_select(1, columns)
        state[name] = value
    target.load_state_dict(state)
