"""Width, depth and resolution scaling: rounding, purity, EfficientNet-B1..B7, effects on a small genome."""
import pytest
import torch
import torchvision
from torchvision.models._utils import _make_divisible

import nas
from nas import baselines
from nas.errors import GenomeError
from nas.scale_genome import EFFICIENTNET, compound_coefficients, round_channels, scale

SMALL = {
    "name": "small",
    "input": {"channels": 3, "size": 32},
    "num_classes": 10,
    "stem": [{"op": "conv", "out": 16, "kernel": 3}],
    "stages": [
        {"cell": "basic", "out": 16, "repeats": 2},
        {"cell": "dense", "params": {"layers": 3, "growth": 12}},
        {"cell": "transition", "stride": 2},
        {"cell": "inception", "params": {"c1": 8, "c3_reduce": 8, "c3": 16, "c5_reduce": 4, "c5": 8, "pool_proj": 8}},
        {"cell": "mbconv", "out": 24, "repeats": 2, "stride": 2, "params": {"se": 0.25}},
        {"cell": "layers", "out": 32, "params": {"layers": [{"op": "conv", "out": 32, "kernel": 1}]}},
        {"cell": "mine", "out": 32},
    ],
    "head": [{"op": "conv", "out": 64, "kernel": 1}, {"op": "global_avgpool"}],
    "cells": {"mine": {
        "nodes": {"a": {"op": "conv", "out": "@out", "kernel": 3}, "b": {"op": "conv", "out": 40, "kernel": 1},
                  "out": {"op": "conv", "out": "@out", "kernel": 1}},
        "edges": [["in", "a"], ["a", "b"], ["b", "out"]]}},
}


def small() -> nas.Genome:
    return nas.Genome.from_dict(SMALL)


@pytest.mark.parametrize("value, expected", [(32, 32), (35.2, 32), (18, 24), (3, 8), (100, 104), (99.2, 96), (44.8, 48)])
def test_round_channels_rounds_to_multiples_of_8_never_below_90_percent(value, expected):
    assert round_channels(value) == expected
    assert expected % 8 == 0 and expected >= 0.9 * value


def test_round_channels_agrees_with_torchvision_and_divisor_1_rounds_to_nearest():
    values = [c * w for c in (3, 12, 16, 24, 32, 40, 96, 112, 320, 1280) for w in (0.25, 0.5, 0.75, 1.1, 1.2, 1.4, 1.8, 3.1)]
    assert [round_channels(v) for v in values] == [_make_divisible(v, 8) for v in values]
    assert [round_channels(v, 1) for v in (17.4, 17.6, 96.0)] == [17, 18, 96]


def test_scale_is_pure_and_names_the_result():
    genome = small()
    before, fingerprint = genome.to_dict(), genome.fingerprint()
    wider = scale(genome, width=2.0, depth=1.5, resolution=64)
    assert genome.to_dict() == before and genome.fingerprint() == fingerprint
    assert wider.name == "small-w2-d1.5-r64" and wider != genome
    assert scale(genome, width=2.0, name="mine").name == "mine"
    unchanged = scale(genome)
    assert unchanged == genome and unchanged is not genome


def test_depth_multiplies_repeats_with_ceil_and_dense_layers_but_never_transitions_or_layer_lists():
    deeper = scale(small(), depth=1.5)
    stages = deeper.to_dict()["stages"]
    # basic 2 -> 3; dense and transition stay one cell; inception 1 -> 2; mbconv 2 -> 3;
    # a `layers` stage stays as written (repeating it would repeat its pooling too); explicit cell 1 -> 2
    assert [s.get("repeats", 1) for s in stages] == [3, 1, 1, 2, 3, 1, 2]
    assert stages[1]["params"]["layers"] == 5  # ceil(3 * 1.5): a dense block deepens inside its one cell
    assert nas.summarize(deeper).params > nas.summarize(small()).params


def test_width_scales_every_channel_count_and_keeps_shapes_consistent():
    wider = scale(small(), width=2.0)
    spec = wider.to_dict()
    assert spec["stem"][0]["out"] == 32 and spec["head"][0]["out"] == 128
    assert [s.get("out") for s in spec["stages"]] == [32, None, None, None, 48, 64, 64]
    assert spec["stages"][1]["params"]["growth"] == 24
    assert spec["stages"][3]["params"] == {"c1": 16, "c3_reduce": 16, "c3": 32, "c5_reduce": 8, "c5": 16, "pool_proj": 16}
    assert spec["stages"][5]["params"]["layers"][0]["out"] == 64
    assert spec["cells"]["mine"]["nodes"]["b"]["out"] == 80 and spec["cells"]["mine"]["nodes"]["a"]["out"] == "@out"
    before, after = nas.summarize(small()), nas.summarize(wider)
    assert [s[1][1:] for s in after.stage_shapes] == [s[1][1:] for s in before.stage_shapes]
    assert 3.0 < after.flops / before.flops < 4.5  # FLOPs grow about width^2


def test_width_one_leaves_channels_as_written():
    spec = scale(small(), depth=2.0).to_dict()
    assert spec["stages"][1]["params"]["growth"] == 12 and spec["stem"][0]["out"] == 16


def test_resolution_changes_the_input_and_every_feature_map():
    bigger = scale(small(), resolution=64)
    assert bigger.input.size == (64, 64)
    before, after = nas.summarize(small()), nas.summarize(bigger)
    assert after.params == before.params
    assert [s[1][1] for s in after.stage_shapes[:-1]] == [2 * s[1][1] for s in before.stage_shapes[:-1]]


@pytest.mark.parametrize("arguments", [{"width": 0}, {"depth": -1.0}, {"resolution": 0}, {"width": "2"}])
def test_bad_factors_are_genome_errors(arguments):
    with pytest.raises(GenomeError, match="scale"):
        scale(small(), **arguments)


def test_compound_coefficients_follow_the_paper():
    width, depth, resolution = compound_coefficients(1)
    assert (width, depth, resolution) == (1.1, 1.2, 1.15)
    assert 1.9 < depth * width ** 2 * resolution ** 2 < 2.0  # alpha * beta^2 * gamma^2 ~ 2
    assert compound_coefficients(0) == (1.0, 1.0, 1.0)


@pytest.mark.parametrize("variant", sorted(EFFICIENTNET))
def test_efficientnet_b1_to_b7_match_torchvision(variant):
    genome = baselines.get(f"efficientnet_{variant}")
    with torch.device("meta"):
        reference = getattr(torchvision.models, f"efficientnet_{variant}")()
    ours = nas.build(genome, device="meta")
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in reference.parameters())
    assert genome.input.size == (EFFICIENTNET[variant]["resolution"],) * 2
    norms = [(m.eps, m.momentum) for m in reference.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert [(m.eps, m.momentum) for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d)] == norms
    dropout = [m.p for m in reference.modules() if isinstance(m, torch.nn.Dropout)]
    assert [node["p"] for node in genome.to_dict()["head"] if node["op"] == "dropout"] == dropout


@pytest.mark.parametrize("name", ["googlenet", "densenet121", "mobilenet_v2"])
def test_baselines_with_derived_widths_and_transitions_scale_to_valid_genomes(name):
    base = baselines.get(name)
    scaled = scale(base, width=1.3, depth=1.4)
    before, after = nas.summarize(base), nas.summarize(scaled)
    assert after.params > before.params
    assert after.stage_shapes[-2][1][1:] == before.stage_shapes[-2][1][1:]  # transitions and pools were not repeated
