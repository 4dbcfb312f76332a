"""Ops of the NAS-era cells that no general op covers: DARTS's factorized 7x7 (a 1 x k then a k x 1 convolution)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
