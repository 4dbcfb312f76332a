"""Convolutions: plain, grouped, dilated, depthwise, pointwise and separable, with norm and activation."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from nas.ops import same
from nas.ops.activations import activation, norm, sequence
from nas.ops.registry import REQUIRED, op

_NORM_ACT = {"norm": "bn", "act": "relu", "eps": 1e-5, "momentum": 0.1}


def _check_geometry(p: Mapping[str, Any]) -> None:
    """Kernel, stride and dilation of at least 1 and no negative padding (torch checks these only at run time)."""
    for key in ("kernel", "stride", "dilation"):
        if p[key] < 1:
            raise ValueError(f"{key} must be >= 1, got {p[key]}")
    if p["padding"] == same.SAME:
        return
    if p["padding"] is not None and (not isinstance(p["padding"], int) or p["padding"] < 0):
        raise ValueError(f"padding must be an integer >= 0 or 'same', got {p['padding']!r}")


def _padding(p: Mapping[str, Any]) -> tuple[int, nn.Module | None]:
    """The conv's padding (None: symmetric, keeping the size at stride 1), and a pad layer before it for
    TensorFlow's input-size-dependent ``"same"`` (see `nas.ops.same`)."""
    if p["padding"] is None:
        return p["dilation"] * (p["kernel"] - 1) // 2, None
    return same.resolve(p["padding"], p["kernel"], p["stride"], p["dilation"])


def _conv_block(c_in: int, c_out: int, p: Mapping[str, Any], groups: int) -> nn.Module:
    _check_geometry(p)
    padding, pad = _padding(p)
    conv = nn.Conv2d(
        c_in, c_out, p["kernel"], stride=p["stride"], padding=padding,
        dilation=p["dilation"], groups=groups, bias=p["bias"],
    )
    if p["preact"]:  # norm -> act -> conv, as in pre-activation ResNets and DenseNets
        # the activation may overwrite the norm's fresh output, never the op's own input
        in_place = p["norm"] != "none"
        return sequence(norm(p["norm"], c_in, p["eps"], p["momentum"]), activation(p["act"], inplace=in_place),
                        pad, conv)
    return sequence(pad, conv, norm(p["norm"], c_out, p["eps"], p["momentum"]), activation(p["act"]))


@op("conv", out=REQUIRED, kernel=3, stride=1, padding=None, dilation=1, groups=1, bias=False, preact=False, **_NORM_ACT)
def conv(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Convolution (grouped with `groups`, dilated with `dilation`), then norm and activation (or before, with `preact`)."""
    if c_in % p["groups"] or p["out"] % p["groups"]:
        raise ValueError(f"groups={p['groups']} must divide input channels {c_in} and output channels {p['out']}")
    return _conv_block(c_in, p["out"], p, p["groups"])


@op("dwconv", multiplier=1, kernel=3, stride=1, padding=None, dilation=1, bias=False, preact=False, **_NORM_ACT)
def dwconv(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Depthwise convolution: one filter per input channel (`multiplier` filters each)."""
    return _conv_block(c_in, c_in * p["multiplier"], p, c_in)


@op("pwconv", out=REQUIRED, bias=False, preact=False, **_NORM_ACT)
def pwconv(c_in: int, p: Mapping[str, Any]) -> nn.Module:
    """Pointwise (1x1) convolution, then norm and activation."""
    return _conv_block(c_in, p["out"], {**p, "kernel": 1, "stride": 1, "padding": 0, "dilation": 1}, 1)


@op("sepconv", out=REQUIRED, kernel=3, stride=1, padding=None, dilation=1, bias=False, mid_norm=False, preact=False, **_NORM_ACT)
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
    pointwise = nn.Conv2d(c_in, p["out"], 1, bias=p["bias"])
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
    return sequence(nn.Linear(c_in, p["out"], bias=p["bias"]), activation(p["act"]))
