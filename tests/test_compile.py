"""Built networks work with TorchScript, torch.export and torch.compile, and compute what eager mode computes.

One limitation, by design: a scripted network does not sample FractalNet's global drop-path column in
training (`Network._pick_global_column` is `torch.jit.unused`); local drop-path and everything else runs.
"""
from __future__ import annotations

import copy
import warnings

import pytest
import torch

import nas
from nas import baselines
from nas.modules import DagCell

# One genome with every merge (add, concat, mean with drop-path, multiply), a chain stem and head, and
# template cells that compile to DAG cells (fractal: mean joins; dense: concat; mbconv: SE and residual).
EVERY_MERGE = {
    "name": "every_merge",
    "input": {"channels": 3, "size": 16},
    "num_classes": 5,
    "stem": [{"op": "conv", "out": 8, "kernel": 3}],
    "stages": [
        {"cell": "mix", "out": 8},
        {"cell": "fractal", "out": 8, "stride": 2, "params": {"columns": 2, "global_drop": 0.0}},
        {"cell": "dense", "params": {"layers": 2, "growth": 4}},
        {"cell": "mbconv", "out": 16, "stride": 2, "params": {"se": 0.25, "expansion": 2.0, "drop_path": 0.2}},
    ],
    "head": [{"op": "global_avgpool"}, {"op": "dropout", "p": 0.1}],
    "cells": {
        "mix": {
            "nodes": {
                "a": {"op": "conv", "out": "@out", "kernel": 3, "stride": "@stride"},
                "b": {"op": "sepconv", "out": "@out", "stride": "@stride"},
                "gate": {"op": "act", "kind": "sigmoid"},
                "prod": {"op": "identity", "merge": "multiply"},
                "avg": {"op": "bn", "merge": "mean", "drop_path": 0.2},
                "cat": {"op": "conv", "out": "@out", "kernel": 1, "merge": "concat"},
                "out": {"op": "act", "kind": "relu", "merge": "add"},
            },
            "edges": [["in", "a"], ["in", "b"], ["b", "gate"], ["a", "prod"], ["gate", "prod"], ["a", "avg"],
                      ["prod", "avg"], ["avg", "cat"], ["b", "cat"], ["cat", "out"], ["a", "out"]],
        }
    },
}
# Small real networks (baselines scaled to 1/8 width at 32x32).
SCALED = ["resnet18", "xception_cifar"]


def every_merge() -> nas.Genome:
    return nas.Genome.from_dict(EVERY_MERGE)


def small_baseline(name: str) -> nas.Genome:
    return nas.scale(baselines.get(name), width=0.125, resolution=32)


def script(model: torch.nn.Module) -> torch.jit.ScriptModule:
    with warnings.catch_warnings():  # torch >= 2.10 marks torch.jit as deprecated
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.script(model)


def example(genome: nas.Genome) -> torch.Tensor:
    torch.manual_seed(1)
    return torch.randn(2, genome.input.channels, *genome.input.size)


@pytest.mark.parametrize("source", ["every_merge", *SCALED])
def test_torchscript_matches_eager_in_eval_mode(source):
    genome = every_merge() if source == "every_merge" else small_baseline(source)
    model = nas.build(genome, num_classes=7).eval()
    scripted = script(model)
    x = example(genome)
    with torch.no_grad():
        expected = model(x)
        assert expected.shape == (2, 7)
        torch.testing.assert_close(scripted(x), expected, rtol=0, atol=0)


def test_torchscript_matches_eager_in_training_with_drop_path_and_gradients():
    genome = every_merge()
    torch.manual_seed(0)
    model = nas.build(genome).train()
    twin = copy.deepcopy(model)
    scripted = script(twin)
    x = example(genome)
    for _ in range(2):  # random drop-path and dropout draws must line up call for call
        torch.manual_seed(7)
        expected = model(x)
        torch.manual_seed(7)
        got = scripted(x)
        torch.testing.assert_close(got, expected)
        expected.square().sum().backward()
        got.square().sum().backward()
    for (name, a), (_, b) in zip(model.named_parameters(), twin.named_parameters()):
        torch.testing.assert_close(b.grad, a.grad, msg=lambda m: f"gradient of {name}: {m}")
    for (name, a), (_, b) in zip(model.named_buffers(), twin.named_buffers()):
        torch.testing.assert_close(b, a, msg=lambda m: f"buffer {name}: {m}")


def test_scripted_network_survives_save_and_load(tmp_path):
    genome = every_merge()
    model = nas.build(genome).eval()
    path = tmp_path / "net.pt"
    script(model).save(str(path))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        loaded = torch.jit.load(str(path))
    x = example(genome)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)


