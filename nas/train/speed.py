"""Speed defaults of the training loop, chosen by measurement (benchmarks/train_speed.py, docs/training-speed.md).

- channels-last memory format: on GPUs (tensor-core convolutions want NHWC) and on CPUs too, where
  oneDNN's convolutions, depthwise ones above all, run 2-2.5x faster on small networks in NHWC;
- precision: fp32 on CPUs (bf16 autocast was slower there, see `nas.train.loop.Precision.choose`).
"""
from __future__ import annotations

import torch

CHANNELS_LAST = {"cuda": True, "cpu": True}  # device type -> default when the setting is None


def resolve_channels_last(setting: bool | None, device: torch.device) -> bool:
    """The channels-last setting to use: `setting` when given, else the measured default for `device`'s type."""
    if setting is not None:
        return bool(setting)
    return CHANNELS_LAST.get(device.type, False)
