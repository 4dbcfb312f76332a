"""Pooling ops: max, average, global and adaptive average, and flatten."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas.ops.same import SAME, resolve as resolve_same
from nas.ops.activations import sequence
from nas.ops.registry import REQUIRED, op


def _window(p: Mapping[str, Any], value: float) -> tuple[int, int, nn.Module | None]:
    """Stride (default: the kernel), padding (None: 0) and a pad layer for ``padding: same`` (see `nas.ops.same`)."""
    stride = p["kernel"] if p["stride"] is None else p["stride"]
    padding = 0 if p["padding"] is None else p["padding"]
    if padding == SAME:
        if not (isinstance(p["kernel"], int) and isinstance(stride, int)):
            raise ValueError("padding 'same' takes a square kernel and stride (one integer each)")
    elif isinstance(padding, str) or min((padding, padding) if isinstance(padding, int) else padding) < 0:
        raise ValueError(f"padding must be an integer >= 0, [height, width] or 'same', got {padding!r}")
    padding, pad = resolve_same(padding, p["kernel"], stride, value=value)
    return stride, padding, pad


@op("maxpool", pairs=("kernel", "stride", "padding"), kernel=REQUIRED, stride=None, padding=None, ceil_mode=False)
def maxpool(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Max pooling; `stride` defaults to `kernel`, `padding` to 0 (``same``: TensorFlow's, see `nas.ops.same`)."""
    stride, padding, pad = _window(p, float("-inf"))
    return sequence(pad, nn.MaxPool2d(p["kernel"], stride, padding, ceil_mode=p["ceil_mode"]))


@op("avgpool", pairs=("kernel", "stride", "padding"), kernel=REQUIRED, stride=None, padding=None, ceil_mode=False, count_include_pad=True)
def avgpool(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Average pooling; `stride` defaults to `kernel`, `padding` to 0. With ``padding: same`` where it depends
    on the input size, the padded zeros count in the average whatever `count_include_pad` says (as timm does)."""
    stride, padding, pad = _window(p, 0.0)
    return sequence(pad, nn.AvgPool2d(p["kernel"], stride, padding, ceil_mode=p["ceil_mode"],
                                      count_include_pad=p["count_include_pad"]))


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
