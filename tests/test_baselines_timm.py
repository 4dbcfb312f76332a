"""Baselines against timm 1.0.31: exact parameter counts, and equal logits after a weight transfer."""
import pytest
import timm
import torch
from torch import nn

import nas
from nas import baselines

# name in nas -> (timm model, parameter count at 1000 classes from REFERENCES.md, input size of the comparison)
TIMM = {
    "xception": ("legacy_xception", 22_855_952, 299),  # Xception's own input size
    "se_resnet50": ("legacy_seresnet50", 28_088_024, 160),  # any size computes the same function; smaller is faster
    "mobilenet_v1": ("mobilenetv1_100", 4_231_976, 224),
}
TRANSFER_INPUT = (1, 3, 64, 64)  # the dry run that pairs layers only needs every layer to run


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_timm_is_the_version_the_figures_are_for():
    assert timm.__version__ == "1.0.31"


@pytest.mark.parametrize("name", sorted(TIMM))
def test_parameter_count_equals_timm_and_the_reference_figure(name):
    reference_name, figure, _ = TIMM[name]
    with torch.device("meta"):
        reference = timm.create_model(reference_name, pretrained=False)
    assert nas.summarize(baselines.get(name)).params == count(reference) == figure


def randomize_batchnorm(model: nn.Module, seed: int = 0) -> None:
    """Non-trivial BN statistics and affine parameters, so that a misplaced or mis-paired BN shows in the output."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            n = module.num_features
            with torch.no_grad():
                module.running_mean.copy_(torch.randn(n, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(n, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(n, generator=generator) * 0.1)


@pytest.mark.parametrize("name", sorted(TIMM))
def test_outputs_equal_timm_after_weight_transfer(name):
    reference_name, _, size = TIMM[name]
    torch.manual_seed(0)
    reference = timm.create_model(reference_name, pretrained=False).eval()
    randomize_batchnorm(reference)
    built = nas.build(baselines.get(name)).eval()
    pairs = nas.transfer_weights(reference, built, TRANSFER_INPUT)
    assert len(pairs) == sum(1 for m in reference.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.Linear)))
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected, got = reference(x), built(x)
    assert got.shape == expected.shape == (2, 1000)
    assert expected.std() > 1e-3  # a meaningful comparison, not two vectors of zeros
    relative_error = ((got - expected).norm() / expected.norm()).item()
    assert relative_error < 1e-5


def test_transfer_fails_loudly_when_the_structure_differs():
    """A genome that differs from the reference (SE with another reduction) is refused, not silently paired."""
    spec = baselines.get("se_resnet50").to_dict()
    for stage in spec["stages"]:
        stage["params"]["se"] = 0.125
    different = nas.build(nas.Genome.from_dict(spec))
    reference = timm.create_model("legacy_seresnet50", pretrained=False)
    with pytest.raises(nas.TransferError):
        nas.transfer_weights(reference, different, TRANSFER_INPUT)
