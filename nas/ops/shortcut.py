"""Parameter-free shortcuts: He et al.'s (2016) option A, a strided subsample padded with zero channels."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.ops.registry import REQUIRED, op


class PadShortcut(nn.Module):
    """Keep every `stride`-th pixel, then append zero channels up to `channels`."""

    def __init__(self, c_in: int, channels: int, stride: int):
        super().__init__()
        if channels < c_in:
            raise ValueError(f"a zero-padding shortcut cannot shrink {c_in} channels to {channels}")
        if stride < 1:
            raise ValueError(f"stride must be >= 1, got {stride}")
        self.extra = channels - c_in
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra))
        return x


@op("pad_shortcut", out=REQUIRED, stride=1)
def pad_shortcut(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Identity shortcut for a change of shape with no parameters (ResNet option A): subsample by
    `stride`, then zero-pad the channels to `out` (the input's channels come first)."""
    return PadShortcut(c_in, p["out"], p["stride"])
