"""`build(genome) -> nn.Module`: compile a genome's expansion into PyTorch modules."""
from __future__ import annotations

import networkx as nx
import torch
from torch import nn

from nas import cellgraph
from nas.expand import CellPlan, NetworkPlan, expand
from nas.genome import Genome
from nas.modules import MERGE_CODES, DagCell, Network
from nas.ops.registry import get_op


def compile_cell(plan: CellPlan) -> nn.Module:
    """A module for one concrete cell: an nn.Sequential for chains, a DagCell otherwise.

    A DagCell's values are its ports' inputs (in port order), then each node's output in topological order."""
    graph: nx.DiGraph = plan.graph
    ports = cellgraph.input_nodes(graph)
    order = [n for n in cellgraph.topological_order(graph) if n not in ports]
    ops = [get_op(graph.nodes[n]["op"]).build(graph.nodes[n]["in_shape"][0], graph.nodes[n]["params"]) for n in order]
    owned = {name: _owns_fresh_output(module) for name, module in zip(order, ops)}
    for name, module in zip(order, ops):
        if _reads_a_private_value(graph, name, owned):
            _compute_in_place(module)
    if cellgraph.is_chain(graph):
        return ops[0] if len(ops) == 1 else nn.Sequential(*ops)
    index = {**{port: k for k, port in enumerate(ports)}, **{name: i + len(ports) for i, name in enumerate(order)}}
    sources = [[index[s] for s in graph.predecessors(n)] for n in order]
    merges = [MERGE_CODES[graph.nodes[n]["merge"]] for n in order]
    drop_path = [float(graph.nodes[n]["drop_path"]) for n in order]
    columns = [[_column(graph, s) for s in graph.predecessors(n)] for n in order]
    accumulate = [_accumulator(graph, n, owned) for n in order]
    return DagCell(ops, sources, merges, drop_path, columns, accumulate, num_inputs=len(ports))


# Layers that return a new tensor (never their input, never a view) which their own backward does not
# need: a value they produce may be overwritten once nothing else reads it.
_FRESH_OUTPUT_LAYERS = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _owns_fresh_output(module: nn.Module) -> bool:
    while isinstance(module, nn.Sequential) and len(module) > 0:
        module = module[-1]
    return isinstance(module, _FRESH_OUTPUT_LAYERS)


def _accumulator(graph: nx.DiGraph, name: str, owned: dict[str, bool]) -> int:
    """For an add merge: the position (among the node's sources) of an input the sum may be accumulated
    into in place, -1 if none. It must be read by this node only and be a fresh output that autograd
    does not keep (the last BN of a residual branch), as in torchvision's ``out += identity``."""
    if graph.in_degree(name) < 2 or graph.nodes[name]["merge"] != "add":
        return -1
    for position, source in enumerate(graph.predecessors(name)):
        if not cellgraph.is_input(graph, source) and graph.out_degree(source) == 1 and owned[source]:
            return position
    return -1


def _reads_a_private_value(graph: nx.DiGraph, name: str, owned: dict[str, bool]) -> bool:
    """Whether the node's input is a tensor no other node sees and autograd does not keep: a merge's
    output (merges never keep it), or the fresh output of the node's only source when this node is its
    only reader (a BN output that a ReLU reads, as in torchvision and timm). Never a cell input."""
    sources = list(graph.predecessors(name))
    if len(sources) > 1:
        return True
    source = sources[0]
    return not cellgraph.is_input(graph, source) and graph.out_degree(source) == 1 and owned[source]


def _compute_in_place(module: nn.Module) -> None:
    """Let an op whose input is private (`_reads_a_private_value`) start by overwriting it, when its first
    layer can (an activation or dropout with `inplace`): a tensor's worth of memory traffic saved."""
    while isinstance(module, nn.Sequential) and len(module) > 0:
        module = module[0]
    if isinstance(getattr(module, "inplace", None), bool):
        module.inplace = True


def _column(graph: nx.DiGraph, name: str) -> int:
    column = graph.nodes[name].get("column")
    return -1 if column is None else column


def compile_plan(plan: NetworkPlan) -> Network:
    stages = nn.Sequential(*(nn.Sequential(*(compile_cell(c) for c in stage)) for stage in plan.stages))
    classifier = nn.Linear(plan.head.out_shape[0], plan.num_classes) if plan.classifier == "linear" else nn.Identity()
    nodes = [attrs for c in plan.cells() for _, attrs in c.graph.nodes(data=True)]
    global_drop = max((a.get("global_drop", 0.0) for a in nodes), default=0.0)
    columns = max((a["column"] + 1 for a in nodes if a.get("column") is not None), default=0)
    wiring = None if plan.is_chain() else [list(c.sources) for stage in plan.stages for c in stage]
    network = Network(compile_cell(plan.stem), stages, compile_cell(plan.head), classifier, global_drop, columns,
                      wiring)
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
