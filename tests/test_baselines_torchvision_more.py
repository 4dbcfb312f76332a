"""The baselines that needed the format's later additions (non-square kernels, layer norm and layer scale, a head
without the implied classifier, arithmetic and first-cell params, Fused-MBConv, MobileNetV3's SE, channel split
and shuffle, RegNet's grouped bottleneck): exact parameter counts against torchvision 0.29.1, and equal logits
after `transfer_weights`."""
import pytest
import torch
import torchvision
from torch import nn

import nas
from nas import baselines
from nas.summary import count_params
from tests.test_baselines_torchvision import untrained

# Parameter counts of torchvision 0.29.1 at 1000 classes (inception_v3 without its auxiliary classifier).
TORCHVISION = {
    "inception_v3": 23_834_568, "convnext_tiny": 28_589_128, "squeezenet1_0": 1_248_424,
    "efficientnet_v2_m": 54_139_356, "mobilenet_v3_large": 5_483_032, "shufflenet_v2_x0_5": 1_366_792,
    "regnet_x_400mf": 5_495_976, "regnet_y_400mf": 4_344_144, "mnasnet0_5": 2_218_512,
    "wide_resnet101_2": 126_886_696,
}
OPTIONS = {"inception_v3": {"aux_logits": False, "transform_input": False, "init_weights": True}}
# RegNet computes its widths with tensors at construction, which the meta device cannot hold.
NOT_ON_META = ("regnet_x_400mf", "regnet_y_400mf")


def torchvision_model(name: str) -> nn.Module:
    return getattr(torchvision.models, name)(**OPTIONS.get(name, {}))


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_parameter_count_equals_torchvision(name):
    if name in NOT_ON_META:
        reference = torchvision_model(name)
    else:
        with torch.device("meta"):
            reference = torchvision_model(name)
    assert nas.summarize(baselines.get(name)).params == count_params(reference) == TORCHVISION[name]


def randomise(model: nn.Module, generator: torch.Generator) -> None:
    """Non-trivial statistics and affine weights for every batch and layer norm, and layer scales near 1 (they start
    at 1e-6, which would hide a wrong block behind the residual path), so any mispairing shows in the logits."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                channels = module.num_features
                module.running_mean.copy_(torch.randn(channels, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)
            if isinstance(module, (nn.BatchNorm2d, nn.LayerNorm)):
                module.weight.copy_(torch.rand(module.weight.shape, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(module.bias.shape, generator=generator) * 0.1)
            scale = getattr(module, "layer_scale", None)
            if isinstance(scale, nn.Parameter):
                scale.copy_(torch.rand(scale.shape, generator=generator) + 0.5)


# Input sizes: small where the network allows (inception_v3 needs 75), to keep each check to a few seconds.
@pytest.mark.parametrize("name, size", [
    ("mobilenet_v3_large", 64), ("squeezenet1_0", 64), ("shufflenet_v2_x0_5", 64), ("mnasnet0_5", 64),
    ("regnet_x_400mf", 64), ("regnet_y_400mf", 64), ("wide_resnet101_2", 64), ("inception_v3", 75),
    ("convnext_tiny", 64), ("efficientnet_v2_m", 64),
])
def test_transferred_weights_give_the_same_logits(name, size):
    generator = torch.Generator().manual_seed(0)
    reference = torchvision_model(name).eval()
    randomise(reference, generator)
    ours = untrained(baselines.get(name)).eval()
    nas.transfer_weights(reference, ours, input_shape=(1, 3, size, size))
    x = torch.randn(1, 3, size, size, generator=generator)
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert got.shape == expected.shape == (1, 1000)
    assert expected.abs().max() > 0
    assert ((got - expected).norm() / expected.norm()).item() < 1e-5
