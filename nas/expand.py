"""Expansion: a genome's stages become concrete cell graphs, with every node's shapes inferred.

Cells are wired by their stage's ``reads``: the stem's output is output 0, each stage cell's output
the next; a cell port that reads ``k`` takes output ``max(0, n - k)`` where ``n`` outputs exist so far.
Every `CellPlan` records the outputs it reads (``sources``) and its ports' shapes.

Shape inference builds each node's op on PyTorch's ``meta`` device (no memory, no compute)
and runs it on a meta tensor, so the shapes come from the very code that builds the network.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import networkx as nx
import torch

import nas.cells  # noqa: F401  (registers the cell templates)
import nas.ops  # noqa: F401  (registers the ops)
from nas import cell as cells
from nas.cells.registry import CellContext, get_template
from nas.errors import GenomeError
from nas.frozen import FrozenDict
from nas.ops.registry import get_op

if TYPE_CHECKING:
    from nas.genome import Genome

Shape = tuple[int, ...]  # one sample's shape: (C, H, W) or (F,)
TOKENS = ("@in", "@out", "@stride")


@dataclass(frozen=True)
class CellPlan:
    """One concrete cell: its graph (nodes carry resolved params, ``in_shape`` and ``out_shape``)."""

    where: str  # "stem", "stages[2][0]", "head"
    graph: nx.DiGraph
    in_shape: Shape  # the first port's shape
    out_shape: Shape
    in_shapes: tuple[Shape, ...] = ()  # every port's shape, in port order
    sources: tuple[int, ...] = ()  # the cell outputs each port reads (0: the stem's); () for stem and head

    @property
    def ports(self) -> tuple[str, ...]:
        return cells.input_nodes(self.graph)


@dataclass(frozen=True)
class NetworkPlan:
    stem: CellPlan
    stages: tuple[tuple[CellPlan, ...], ...]
    head: CellPlan
    num_classes: int
    input_shape: Shape

    def cells(self) -> list[CellPlan]:
        return [self.stem, *(c for stage in self.stages for c in stage), self.head]

    def is_chain(self) -> bool:
        """Whether every stage cell reads only the previous cell's output (the network is a plain chain)."""
        stage_cells = [c for stage in self.stages for c in stage]
        return all(c.sources == (k,) for k, c in enumerate(stage_cells))


def merged_shape(merge: str, shapes: list[Shape], sources: list[str], where: str) -> Shape:
    """The shape after merging `shapes`, or a GenomeError naming the node and its inputs."""
    if len(shapes) == 1:
        return shapes[0]
    listed = ", ".join(f"{s} {tuple(sh)}" for s, sh in zip(sources, shapes))
    ranks = {len(s) for s in shapes}
    if len(ranks) != 1:
        raise GenomeError(where, f"cannot {merge} flat and spatial inputs: {listed}")
    if merge in ("add", "mean"):
        if len(set(shapes)) != 1:
            raise GenomeError(where, f"channel or spatial mismatch at '{merge}' merge: {listed}")
        return shapes[0]
    if merge == "concat":
        if len({s[1:] for s in shapes}) != 1:
            raise GenomeError(where, f"spatial mismatch at 'concat' merge: {listed}")
        return (sum(s[0] for s in shapes),) + shapes[0][1:]
    result = []  # multiply: broadcast, as for a squeeze-and-excitation gate
    for dims in zip(*shapes):
        sizes = set(dims) - {1}
        if len(sizes) > 1:
            raise GenomeError(where, f"shapes do not broadcast at 'multiply' merge: {listed}")
        result.append(sizes.pop() if sizes else 1)
    return tuple(result)


def _substitute(params: Mapping[str, Any], values: Mapping[str, int | None], where: str) -> dict[str, Any]:
    resolved = {}
    for key, value in params.items():
        if isinstance(value, str) and value.startswith("@"):
            if value not in TOKENS:
                raise GenomeError(where, f"unknown token {value!r} in parameter {key!r} (known: {', '.join(TOKENS)})")
            if values[value] is None:
                raise GenomeError(where, f"parameter {key!r} uses {value} but the stage has no 'out'")
            value = values[value]
        resolved[key] = value
    return resolved


def infer_cell(graph: nx.DiGraph, in_shape: Shape | tuple[Shape, ...], where: str,
               tokens: Mapping[str, int | None] | None = None, reads: tuple[int, ...] = ()) -> CellPlan:
    """Resolve every node's params (filling defaults) and infer its shapes; returns the concrete cell.

    `in_shape` is the input's shape, or a tuple of shapes, one per port; `reads` the cell outputs the ports read."""
    ports = cells.input_nodes(graph)
    in_shapes = tuple(in_shape) if in_shape and isinstance(in_shape[0], tuple) else (tuple(in_shape),)
    if len(in_shapes) != len(ports):
        raise GenomeError(where, f"the cell has {len(ports)} inputs ({', '.join(ports)}) but gets {len(in_shapes)}")
    concrete = cells.new_cell(ports)
    for port, shape in zip(ports, in_shapes):
        concrete.nodes[port]["out_shape"] = shape
    for name in cells.topological_order(graph):
        if name in ports:
            continue
        attrs = graph.nodes[name]
        node_where = f"{where}.nodes.{name}"
        sources = list(graph.predecessors(name))
        shape = merged_shape(attrs["merge"], [concrete.nodes[s]["out_shape"] for s in sources], sources, node_where)
        spec = get_op(attrs["op"], node_where)
        raw = attrs["params"] if tokens is None else _substitute(attrs["params"], tokens, node_where)
        params = spec.resolve(raw, node_where)
        out_shape = _run_on_meta(spec, shape, params, node_where)
        concrete.add_node(name, **{**attrs, "params": params, "in_shape": shape, "out_shape": out_shape})
        concrete.add_edges_from((s, name) for s in sources)
    return CellPlan(where, nx.freeze(concrete), in_shapes[0], concrete.nodes[cells.OUTPUT]["out_shape"], in_shapes, reads)


