"""DARTS genotypes <-> genomes: bring a searched cell from a paper, or take ours to the DARTS code.

A genotype (Liu et al. 2019; github quark0/darts, ``cnn/genotypes.py``) describes a normal and a
reduction cell that read the two previous cells (inputs 0 and 1; an input no op reads is left out). Each pair ``(op, input)`` of
``normal`` applies a DARTS op to state ``input``; pairs 2i and 2i+1 are summed into state i + 2;
the cell outputs the concatenation of the states in ``normal_concat``. In a reduction cell the ops
reading inputs 0 and 1 have stride 2. Parsed as data (the text is never evaluated)::

    Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ...], normal_concat=[2, 3, 4, 5],
             reduce=[('max_pool_3x3', 0), ...], reduce_concat=[2, 3, 4, 5])

`network` writes the genome of the DARTS code's ``NetworkCIFAR`` (without auxiliary head): a stem
(3x3 conv, BN) of ``stem_multiplier * channels`` channels, then ``layers`` cells with reductions
(width doubled) at ``layers // 3`` and ``2 * layers // 3``; a cell reads the cell outputs 2 and 1
back (``reads: [2, 1]``, ports ``prev_prev`` and ``prev``), so the first cell reads the stem twice.
Each port is preprocessed explicitly: ReLU -> 1x1 conv -> BN to the cell width (nodes ``pre0``,
``pre1``), or, for ``prev_prev`` of the cell right after a reduction, a factorized reduce
(``skip_connect`` with stride 2). Cell graphs hold concrete channel counts, so there is one explicit
cell per (kind, width, after a reduction) and node names follow a fixed scheme (``pre0``, ``pre1``,
state ``s<n>`` summing the op chains ``s<n>_a<k>`` and ``s<n>_b<k>``), which `genotype` reads back.
"""
from __future__ import annotations

import ast
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import networkx as nx

from nas.cellgraph import OUTPUT, add_node, input_nodes, new_cell, to_dict
from nas.errors import GenomeError
from nas.genome import Genome

PORTS = ("prev_prev", "prev")  # DARTS's s0 and s1
Layers = list[dict[str, Any]]


def _sep(kernel: int) -> Callable[[int, Any], Layers]:
    return lambda c, stride: [{"op": "sepconv", "out": c, "kernel": kernel, "stride": stride, "preact": True},
                              {"op": "sepconv", "out": c, "kernel": kernel, "preact": True}]


def _dil(kernel: int) -> Callable[[int, Any], Layers]:
    return lambda c, stride: [{"op": "sepconv", "out": c, "kernel": kernel, "stride": stride, "dilation": 2,
                               "preact": True}]


# The DARTS code's ops (cnn/operations.py) at width C and stride s, as chains of nodes.
OPS: dict[str, Callable[[int, Any], Layers]] = {
    "none": lambda c, stride: [{"op": "zero", "stride": stride}],
    "avg_pool_3x3": lambda c, stride: [{"op": "avgpool", "kernel": 3, "stride": stride, "padding": 1,
                                        "count_include_pad": False}],
    "max_pool_3x3": lambda c, stride: [{"op": "maxpool", "kernel": 3, "stride": stride, "padding": 1}],
    "skip_connect": lambda c, stride: [{"op": "skip_connect", "out": c, "stride": stride}],
    "sep_conv_3x3": _sep(3),
    "sep_conv_5x5": _sep(5),
    "sep_conv_7x7": _sep(7),
    "dil_conv_3x3": _dil(3),
    "dil_conv_5x5": _dil(5),
    "conv_7x1_1x7": lambda c, stride: [{"op": "conv_1xk_kx1", "out": c, "kernel": 7, "stride": stride}],
}


class GenotypeError(GenomeError):
    """A genotype that is malformed, or a genome that is not in the DARTS form."""


