"""The genome format's later additions: arithmetic in parameter values, stage params as tokens of explicit cells,
first-cell params, a head that gives the logits (classifier: none), non-square kernels, and the ops behind the new
baselines (channel split and shuffle, layer norm over channels, layer scale, channel-wise linear layers)."""
import copy
import warnings

import pytest
import torch
import torchvision
from torch import nn

import nas
from nas import baselines
from nas.errors import GenomeError
from nas.ops.registry import get_op

# One explicit cell for every width: a bottleneck whose widths are arithmetic on @in and @out.
SPEC = {
    "name": "arith",
    "input": {"channels": 3, "size": 16},
    "num_classes": 10,
    "stem": [{"op": "conv", "out": 16, "kernel": 3}],
    "stages": [
        {"cell": "bneck", "out": 32, "repeats": 2, "stride": 2, "params": {"k": 3}, "first": {"k": 5}},
        {"cell": "bneck", "out": 48, "params": {"k": 3}},
    ],
    "head": [{"op": "global_avgpool"}],
    "cells": {
        "bneck": {
            "nodes": {
                "reduce": {"op": "conv", "out": {"div": ["@out", 4]}, "kernel": 1},
                "wide": {"op": "conv", "out": {"round": [{"mul": ["@in", 1.5]}, 8]}, "kernel": "@k",
                         "stride": "@stride"},
                "out": {"op": "conv", "out": "@out", "kernel": 1, "act": "none"},
            },
            "edges": [["in", "reduce"], ["reduce", "wide"], ["wide", "out"]],
        }
    },
}


def spec(**changes):
    result = copy.deepcopy(SPEC)
    result.update(changes)
    return result


def conv_of(module: nn.Module, index: int = 0) -> nn.Conv2d:
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)][index]


def test_arithmetic_tokens_and_first_cell_params_resolve_per_cell():
    plan = nas.expand.expand(nas.Genome.from_dict(spec()))
    first, second = plan.stages[0]
    assert first.graph.nodes["reduce"]["params"]["out"] == 8          # 32 // 4
    assert first.graph.nodes["wide"]["params"]["out"] == 24           # round_channels(16 * 1.5, 8)
    assert second.graph.nodes["wide"]["params"]["out"] == 48          # round_channels(32 * 1.5, 8)
    assert first.graph.nodes["wide"]["params"]["kernel"] == 5         # `first` overrides @k for repeat 0
    assert second.graph.nodes["wide"]["params"]["kernel"] == 3
    assert (first.graph.nodes["wide"]["params"]["stride"], second.graph.nodes["wide"]["params"]["stride"]) == (2, 1)
    assert plan.stages[1][0].graph.nodes["reduce"]["params"]["out"] == 12  # the same cell at 48 channels


@pytest.mark.parametrize("expression, value", [
    ({"add": ["@in", 1, 2]}, 19), ({"sub": ["@out", 16]}, 16), ({"mul": ["@out", 4]}, 128),
    ({"div": ["@in", 3]}, 5), ({"max": [1, {"div": ["@in", 32]}]}, 1), ({"min": ["@in", 8]}, 8),
    ({"int": [{"mul": ["@in", 0.3]}]}, 4), ({"round": [{"mul": ["@in", 0.75]}, 8]}, 16), ({"round": [17, 8]}, 16),
])
def test_each_operator_computes_like_python(expression, value):
    changed = spec()
    changed["cells"]["bneck"]["nodes"]["reduce"]["out"] = expression
    plan = nas.expand.expand(nas.Genome.from_dict(changed))
    assert plan.stages[0][0].graph.nodes["reduce"]["params"]["out"] == value


