"""The runtime modules a genome compiles to: cells run their nodes in a fixed topological order."""

from typing import List, Optional

import torch
from torch import nn

ADD, CONCAT, MEAN, MULTIPLY = 0, 1, 2, 3
MERGE_CODES = {"add": ADD, "concat": CONCAT, "mean": MEAN, "multiply": MULTIPLY}


class DagCell(nn.Module):
    """Runs `ops[i]` on the merge of `sources[i]` for i = 0, 1, ...; values 0 .. num_inputs - 1 are the
    cell's inputs (one tensor for `forward`, one per port for `forward_ports`), op i writes value num_inputs + i.

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
                 drop_path: List[float], columns: List[List[int]], accumulate: Optional[List[int]] = None,
                 num_inputs: int = 1):
        super().__init__()
        self.num_inputs = num_inputs
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
        return self.forward_ports([x])

    def forward_ports(self, inputs: List[torch.Tensor]) -> torch.Tensor:
        """The cell's output from its ports' inputs, in port order."""
        values = list(inputs)
        for i, op in enumerate(self.ops):
            sources = self.sources[i]
            if len(sources) == 1:
                merged = values[sources[0]]
            else:
                merged = self._merge(i, [values[j] for j in sources])
            values.append(op(merged))
        return values[-1]


class Network(nn.Module):
    """stem -> stages -> head -> classifier, as compiled from a genome.

    A chain (every cell reads the previous one) runs its stages as one nn.Sequential. Otherwise
    `wiring[k]` lists the cell outputs (0: the stem's, k: stage cell k - 1's) that stage cell k reads,
    one per port; the forward pass keeps an output only until the last cell that reads it has run.
    (TorchScript runs chains only: a scripted wired network raises when called.)
    """

    wiring: List[List[int]]
    release: List[List[int]]

    def __init__(self, stem: nn.Module, stages: nn.Sequential, head: nn.Module, classifier: nn.Linear,
                 global_drop: float = 0.0, columns: int = 0, wiring: Optional[List[List[int]]] = None):
        super().__init__()
        self.stem = stem
        self.stages = stages
        self.head = head
        self.classifier = classifier
        self.global_drop = global_drop  # probability that a training batch uses one global fractal column
        self.num_columns = columns
        self.wiring = wiring if wiring is not None else []
        self.release = _release_after(self.wiring)

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
        if len(self.wiring) > 0:
            return self.head(self._wired(self.stem(x)))
        return self.head(self.stages(self.stem(x)))

    @torch.jit.unused
    def _wired(self, stem):  # unannotated: TorchScript reads the stub of an unused method as Tensor -> Tensor
        """The last cell's output, running each cell on the outputs its ports read (see `wiring`)."""
        outputs: List[Optional[torch.Tensor]] = [stem]
        k = 0
        for stage in self.stages:
            for cell in stage:
                inputs = [outputs[j] for j in self.wiring[k]]
                outputs.append(cell.forward_ports(inputs) if len(inputs) > 1 else cell(inputs[0]))
                for j in self.release[k]:
                    outputs[j] = None
                k += 1
        return outputs[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.global_drop > 0.0 and not torch.jit.is_scripting():
            self._pick_global_column()
        return self.classifier(self.features(x))


def _release_after(wiring: List[List[int]]) -> List[List[int]]:
    """For each cell k, the outputs to drop once it has run: those no later cell reads. Output j is the
    stem's (j = 0) or cell j - 1's; one that nobody reads goes as soon as it is made; the last feeds the head."""
    last_reader = {}
    for k, sources in enumerate(wiring):
        for j in sources:
            last_reader[j] = k
    release: List[List[int]] = [[] for _ in wiring]
    for j in range(len(wiring)):
        release[last_reader.get(j, j - 1)].append(j)
    return release
