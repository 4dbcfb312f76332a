"""Squeeze-and-excitation (Hu et al. 2018), the channel attention of SE-ResNet, MobileNetV3 and MBConv."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas.ops.activations import activation
from nas.ops.registry import op


class SqueezeExcite(nn.Module):
    """x * gate(fc2(act(fc1(mean(x))))), the FCs as 1x1 convolutions with bias."""

    def __init__(self, channels: int, squeeze: int, act: str, gate: str):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.act = activation(act)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)
        self.gate = activation(gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc2(self.act(self.fc1(x.mean((2, 3), keepdim=True))))
        return x * self.gate(scale)


@op("se", ratio=0.25, squeeze=0, act="relu", gate="sigmoid")
def se(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Squeeze-and-excitation: `squeeze` hidden channels, or `ratio` * input channels when `squeeze` is 0."""
    squeeze = p["squeeze"] or max(1, int(c_in * p["ratio"]))
    return SqueezeExcite(c_in, squeeze, p["act"], p["gate"])
