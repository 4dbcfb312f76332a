"""DARTS's architecture parameters over a cell supernet, and what a derived cell is made of.

`Architecture` holds, per cell kind, alpha: one logit per (edge, op), and for PC-DARTS's edge
normalisation beta: one logit per input of each block. `derive` reads the cell off them as DARTS
does: per block, the two inputs whose strongest op weighs most, each with that op (a zero op, if the
space lists one, never chosen). `cell_counts` says what a path's cells hold: parameter-free ops (the
sign of DARTS's collapse) and skip connections.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas.oneshot.supernet import CellSupernet, state_name


class Architecture(nn.Module):
    def __init__(self, supernet: CellSupernet, generator: torch.Generator | None = None, edge_norm: bool = False):
        super().__init__()
        first = supernet.cells[0]
        self.blocks, self.op_names = first.blocks, list(first.op_names)
        self.edge_index = dict(first.edge_index)
        self.kinds = list(supernet.kinds)
        shape = (len(first.edges), len(self.op_names))
        self.alphas = nn.ParameterDict({k: nn.Parameter(1e-3 * torch.randn(shape, generator=generator))
                                        for k in self.kinds})
        self.edge_norm = edge_norm
        self.betas = nn.ParameterDict({f"{k}_{i}": nn.Parameter(1e-3 * torch.randn(2 + i, generator=generator))
                                       for k in self.kinds for i in range(self.blocks)} if edge_norm else {})
        self.excluded = [i for i, name in enumerate(self.op_names) if _is_zero(supernet, i)]

    def weights(self) -> dict[str, torch.Tensor]:
        return {k: torch.softmax(a, dim=-1) for k, a in self.alphas.items()}

    def edge_weights(self) -> dict[str, list[torch.Tensor]] | None:
        if not self.edge_norm:
            return None
        return {k: [torch.softmax(self.betas[f"{k}_{i}"], dim=-1) for i in range(self.blocks)] for k in self.kinds}

    @torch.no_grad()
    def derive(self) -> dict[str, Any]:
        """The path DARTS derives: per block, the two strongest inputs, each with its strongest op."""
        path: dict[str, Any] = {}
        weights = self.weights()
        edge_weights = self.edge_weights()
        for kind in self.kinds:
            w = weights[kind].clone()
            if self.excluded and len(self.excluded) < w.shape[1]:
                w[:, self.excluded] = -1.0
            for i in range(self.blocks):
                scored = []
                for j in range(2 + i):
                    row = w[self.edge_index[(i, j)]]
                    strength = float(row.max()) * (float(edge_weights[kind][i][j]) if edge_weights else 1.0)
                    scored.append((-strength, j, int(row.argmax())))
                scored.sort()
                for side, (_, j, op) in zip("ab", scored[:2]):
                    path[f"{kind}.b{i}.input_{side}"] = state_name(j)
                    path[f"{kind}.b{i}.op_{side}"] = self.op_names[op]
        return path


def _is_zero(supernet: CellSupernet, index: int) -> bool:
    """Whether op `index` of the space is a zero op (DARTS's 'none'), which a derived cell never holds."""
    module = supernet.cells[0].edges[0].ops[index]
    return type(module).__name__ == "Zero"


def op_kinds(supernet: CellSupernet) -> dict[str, tuple[bool, bool]]:
    """Per op of the space: (parameter-free, a skip connection: the identity), judged from its module on an
    edge of a normal cell (stride 1; the network's first cells are normal cells)."""
    cell = next(c for c in supernet.cells if c.kind == "normal")
    edge = cell.edges[0]
    return {name: (not any(True for _ in edge.ops[k].parameters()), isinstance(edge.ops[k], nn.Identity))
            for k, name in enumerate(cell.op_names)}


def cell_counts(path: Mapping[str, Any], kinds: Mapping[str, tuple[bool, bool]], cell_kinds, blocks: int
                ) -> dict[str, int]:
    """Parameter-free ops and skip connections per cell kind of `path` (``param_free_normal``, ``skips_normal``,
    ``param_free_reduce``, ``skips_reduce``)."""
    counts = {}
    for kind in cell_kinds:
        ops = [path[f"{kind}.b{i}.op_{side}"] for i in range(blocks) for side in "ab"]
        counts[f"param_free_{kind}"] = sum(kinds[op][0] for op in ops)
        counts[f"skips_{kind}"] = sum(kinds[op][1] for op in ops)
    return counts
