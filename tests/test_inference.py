"""Batch norms folded into convolutions for inference (nas.train.inference): same predictions, fewer norms."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import nas
from nas import baselines
from nas.train.datasets import DatasetSplits, Split
from nas.train.inference import accuracy, count_folded, fold_batch_norms, predictions
from nas.train.loop import Precision, evaluate

# An MBConv network with squeeze-and-excitation, a DARTS cell network, a ResNet: scaled down, 16x16 inputs.
NETWORKS = {"efficientnet_b0_cifar": (0.25, 0.34), "darts_v2": (0.25, 0.34), "resnet20": (0.25, 0.34)}


def trained_like(name: str) -> nn.Module:
    """The baseline, small, with random (not fresh: mean 0, var 1) batch-norm statistics and affine weights."""
    width, depth = NETWORKS[name]
    genome = nas.scale(baselines.get(name), width=width, depth=depth, resolution=16)
    torch.manual_seed(0)
    model = nas.build(genome, num_classes=10)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
    return model.eval()


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_folding_keeps_the_outputs_and_removes_the_norms(name):
    model = trained_like(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(64, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    folded = fold_batch_norms(model)
    assert count_folded(model, folded) > 0
    assert not folded.training
    with torch.no_grad():
        expected, got = model(x), folded(x)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    assert torch.equal(expected.argmax(1), predictions(folded, x, batch_size=24))  # batches of 24, 24, 16
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the original is untouched
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())


def test_only_norms_right_after_a_conv_are_folded():
    conv = nn.Conv2d(3, 4, 3, bias=False)
    model = nn.Sequential(nn.BatchNorm2d(3), conv, nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 4, 1),
                          nn.BatchNorm2d(4, track_running_stats=False)).eval()
    folded = fold_batch_norms(model)
    kinds = [type(m).__name__ for m in folded]
    assert kinds == ["BatchNorm2d", "Conv2d", "Identity", "ReLU", "Conv2d", "BatchNorm2d"]
    assert folded[1].bias is not None and model[1].bias is None
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(folded(x), model(x))


def test_accuracy_equals_the_loops_evaluation():
    model = trained_like("resnet20").to(memory_format=torch.channels_last)
    generator = torch.Generator().manual_seed(2)
    split = Split(torch.randint(0, 256, (50, 3, 16, 16), dtype=torch.uint8, generator=generator),
                  torch.randint(0, 10, (50,), generator=generator))
    data = DatasetSplits(name="random", train=split, val=split, test=split, num_classes=10, scale=255.0,
                         mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    plain = evaluate(model, data, split, Precision.choose("off", torch.device("cpu")), 16, channels_last=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # `accuracy` shares the batches by torch's threads: two, whatever the suite set
    try:
        assert accuracy(model, data, split, 16, channels_last=True) == plain
    finally:
        torch.set_num_threads(threads)


class Failing(nn.Module):
    """A linear classifier that fails on the batch starting with a sample whose first value is negative."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(12, 5)

    def forward(self, x):
        if x[0, 0] < 0:
            raise RuntimeError("a bad batch")
        return self.linear(x)


def test_batches_shared_by_threads_give_the_same_predictions():
    model = trained_like("efficientnet_b0_cifar")
    x = torch.randn(70, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    threads = torch.get_num_threads()
    with torch.no_grad():
        expected = model(x).argmax(1)
    alone = predictions(model, x, batch_size=8)  # 9 batches, the last of 6
    shared = predictions(model, x, batch_size=8, workers=3)
    assert torch.equal(shared, alone) and torch.equal(shared, expected)
    assert torch.get_num_threads() == threads
    assert torch.equal(predictions(model, x[:10], batch_size=8, workers=4), expected[:10])  # fewer batches than threads


def test_a_failing_batch_stops_the_shared_prediction():
    x = torch.ones(40, 12)
    x[24, 0] = -1.0  # the fourth batch of 8
    threads = torch.get_num_threads()
    with pytest.raises(RuntimeError, match="a bad batch"):
        predictions(Failing(), x, batch_size=8, workers=2)
    assert torch.get_num_threads() == threads
