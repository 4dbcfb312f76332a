"""Activation and normalisation layers by name, shared by the ops that take `act=` / `norm=`.

An activation is named by its kind, optionally with its one parameter after a colon:
``leaky_relu`` (negative slope 0.1), ``leaky_relu:0.01`` (timm's CSP networks), ``elu`` (alpha 1.0),
``elu:0.5``. Names are checked when a genome is validated (`check_activation`), not first at build time.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from nas.suggest import did_you_mean


@dataclass(frozen=True)
class ActivationKind:
    """How to make one kind of activation: `make(inplace, argument)`; `argument` names its one
    parameter (empty: it takes none) with `default` as its value when the name gives none."""

    make: Callable[[bool, float | None], nn.Module]
    argument: str = ""
    default: float | None = None


ACTIVATIONS: dict[str, ActivationKind] = {
    "relu": ActivationKind(lambda inplace, _: nn.ReLU(inplace=inplace)),
    "relu6": ActivationKind(lambda inplace, _: nn.ReLU6(inplace=inplace)),
    "silu": ActivationKind(lambda inplace, _: nn.SiLU(inplace=inplace)),
    "tanh": ActivationKind(lambda inplace, _: nn.Tanh()),
    "sigmoid": ActivationKind(lambda inplace, _: nn.Sigmoid()),
    "hardswish": ActivationKind(lambda inplace, _: nn.Hardswish(inplace=inplace)),
    "hardsigmoid": ActivationKind(lambda inplace, _: nn.Hardsigmoid(inplace=inplace)),
    "gelu": ActivationKind(lambda inplace, _: nn.GELU()),
    "mish": ActivationKind(lambda inplace, _: nn.Mish(inplace=inplace)),
    "selu": ActivationKind(lambda inplace, _: nn.SELU(inplace=inplace)),
    "leaky_relu": ActivationKind(lambda inplace, slope: nn.LeakyReLU(slope, inplace=inplace), "negative slope", 0.1),
    "elu": ActivationKind(lambda inplace, alpha: nn.ELU(alpha, inplace=inplace), "alpha", 1.0),
}


def activation_names() -> str:
    """The kinds, for help texts: ``relu, ..., leaky_relu[:slope], ...``."""
    return ", ".join(["none"] + [f"{name}[:{kind.argument.split()[-1]}]" if kind.argument else name
                                 for name, kind in ACTIVATIONS.items()])


def parse_activation(name: object) -> tuple[str, float | None]:
    """``"leaky_relu:0.01"`` -> ``("leaky_relu", 0.01)``; ``"relu"`` -> ``("relu", None)``; a ValueError
    naming what is wrong for anything else."""
    if not isinstance(name, str):
        raise ValueError(f"an activation is a name such as 'relu', got {name!r}")
    kind, colon, text = name.partition(":")
    if kind != "none" and kind not in ACTIVATIONS:
        raise ValueError(f"unknown activation {kind!r} (known: {activation_names()})"
                         + did_you_mean(kind, ["none", *ACTIVATIONS]))
    if not colon:
        return kind, None
    spec = ACTIVATIONS.get(kind)
    if spec is None or not spec.argument:
        raise ValueError(f"activation {kind!r} takes no parameter, got {name!r}")
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise ValueError(f"activation {name!r}: its {spec.argument} must be a finite number, got {text!r}")
    return kind, value


def check_activation(name: object) -> None:
    """Raise ValueError unless `name` is a known activation (with a valid parameter, if any)."""
    parse_activation(name)


def activation(name: str, inplace: bool = True) -> nn.Module | None:
    """The activation called `name` (e.g. ``relu``, ``leaky_relu:0.01``), or None for ``"none"``."""
    kind, value = parse_activation(name)
    if kind == "none":
        return None
    spec = ACTIVATIONS[kind]
    return spec.make(inplace, spec.default if value is None else value)


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
