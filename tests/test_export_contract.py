"""Exported files carry their input contract (shape, pixel scale, mean/std, class names), and with
`--include-preprocessing` take pixels / pixel_max: the outputs equal the network's fed normalised inputs."""
from __future__ import annotations

import importlib.util
import json

import pytest
import torch

from nas.cli import main
from nas.export import built_model, load_exported, read_contract
from nas.genome import Genome
from nas.train.contract import ContractError, check_contract, describe, input_contract

TINY = """
name: tiny
input: {channels: 1, size: 8}
num_classes: 10
stem: [{op: conv, out: 4, kernel: 3}]
stages:
  - {cell: basic, out: 8, stride: 2}
head: [{op: global_avgpool}]
"""
CONTRACT = {"dataset": "digits", "layout": "NCHW", "shape": [1, 8, 8], "dtype": "float32", "pixel_max": 16.0,
            "mean": [0.3], "std": [0.4], "normalization_included": False, "num_classes": 10,
            "class_names": [str(d) for d in range(10)]}
HAS_ONNX = all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))
FORMATS = ["torchscript", "exported",
           pytest.param("onnx", marks=pytest.mark.skipif(not HAS_ONNX, reason="onnx/onnxruntime not installed "
                                                          "(optional extra: pip install -e '.[onnx]' from the checkout)"))]


@pytest.fixture()
def trained(tmp_path):
    """Weights as `nas train` leaves them: genome.yaml, weights.pt and a train.json holding the contract."""
    (tmp_path / "genome.yaml").write_text(TINY)
    genome = Genome.load(tmp_path / "genome.yaml")
    torch.manual_seed(5)
    model = built_model(genome)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                tensor.copy_(torch.rand_like(tensor) + 0.5 if name.endswith("running_var") else torch.randn_like(tensor))
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    (tmp_path / "train.json").write_text(json.dumps({"test_accuracy": 0.5, "input": CONTRACT}))
    return genome, tmp_path


@pytest.mark.parametrize("fmt", FORMATS)
def test_with_and_without_the_normalisation_layer_the_outputs_are_the_networks_on_normalised_inputs(fmt, trained,
                                                                                                    capsys):
    genome, folder = trained
    reference = built_model(genome, folder / "weights.pt")
    pixels = torch.rand(3, 1, 8, 8, generator=torch.Generator().manual_seed(1))  # pixels / pixel_max: 0..1
    normalised = (pixels - 0.3) / 0.4
    with torch.no_grad():
        expected = reference(normalised)
    for layer in (False, True):
        out = folder / f"m{int(layer)}.{fmt}"
        argv = ["export", str(folder / "genome.yaml"), "--weights", str(folder / "weights.pt"), "--format", fmt,
                "-o", str(out)] + (["--include-preprocessing"] if layer else [])
        assert main(argv) == 0
        printed = capsys.readouterr().out
        assert "mean 0.30000, std 0.40000" in printed and "classes 0, 1, 2" in printed
        assert ("feed pixels / 16 (values 0..1)" in printed) == layer
        with torch.no_grad():
            got = load_exported(out, fmt)(pixels if layer else normalised)
        assert torch.allclose(got, expected, atol=1e-5, rtol=1e-5)
        assert read_contract(out, fmt) == {**CONTRACT, "normalization_included": layer}
    with torch.no_grad():  # the layer matters: plain 0..1 pixels into the network without it give other outputs
        assert not torch.allclose(load_exported(folder / f"m0.{fmt}", fmt)(pixels), expected, atol=1e-3)


def test_the_torchscript_message_points_to_the_preferred_formats(trained, capsys):
    genome, folder = trained
    assert main(["export", "resnet20", "--format", "torchscript", "-o", str(folder / "r.pt")]) == 0
    out = capsys.readouterr().out
    assert "prefer --format onnx or exported" in out and "input:" not in out  # untrained: no contract to show
    assert read_contract(folder / "r.pt", "torchscript") is None


def test_preprocessing_without_a_contract_is_one_line(trained, capsys):
    genome, folder = trained
    (folder / "train.json").unlink()
    code = main(["export", str(folder / "genome.yaml"), "--weights", str(folder / "weights.pt"), "--format",
                 "exported", "-o", str(folder / "m.pt2"), "--include-preprocessing"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "needs the input contract" in err
    assert not (folder / "m.pt2").exists()


def test_a_data_sets_contract_is_what_training_fed_the_network():
    from nas.train.datasets import load_dataset

    data = load_dataset("digits", train_limit=100)
    contract = check_contract(input_contract(data), "digits")
    assert contract["shape"] == [1, 8, 8] and contract["pixel_max"] == 16.0
    assert contract["class_names"] == [str(d) for d in range(10)] and contract["num_classes"] == 10
    x = data.test.x[:4]
    mean, std = torch.tensor(contract["mean"]).view(1, -1, 1, 1), torch.tensor(contract["std"]).view(1, -1, 1, 1)
    assert torch.allclose((x.float() / contract["pixel_max"] - mean) / std, data.normalize(x), atol=1e-6)
    assert "feed (pixels / 16 - mean) / std per channel" in "\n".join(describe(contract))


def test_fashion_mnist_has_its_ten_class_names_and_a_bad_contract_is_refused():
    from nas.train.catalog import class_names

    assert class_names("fashion_mnist")[0] == "T-shirt/top" and len(class_names("fashion_mnist")) == 10
    with pytest.raises(ContractError, match="std must be 1 numbers"):
        check_contract({**CONTRACT, "std": [0.4, 0.4]}, "x")
