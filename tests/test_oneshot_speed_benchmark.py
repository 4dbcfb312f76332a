"""benchmarks/oneshot_speed.py's arithmetic count: what one epoch computes, forward and backward."""
import torch
from torch import nn

import benchmark_scripts


def test_epoch_flops_counts_the_forward_and_the_backward_pass():
    speed = benchmark_scripts.load("oneshot_speed")
    layer = nn.Linear(8, 4, bias=False)
    x = torch.randn(16, 8, requires_grad=True)
    forward = 2 * 16 * 8 * 4  # a multiply and an add per weight and sample
    assert speed.epoch_flops(lambda: layer(x)) == forward
    # backward: the input's gradient and the weight's, each as dear as the forward pass
    assert speed.epoch_flops(lambda: layer(x).sum().backward()) == 3 * forward
