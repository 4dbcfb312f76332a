"""Ops of the NAS-era cells that no general op covers: NASNet's factorized reduce (the explicit alignment of
an older, larger input to a cell's resolution) and DARTS's factorized 7x7 (a 1 x k then a k x 1 convolution)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.ops.activations import activation, norm, sequence
from nas.ops.registry import REQUIRED, op


@op("conv_1xk_kx1", out=REQUIRED, kernel=7, stride=1, act="relu")
def conv_1xk_kx1(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Activation, a 1 x `kernel` convolution (striding the width), a `kernel` x 1 convolution (striding the
    height), BN: the ``conv_7x1_1x7`` op of the DARTS and AmoebaNet cells."""
    if p["kernel"] < 1 or p["stride"] < 1 or p["out"] < 1:
        raise ValueError(f"kernel, stride and out must be >= 1, got {p['kernel']}, {p['stride']}, {p['out']}")
    k, s, pad = p["kernel"], p["stride"], p["kernel"] // 2
    return sequence(activation(p["act"], inplace=False),
                    nn.Conv2d(c_in, p["out"], (1, k), stride=(1, s), padding=(0, pad), bias=False),
                    nn.Conv2d(p["out"], p["out"], (k, 1), stride=(s, 1), padding=(pad, 0), bias=False),
                    norm("bn", p["out"], 1e-5, 0.1))


class FactorizedReduce(nn.Module):
    """Activation, then two paths that keep every `stride`-th pixel, the second starting one pixel later (zero
    beyond the edge), each followed by a 1x1 convolution to half the channels; concatenated; BN."""

    def __init__(self, c_in: int, c_out: int, stride: int, act: str, eps: float, momentum: float):
        super().__init__()
        self.stride = stride
        self.act = activation(act, inplace=False)
        self.path_1 = nn.Conv2d(c_in, c_out // 2, 1, bias=False)
        self.path_2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, bias=False)
        self.norm = norm("bn", c_out, eps, momentum)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.act is not None:
            x = self.act(x)
        s = self.stride
        shifted = F.pad(x[:, :, 1:, 1:], (0, 1, 0, 1))
        return self.norm(torch.cat([self.path_1(x[:, :, ::s, ::s]), self.path_2(shifted[:, :, ::s, ::s])], 1))


@op("factorized_reduce", out=REQUIRED, stride=2, act="relu", eps=1e-5, momentum=0.1)
def factorized_reduce(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """NASNet's factorized reduction, as the NASNet-A and PNASNet cells align the older of their two inputs:
    activation, two 1x1 convolutions on the input subsampled by `stride` (the second shifted by one pixel),
    concatenated, BN. (DARTS's variant, with strided convolutions, is `skip_connect` with a stride.)"""
    if p["stride"] < 1 or p["out"] < 2:
        raise ValueError(f"stride must be >= 1 and out >= 2, got stride={p['stride']}, out={p['out']}")
    return FactorizedReduce(c_in, p["out"], p["stride"], p["act"], p["eps"], p["momentum"])
