"""Activation and normalisation layers by name, shared by the ops that take `act=` / `norm=`."""
from __future__ import annotations

from collections.abc import Callable

from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "silu": lambda: nn.SiLU(inplace=True),
    "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid,
    "hardswish": lambda: nn.Hardswish(inplace=True),
    "hardsigmoid": lambda: nn.Hardsigmoid(inplace=True),
    "gelu": nn.GELU,
    "leaky_relu": lambda: nn.LeakyReLU(0.1, inplace=True),
}


def activation(name: str, inplace: bool = True) -> nn.Module | None:
    """The activation called `name`, or None for ``"none"``."""
    if name == "none":
        return None
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r} (known: none, {', '.join(sorted(ACTIVATIONS))})")
    layer = ACTIVATIONS[name]()
    if not inplace and hasattr(layer, "inplace"):
        layer.inplace = False
    return layer


def norm(name: str, channels: int, eps: float, momentum: float) -> nn.Module | None:
    """A normalisation layer over `channels`, or None for ``"none"``."""
    if name == "none":
        return None
    if name == "bn":
        return nn.BatchNorm2d(channels, eps=eps, momentum=momentum)
    raise ValueError(f"unknown norm {name!r} (known: bn, none)")


def sequence(*layers: nn.Module | None) -> nn.Module:
    """An nn.Sequential of the given layers, leaving out the Nones."""
    present = [layer for layer in layers if layer is not None]
    if len(present) == 1:
        return present[0]
    return nn.Sequential(*present)
