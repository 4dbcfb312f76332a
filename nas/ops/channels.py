"""Channel split and channel shuffle (ShuffleNet, Zhang et al. 2018; ShuffleNet V2, Ma et al. 2018)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas.ops.registry import REQUIRED, op


class Chunk(nn.Module):
    """Part `index` of the input's channels cut into `chunks` equal parts (``torch.chunk`` along dim 1)."""

    def __init__(self, chunks: int, index: int):
        super().__init__()
        self.chunks = chunks
        self.index = index

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.chunk(self.chunks, 1)[self.index]


@op("chunk", chunks=2, index=REQUIRED)
def chunk(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Channel split: the `index`-th of `chunks` equal channel parts (ShuffleNet V2 splits in two)."""
    chunks, index = p["chunks"], p["index"]
    if not isinstance(index, int) or isinstance(index, bool) or chunks < 1 or not 0 <= index < chunks:
        raise ValueError(f"index must be an integer in [0, chunks={chunks}), got {index!r}")
    if c_in % chunks:
        raise ValueError(f"chunks={chunks} must divide the input channels {c_in}")
    return Chunk(chunks, index)


class ChannelShuffle(nn.Module):
    """Reorder channels as (groups, C / groups) -> (C / groups, groups): channel i of group g goes to i * groups + g."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        x = x.view(n, self.groups, c // self.groups, h, w).transpose(1, 2).contiguous()
        return x.view(n, c, h, w)


@op("channel_shuffle", groups=2)
def channel_shuffle(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Channel shuffle over `groups` groups, so that grouped or split branches exchange information."""
    if p["groups"] < 1 or c_in % p["groups"]:
        raise ValueError(f"groups={p['groups']} must be >= 1 and divide the input channels {c_in}")
    return ChannelShuffle(p["groups"])
