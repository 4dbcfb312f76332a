"""Copy a reference model's weights into the genome-built equivalent, layer by layer in execution order."""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from nas.errors import NasError

# Attributes that must agree for two layers of the same kind to compute the same function.
_CONFIG = {
    nn.Conv2d: ("stride", "padding", "dilation", "groups"),
    nn.BatchNorm2d: ("eps",),
    nn.Linear: (),
    nn.LayerNorm: ("eps",),
}


class TransferError(NasError):
    """The reference and the built model do not line up layer for layer."""


def stateful_layers(model: nn.Module, example: torch.Tensor) -> list[tuple[str, nn.Module]]:
    """Modules holding parameters or persistent buffers of their own, in the order a forward pass first runs them.

    A module with weights of its own and children too (ConvNeXt's block and its layer scale) counts when
    its forward ends, after its children: such weights are applied to what the children computed.
    """
    names = {module: name for name, module in model.named_modules()}
    order: list[nn.Module] = []

    def record(module: nn.Module, *args: object) -> None:
        if module not in order:
            order.append(module)

    hooks = [m.register_forward_hook(record) if any(True for _ in m.children()) else m.register_forward_pre_hook(record)
             for m in model.modules() if _own_state(m)]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(example)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    unused = [names[m] for m in model.modules() if _own_state(m) and m not in order]
    if unused:
        raise TransferError(f"{type(model).__name__} has layers with weights that a forward pass never runs: {unused[:3]}")
    return [(names[m], m) for m in order]


def _own_state(module: nn.Module) -> dict[str, torch.Tensor]:
    state = {k: v for k, v in module._parameters.items() if v is not None}
    state.update((k, v) for k, v in module._buffers.items()
                 if v is not None and k not in module._non_persistent_buffers_set)
    return state


def _kind(module: nn.Module) -> type:
    for kind in _CONFIG:
        if isinstance(module, kind):
            return kind
    return type(module)


def _describe(name: str, module: nn.Module) -> str:
    shapes = {k: tuple(v.shape) for k, v in _own_state(module).items()}
    return f"{name} ({type(module).__name__}, {shapes})"


def transfer_weights(reference: nn.Module, built: nn.Module,
                     input_shape: Sequence[int] = (1, 3, 224, 224)) -> list[tuple[str, str]]:
    """Copy every weight of `reference` into `built`; both must run the same layers in the same order.

    Layers are paired in the order a forward pass on a tensor of `input_shape` runs them; each pair
    must be of the same kind, with the same configuration (stride, groups, eps, ...) and the same
    weight shapes, or a TransferError names the first pair that differs. Returns the pairs of names.
    """
    example = torch.zeros(tuple(input_shape))
    source = stateful_layers(reference, example)
    target = stateful_layers(built, example)
    for i, ((src_name, src), (dst_name, dst)) in enumerate(zip(source, target)):
        problem = _mismatch(src, dst)
        if problem:
            raise TransferError(f"layer {i}: reference {_describe(src_name, src)} does not match built "
                                f"{_describe(dst_name, dst)}: {problem}")
    if len(source) != len(target):
        longer, extra = ("reference", source) if len(source) > len(target) else ("built model", target)
        raise TransferError(f"the reference has {len(source)} layers with weights, the built model {len(target)}; "
                            f"first unmatched in the {longer}: {_describe(*extra[min(len(source), len(target))])}")
    with torch.no_grad():
        for (_, src), (_, dst) in zip(source, target):
            dst_state = _own_state(dst)
            for key, value in _own_state(src).items():
                dst_state[key].copy_(value)
    return [(src_name, dst_name) for (src_name, _), (dst_name, _) in zip(source, target)]


def _mismatch(src: nn.Module, dst: nn.Module) -> str:
    # Standard layers pair with their own kind only; other modules pair by their weights' names and shapes
    # (torchvision's CNBlock holds `layer_scale` itself, where a genome has a LayerScale op).
    if _kind(src) is not _kind(dst) and (_kind(src) in _CONFIG or _kind(dst) in _CONFIG):
        return f"layer kinds differ ({_kind(src).__name__} vs {_kind(dst).__name__})"
    src_state, dst_state = _own_state(src), _own_state(dst)
    if set(src_state) != set(dst_state):
        return f"weights differ: {sorted(src_state)} vs {sorted(dst_state)}"
    for key in src_state:
        if src_state[key].shape != dst_state[key].shape:
            return f"{key} shape {tuple(src_state[key].shape)} vs {tuple(dst_state[key].shape)}"
    for attr in _CONFIG.get(_kind(src), ()):
        if getattr(src, attr) != getattr(dst, attr):
            return f"{attr} {getattr(src, attr)} vs {getattr(dst, attr)}"
    return ""
