"""The mixed ops of a cell supernet's edges: every op of the space on one edge, weighted (DARTS) or one chosen.

An edge (block i reading state j) holds one module per op of the space, built by the op registry from
the space's own op chains, exactly as `nas.build` builds them in a genome. `MixedEdge` evaluates the
softmax-weighted sum of all of them (DARTS, Liu et al. 2019) or the one op of a path. `PartialEdge`
is PC-DARTS's partial-channel edge (Xu et al. 2020): only 1/K of the channels go through the ops, the
rest bypass the edge (max-pooled where the edge reduces), and the halves are shuffled back (groups K).
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
import torch.nn.functional as F

from nas import cellgraph
from nas.compiler import compile_cell
from nas.expand import infer_cell


def op_chain(layers: list[dict[str, Any]], shape: tuple[int, int, int], where: str) -> tuple[nn.Module, int]:
    """The module of an op chain (its layers as node dicts) on inputs of `shape`, as the compiler builds a
    chain cell, and its number of layers (layer k of a genome's op chain is `layer(module, k, count)`)."""
    plan = infer_cell(cellgraph.chain(layers, where), shape, where)
    return compile_cell(plan), len(layers)


def layer(module: nn.Module, k: int, count: int) -> nn.Module:
    """Layer `k` of an op chain compiled by `op_chain` (a chain of one layer is that layer's module)."""
    return module if count == 1 else module[k]


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    n, c, h, w = x.shape
    return x.view(n, groups, c // groups, h, w).transpose(1, 2).reshape(n, c, h, w)


class MixedEdge(nn.Module):
    """All ops of one edge: `forward(x, weights)` is the weighted sum, `forward(x, index=k)` op k alone."""

    def __init__(self, ops: Mapping[str, tuple[nn.Module, int]]):
        super().__init__()
        self.names = list(ops)
        self.ops = nn.ModuleList(module for module, _ in ops.values())
        self.layers = [count for _, count in ops.values()]

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None, index: int = -1) -> torch.Tensor:
        if weights is None:
            return self.ops[index](x)
        return sum(w * op(x) for w, op in zip(weights, self.ops))


class PartialEdge(MixedEdge):
    """PC-DARTS: the ops see channels [0, C/K) only; the rest skip the edge; a channel shuffle mixes them."""

    def __init__(self, ops: Mapping[str, tuple[nn.Module, int]], k: int, stride: int):
        super().__init__(ops)
        self.k = k
        self.stride = stride

    def forward(self, x: torch.Tensor, weights: torch.Tensor | None = None, index: int = -1) -> torch.Tensor:
        part = x.shape[1] // self.k
        head, rest = x[:, :part], x[:, part:]
        out = super().forward(head, weights, index)
        if self.stride > 1:
            rest = F.max_pool2d(rest, self.stride, self.stride, ceil_mode=True)
        return channel_shuffle(torch.cat([out, rest], 1), self.k)
