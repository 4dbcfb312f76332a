"""`build(genome) -> nn.Module`: compile a genome's expansion into PyTorch modules."""
from __future__ import annotations

import networkx as nx
import torch
from torch import nn

from nas import cell as cells
from nas.expand import CellPlan, NetworkPlan, expand
from nas.genome import Genome
from nas.modules import MERGE_CODES, DagCell, Network
from nas.ops.registry import get_op


def compile_cell(plan: CellPlan) -> nn.Module:
    """A module for one concrete cell: an nn.Sequential for chains, a DagCell otherwise."""
    graph: nx.DiGraph = plan.graph
    order = [n for n in cells.topological_order(graph) if n != cells.INPUT]
    ops = [get_op(graph.nodes[n]["op"]).build(graph.nodes[n]["in_shape"][0], graph.nodes[n]["params"]) for n in order]
    if cells.is_chain(graph):
        return ops[0] if len(ops) == 1 else nn.Sequential(*ops)
    for name, module in zip(order, ops):
        if graph.in_degree(name) > 1:
            _compute_in_place(module)
    index = {cells.INPUT: 0, **{name: i + 1 for i, name in enumerate(order)}}
    sources = [[index[s] for s in graph.predecessors(n)] for n in order]
    merges = [MERGE_CODES[graph.nodes[n]["merge"]] for n in order]
    drop_path = [float(graph.nodes[n]["drop_path"]) for n in order]
    columns = [[_column(graph, s) for s in graph.predecessors(n)] for n in order]
    return DagCell(ops, sources, merges, drop_path, columns)


def _compute_in_place(module: nn.Module) -> None:
    """Let an op that reads a merged value (a fresh tensor no other node sees) overwrite it, when it can.

    Merges never keep their output for the backward pass, so an in-place op after one (ReLU after a
    residual add, as in torchvision) is safe and saves a tensor's worth of memory traffic.
    """
    if isinstance(getattr(module, "inplace", None), bool):
        module.inplace = True


def _column(graph: nx.DiGraph, name: str) -> int:
    column = graph.nodes[name].get("column")
    return -1 if column is None else column


def compile_plan(plan: NetworkPlan) -> Network:
    stages = nn.Sequential(*(nn.Sequential(*(compile_cell(c) for c in stage)) for stage in plan.stages))
    classifier = nn.Linear(plan.head.out_shape[0], plan.num_classes)
    nodes = [attrs for c in plan.cells() for _, attrs in c.graph.nodes(data=True)]
    global_drop = max((a.get("global_drop", 0.0) for a in nodes), default=0.0)
    columns = max((a["column"] + 1 for a in nodes if a.get("column") is not None), default=0)
    network = Network(compile_cell(plan.stem), stages, compile_cell(plan.head), classifier, global_drop, columns)
    _initialise(network)
    return network


def _initialise(network: nn.Module) -> None:
    """He initialisation for convolutions, unit BN, small normal weights for linear layers."""
    for module in network.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0.0, 0.01)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


def build(genome: Genome, num_classes: int | None = None, in_channels: int | None = None,
          input_size: int | tuple[int, int] | None = None, device: str | torch.device | None = None) -> Network:
    """Compile `genome` into a fresh `nn.Module`. Pure: the genome is not changed, no global state is read.

    `num_classes` and `in_channels` override the genome's; `input_size` only matters for
    genomes whose layers depend on it (e.g. a flatten before a linear layer).
    """
    plan = expand(genome, num_classes=num_classes, in_channels=in_channels, input_size=input_size)
    if device is not None:
        with torch.device(device):
            return compile_plan(plan)
    return compile_plan(plan)
