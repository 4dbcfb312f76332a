"""LeNet-5's trainable subsampling layer (LeCun et al. 1998)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.ops.activations import activation
from nas.ops.registry import op


class TrainableSubsample(nn.Module):
    """Per map: the sum of each non-overlapping k x k window times a trainable coefficient, plus a trainable bias.

    Two parameters per map. The coefficient starts at 1 / k^2, so the layer starts as an average pool.
    """

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.kernel = kernel
        self.weight = nn.Parameter(torch.full((channels,), 1.0 / kernel**2))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        window_sum = F.avg_pool2d(x, self.kernel) * (self.kernel**2)
        return window_sum * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)


@op("subsample", kernel=2, act="tanh")
def subsample(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """LeNet-5's S2/S4 layers: sum of each `kernel` x `kernel` window, times a trainable coefficient plus a
    trainable bias per map, then the squashing function `act`."""
    layer = TrainableSubsample(c_in, p["kernel"])
    squash = activation(p["act"], inplace=False)
    return layer if squash is None else nn.Sequential(layer, squash)
