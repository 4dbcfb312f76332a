"""Fitting a space's network to its input size: where the stem and the stages may reduce resolution.

Rules, shared by every space (and by the scaling strategy's base genome):
  - the stem reduces (a stride-2 3x3 conv, then stride-2 max pools) only while the input is larger
    than `stem_max_size` (32 by default), so 8x8 to 32x32 inputs enter the first stage at full size;
  - a stage reduces (stride 2) only when its input is at least `MIN_REDUCE_SIZE` (4) pixels high and
    wide, so feature maps never shrink below 2x2; a skipped reduction keeps the stage (and its width
    change) with stride 1.
For 8x8 digits with two reductions: 8 -> 4 -> 2. For 32x32 CIFAR: 32 -> 16 -> 8.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from nas.expand import infer_cell
from nas.genome import Genome, InputSpec

MIN_REDUCE_SIZE = 4


def reduced(size: int, stride: int) -> int:
    """Output size of a padded (``same``-style) op with `stride`: ceil(size / stride)."""
    return math.ceil(size / stride)


def stem_layers(out: int, size: int, max_size: int = 32, act: str = "relu") -> tuple[list[dict[str, Any]], int]:
    """A 3x3 conv stem to `out` channels that downsamples while the input exceeds `max_size`; returns (layers, size)."""
    stride = 2 if size > max_size else 1
    layers: list[dict[str, Any]] = [{"op": "conv", "out": out, "kernel": 3, "stride": stride, "act": act}]
    size = reduced(size, stride)
    while size > max_size:
        layers.append({"op": "maxpool", "kernel": 3, "stride": 2, "padding": 1})
        size = reduced(size, 2)
    return layers, size


def clip_strides(strides: Sequence[int], size: int) -> list[int]:
    """`strides` with every reduction that would start below MIN_REDUCE_SIZE pixels replaced by 1."""
    clipped = []
    for stride in strides:
        if stride > 1 and size >= MIN_REDUCE_SIZE:
            clipped.append(stride)
            size = reduced(size, stride)
        else:
            clipped.append(1)
    return clipped


def fit_genome(genome: Genome, channels: int | None = None, size: int | None = None,
               num_classes: int | None = None) -> Genome:
    """`genome` with its input and classes replaced and its stage strides clipped for the (new) input size.

    Strides inside the stem are kept; the stages' reductions follow `clip_strides` from the stem's output.
    """
    spec = genome.to_dict()
    spec["input"] = {"channels": channels or genome.input.channels, "size": size or list(genome.input.size)}
    spec["num_classes"] = num_classes or genome.num_classes
    in_shape = (spec["input"]["channels"], *InputSpec.from_dict(spec["input"]).size)
    stem_size = min(infer_cell(genome.stem, in_shape, "stem").out_shape[1:])
    strides = clip_strides([stage.stride for stage in genome.stages], stem_size)
    for stage, stride in zip(spec["stages"], strides):
        stage.pop("stride", None)
        if stride != 1:
            stage["stride"] = stride
    return Genome.from_dict(spec)