def test_torch_export_matches_eager():
    genome = every_merge()
    model = nas.build(genome).eval()
    x = example(genome)
    exported = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(exported.module()(x), model(x))
        other = torch.randn_like(x)
        torch.testing.assert_close(exported.module()(other), model(other))


def test_torch_compile_matches_eager_without_graph_breaks():
    """TorchDynamo captures the whole network in one graph (fullgraph: a graph break is an error), and the graph
    AOTAutograd makes of it (functionalised, decomposed: what every backend compiles) computes what eager mode
    does. The "aot_eager" backend runs that graph as it is; inductor would then generate C++ and build it with
    gcc (13 CPU-s and 20 s on a cold cache, as on a fresh machine), which tests torch's code generator, not
    ours. `benchmarks/train_speed.py --compile` times the default backend."""
    genome = every_merge()
    model = nas.build(genome).eval()
    x = example(genome)
    torch.compiler.reset()
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)


def accumulating_cells(model: torch.nn.Module) -> list[DagCell]:
    return [m for m in model.modules() if isinstance(m, DagCell) and any(k >= 0 for k in m.accumulate)]


@pytest.mark.parametrize("source", ["every_merge", "resnet18", "xception_cifar"])
def test_in_place_work_computes_what_out_of_place_work_does(source):
    """Add merges sum into a residual branch's last BN output in place (torchvision's `out += identity`)
    and activations overwrite private inputs; outputs, gradients and BN statistics are exactly those of
    the same network with nothing in place."""
    genome = every_merge() if source == "every_merge" else small_baseline(source)
    torch.manual_seed(0)
    model = nas.build(genome).train()
    plain = copy.deepcopy(model)
    in_place = [m for m in plain.modules() if getattr(m, "inplace", False) is True]
    assert in_place, "expected some activations to run in place"
    if source != "every_merge":
        assert accumulating_cells(model), "expected at least one add merge to sum in place"
    for cell in accumulating_cells(plain):
        cell.accumulate = [-1] * len(cell.accumulate)
    for module in in_place:
        module.inplace = False
    x = example(genome)
    outputs = []
    for net in (model, plain):
        torch.manual_seed(7)  # the same drop-path and dropout draws
        y = net(x)
        y.square().sum().backward()
        outputs.append(y)
    torch.testing.assert_close(outputs[0], outputs[1], rtol=0, atol=0)
    for (name, a), (_, b) in zip(model.named_parameters(), plain.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0, msg=lambda m: f"gradient of {name}: {m}")
    for (name, a), (_, b) in zip(model.named_buffers(), plain.named_buffers()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=lambda m: f"buffer {name}: {m}")


def test_in_place_sums_only_overwrite_a_fresh_value_read_once():
    """The cell's input, a value another node also reads, and an output autograd keeps (a ReLU's) are
    never summed into; a conv-BN output read by the sum alone is."""
    spec = copy.deepcopy(EVERY_MERGE)
    spec["stages"] = [{"cell": "sums", "out": 8}]
    conv_bn = {"op": "conv", "out": "@out", "kernel": 1, "act": "none"}
    spec["cells"] = {"sums": {
        "nodes": {
            "shared": dict(conv_bn),                          # fresh, but read by s1 and s2
            "alone": dict(conv_bn),                           # fresh and read by s3 only
            "relu": {"op": "act", "kind": "relu"},            # read once, but its backward needs its output
            "s1": {"op": "identity", "merge": "add"},         # in + shared
            "s2": {"op": "identity", "merge": "add"},         # relu + shared
            "s3": {"op": "identity", "merge": "add"},         # s1 + alone
            "out": {"op": "identity", "merge": "add"},        # s2 + s3 (identity outputs alias their input)
        },
        "edges": [["in", "shared"], ["in", "alone"], ["in", "relu"], ["in", "s1"], ["shared", "s1"],
                  ["relu", "s2"], ["shared", "s2"], ["s1", "s3"], ["alone", "s3"], ["s2", "out"], ["s3", "out"]],
    }}
    genome = nas.Genome.from_dict(spec)
    model = nas.build(genome).train()
    cell = model.stages[0][0]
    summed_into = {i: sources[k] for i, (sources, k) in enumerate(zip(cell.sources, cell.accumulate)) if k >= 0}
    assert len(summed_into) == 1, summed_into  # s3 only ...
    (node, value), = summed_into.items()
    assert isinstance(cell.ops[value - 1][-1], torch.nn.BatchNorm2d)  # ... into a conv-BN output ...
    assert sum(value in sources for sources in cell.sources) == 1  # ... that no other node reads
    model(example(genome)).square().sum().backward()  # autograd raises if a kept tensor was overwritten
