"""Pooling ops: max, average, global and adaptive average, and flatten."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas.ops.registry import REQUIRED, op


@op("maxpool", pairs=("kernel", "stride", "padding"), kernel=REQUIRED, stride=None, padding=0, ceil_mode=False)
def maxpool(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Max pooling; `stride` defaults to `kernel`."""
    stride = p["kernel"] if p["stride"] is None else p["stride"]
    return nn.MaxPool2d(p["kernel"], stride, p["padding"], ceil_mode=p["ceil_mode"])


@op("avgpool", pairs=("kernel", "stride", "padding"), kernel=REQUIRED, stride=None, padding=0, ceil_mode=False, count_include_pad=True)
def avgpool(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Average pooling; `stride` defaults to `kernel`."""
    stride = p["kernel"] if p["stride"] is None else p["stride"]
    return nn.AvgPool2d(p["kernel"], stride, p["padding"], ceil_mode=p["ceil_mode"],
                        count_include_pad=p["count_include_pad"])


class GlobalAvgPool(nn.Module):
    """Mean over the spatial dimensions; flat (N, C) output when `flatten`."""

    def __init__(self, flatten: bool):
        super().__init__()
        self.flatten = flatten

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.flatten:
            return x.mean((2, 3))
        return x.mean((2, 3), keepdim=True)


@op("global_avgpool", flatten=True)
def global_avgpool(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Global average pooling over height and width."""
    return GlobalAvgPool(p["flatten"])


@op("adaptive_avgpool", size=REQUIRED)
def adaptive_avgpool(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Adaptive average pooling to a fixed `size` x `size` map (AlexNet, VGG)."""
    return nn.AdaptiveAvgPool2d(p["size"])


@op("flatten")
def flatten(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Flatten (N, C, H, W) to (N, C*H*W)."""
    return nn.Flatten(1)