@pytest.mark.parametrize("expression, words", [
    ({"pow": ["@out", 2]}, "an expression is one of"),
    ({"div": ["@out"]}, "'div' takes 2 operands, got 1"),
    ({"mul": ["@out"]}, "'mul' takes at least 2 operands"),
    ({"mul": ["@out", "four"]}, "needs numbers, got 'four'"),
    ({"mul": ["@width", 2]}, "unknown token '@width'"),
    ({"div": ["@out", 0]}, "div"),
    ({"round": ["@out", 0]}, "divisor must be an integer >= 1"),
    ({"mul": ["@out", 0.3]}, "out must be an integer >= 1, got 9.6"),
    ({"sub": ["@out", 32]}, "out must be an integer >= 1, got 0"),
])
def test_bad_expressions_are_one_line_errors_naming_the_node_and_parameter(expression, words):
    changed = spec()
    changed["cells"]["bneck"]["nodes"]["reduce"]["out"] = expression
    with pytest.raises(GenomeError) as caught:
        nas.Genome.from_dict(changed)
    message = str(caught.value)
    assert "stages[0][0].nodes.reduce" in message and "out" in message and words in message
    assert "\n" not in message


@pytest.mark.parametrize("depth, message", [(17, "nested deeper"), (60, "nested more than")])
def test_absurdly_nested_expressions_are_refused(depth, message):
    # deeper than arithmetic allows (16), and deeper than any genome data may nest (nas.limits)
    value = "@out"
    for _ in range(depth):
        value = {"max": [value, 1]}
    changed = spec()
    changed["cells"]["bneck"]["nodes"]["reduce"]["out"] = value
    with pytest.raises(GenomeError, match=message):
        nas.Genome.from_dict(changed)


@pytest.mark.parametrize("edit, where, words", [
    (lambda s: s["stages"][0].update(first=[1]), "stages[0].first", "must be a mapping"),
    (lambda s: s["stages"][0]["params"].update(out=3), "stages[0].params.out", "built-in token"),
    (lambda s: s["stages"][0]["params"].update(k={"a": 1}), "stages[0].params.k", "not a mapping"),
    (lambda s: s.update(classifier="softmax"), "classifier", "linear, none"),
    (lambda s: s.update(classifier="none"), "head", "must output (10,)"),
    (lambda s: s["stem"][0].update(kernel=[1, 2, 3]), "stem", "[height, width]"),
    (lambda s: s["stem"][0].update(kernel=[1, True]), "stem", "[height, width]"),
])
def test_invalid_new_fields_are_rejected_naming_the_field(edit, where, words):
    changed = spec()
    edit(changed)
    with pytest.raises(GenomeError) as caught:
        nas.Genome.from_dict(changed)
    assert where in str(caught.value) and words in str(caught.value)


def test_first_classifier_and_expressions_round_trip_and_change_the_hash():
    genome = nas.Genome.from_dict(spec())
    assert nas.Genome.from_yaml(genome.to_yaml()) == genome
    assert nas.Genome.from_yaml(genome.to_yaml()).to_dict() == genome.to_dict()
    assert nas.Genome.from_json(genome.to_json()).fingerprint() == genome.fingerprint()
    no_first = spec()
    del no_first["stages"][0]["first"]
    other_expression = spec()
    other_expression["cells"]["bneck"]["nodes"]["reduce"]["out"] = {"div": ["@out", 2]}
    head_logits = spec(classifier="none", head=[{"op": "conv", "out": "@classes", "kernel": 1}, {"op": "global_avgpool"}])
    linear_head = spec(head=[{"op": "conv", "out": "@classes", "kernel": 1}, {"op": "global_avgpool"}])
    prints = {nas.Genome.from_dict(s).fingerprint() for s in (spec(), no_first, other_expression, head_logits, linear_head)}
    assert len(prints) == 5
    assert "classifier" not in genome.to_dict()  # the default is left out, so existing genomes keep their hash
    assert nas.Genome.from_yaml(nas.Genome.from_dict(head_logits).to_yaml()).classifier == "none"


