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

import nas.templates  # noqa: F401  (registers the cell templates)
import nas.ops  # noqa: F401  (registers the ops)
from nas import cellgraph
from nas.templates.registry import CellContext, get_template
from nas.errors import GenomeError
from nas.frozen import FrozenDict, thaw
from nas.limits import MAX_NETWORK_SIZE
from nas.rounding import round_channels
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
        return cellgraph.input_nodes(self.graph)


@dataclass(frozen=True)
class NetworkPlan:
    stem: CellPlan
    stages: tuple[tuple[CellPlan, ...], ...]
    head: CellPlan
    num_classes: int
    input_shape: Shape
    classifier: str = "linear"  # "linear": a Linear(head features, num_classes) after the head; "none": the head gives the logits

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


# Arithmetic in parameter values: a one-key mapping {operator: [operands]}, operands being numbers,
# tokens or further expressions. Plain data, evaluated here by hand (never `eval`).
def _sum(args: list) -> Any:
    return sum(args)


def _product(args: list) -> Any:
    result = 1
    for value in args:
        result *= value
    return result


def _round(args: list) -> int:
    value, divisor = args
    if not isinstance(divisor, int) or divisor < 1:
        raise ValueError(f"the divisor must be an integer >= 1, got {divisor!r}")
    return round_channels(value, divisor)


