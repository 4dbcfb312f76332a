"""Baselines against torchvision 0.29.1 and the papers: exact parameter counts, and equal logits after a weight transfer."""
import pytest
import torch
import torchvision
from torch import nn

import nas
from nas import baselines

# Parameter counts of torchvision 0.29.1 at 1000 classes (REFERENCES.md).
TORCHVISION = {
    "alexnet": 61_100_840, "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
    "googlenet": 6_624_904, "resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
    "resnet101": 44_549_160, "resnet152": 60_192_808, "resnext50_32x4d": 25_028_904, "densenet121": 7_978_856,
    "densenet169": 14_149_480, "mobilenet_v2": 3_504_872, "efficientnet_b0": 5_288_548,
}
OPTIONS = {"googlenet": {"aux_logits": False, "transform_input": False, "init_weights": True}}


def torchvision_model(name: str) -> nn.Module:
    return getattr(torchvision.models, name)(**OPTIONS.get(name, {}))


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("name", sorted(TORCHVISION))
def test_parameter_count_equals_torchvision_and_the_reference_figure(name):
    with torch.device("meta"):
        reference = torchvision_model(name)
    assert nas.summarize(baselines.get(name)).params == count(reference) == TORCHVISION[name]


def vgg_parameters(blocks: list[list[int]], fc: tuple[int, ...] = (4096, 4096, 1000)) -> int:
    """Weights and biases of a VGG column of the paper's Table 1: conv widths (1 marks a 1x1 conv), 7x7x512 into the FCs."""
    total, c_in = 0, 3
    for block in blocks:
        width = max(block)
        for conv in block:
            kernel, c_out = (1, width) if conv == 1 else (3, conv)
            total += kernel * kernel * c_in * c_out + c_out
            c_in = c_out
    features = 7 * 7 * c_in
    for out in fc:
        total += features * out + out
        features = out
    return total


@pytest.mark.parametrize("name, blocks, paper_millions", [
    ("vgg_a_lrn", [[64], [128], [256, 256], [512, 512], [512, 512]], 133),
    ("vgg_c", [[64, 64], [128, 128], [256, 256, 1], [512, 512, 1], [512, 512, 1]], 134),
    ("vgg16", [[64, 64], [128, 128], [256] * 3, [512] * 3, [512] * 3], 138),
])
def test_vgg_configurations_match_the_papers_table(name, blocks, paper_millions):
    params = nas.summarize(baselines.get(name)).params
    assert params == vgg_parameters(blocks)
    assert round(params / 1e6) == paper_millions  # Table 2 of Simonyan & Zisserman, in millions


@pytest.mark.parametrize("name, paper_millions", [("densenet_bc_100_12", 0.8), ("densenet_40_12", 1.0)])
def test_cifar_densenets_match_the_papers_table(name, paper_millions):
    summary = nas.summarize(baselines.get(name))
    assert round(summary.params / 1e6, 1) == paper_millions  # Table 2 of Huang et al. 2017 (10 classes)
    assert summary.stage_shapes[-2][1][1:] == (8, 8)


@pytest.mark.parametrize("name", ["mobilenet_v2_cifar", "efficientnet_b0_cifar"])
def test_cifar_variants_end_at_4x4(name):
    genome = baselines.get(name)
    summary = nas.summarize(genome)
    assert genome.input.size == (32, 32) and genome.num_classes == 10
    assert summary.stage_shapes[-2][1][1:] == (4, 4)


def untrained(genome: nas.Genome) -> nn.Module:
    """Our network with storage but no initial values (every one comes from the transfer; one it missed keeps
    whatever the empty storage holds, not the reference's, which shows in the logits): built on the meta
    device, then given empty CPU storage (no time spent initialising weights the transfer replaces)."""
    return nas.build(genome, device="meta").to_empty(device="cpu")


def randomise_norms(model: nn.Module, generator: torch.Generator) -> None:
    """Give every batch norm non-trivial statistics and affine weights, so a mispaired or missing BN shows in the logits."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                channels = module.num_features
                module.running_mean.copy_(torch.randn(channels, generator=generator) * 0.1)
                module.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)
                module.weight.copy_(torch.rand(channels, generator=generator) + 0.5)
                module.bias.copy_(torch.randn(channels, generator=generator) * 0.1)


@pytest.mark.parametrize("name", ["resnet50", "efficientnet_b0", "densenet121", "googlenet", "mobilenet_v2", "vgg16"])
def test_transferred_weights_give_the_same_logits(name):
    generator = torch.Generator().manual_seed(0)
    reference = torchvision_model(name).eval()
    randomise_norms(reference, generator)
    ours = untrained(baselines.get(name)).eval()
    nas.transfer_weights(reference, ours, input_shape=(1, 3, 64, 64))
    x = torch.randn(2, 3, 64, 64, generator=generator)  # any size the networks take; 64: 1/12 of 224's pixels
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert got.shape == expected.shape == (2, 1000)
    assert expected.abs().max() > 0
    assert ((got - expected).norm() / expected.norm()).item() < 1e-5


def test_googlenet_with_the_papers_5x5_kernel_does_not_pair_with_torchvision():
    spec = baselines.get("googlenet").to_dict()
    for stage in spec["stages"]:
        del stage["params"]["c5_kernel"]  # the template's default: the paper's 5x5
    paper = nas.Genome.from_dict(spec)
    assert nas.summarize(paper).params > TORCHVISION["googlenet"]
    with pytest.raises(nas.TransferError, match="shape"):
        nas.transfer_weights(torchvision_model("googlenet"), nas.build(paper), input_shape=(1, 3, 64, 64))