Pairs = tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Genotype:
    """A DARTS genotype as plain data (the field names and order of DARTS's namedtuple)."""

    normal: Pairs
    normal_concat: tuple[int, ...]
    reduce: Pairs
    reduce_concat: tuple[int, ...]

    def __post_init__(self) -> None:
        for kind in ("normal", "reduce"):
            pairs = tuple(_pair(p, f"genotype.{kind}[{i}]") for i, p in enumerate(_list(getattr(self, kind), kind)))
            concat = tuple(_index(v, f"genotype.{kind}_concat") for v in _list(getattr(self, f"{kind}_concat"),
                                                                                f"{kind}_concat"))
            _check_cell(pairs, concat, kind)
            object.__setattr__(self, kind, pairs)
            object.__setattr__(self, f"{kind}_concat", concat)

    @staticmethod
    def parse(text: str) -> "Genotype":
        """A genotype from DARTS's text form ``Genotype(normal=[...], normal_concat=[...], ...)``."""
        try:
            tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError as error:
            raise GenotypeError("genotype", f"not a Genotype(...) expression: {error.msg}") from None
        if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Genotype"):
            raise GenotypeError("genotype", "expected Genotype(normal=..., normal_concat=..., reduce=..., reduce_concat=...)")
        fields = dict(zip(FIELDS, (_literal(a) for a in tree.args)))
        for keyword in tree.keywords:
            if keyword.arg not in FIELDS or keyword.arg in fields:
                raise GenotypeError("genotype", f"unexpected or repeated field {keyword.arg!r} (fields: {', '.join(FIELDS)})")
            fields[keyword.arg] = _literal(keyword.value)
        return Genotype.from_dict(fields)

    @staticmethod
    def from_dict(spec: Any) -> "Genotype":
        """A genotype from a mapping (or DARTS's namedtuple) with the four fields."""
        if hasattr(spec, "_asdict"):
            spec = spec._asdict()
        if not isinstance(spec, Mapping):
            raise GenotypeError("genotype", f"must be a mapping with {', '.join(FIELDS)}, got {type(spec).__name__}")
        missing = [f for f in FIELDS if f not in spec]
        unknown = sorted(set(spec) - set(FIELDS))
        if missing or unknown:
            raise GenotypeError("genotype", f"missing field {missing[0]!r}" if missing else f"unknown field {unknown[0]!r}")
        return Genotype(*(spec[f] for f in FIELDS))

    def to_dict(self) -> dict[str, Any]:
        return {"normal": [list(p) for p in self.normal], "normal_concat": list(self.normal_concat),
                "reduce": [list(p) for p in self.reduce], "reduce_concat": list(self.reduce_concat)}

    def to_text(self) -> str:
        """DARTS's text form (paste it into ``cnn/genotypes.py``)."""
        def pairs(p: Pairs) -> str:
            return "[" + ", ".join(f"({op!r}, {i})" for op, i in p) + "]"

        return (f"Genotype(normal={pairs(self.normal)}, normal_concat={list(self.normal_concat)}, "
                f"reduce={pairs(self.reduce)}, reduce_concat={list(self.reduce_concat)})")


FIELDS = ("normal", "normal_concat", "reduce", "reduce_concat")
MAX_STEPS = 64


def _literal(node: ast.AST) -> Any:
    """A list/tuple/str/int literal, or ``range(a, b)``; nothing else is accepted."""
    if isinstance(node, (ast.List, ast.Tuple)):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Constant) and isinstance(node.value, (str, int)) and not isinstance(node.value, bool):
        return node.value
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range"
            and not node.keywords and 1 <= len(node.args) <= 2):
        bounds = [_literal(a) for a in node.args]
        if all(isinstance(b, int) and 0 <= b <= MAX_STEPS + 2 for b in bounds):
            return list(range(*bounds))
    raise GenotypeError("genotype", f"unexpected {ast.unparse(node)[:40]!r}: only lists of (op, input) pairs, "
                        "integers and range(a, b)")


def _list(value: Any, where: str) -> Sequence[Any]:
    if isinstance(value, (str, bytes)) or not isinstance(value, (Sequence, range)):
        raise GenotypeError(f"genotype.{where}", f"must be a list, got {value!r}")
    return value