# operator -> (number of operands: exact count, or -2 for "two or more"; function)
OPERATORS: dict[str, tuple[int, Any]] = {
    "add": (-2, _sum),                                 # a + b + ...
    "sub": (2, lambda a: a[0] - a[1]),                 # a - b
    "mul": (-2, _product),                             # a * b * ...
    "div": (2, lambda a: a[0] // a[1]),                # floor division, as torchvision's `c // 4`
    "max": (-2, max),
    "min": (-2, min),
    "int": (1, lambda a: int(a[0])),                   # towards zero, as Python's int(c * 0.25)
    "round": (2, _round),                              # make_divisible(value, divisor) (nas.rounding.round_channels)
}
MAX_EXPRESSION_DEPTH = 16


def is_expression(value: Any) -> bool:
    """Whether a parameter value is an arithmetic expression: a one-key mapping naming an operator."""
    return isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in OPERATORS


def _text_number(value: Any) -> str:
    """A hint when YAML read a number as text (YAML 1.1 wants a dot and a sign: 1e5 is text, 1.0e+5 a number)."""
    if isinstance(value, str) and any(c.isdigit() for c in value):
        try:
            float(value)
        except ValueError:
            return ""
        return " (text: YAML reads a number in this form as a string; write e.g. 1.0e+5 for 1e5)"
    return ""


def _evaluate(value: Any, values: Mapping[str, Any], key: str, where: str, depth: int = 0) -> Any:
    """`value` with tokens replaced by their values and expressions computed."""
    if isinstance(value, str) and value.startswith("@"):
        if value not in values:
            known = f"known: {', '.join(sorted(values))}" if values else "no tokens here: write a number"
            raise GenomeError(where, f"unknown token {value!r} in parameter {key!r} ({known})")
        if values[value] is None:
            raise GenomeError(where, f"parameter {key!r} uses {value} but the stage has no 'out'")
        return values[value]
    if isinstance(value, Mapping):
        if not is_expression(value):
            raise GenomeError(where, f"parameter {key!r}: an expression is one of {', '.join(OPERATORS)} "
                                     f"with a list of operands, got {dict(value)!r}")
        if depth >= MAX_EXPRESSION_DEPTH:
            raise GenomeError(where, f"parameter {key!r}: expression nested deeper than {MAX_EXPRESSION_DEPTH}")
        (name, operands), = value.items()
        arity, function = OPERATORS[name]
        operands = list(operands) if isinstance(operands, (list, tuple)) else [operands]
        if (arity > 0 and len(operands) != arity) or (arity < 0 and len(operands) < -arity):
            wanted = f"{arity}" if arity > 0 else f"at least {-arity}"
            raise GenomeError(where, f"parameter {key!r}: {name!r} takes {wanted} operands, got {len(operands)}")
        args = [_evaluate(operand, values, key, where, depth + 1) for operand in operands]
        bad = [a for a in args if isinstance(a, bool) or not isinstance(a, (int, float))]
        if bad:
            raise GenomeError(where, f"parameter {key!r}: {name!r} needs numbers, got {bad[0]!r}{_text_number(bad[0])}")
        try:
            return function(args)
        except (ValueError, ArithmeticError) as error:
            raise GenomeError(where, f"parameter {key!r}: {name} {args}: {_first_line(error)}") from None
    if isinstance(value, (list, tuple)):
        return tuple(_evaluate(v, values, key, where, depth + 1) for v in value)
    return value


def _substitute(params: Mapping[str, Any], values: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    """Params with tokens (``"@in"``, ``"@out"``, ``"@stride"``, and the stage's own ``@name`` params)
    replaced and arithmetic expressions (``{mul: ["@out", 4]}``) computed."""
    if not any(isinstance(value, (Mapping, tuple, list)) or (isinstance(value, str) and value.startswith("@"))
               for value in params.values()):
        return params  # no token, expression or list: nothing to resolve (most nodes)
    return {key: _evaluate(value, values, key, where) for key, value in params.items()}


def infer_cell(graph: nx.DiGraph, in_shape: Shape | tuple[Shape, ...], where: str,
               tokens: Mapping[str, int | None] | None = None, reads: tuple[int, ...] = ()) -> CellPlan:
    """Resolve every node's params (filling defaults) and infer its shapes; returns the concrete cell.

    `in_shape` is the input's shape, or a tuple of shapes, one per port; `reads` the cell outputs the ports read."""
    ports = cellgraph.input_nodes(graph)
    in_shapes = tuple(in_shape) if in_shape and isinstance(in_shape[0], tuple) else (tuple(in_shape),)
    if len(in_shapes) != len(ports):
        raise GenomeError(where, f"the cell has {len(ports)} inputs ({', '.join(ports)}) but gets {len(in_shapes)}")
    concrete = cellgraph.new_cell(ports)
    for port, shape in zip(ports, in_shapes):
        concrete.nodes[port]["out_shape"] = shape
    for name in cellgraph.topological_order(graph):
        if name in ports:
            continue
        attrs = graph.nodes[name]
        node_where = f"{where}.nodes.{name}"
        sources = list(graph.predecessors(name))
        shape = merged_shape(attrs["merge"], [concrete.nodes[s]["out_shape"] for s in sources], sources, node_where)
        spec = get_op(attrs["op"], node_where)
        raw = _substitute(attrs["params"], tokens or {}, node_where)
        params = spec.resolve(raw, node_where)
        out_shape = _run_on_meta(spec, shape, params, node_where)
        concrete.add_node(name, **{**attrs, "params": params, "in_shape": shape, "out_shape": out_shape})
        concrete.add_edges_from((s, name) for s in sources)
    return CellPlan(where, nx.freeze(concrete), in_shapes[0], concrete.nodes[cellgraph.OUTPUT]["out_shape"], in_shapes, reads)


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


def tokens_in(value: Any) -> set[str]:
    """Every token (``"@name"``) in a parameter value, also inside arithmetic and lists."""
    if isinstance(value, str) and value.startswith("@"):
        return {value}
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, (list, tuple)) else ()
    return set().union(*(tokens_in(item) for item in items))


def used_tokens(graph: nx.DiGraph) -> set[str]:
    """Every token an explicit cell's node params name, also inside arithmetic and lists."""
    return set().union(*(tokens_in(attrs.get("params", {})) for _, attrs in graph.nodes(data=True)))


def cell_tokens(params: Mapping[str, Any], c_in: int, out: int | None, stride: int, where: str) -> dict[str, Any]:
    """The token values of one explicit cell: ``@in``, ``@out``, ``@stride`` and ``@name`` for each stage
    param ``name`` (numbers, strings, booleans or lists: an explicit cell's own knobs, e.g. ``{pool: 32}``)."""
    tokens: dict[str, Any] = {"@in": c_in, "@out": out, "@stride": stride}
    for name, value in params.items():
        if f"@{name}" in tokens:
            raise GenomeError(f"{where}.{name}", f"an explicit cell's param cannot be named {name!r} (a built-in token)")
        if isinstance(value, Mapping):
            raise GenomeError(f"{where}.{name}", f"an explicit cell's param is a value, not a mapping, got {thaw(value)!r}")
        tokens[f"@{name}"] = value
    return tokens


def stage_cell(genome: "Genome", stage_index: int, repeat: int, c_in: int | tuple[int, ...]
               ) -> tuple[nx.DiGraph, dict[str, int | None] | None]:
    """The (abstract) graph of one cell of a stage, and the token values when it is an explicit cell.

    `c_in` is the input's channels, or a tuple of channels, one per port the stage reads."""
    c_ins = tuple(c_in) if isinstance(c_in, tuple) else (c_in,)
    c_in = c_ins[0]
    stage = genome.stages[stage_index]
    where = f"stages[{stage_index}]"
    stride = stage.stride if repeat == 0 else 1
    stage_params = {**stage.params, **stage.first} if repeat == 0 else stage.params
    if stage.cell in genome.cells:
        graph = genome.cells[stage.cell]
        unused = sorted({f"@{name}" for name in stage_params} - used_tokens(graph))
        if unused:
            raise GenomeError(f"{where}.params", f"explicit cell {stage.cell!r} does not use {unused[0]} "
                                                 f"(it uses: {', '.join(sorted(used_tokens(graph))) or 'no tokens'})")
        return graph, cell_tokens(stage_params, c_in, stage.out, stride, f"{where}.params")
    spec = get_template(stage.cell, f"{where}.cell")
    params = spec.resolve(stage_params, f"{where}.first" if repeat == 0 and stage.first else f"{where}.params")
    context = CellContext(c_in=c_in, out=stage.out, stride=stride, index=repeat, params=params, c_ins=c_ins)
    try:
        graph = spec.factory(context)
    except GenomeError as error:  # a node the template built from the stage's params was refused: say where
        raise GenomeError(f"{where}.params", f"cell {stage.cell!r}, its node {error.where}: {error.message}") from None
    except (ValueError, TypeError, KeyError) as error:
        raise GenomeError(f"{where}", f"cell {stage.cell!r}: {_first_line(error)}") from None
    cellgraph.validate_structure(graph, f"{where}[{repeat}]")
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
    size = 0  # nodes and edges expanded so far: the work is bounded (nas.limits) before each cell is inferred
    for s, stage in enumerate(genome.stages):
        planned = []
        for r in range(stage.repeats):
            sources = tuple(max(0, len(outputs) - k) for k in stage.reads)
            in_shapes = tuple(outputs[j] for j in sources)
            graph, tokens = stage_cell(genome, s, r, tuple(shape[0] for shape in in_shapes))
            ports = cellgraph.input_nodes(graph)
            if len(ports) != len(stage.reads):
                raise GenomeError(f"stages[{s}].reads", f"cell {stage.cell!r} has {len(ports)} input(s) "
                                  f"({', '.join(ports)}) but reads lists {len(stage.reads)}")
            cell_size = len(graph) + graph.number_of_edges()
            if size + cell_size * (stage.repeats - r) > MAX_NETWORK_SIZE:  # this stage's cells at this size: too many
                raise GenomeError(f"stages[{s}]", f"the network would be too large (more than {MAX_NETWORK_SIZE:,} nodes and edges)")
            size += cell_size
            plan = infer_cell(graph, in_shapes, f"stages[{s}][{r}]", tokens, sources)
            if stage.out is not None and plan.out_shape[0] != stage.out:
                raise GenomeError(f"stages[{s}][{r}]", f"cell outputs {plan.out_shape[0]} channels, stage says out={stage.out}")
            planned.append(plan)
            outputs.append(plan.out_shape)
        stages.append(tuple(planned))
    classes = num_classes or genome.num_classes
    shape = outputs[-1]
    head = infer_cell(genome.head, shape, "head", {"@in": shape[0], "@classes": classes})
    if len(head.out_shape) != 1:
        raise GenomeError("head", f"must end in flat features (add global_avgpool or flatten), got shape {head.out_shape}")
    if genome.classifier == "none" and head.out_shape != (classes,):
        raise GenomeError("head", f"with 'classifier: none' the head gives the logits: it must output "
                                  f"({classes},) (use out: \"@classes\"), got {head.out_shape}")
    return NetworkPlan(stem, tuple(stages), head, classes, input_shape, genome.classifier)
