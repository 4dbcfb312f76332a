"""Parameter-free and normalisation ops: identity, zero, activation, batch norm, dropout, LRN, channel select."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas.ops.activations import activation
from nas.ops.registry import REQUIRED, op


@op("identity")
def identity(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Pass the input through unchanged."""
    return nn.Identity()


class Zero(nn.Module):
    """Zeros shaped like the (strided) input: the 'no connection' op of cell search spaces."""

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 1:
            return torch.zeros_like(x)
        return torch.zeros_like(x[:, :, :: self.stride, :: self.stride])


@op("zero", stride=1)
def zero(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Output zeros (with the spatial size divided by `stride`)."""
    return Zero(p["stride"])


@op("act", kind="relu")
def act(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """An activation function alone (`kind`: relu, relu6, silu, tanh, sigmoid, hardswish, gelu, ...)."""
    layer = activation(p["kind"], inplace=False)
    return nn.Identity() if layer is None else layer


@op("bn", eps=1e-5, momentum=0.1, act="none")
def bn(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Batch normalisation, optionally followed by an activation."""
    layer = nn.BatchNorm2d(c_in, eps=p["eps"], momentum=p["momentum"])
    post = activation(p["act"], inplace=True)
    return layer if post is None else nn.Sequential(layer, post)


@op("dropout", p=0.5)
def dropout(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Dropout with drop probability `p`."""
    return nn.Dropout(p["p"])


@op("lrn", size=5, alpha=1e-4, beta=0.75, k=2.0)
def lrn(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Local response normalisation across channels (AlexNet, VGG A-LRN)."""
    return nn.LocalResponseNorm(p["size"], p["alpha"], p["beta"], p["k"])


class SelectChannels(nn.Module):
    """Pick a fixed subset of input channels, in the given order."""

    def __init__(self, channels: list[int]):
        super().__init__()
        self.register_buffer("index", torch.tensor(channels, dtype=torch.long), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.index_select(1, self.index)


@op("select", channels=REQUIRED)
def select(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Select input channels by index (e.g. LeNet-5's partial C3 connection table)."""
    channels = list(p["channels"])
    bad = [c for c in channels if not isinstance(c, int) or not 0 <= c < c_in]
    if not channels or bad:
        raise ValueError(f"channels must be indices in [0, {c_in}), got {channels}")
    return SelectChannels(channels)
