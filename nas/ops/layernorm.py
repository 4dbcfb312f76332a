"""Layer normalisation over channels and layer scale, as ConvNeXt (Liu et al. 2022) uses them on NCHW maps."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.ops.registry import op


class ChannelLayerNorm(nn.LayerNorm):
    """LayerNorm over the channels of each pixel of an (N, C, H, W) map (or over flat (N, C) features)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


@op("layernorm", eps=1e-5, affine=True)
def layernorm(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Layer normalisation over the channels at each position (ConvNeXt's LayerNorm2d), with `eps`."""
    return ChannelLayerNorm(c_in, eps=p["eps"], elementwise_affine=p["affine"])


class LayerScale(nn.Module):
    """Multiply each channel by a learnable factor (`layer_scale`, shape (C, 1, 1)), started at `init`."""

    def __init__(self, channels: int, init: float):
        super().__init__()
        self.layer_scale = nn.Parameter(torch.full((channels, 1, 1), float(init)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_scale * x


@op("layer_scale", init=1e-6)
def layer_scale(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Layer scale (Touvron et al. 2021): a learnable per-channel factor, started at `init`, on (N, C, H, W) maps."""
    return LayerScale(c_in, p["init"])