def _index(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise GenotypeError(where, f"must be a state index (an integer >= 0), got {value!r}")
    return value


def _pair(value: Any, where: str) -> tuple[str, int]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != 2:
        raise GenotypeError(where, f"must be an (op, input) pair, got {value!r}")
    op, index = value
    if op not in OPS:
        raise GenotypeError(where, f"unknown DARTS op {op!r} (known: {', '.join(OPS)})")
    return op, _index(index, where)


def _check_cell(pairs: Pairs, concat: tuple[int, ...], kind: str) -> None:
    steps = len(pairs) // 2
    if not pairs or len(pairs) % 2 or steps > MAX_STEPS:
        raise GenotypeError(f"genotype.{kind}", f"needs an even number (2 to {2 * MAX_STEPS}) of (op, input) pairs, "
                            f"got {len(pairs)}")
    for i, (_, index) in enumerate(pairs):
        if index >= 2 + i // 2:
            raise GenotypeError(f"genotype.{kind}[{i}]", f"step {i // 2} can read inputs 0, 1 and states 2.."
                                f"{1 + i // 2}, not {index}")
    if not concat or len(set(concat)) != len(concat) or any(not 2 <= c < 2 + steps for c in concat):
        raise GenotypeError(f"genotype.{kind}_concat", f"must list distinct states among 2..{1 + steps}, got {list(concat)}")
    used = {index for _, index in pairs} | set(concat)
    unused = [s for s in range(2, 2 + steps) if s not in used]
    if unused:
        raise GenotypeError(f"genotype.{kind}", f"state {unused[0]} is neither read nor concatenated")


# ----- genotype -> genome -----
OpTable = Mapping[str, Callable[[int, Any], Layers]]


def cell_graph(pairs: Pairs, concat: Sequence[int], channels: int, reduction: bool, reduction_prev: bool,
               ops: OpTable = OPS) -> nx.DiGraph:
    """The graph of one DARTS cell at width `channels` (the DARTS code's ``Cell``), nodes in its execution order.

    In a reduction cell the ops reading the inputs take the stage's stride (``@stride``). An input that no
    op reads is left out of the cell's ports (the DARTS code would still preprocess it, uselessly)."""
    read = {index for _, index in pairs}
    graph = new_cell(tuple(port for k, port in enumerate(PORTS) if k in read))
    if 0 in read and reduction_prev:
        add_node(graph, "pre0", [PORTS[0]], "skip_connect", out=channels, stride=2)
    elif 0 in read:
        add_node(graph, "pre0_relu", [PORTS[0]], "act", kind="relu")
        add_node(graph, "pre0", ["pre0_relu"], "conv", kernel=1, out=channels, act="none")
    if 1 in read:
        add_node(graph, "pre1_relu", [PORTS[1]], "act", kind="relu")
        add_node(graph, "pre1", ["pre1_relu"], "conv", kernel=1, out=channels, act="none")
    states = ["pre0", "pre1"]
    for step in range(len(pairs) // 2):
        state = f"s{step + 2}"
        ends = []
        for side, (op, index) in zip("ab", pairs[2 * step: 2 * step + 2]):
            previous = states[index]
            for k, layer in enumerate(ops[op](channels, "@stride" if reduction and index < 2 else 1)):
                previous = add_node(graph, f"{state}_{side}{k}", [previous], **layer)
            ends.append(previous)
        states.append(add_node(graph, state, ends, "identity", merge="add"))
    add_node(graph, OUTPUT, [states[i] for i in concat], "identity", merge="concat")
    return graph


def network(genotype: Genotype, name: str, *, channels: int = 36, layers: int = 20, num_classes: int = 10,
            input_channels: int = 3, input_size: int = 32, stem_multiplier: int = 3,
            auxiliary: bool = False) -> Genome:
    """The genome of DARTS's ``NetworkCIFAR(channels, num_classes, layers, auxiliary, genotype)``; with
    `auxiliary`, the stage of the second reduction cell (where DARTS's auxiliary head reads) is marked
    ``aux: true`` (a training's auxiliary head, `nas.train.regularizers`; the built network is the same)."""
    if layers < 3:
        raise GenotypeError("layers", f"a DARTS network needs at least 3 cells, got {layers}")
    reductions = {layers // 3, 2 * layers // 3}
    spec = network_dict(
        {"normal": (genotype.normal, genotype.normal_concat), "reduce": (genotype.reduce, genotype.reduce_concat)},
        [i in reductions for i in range(layers)], name, channels=channels, num_classes=num_classes,
        input_channels=input_channels, input_size=input_size, stem_multiplier=stem_multiplier)
    if auxiliary:
        cells = 0
        for stage in spec["stages"]:
            cells += stage.get("repeats", 1)
            if cells > 2 * layers // 3:  # the stage whose last cell is the second reduction cell
                stage["aux"] = True
                break
    return Genome.from_dict(spec)


def network_dict(cells: Mapping[str, tuple[Pairs, Sequence[int]]], reductions: Sequence[bool], name: str, *,
                 channels: int, num_classes: int, input_channels: int, input_size: int, stem_multiplier: int = 3,
                 ops: OpTable = OPS) -> dict[str, Any]:
    """The genome (dict form) of a DARTS network: cell k is the ``reduce`` cell where `reductions[k]` (width
    doubled, stride 2), else the ``normal`` cell; `cells` maps each kind to its (pairs, concat)."""
    layout, width = [], channels
    for reduction in reductions:
        width *= 2 if reduction else 1
        layout.append((reduction, width))
    stages, named = cell_stages(cells, layout, ops)
    return {
        "name": name,
        "input": {"channels": input_channels, "size": input_size},
        "num_classes": num_classes,
        "stem": [{"op": "conv", "out": stem_multiplier * channels, "kernel": 3, "act": "none"}],
        "stages": stages,
        "head": [{"op": "global_avgpool"}],
        "cells": named,
    }


def cell_stages(cells: Mapping[str, tuple[Pairs, Sequence[int]]], layout: Sequence[tuple[bool, int]],
                ops: OpTable = OPS) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The stages and explicit cells (dict form) of a sequence of DARTS cells, each given as (reduction,
    width): a reduction cell has stride 2; the cell after one aligns its older input with a factorized reduce."""
    named: dict[str, Any] = {}
    reads: dict[str, list[int]] = {}
    stages: list[dict[str, Any]] = []
    reduction_prev = False
    for reduction, width in layout:
        kind = "reduce" if reduction else "normal"
        key = f"{kind}{width}" + ("_after_reduce" if reduction_prev else "")
        if key not in named:
            graph = cell_graph(*cells[kind], width, reduction, reduction_prev, ops)
            named[key] = to_dict(graph)
            reads[key] = [(2, 1)[PORTS.index(port)] for port in input_nodes(graph)]
        if stages and stages[-1]["cell"] == key:
            stages[-1]["repeats"] += 1
        else:
            stages.append({"cell": key, "repeats": 1, "reads": reads[key], **({"stride": 2} if reduction else {})})
        reduction_prev = reduction
    for stage in stages:
        if stage["repeats"] == 1:
            del stage["repeats"]
    return stages, named


# ----- genome -> genotype -----
def genotype(genome: Genome) -> Genotype:
    """The genotype of a genome in the DARTS form (as `network` writes them): its normal cells must all
    share one genotype, and so must its reduction cells (stages with stride > 1)."""
    cells, _ = read_network(genome, OPS)
    if set(cells) != {"normal", "reduce"}:
        raise GenotypeError("stages", "a DARTS network has normal cells and reduction cells (stages with stride 2)")
    return Genotype(*cells["normal"], *cells["reduce"])


def read_network(genome: Genome, ops: OpTable | None = None) -> tuple[dict[str, tuple[Pairs, tuple[int, ...]]], OpTable]:
    """The (pairs, concat) of each cell kind of a genome in the DARTS form (``normal``; ``reduce`` for stages with
    stride > 1), and the ops they use: the given table's names, or (with `ops` None) a table of the op chains
    found, named ``op0``, ``op1``, ... with the cell width written ``@out`` and strides ``@stride``."""
    found: dict[str, tuple[Pairs, tuple[int, ...], str]] = {}
    table: dict[str, Callable[[int, Any], Layers]] = dict(ops) if ops is not None else {}
    for s, stage in enumerate(genome.stages):
        where = f"stages[{s}]"
        if stage.cell not in genome.cells:
            raise GenotypeError(f"{where}.cell", f"{stage.cell!r} is a template; DARTS cells are explicit graphs")
        kind = "reduce" if stage.stride > 1 else "normal"
        cell = read_cell(genome.cells[stage.cell], f"cells.{stage.cell}", table, learn=ops is None)
        if kind in found and found[kind][:2] != cell:
            raise GenotypeError(where, f"{kind} cell {stage.cell!r} differs from {found[kind][2]!r}")
        found.setdefault(kind, (*cell, stage.cell))
    return {kind: (pairs, concat) for kind, (pairs, concat, _) in found.items()}, table


def read_cell(graph: nx.DiGraph, where: str, ops: OpTable | None = None, learn: bool = False
              ) -> tuple[Pairs, tuple[int, ...]]:
    """The (op, input) pairs and the concat of one cell graph written by `cell_graph` (ops named by `ops`,
    DARTS's by default; with `learn`, an unknown op chain is added to `ops`, a dict, under a new name)."""
    ops = OPS if ops is None else ops
    ports = input_nodes(graph)
    if not set(ports) <= set(PORTS) or list(ports) != sorted(ports, key=PORTS.index):
        raise GenotypeError(f"{where}.inputs", f"a DARTS cell has the inputs {list(PORTS)} (or one of them)")
    pre = [f"pre{PORTS.index(port)}" for port in ports]
    channels = graph.nodes[pre[-1]]["params"].get("out") if pre[-1] in graph else None
    if channels is None:
        raise GenotypeError(f"{where}.nodes", f"a DARTS cell preprocesses its inputs in nodes {pre}")
    states = {"pre0": 0, "pre1": 1}
    pairs: list[tuple[str, int]] = []
    step = 2
    while f"s{step}" in graph:
        for side in "ab":
            chain, k = [], 0
            while f"s{step}_{side}{k}" in graph:
                chain.append(f"s{step}_{side}{k}")
                k += 1
            if not chain:
                raise GenotypeError(f"{where}.nodes", f"state s{step} has no op chain s{step}_{side}0")
            (source,) = graph.predecessors(chain[0])
            if source not in states:
                raise GenotypeError(f"{where}.nodes.{chain[0]}", f"reads {source!r}, not an earlier state")
            written = [{"op": graph.nodes[n]["op"], **graph.nodes[n]["params"]} for n in chain]
            pairs.append((_op_name(written, channels, ops, learn, f"{where}.nodes.{chain[0]}"), states[source]))
        states[f"s{step}"] = step
        step += 1
    concat = tuple(states.get(s, -1) for s in graph.predecessors(OUTPUT))
    if -1 in concat:
        raise GenotypeError(f"{where}.nodes.{OUTPUT}", "the output must concatenate states s2, s3, ...")
    return tuple(pairs), concat


class _Chain:
    """An op found in a cell: its layers with the cell width as ``@out`` and a stride as ``@stride``."""

    def __init__(self, layers: Layers):
        self.layers = layers

    def __call__(self, channels: int, stride: Any) -> Layers:
        tokens = {"@out": channels, "@stride": stride}
        return [{k: tokens.get(v, v) if isinstance(v, str) else v for k, v in layer.items()} for layer in self.layers]


def _op_name(written: Layers, channels: int, ops: OpTable, learn: bool, where: str) -> str:
    for name, make in ops.items():
        for stride in (1, 2, "@stride"):
            if make(channels, stride) == written:
                return name
    if not learn:
        raise GenotypeError(where, f"not a DARTS op: {written}")
    generic = [{k: "@out" if k == "out" and v == channels else v for k, v in layer.items()} for layer in written]
    name = f"op{len(ops)}"
    ops[name] = _Chain(generic)  # type: ignore[index]
    return name
