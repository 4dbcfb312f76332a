"""Cost of a genome (parameters, FLOPs) and its per-stage output shapes, from the code that builds it.

`summary(genome)` is exported as `nas.summarize(genome)` (a name apart from this module's).

A network's parameters and FLOPs are the sums of its ops' (merges have neither: torch.utils.flop_counter
counts matmuls and convolutions only) and its classifier's. `summary` counts each op alone, built and run
on the meta device, and caches the count by (op, params, input shape), as shape inference caches shapes
(nas.expand): a network repeats the same ops, and a search's candidates share most of theirs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nas import cellgraph
from nas.compiler import compile_plan
from nas.expand import NetworkPlan, Shape, expand
from nas.frozen import FrozenDict
from nas.genome import Genome
from nas.ops.registry import get_op


@dataclass(frozen=True)
class Summary:
    name: str
    params: int
    flops: int  # torch.utils.flop_counter's count: 2 FLOPs per multiply-add, batch of one
    input_shape: Shape
    output_shape: Shape  # (num_classes,)
    stage_shapes: list[tuple[str, Shape]] = field(default_factory=list)  # ("stem", (64, 56, 56)), ...

    @property
    def macs(self) -> int:
        """Multiply-adds (what torchvision's model tables count as "GFLOPS"): `flops` / 2, since
        torch.utils.flop_counter counts 2 FLOPs per multiply-add (it counts only matmuls and convolutions)."""
        return self.flops // 2

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "params": self.params,
            "flops": self.flops,
            "macs": self.macs,
            "input_shape": list(self.input_shape),
            "output_shape": list(self.output_shape),
            "stages": [{"name": n, "shape": list(s)} for n, s in self.stage_shapes],
        }


def count_flops(model: torch.nn.Module, example: torch.Tensor) -> int:
    """FLOPs of one forward pass of `model` on `example`, in eval mode, by torch.utils.flop_counter."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(example)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def meta_network(genome: Genome, num_classes: int | None = None, in_channels: int | None = None,
                 input_size: int | tuple[int, int] | None = None) -> tuple[NetworkPlan, torch.nn.Module]:
    """The genome's expansion and the network built from it on the meta device (shapes, no memory)."""
    plan = expand(genome, num_classes=num_classes, in_channels=in_channels, input_size=input_size)
    with torch.device("meta"):
        return plan, compile_plan(plan)


def count_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _cost(module: nn.Module, shape: Shape) -> tuple[int, int]:
    return count_params(module), count_flops(module, torch.empty((1, *shape), device="meta"))


@lru_cache(maxsize=8192)
def op_cost(op_name: str, params: FrozenDict, shape: Shape) -> tuple[int, int]:
    """Parameters and FLOPs (one sample, eval mode) of op `op_name` with `params` on input `shape`, built
    and run on the meta device. Cached: an op is a pure function of the three."""
    with torch.device("meta"):
        module = get_op(op_name).build(shape[0], params)
    return _cost(module, shape)


@lru_cache(maxsize=256)
def classifier_cost(features: int, num_classes: int) -> tuple[int, int]:
    """Parameters and FLOPs of the classifier `compile_plan` puts after the head."""
    with torch.device("meta"):
        module = nn.Linear(features, num_classes)
    return _cost(module, (features,))


def forget_costs() -> None:
    """Empty the per-op count caches (`op_cost`, `classifier_cost`), as in a fresh process."""
    op_cost.cache_clear()
    classifier_cost.cache_clear()


def plan_cost(plan: NetworkPlan) -> tuple[int, int]:
    """Parameters and FLOPs (one sample) of the network `compile_plan(plan)` builds: the sums of its ops'
    and its classifier's (tests/test_properties.py checks both against whole networks of every template)."""
    costs = [op_cost(attrs["op"], attrs["params"], attrs["in_shape"])
             for cell in plan.cells() for name, attrs in cell.graph.nodes(data=True)
             if not cellgraph.is_input(cell.graph, name)]
    if plan.classifier == "linear":
        costs.append(classifier_cost(plan.head.out_shape[0], plan.num_classes))
    return sum(params for params, _ in costs), sum(flops for _, flops in costs)


def summary(genome: Genome, num_classes: int | None = None, in_channels: int | None = None,
            input_size: int | tuple[int, int] | None = None) -> Summary:
    """Parameters, FLOPs (batch of one) and per-stage shapes, computed on the meta device (no memory)."""
    plan = expand(genome, num_classes=num_classes, in_channels=in_channels, input_size=input_size)
    params, flops = plan_cost(plan)
    shapes = [("stem", plan.stem.out_shape)]
    shapes += [(f"stage{i + 1}", stage[-1].out_shape) for i, stage in enumerate(plan.stages)]
    shapes.append(("head", plan.head.out_shape))
    return Summary(genome.name, params, flops, plan.input_shape, (plan.num_classes,), shapes)

