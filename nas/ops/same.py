"""TensorFlow's "same" padding, a padding mode of the convolution and pooling ops (``padding: same``).

With stride 1 (and an odd dilated kernel) it is the usual symmetric padding. Otherwise it depends on the
input size: the output has ceil(size / stride) pixels, and the padding this needs goes half before, the
rest (one more when odd) after, as TensorFlow (and timm's NASNet-A, PNASNet and EfficientNet ports) do.
The pad is applied to the input as a separate layer, so the convolution or pool itself runs unpadded.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

SAME = "same"


def is_static(kernel: int, stride: int, dilation: int = 1) -> bool:
    """Whether "same" padding is the same for every input size (then it is plain symmetric padding)."""
    return stride == 1 and (dilation * (kernel - 1)) % 2 == 0


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """The (before, after) padding of one dimension of `size` pixels."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


class SamePad(nn.Module):
    """Pads its input so that a following `kernel` x `kernel` layer with `stride` keeps ceil(size / stride)."""

    def __init__(self, kernel: int, stride: int, dilation: int = 1, value: float = 0.0):
        super().__init__()
        self.kernel, self.stride, self.dilation, self.value = kernel, stride, dilation, value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = same_padding(x.shape[-2], self.kernel, self.stride, self.dilation)
        left, right = same_padding(x.shape[-1], self.kernel, self.stride, self.dilation)
        if top == bottom == left == right == 0:
            return x
        return F.pad(x, (left, right, top, bottom), value=self.value)

    def extra_repr(self) -> str:
        return f"kernel={self.kernel}, stride={self.stride}, dilation={self.dilation}"


def resolve(padding: Any, kernel: int, stride: int, dilation: int = 1, value: float = 0.0
            ) -> tuple[int, nn.Module | None]:
    """The padding a layer takes and the pad layer to put before it: (padding, None) unless `padding`
    is "same" and depends on the input size, then (0, SamePad)."""
    if padding != SAME:
        return padding, None
    if is_static(kernel, stride, dilation):
        return dilation * (kernel - 1) // 2, None
    return 0, SamePad(kernel, stride, dilation, value)