def test_classifier_none_uses_the_head_as_the_classifier_at_any_class_count():
    genome = baselines.get("squeezenet1_0")
    model = nas.build(genome, num_classes=7)
    assert isinstance(model.classifier, nn.Identity)
    assert conv_of(model.head).out_channels == 7  # the head's "@classes"
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, 7)
    assert not any(isinstance(m, nn.Linear) for m in model.modules())


def test_scale_keeps_working_on_explicit_cells_with_arithmetic_and_on_first_params():
    squeezenet = nas.scale(baselines.get("squeezenet1_0"), width=0.5)
    fire = nas.expand.expand(squeezenet).stages[0][0].graph
    assert [fire.nodes[n]["params"]["out"] for n in ("squeeze", "expand1x1", "expand3x3")] == [8, 32, 32]
    inception = nas.scale(baselines.get("inception_v3"), width=0.5)
    assert inception.stages[3].params["c7"] == 64  # the explicit cell's width param scales with the widths
    mobile = nas.scale(baselines.get("mobilenet_v3_large"), width=0.5)
    assert mobile.stages[1].first["expanded"] == 32 and mobile.stages[1].params["expanded"] == 40
    assert nas.summarize(mobile).params < nas.summarize(baselines.get("mobilenet_v3_large")).params


def test_non_square_kernels_get_the_matching_padding():
    conv = conv_of(get_op("conv").build(8, get_op("conv").resolve({"out": 4, "kernel": [1, 7]}, "test")))
    assert conv.kernel_size == (1, 7) and conv.padding == (0, 3)
    pool = get_op("avgpool").build(8, get_op("avgpool").resolve({"kernel": [3, 1], "stride": 1, "padding": [1, 0]}, "t"))
    assert pool(torch.zeros(1, 8, 5, 5)).shape == (1, 8, 5, 5)


def test_channel_split_and_shuffle_match_torchvision():
    x = torch.randn(2, 12, 3, 3)
    split = [get_op("chunk").build(12, get_op("chunk").resolve({"index": i}, "t"))(x) for i in (0, 1)]
    assert torch.equal(torch.cat(split, 1), x) and split[0].shape[1] == 6
    shuffle = get_op("channel_shuffle").build(12, get_op("channel_shuffle").resolve({"groups": 3}, "t"))
    assert torch.equal(shuffle(x), torchvision.models.shufflenetv2.channel_shuffle(x, 3))
    with pytest.raises(ValueError, match="divide"):
        get_op("channel_shuffle").build(10, get_op("channel_shuffle").resolve({"groups": 3}, "t"))


