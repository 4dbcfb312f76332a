"""Ops of cell search spaces (NASNet, DARTS): the skip connection that also works where a cell reduces."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.ops.activations import activation, norm, sequence
from nas.ops.registry import REQUIRED, op


class FactorizedReduce(nn.Module):
    """ReLU, then two strided 1x1 convolutions, the second on the input shifted by one pixel, concatenated; BN.

    The shifted input is zero-padded back to full size, so odd sizes give the same output size as a
    padded 3x3 convolution with the same stride (ceil(size / stride)).
    """

    def __init__(self, c_in: int, c_out: int, stride: int, act: str):
        super().__init__()
        half = c_out // 2
        self.act = activation(act, inplace=False)
        self.even = nn.Conv2d(c_in, half, 1, stride=stride, bias=False)
        self.odd = nn.Conv2d(c_in, c_out - half, 1, stride=stride, bias=False)
        self.norm = norm("bn", c_out, 1e-5, 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act is not None:
            x = self.act(x)
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.norm(torch.cat([self.even(x), self.odd(shifted)], 1))


@op("skip_connect", out=REQUIRED, stride=1, act="relu")
def skip_connect(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """The skip op of cell search spaces: the identity where shape is kept, else a factorized reduce.

    With `stride` 1 and `out` equal to the input channels it is the identity; with `stride` 1 and other
    channels a ReLU-1x1 conv-BN projection; with a larger `stride` NASNet's factorized reduction.
    """
    if p["stride"] < 1 or p["out"] < 1:
        raise ValueError(f"stride and out must be >= 1, got stride={p['stride']}, out={p['out']}")
    if p["stride"] == 1 and p["out"] == c_in:
        return nn.Identity()
    if p["stride"] == 1:  # channels change only: ReLU, 1x1 conv, BN
        return sequence(activation(p["act"], inplace=False), nn.Conv2d(c_in, p["out"], 1, bias=False),
                        norm("bn", p["out"], 1e-5, 0.1))
    if p["out"] < 2:
        raise ValueError(f"a factorized reduce needs out >= 2, got {p['out']}")
    return FactorizedReduce(c_in, p["out"], p["stride"], p["act"])
