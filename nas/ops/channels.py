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


class Slice(nn.Module):
    """Channels `start` to `stop` (exclusive) of the input."""

    def __init__(self, start: int, stop: int):
        super().__init__()
        self.start, self.stop = start, stop

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.start:self.stop]


@op("chunk", chunks=2, index=REQUIRED, sizes=None, types={"index": "int", "sizes": "list of ints or null"})
def chunk(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Channel split: the `index`-th of `chunks` equal channel parts (ShuffleNet V2 splits in two).

    With `sizes` (e.g. ``[48, 16]``, summing to the input's channels) the parts are uneven and
    `chunks` is not used: part `index` is that many channels, in order (dual-path networks)."""
    sizes, index = p["sizes"], p["index"]
    if sizes is not None:
        if (not isinstance(sizes, (list, tuple)) or not sizes
                or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes)):
            raise ValueError(f"sizes must be a list of channel counts >= 1, got {sizes!r}")
        if sum(sizes) != c_in:
            raise ValueError(f"sizes {list(sizes)} must add up to the input channels {c_in}")
        chunks = len(sizes)
    else:
        chunks = p["chunks"]
    if not isinstance(index, int) or isinstance(index, bool) or chunks < 1 or not 0 <= index < chunks:
        raise ValueError(f"index must be an integer in [0, {chunks}), got {index!r}")
    if sizes is not None:
        start = sum(sizes[:index])
        return Slice(start, start + sizes[index])
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
