"""Convolutions: plain, grouped, dilated, depthwise, pointwise and separable, with norm and activation."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from nas.ops.same import SAME, resolve as resolve_same
from nas.ops.activations import activation, norm, sequence
from nas.ops.registry import REQUIRED, op

_NORM_ACT = {"norm": "bn", "act": "relu", "eps": 1e-5, "momentum": 0.1}


GEOMETRY = ("kernel", "stride", "padding", "dilation")  # each an integer or [height, width]
PADDING = {"padding": "int, [height, width], 'same', or null: keep the size"}


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _check_geometry(p: Mapping[str, Any]) -> None:
    """Kernel, stride and dilation of at least 1 and no negative padding (torch checks these only at run time)."""
    for key in ("kernel", "stride", "dilation"):
        if min(_pair(p[key])) < 1:
            raise ValueError(f"{key} must be >= 1, got {p[key]}")
    if p["padding"] == SAME:
        if not all(isinstance(p[key], int) for key in ("kernel", "stride", "dilation")):
            raise ValueError("padding 'same' takes square kernels, strides and dilations (one integer each)")
        return
    if p["padding"] is not None and (isinstance(p["padding"], str) or min(_pair(p["padding"])) < 0):
        raise ValueError(f"padding must be an integer >= 0, [height, width] or 'same', got {p['padding']!r}")


def _padding(p: Mapping[str, Any]) -> tuple[int | tuple[int, int], nn.Module | None]:
    """The conv's padding and a pad layer to put before it. None: symmetric, keeping the size at stride 1 for
    odd kernels (dilation * (kernel - 1) // 2 per side); ``"same"``: TensorFlow's, which may depend on the
    input size (then a pad layer, see `nas.ops.same`)."""
    if p["padding"] is None:
        if isinstance(p["kernel"], int) and isinstance(p["dilation"], int):
            return p["dilation"] * (p["kernel"] - 1) // 2, None
        return tuple(d * (k - 1) // 2 for k, d in zip(_pair(p["kernel"]), _pair(p["dilation"]))), None
    return resolve_same(p["padding"], p["kernel"], p["stride"], p["dilation"])


def _channels(value: Any) -> int:
    """A layer's output width, checked: arithmetic in a genome can produce a float or zero."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"out must be an integer >= 1, got {value!r}")
    return value


def _conv_block(c_in: int, c_out: int, p: Mapping[str, Any], groups: int) -> nn.Module:
    _check_geometry(p)
    padding, pad = _padding(p)
    conv = nn.Conv2d(
        c_in, _channels(c_out), p["kernel"], stride=p["stride"], padding=padding,
        dilation=p["dilation"], groups=groups, bias=p["bias"],
    )
    if p["preact"]:  # norm -> act -> conv, as in pre-activation ResNets and DenseNets
        # the activation may overwrite the norm's fresh output, never the op's own input
        in_place = p["norm"] != "none"
        return sequence(norm(p["norm"], c_in, p["eps"], p["momentum"]), activation(p["act"], inplace=in_place),
                        pad, conv)
    return sequence(pad, conv, norm(p["norm"], c_out, p["eps"], p["momentum"]), activation(p["act"]))


@op("conv", pairs=GEOMETRY, types=PADDING, out=REQUIRED, kernel=3, stride=1, padding=None, dilation=1, groups=1, bias=False, preact=False, **_NORM_ACT)
def conv(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Convolution (grouped with `groups`, dilated with `dilation`), then norm and activation (or before, with `preact`)."""
    if c_in % p["groups"] or _channels(p["out"]) % p["groups"]:
        raise ValueError(f"groups={p['groups']} must divide input channels {c_in} and output channels {p['out']}")
    return _conv_block(c_in, p["out"], p, p["groups"])


@op("dwconv", pairs=GEOMETRY, types=PADDING, multiplier=1, kernel=3, stride=1, padding=None, dilation=1, bias=False, preact=False, **_NORM_ACT)
def dwconv(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Depthwise convolution: one filter per input channel (`multiplier` filters each)."""
    return _conv_block(c_in, c_in * p["multiplier"], p, c_in)


@op("pwconv", out=REQUIRED, bias=False, preact=False, **_NORM_ACT)
def pwconv(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Pointwise (1x1) convolution, then norm and activation."""
    return _conv_block(c_in, p["out"], {**p, "kernel": 1, "stride": 1, "padding": 0, "dilation": 1}, 1)


@op("sepconv", pairs=GEOMETRY, types=PADDING, out=REQUIRED, kernel=3, stride=1, padding=None, dilation=1, bias=False, mid_norm=False, preact=False, **_NORM_ACT)
def sepconv(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Depthwise-separable convolution: depthwise k x k then pointwise 1x1 (Xception / MobileNet style).

    `mid_norm` puts a norm (and the activation) after the depthwise part too;
    `preact` puts the activation before the whole op (Xception's ReLU -> SepConv -> BN).
    """
    _check_geometry(p)
    padding, pad = _padding(p)
    depthwise = nn.Conv2d(
        c_in, c_in, p["kernel"], stride=p["stride"], padding=padding,
        dilation=p["dilation"], groups=c_in, bias=p["bias"],
    )
    pointwise = nn.Conv2d(c_in, _channels(p["out"]), 1, bias=p["bias"])
    if p["preact"]:
        return sequence(activation(p["act"], inplace=False), pad, depthwise, pointwise,
                        norm(p["norm"], p["out"], p["eps"], p["momentum"]))
    middle = []
    if p["mid_norm"]:
        middle = [norm(p["norm"], c_in, p["eps"], p["momentum"]), activation(p["act"])]
    return sequence(pad, depthwise, *middle, pointwise, norm(p["norm"], p["out"], p["eps"], p["momentum"]),
                    activation(p["act"]))


@op("linear", out=REQUIRED, bias=True, act="none")
def linear(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Fully connected layer over flat features (put `flatten` or a global pool before it)."""
    return sequence(nn.Linear(c_in, _channels(p["out"]), bias=p["bias"]), activation(p["act"]))


class ChannelLinear(nn.Linear):
    """nn.Linear over the channels of each pixel of an (N, C, H, W) map (a 1x1 convolution stored as a linear layer)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            return F.linear(x, self.weight, self.bias)
        return F.linear(x.permute(0, 2, 3, 1), self.weight, self.bias).permute(0, 3, 1, 2)


@op("channel_linear", out=REQUIRED, bias=True, act="none")
def channel_linear(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """A linear layer applied to the channels at each position (ConvNeXt's pointwise MLP), then `act`."""
    return sequence(ChannelLinear(c_in, _channels(p["out"]), bias=p["bias"]), activation(p["act"]))
