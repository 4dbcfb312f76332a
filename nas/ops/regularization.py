"""Stochastic regularisers: drop-path (stochastic depth)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from nas.ops.registry import op


class DropPath(nn.Module):
    """Zero whole samples with probability `p` in training and rescale the rest by 1 / (1 - p)."""

    def __init__(self, p: float):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = torch.empty((x.shape[0],) + (1,) * (x.dim() - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask.div_(keep)  # scale the per-sample mask, not the whole tensor


@op("drop_path", p=0.0)
def drop_path(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Drop-path / stochastic depth on a residual branch: drops whole samples with probability `p`."""
    return DropPath(p["p"])
