"""Cost of a genome (parameters, FLOPs) and its per-stage output shapes, from the code that builds it.

`summary(genome)` is exported as `nas.summarize(genome)` (a name apart from this module's)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode

from nas.compiler import compile_plan
from nas.expand import NetworkPlan, Shape, expand
from nas.genome import Genome


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


def summary(genome: Genome, num_classes: int | None = None, in_channels: int | None = None,
            input_size: int | tuple[int, int] | None = None) -> Summary:
    """Parameters, FLOPs (batch of one) and per-stage shapes, computed on the meta device (no memory)."""
    plan, model = meta_network(genome, num_classes, in_channels, input_size)
    flops = count_flops(model, torch.empty((1, *plan.input_shape), device="meta"))
    params = count_params(model)
    shapes = [("stem", plan.stem.out_shape)]
    shapes += [(f"stage{i + 1}", stage[-1].out_shape) for i, stage in enumerate(plan.stages)]
    shapes.append(("head", plan.head.out_shape))
    return Summary(genome.name, params, flops, plan.input_shape, (plan.num_classes,), shapes)

