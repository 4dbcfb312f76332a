"""Data augmentation on whole batches in memory: random crop with padding, horizontal flip, cutout.

    policy = Augmentation.parse("crop,flip", size=32)      # crop=4,flip
    x = policy(data.normalize(batch), generator)            # float N x C x H x W, same shape

A policy is written as ``none`` or a comma list of ``crop[=PAD]`` (pad every side by PAD pixels, then
cut a random window of the original size; default PAD: a side / 8, at least 1), ``flip`` (mirror left
to right with probability 1/2) and ``cutout[=SIDE]`` (zero a random SIDE x SIDE square, which may
reach over the border, DeVries & Taylor 2017; default SIDE: half a side). ``auto`` is the data set's
own default (`DatasetSplits.augment`): crop and flip for CIFAR (the standard recipe of the CIFAR
papers), flip only for Fashion-MNIST (a mirrored garment is the same garment; measured with a small
ResNet on 10,000 images for 15 epochs, flips gained 0.8 pp validation accuracy while crops of 2-3
pixels lost 1-3 pp: at search budgets the networks underfit), none for MNIST and the 8x8 digits (a
mirrored 2 or 5 is no longer one; crops as on Fashion-MNIST) and for the user's own data (whether a
flip keeps its labels is unknown). Longer final training may gain from ``--augment crop=2,flip``.

It works on normalised inputs, so padding and cutout fill with the channel mean (zero), every sample
of the batch at once with a few tensor operations (no per-image Python loop), and draws its random
numbers from the given generator (the trial's seeded batch-order generator, whose state checkpoints
keep): the same seed gives the same images, and a resumed trial continues exactly.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from nas.train.augment_policy import AUTO, KINDS, NONE, AugmentError, check_setting, parse_parts

__all__ = ["AUTO", "KINDS", "NONE", "AugmentError", "Augmentation", "check_setting", "parse_parts"]


@dataclass(frozen=True)
class Augmentation:
    """A resolved policy: crop padding (0: no crop), flip, cutout side (0: no cutout), in pixels."""

    crop: int = 0
    flip: bool = False
    cutout: int = 0

    @staticmethod
    def parse(text: str, size: int) -> "Augmentation":
        """A policy for images of side `size` (which sets the default crop padding and cutout side)."""
        parts = parse_parts(text)
        crop = (parts.get("crop") or max(1, size // 8)) if "crop" in parts else 0
        cutout = (parts.get("cutout") or max(1, size // 2)) if "cutout" in parts else 0
        return Augmentation(crop=crop, flip="flip" in parts, cutout=cutout)

    @staticmethod
    def resolve(setting: str, default: str, size: int) -> "Augmentation":
        """`setting` (a TrainSettings.augment) for a data set whose ``auto`` means `default`."""
        chosen = default if setting.strip().lower() == AUTO else setting
        return Augmentation.parse(chosen, size)

    @property
    def active(self) -> bool:
        return bool(self.crop or self.flip or self.cutout)

    def describe(self) -> str:
        """The explicit policy, e.g. ``crop=4,flip`` (what a run records); ``none`` when off."""
        parts = ([f"crop={self.crop}"] if self.crop else []) + (["flip"] if self.flip else []) + \
                ([f"cutout={self.cutout}"] if self.cutout else [])
        return ",".join(parts) or NONE

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augmented copy of the float batch `x` (N x C x H x W, any device); random numbers from `generator`."""
        if not self.active:
            return x
        n, _, h, w = x.shape
        if self.crop:
            x = _random_crop(x, self.crop, generator)
        if self.flip:
            mirror = (torch.rand(n, generator=generator) < 0.5).to(x.device)
            x = torch.where(mirror.view(n, 1, 1, 1), x.flip(3), x)
        if self.cutout:
            x = _cutout(x, self.cutout, generator)
        return x


def _random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Zero-pad by `pad` and cut each sample's window at its own random offset in 0..2*pad."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n, 1), generator=generator).to(x.device)
    rows = (dy + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(n, c, h, w + 2 * pad)
    x = padded.gather(2, rows)  # n, c, h, w + 2 pad
    cols = (dx + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(n, c, h, w)
    return x.gather(3, cols)


def _cutout(x: torch.Tensor, side: int, generator: torch.Generator) -> torch.Tensor:
    """Zero a side x side square per sample, centred anywhere in the image (clipped at the border)."""
    n, _, h, w = x.shape
    top = torch.randint(0, h, (n, 1), generator=generator).to(x.device) - side // 2
    left = torch.randint(0, w, (n, 1), generator=generator).to(x.device) - side // 2
    ys, xs = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    in_rows = (ys >= top) & (ys < top + side)  # n, h
    in_cols = (xs >= left) & (xs < left + side)  # n, w
    box = in_rows[:, :, None] & in_cols[:, None, :]
    return x.masked_fill(box[:, None], 0.0)