def test_layer_norm_over_channels_layer_scale_and_channel_linear_on_nchw_maps():
    x = torch.randn(2, 6, 4, 5)
    norm = get_op("layernorm").build(6, get_op("layernorm").resolve({"eps": 1e-6}, "t"))
    expected = nn.functional.layer_norm(x.permute(0, 2, 3, 1), (6,), eps=1e-6).permute(0, 3, 1, 2)
    assert torch.allclose(norm(x), expected, atol=1e-6)
    assert torch.allclose(norm(x.mean((2, 3))), nn.functional.layer_norm(x.mean((2, 3)), (6,), eps=1e-6), atol=1e-6)
    scale = get_op("layer_scale").build(6, get_op("layer_scale").resolve({"init": 0.5}, "t"))
    assert torch.equal(scale(x), 0.5 * x) and scale.layer_scale.shape == (6, 1, 1)
    linear = get_op("channel_linear").build(6, get_op("channel_linear").resolve({"out": 3}, "t"))
    conv = nn.Conv2d(6, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(linear.weight[:, :, None, None])
        conv.bias.copy_(linear.bias)
    assert torch.allclose(linear(x), conv(x), atol=1e-6)


def test_mobilenet_v3_se_is_sized_on_the_expanded_channels_and_rounded_to_eight():
    plan = nas.expand.expand(baselines.get("mobilenet_v3_large"))
    block = plan.stages[2][0].graph  # 24 -> 40, expanded 72, SE to make_divisible(72 // 4, 8) = 24
    assert block.nodes["expand"]["params"]["out"] == 72
    assert block.nodes["se"]["params"]["squeeze"] == 24 and block.nodes["se"]["params"]["gate"] == "hardsigmoid"


@pytest.mark.parametrize("stage", [
    {"cell": "fused_mbconv", "out": 8, "repeats": 2, "stride": 2, "params": {"expansion": 4}},
    {"cell": "fused_mbconv", "out": 16, "repeats": 2, "params": {"expansion": 1, "drop_path": 0.1}},
    {"cell": "shufflenet_v2", "out": 16, "repeats": 3, "stride": 2},
    {"cell": "regnet", "out": 16, "repeats": 2, "stride": 2, "params": {"group_width": 4, "se": 0.25}},
    {"cell": "regnet", "out": 24, "repeats": 2, "params": {"group_width": 4, "bottleneck": 0.5}},
    {"cell": "mbconv", "out": 16, "repeats": 2, "first": {"expanded": 24},
     "params": {"expanded": 48, "se": 0.25, "se_of": "expanded", "se_divisor": 8, "se_gate": "hardsigmoid"}},
])
def test_new_templates_build_run_and_count_like_their_summary(stage):
    genome = nas.Genome.from_dict({"name": "t", "input": {"channels": 3, "size": 16}, "num_classes": 5,
                                   "stem": [{"op": "conv", "out": 16, "kernel": 3}], "stages": [stage],
                                   "head": [{"op": "global_avgpool"}]})
    model = nas.build(genome)
    out = model(torch.randn(2, 3, 16, 16))
    out.sum().backward()  # trains too (drop-path active, in-place ops safe for autograd)
    assert out.shape == (2, 5) and torch.isfinite(out).all()
    assert nas.summarize(genome).params == sum(p.numel() for p in model.parameters())


def test_a_shufflenet_unit_with_stride_one_must_keep_the_width():
    with pytest.raises(GenomeError, match="keeps the width"):
        nas.Genome.from_dict({"name": "t", "input": {"channels": 3, "size": 16}, "stem": [{"op": "conv", "out": 8}],
                              "stages": [{"cell": "shufflenet_v2", "out": 16}], "head": [{"op": "global_avgpool"}]})


def test_the_new_ops_script_and_export_and_compute_what_eager_mode_computes():
    genome = nas.Genome.from_dict({
        "name": "ops", "input": {"channels": 3, "size": 16}, "num_classes": 4,
        "stem": [{"op": "conv", "out": 8, "kernel": [3, 5]}, {"op": "layernorm"}],
        "stages": [{"cell": "shufflenet_v2", "out": 16, "repeats": 2, "stride": 2},
                   {"cell": "block", "out": 16}],
        "head": [{"op": "global_avgpool"}, {"op": "layernorm"}],
        "cells": {"block": [{"op": "channel_linear", "out": {"mul": ["@out", 2]}, "act": "gelu"},
                            {"op": "channel_linear", "out": "@out"}, {"op": "layer_scale", "init": 0.5}]},
    })
    model = nas.build(genome).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        expected = model(x)
        with warnings.catch_warnings():  # torch >= 2.10 marks torch.jit as deprecated
            warnings.simplefilter("ignore")
            scripted = torch.jit.script(model)
        torch.testing.assert_close(scripted(x), expected)
        torch.testing.assert_close(torch.export.export(model, (x,)).module()(x), expected)


def test_a_stage_param_that_its_explicit_cell_does_not_use_is_an_error():
    changed = spec()
    changed["stages"][1]["params"]["kk"] = 3
    with pytest.raises(GenomeError, match=r"stages\[1\].params: explicit cell 'bneck' does not use @kk \(it uses: @in, @k, "):
        nas.Genome.from_dict(changed)
