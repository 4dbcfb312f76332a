"""Gaps a user hit writing well-known networks from the docs: ELU and activations with a parameter
(leaky_relu's slope), a constant scale (Inception-ResNet's residual scales), channel ranges in `select` and
uneven parts in `chunk` (dual-path networks), and activations checked when the genome is validated."""
import pytest
import torch
from torch import nn

import nas
from nas.errors import GenomeError


def genome(*nodes, edges=None, channels=8):
    names = [f"n{i}" for i in range(len(nodes) - 1)] + ["out"]
    cell = {"nodes": dict(zip(names, nodes)),
            "edges": edges or [["in", names[0]], *[[a, b] for a, b in zip(names, names[1:])]]}
    return nas.Genome.from_dict({
        "name": "gaps", "input": {"channels": 3, "size": 8}, "num_classes": 4,
        "stem": [{"op": "conv", "out": channels, "kernel": 3, "act": "none"}],
        "stages": [{"cell": "c", "out": channels}], "head": [{"op": "global_avgpool"}], "cells": {"c": cell}})


def modules_of(model, kind):
    return [m for m in model.modules() if isinstance(m, kind)]


def test_leaky_relu_takes_its_slope_and_elu_its_alpha_and_plain_names_keep_their_defaults():
    model = nas.build(genome({"op": "conv", "out": 8, "act": "leaky_relu:0.01"}, {"op": "act", "kind": "elu:0.5"},
                             {"op": "conv", "out": 8, "act": "leaky_relu"}, {"op": "act", "kind": "elu"}))
    assert [m.negative_slope for m in modules_of(model, nn.LeakyReLU)] == [0.01, 0.1]
    assert [m.alpha for m in modules_of(model, nn.ELU)] == [0.5, 1.0]


def test_the_slope_is_part_of_the_genome_identity():
    a = genome({"op": "conv", "out": 8, "act": "leaky_relu:0.01"})
    b = genome({"op": "conv", "out": 8, "act": "leaky_relu"})
    assert a.fingerprint() != b.fingerprint()
    assert nas.Genome.from_yaml(a.to_yaml()).fingerprint() == a.fingerprint()


@pytest.mark.parametrize("act, words", [
    ("relu7", "unknown activation 'relu7'"),
    ("leaky_rellu", "did you mean 'leaky_relu'"),
    ("relu:0.2", "activation 'relu' takes no parameter"),
    ("leaky_relu:steep", "negative slope must be a finite number"),
    ("elu:nan", "alpha must be a finite number"),
])
def test_a_bad_activation_is_named_when_the_genome_is_validated(act, words):
    with pytest.raises(GenomeError) as caught:
        genome({"op": "conv", "out": 8, "act": act})
    message = str(caught.value)
    assert words in message and "'act'" in message and "cannot take input" not in message
    assert "\n" not in message


def test_a_bad_gate_of_se_and_kind_of_act_are_named_too():
    with pytest.raises(GenomeError, match="parameter 'gate'"):
        genome({"op": "se", "gate": "sigmod"})
    with pytest.raises(GenomeError, match="parameter 'kind'.*did you mean 'sigmoid'"):
        genome({"op": "act", "kind": "sigmod"})


def test_scale_multiplies_by_its_constant_and_has_no_parameters():
    x = torch.randn(2, 8, 4, 4)
    scale = nas.ops.registry.get_op("scale")
    module = scale.build(8, scale.resolve({"factor": 0.17}, "node"))
    assert torch.equal(module(x), x * 0.17) and not list(module.parameters())
    plain, scaled = genome({"op": "conv", "out": 8}), genome({"op": "conv", "out": 8}, {"op": "scale", "factor": 0.2})
    assert nas.summarize(scaled).params == nas.summarize(plain).params
    with pytest.raises(GenomeError, match="factor must be a finite number"):
        genome({"op": "scale", "factor": "big"})


def test_select_takes_a_range_and_chunk_uneven_sizes():
    x = torch.arange(2 * 8 * 4 * 4, dtype=torch.float32).reshape(2, 8, 4, 4)
    select = nas.ops.registry.get_op("select")
    for text, expected in (("0:3", x[:, 0:3]), ("3:", x[:, 3:]), ("-2:", x[:, -2:]), (":5", x[:, :5])):
        module = select.build(8, select.resolve({"channels": text}, "node"))
        assert torch.equal(module(x), expected), text
    chunk = nas.ops.registry.get_op("chunk")
    parts = [chunk.build(8, chunk.resolve({"sizes": [5, 3], "index": i}, "node"))(x) for i in (0, 1)]
    assert torch.equal(torch.cat(parts, 1), x) and parts[0].shape[1] == 5
    assert torch.equal(chunk.build(8, chunk.resolve({"index": 1}, "node"))(x), x[:, 4:])  # equal halves as before


@pytest.mark.parametrize("node, words", [
    ({"op": "select", "channels": "a:b"}, "range 'START:STOP'"),
    ({"op": "select", "channels": "9:"}, "channels must be indices"),
    ({"op": "chunk", "sizes": [5, 4], "index": 0}, "must add up to the input channels 8"),
    ({"op": "chunk", "sizes": [8], "index": 1}, "index must be an integer in [0, 1)"),
])
def test_bad_ranges_and_sizes_are_one_line_errors(node, words):
    with pytest.raises(GenomeError) as caught:
        genome(node, {"op": "conv", "out": 8})
    assert words in str(caught.value)


def test_nas_ops_says_what_each_parameter_takes(capsys):
    from nas.cli import main

    assert main(["ops", "conv", "act"]) == 0
    text = capsys.readouterr().out
    assert "kernel    int or [height, width]" in text and "'same', or null: keep the size" in text
    assert "mish, selu, leaky_relu, elu" in text and "..." not in text
