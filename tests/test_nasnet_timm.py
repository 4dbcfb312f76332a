"""NASNet-A Large and PNASNet-5 Large against timm: exact parameter counts, equal logits after a weight transfer.

Both read the two previous cells (ports) and pad their strided layers TensorFlow-style (``padding: same``),
which depends on the input size: the comparison runs at an odd size (35x35), where that padding is uneven.
"""
import pytest
import timm
import torch

import nas
from nas import baselines
from nas.ops.same import same_padding
from nas.summary import count_params
from tests.test_baselines_timm import randomize_batchnorm

# name in nas -> (timm model, parameter count at 1000 classes)
TIMM = {"nasnet_a_large": ("nasnetalarge", 88_753_150), "pnasnet_5_large": ("pnasnet5large", 86_057_668)}
SIZE = 35


@pytest.mark.parametrize("name", sorted(TIMM))
def test_parameters_and_outputs_equal_timms_after_weight_transfer(name):
    torch.manual_seed(0)
    reference = timm.create_model(TIMM[name][0], pretrained=False).eval()
    randomize_batchnorm(reference)
    built = nas.build(baselines.get(name), device="meta").to_empty(device="cpu").eval()  # every weight is copied
    assert count_params(built) == count_params(reference) == TIMM[name][1]
    nas.transfer_weights(reference, built, (1, 3, SIZE, SIZE))
    x = torch.randn(1, 3, SIZE, SIZE)
    with torch.no_grad():
        expected, got = reference(x), built(x)
    assert ((got - expected).abs().max() / expected.abs().max()).item() < 1e-5


def test_same_padding_is_tensorflows():
    assert same_padding(35, 3, 2) == (1, 1) and same_padding(34, 3, 2) == (0, 1) and same_padding(8, 1, 2) == (0, 0)
    assert same_padding(17, 7, 2) == (3, 3) and same_padding(16, 7, 2) == (2, 3) and same_padding(9, 5, 1) == (2, 2)


@pytest.mark.parametrize("op, params", [
    ("conv", {"out": 4, "kernel": 3, "stride": 2, "act": "none", "norm": "none"}),
    ("sepconv", {"out": 4, "kernel": 5, "stride": 2, "act": "none", "norm": "none"}),
    ("maxpool", {"kernel": 3, "stride": 2}),
    ("avgpool", {"kernel": 3, "stride": 2}),
])
@pytest.mark.parametrize("size", [8, 9])
def test_same_padding_keeps_ceil_of_size_over_stride_and_pads_evenly_or_after(op, params, size):
    genome = nas.Genome.from_dict({"name": "same", "input": {"channels": 2, "size": size}, "num_classes": 2,
                                   "stem": [{"op": op, "padding": "same", **params}],
                                   "stages": [{"cell": "layers", "params": {"layers": [{"op": "identity"}]}}],
                                   "head": [{"op": "global_avgpool"}]})
    model = nas.build(genome).eval()
    x = torch.randn(1, 2, size, size)
    with torch.no_grad():
        y = model.stem(x)
    assert y.shape[-1] == (size + 1) // 2
    if op == "maxpool":  # TensorFlow's SAME: the window of output i starts at 2 i - (padding before)
        before = same_padding(size, 3, 2)[0]
        assert y[0, 0, 0, 0] == x[0, 0, : 3 - before, : 3 - before].max()
