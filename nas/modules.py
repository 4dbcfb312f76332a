"""The runtime modules a genome compiles to: cells run their nodes in a fixed topological order."""
from __future__ import annotations

from typing import List, Optional

import torch
from torch import nn

ADD, CONCAT, MEAN, MULTIPLY = 0, 1, 2, 3
MERGE_CODES = {"add": ADD, "concat": CONCAT, "mean": MEAN, "multiply": MULTIPLY}


class DagCell(nn.Module):
    """Runs `ops[i]` on the merge of `sources[i]` for i = 0, 1, ...; value 0 is the cell's input.

    The last op's output is the cell's output. An add merge with `accumulate[i] >= 0` sums into that
    input in place (the compiler picks one only it reads and autograd does not keep). Mean merges may
    carry fractal drop-path:
    `drop_path[i]` drops each input with that probability in training (one always survives);
    when the network picks a global column (`global_column >= 0`), only inputs from that
    column are kept where any is present.
    """

    # the merge codes as class constants, so that TorchScript can read them
    __constants__ = ["ADD", "CONCAT", "MULTIPLY"]
    ADD, CONCAT, MULTIPLY = ADD, CONCAT, MULTIPLY

    def __init__(self, ops: List[nn.Module], sources: List[List[int]], merges: List[int],
                 drop_path: List[float], columns: List[List[int]], accumulate: Optional[List[int]] = None):
        super().__init__()
        self.ops = nn.ModuleList(ops)
        self.sources = sources
        self.merges = merges
        self.drop_path = drop_path
        self.columns = columns
        self.accumulate = accumulate if accumulate is not None else [-1] * len(ops)
        self.global_column = -1

    def _merge(self, i: int, inputs: List[torch.Tensor]) -> torch.Tensor:
        merge = self.merges[i]
        if merge == self.ADD:
            target = self.accumulate[i]
            if target >= 0:  # sum into an input no one else reads and autograd does not keep
                out = inputs[target]
                for j in range(len(inputs)):
                    if j != target:
                        out = out.add_(inputs[j])
                return out
            out = inputs[0]
            for x in inputs[1:]:
                out = out + x
            return out
        if merge == self.CONCAT:
            return torch.cat(inputs, 1)
        if merge == self.MULTIPLY:
            out = inputs[0]
            for x in inputs[1:]:
                out = out * x
            return out
        if self.training:
            inputs = self._drop_inputs(i, inputs)
        return torch.stack(inputs, 0).mean(0)

    def _drop_inputs(self, i: int, inputs: List[torch.Tensor]) -> List[torch.Tensor]:
        if self.global_column >= 0:
            columns = self.columns[i]
            kept: List[torch.Tensor] = []
            for j in range(len(inputs)):
                if columns[j] == self.global_column:
                    kept.append(inputs[j])
            return kept if len(kept) > 0 else inputs
        p = self.drop_path[i]
        if p <= 0.0:
            return inputs
        keep: List[bool] = (torch.rand(len(inputs)) >= p).tolist()
        if not any(keep):
            keep[int(torch.randint(len(inputs), (1,)).item())] = True
        survivors: List[torch.Tensor] = []
        for j in range(len(inputs)):
            if keep[j]:
                survivors.append(inputs[j])
        return survivors

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = [x]
        for i, op in enumerate(self.ops):
            sources = self.sources[i]
            if len(sources) == 1:
                merged = values[sources[0]]
            else:
                merged = self._merge(i, [values[j] for j in sources])
            values.append(op(merged))
        return values[-1]


class Network(nn.Module):
    """stem -> stages -> head -> classifier, as compiled from a genome."""

    def __init__(self, stem: nn.Module, stages: nn.Sequential, head: nn.Module, classifier: nn.Linear,
                 global_drop: float = 0.0, columns: int = 0):
        super().__init__()
        self.stem = stem
        self.stages = stages
        self.head = head
        self.classifier = classifier
        self.global_drop = global_drop  # probability that a training batch uses one global fractal column
        self.num_columns = columns

    def _fractal_cells(self) -> List[DagCell]:
        return [m for m in self.modules() if isinstance(m, DagCell)]

    @torch.jit.unused
    def _pick_global_column(self) -> None:
        column = -1
        if self.training and self.num_columns > 0 and float(torch.rand(())) < self.global_drop:
            column = int(torch.randint(self.num_columns, ()))
        for cell in self._fractal_cells():
            cell.global_column = column

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.stages(self.stem(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.global_drop > 0.0 and not torch.jit.is_scripting():
            self._pick_global_column()
        return self.classifier(self.features(x))