def _run_on_meta(spec: Any, shape: Shape, params: FrozenDict, where: str) -> Shape:
    try:
        return _output_shape(spec.name, params, tuple(shape))
    except GenomeError:
        raise
    except (ValueError, TypeError, RuntimeError, IndexError, ArithmeticError) as error:
        raise GenomeError(where, f"op {spec.name!r} cannot take input of shape {tuple(shape)}: {_first_line(error)}") from None


@lru_cache(maxsize=8192)
def _output_shape(op_name: str, params: FrozenDict, shape: Shape) -> Shape:
    """One sample's output shape of op `op_name` on input `shape`, by running it on the meta device.

    Cached: a network repeats the same (op, params, shape) many times, and ops are pure functions of those.
    """
    with torch.device("meta"):
        module = get_op(op_name).build(shape[0], params).eval()
        out = module(torch.empty((2,) + shape))
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"op {op_name!r} returned {type(out).__name__}, not a tensor")
    return tuple(out.shape[1:])


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def stage_cell(genome: "Genome", stage_index: int, repeat: int, c_in: int | tuple[int, ...]
               ) -> tuple[nx.DiGraph, dict[str, int | None] | None]:
    """The (abstract) graph of one cell of a stage, and the token values when it is an explicit cell.

    `c_in` is the input's channels, or a tuple of channels, one per port the stage reads."""
    c_ins = tuple(c_in) if isinstance(c_in, tuple) else (c_in,)
    c_in = c_ins[0]
    stage = genome.stages[stage_index]
    where = f"stages[{stage_index}]"
    stride = stage.stride if repeat == 0 else 1
    if stage.cell in genome.cells:
        if stage.params:
            raise GenomeError(f"{where}.params", f"explicit cell {stage.cell!r} takes no params; use @in/@out/@stride")
        return genome.cells[stage.cell], {"@in": c_in, "@out": stage.out, "@stride": stride}
    spec = get_template(stage.cell, f"{where}.cell")
    params = spec.resolve(stage.params, f"{where}.params")
    context = CellContext(c_in=c_in, out=stage.out, stride=stride, index=repeat, params=params, c_ins=c_ins)
    try:
        graph = spec.factory(context)
    except GenomeError:
        raise
    except (ValueError, TypeError, KeyError) as error:
        raise GenomeError(f"{where}", f"cell {stage.cell!r}: {_first_line(error)}") from None
    cells.validate_structure(graph, f"{where}[{repeat}]")
    return graph, None


def expand(genome: "Genome", num_classes: int | None = None, in_channels: int | None = None,
           input_size: int | tuple[int, int] | None = None) -> NetworkPlan:
    """The concrete network of `genome`: stem, every stage's cells, head; all shapes checked."""
    channels = in_channels or genome.input.channels
    if input_size is None:
        size = genome.input.size
    else:
        size = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    input_shape = (channels, *size)
    stem = infer_cell(genome.stem, input_shape, "stem")
    if len(stem.out_shape) != 3:
        raise GenomeError("stem", f"must output feature maps (C, H, W), got shape {stem.out_shape}")
    outputs = [stem.out_shape]  # every cell output so far: the stem's, then each stage cell's
    stages = []
    for s, stage in enumerate(genome.stages):
        planned = []
        for r in range(stage.repeats):
            sources = tuple(max(0, len(outputs) - k) for k in stage.reads)
            in_shapes = tuple(outputs[j] for j in sources)
            graph, tokens = stage_cell(genome, s, r, tuple(shape[0] for shape in in_shapes))
            ports = cells.input_nodes(graph)
            if len(ports) != len(stage.reads):
                raise GenomeError(f"stages[{s}].reads", f"cell {stage.cell!r} has {len(ports)} input(s) "
                                  f"({', '.join(ports)}) but reads lists {len(stage.reads)}")
            plan = infer_cell(graph, in_shapes, f"stages[{s}][{r}]", tokens, sources)
            if stage.out is not None and plan.out_shape[0] != stage.out:
                raise GenomeError(f"stages[{s}][{r}]", f"cell outputs {plan.out_shape[0]} channels, stage says out={stage.out}")
            planned.append(plan)
            outputs.append(plan.out_shape)
        stages.append(tuple(planned))
    head = infer_cell(genome.head, outputs[-1], "head")
    if len(head.out_shape) != 1:
        raise GenomeError("head", f"must end in flat features (add global_avgpool or flatten), got shape {head.out_shape}")
    return NetworkPlan(stem, tuple(stages), head, num_classes or genome.num_classes, input_shape)
