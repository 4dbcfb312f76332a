"""Parameter-free and normalisation ops: identity, zero, activation, batch norm, dropout, LRN, channel select."""
from __future__ import annotations

import math

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


@op("act", activations=("kind",), kind="relu")
def act(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """An activation function alone. `kind` (also the `act` parameter of other ops): none, relu, relu6, silu,
    tanh, sigmoid, hardswish, hardsigmoid, gelu, mish, selu, leaky_relu, elu.

    Two kinds take a parameter after a colon: ``leaky_relu:SLOPE`` (negative slope; plain ``leaky_relu``
    is 0.1, timm's CSP networks use ``leaky_relu:0.01``) and ``elu:ALPHA`` (plain ``elu`` is 1.0)."""
    layer = activation(p["kind"], inplace=False)
    return nn.Identity() if layer is None else layer


@op("bn", eps=1e-5, momentum=0.1, act="none")
def bn(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Batch normalisation, optionally followed by an activation."""
    layer = nn.BatchNorm2d(c_in, eps=p["eps"], momentum=p["momentum"])
    post = activation(p["act"], inplace=True)
    return layer if post is None else nn.Sequential(layer, post)


class Scale(nn.Module):
    """Multiply by a constant."""

    def __init__(self, factor: float):
        super().__init__()
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.factor

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


@op("scale", factor=REQUIRED, types={"factor": "float"})
def scale(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Multiply the input by a constant `factor` (no parameters): Inception-ResNet scales its residual
    branches by 0.17, 0.1 and 0.2 before the addition."""
    factor = p["factor"]
    if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor):
        raise ValueError(f"factor must be a finite number, got {factor!r}")
    return Scale(float(factor))


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


def channel_range(text: str, c_in: int) -> list[int]:
    """``"START:STOP"`` (Python's slice: STOP left out, the last channel; negative, counted from the end)
    as the channel indices it selects from `c_in` channels."""
    parts = text.split(":")
    try:
        if len(parts) != 2:
            raise ValueError
        start, stop = (int(part) if part.strip() else None for part in parts)
    except ValueError:
        raise ValueError(f"channels must be a list of indices or a range 'START:STOP', got {text!r}") from None
    return list(range(c_in))[slice(start, stop)]


@op("select", channels=REQUIRED, types={"channels": "list of ints, or 'START:STOP'"})
def select(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Select input channels by index (e.g. LeNet-5's partial C3 connection table), or a range of them.

    `channels` is a list of indices (any order, repeats allowed) or a range ``"START:STOP"`` as Python
    slices it: ``"0:64"`` the first 64, ``"64:"`` the rest, ``"-32:"`` the last 32 (dual-path networks
    split their outputs this way)."""
    channels = channel_range(p["channels"], c_in) if isinstance(p["channels"], str) else list(p["channels"])
    bad = [c for c in channels if not isinstance(c, int) or not 0 <= c < c_in]
    if not channels or bad:
        raise ValueError(f"channels must be indices in [0, {c_in}), got {channels}")
    return SelectChannels(channels)
