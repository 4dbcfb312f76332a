"""`nas export`: the exported file computes what the built network computes; files are never clobbered."""
import importlib.util

import pytest
import torch

from nas.cli import main
from nas.export import built_model, example_input, export, load_exported
from nas.genome import Genome

TINY = """
name: tiny
input: {channels: 1, size: 8}
num_classes: 10
stem: [{op: conv, out: 8, kernel: 3}]
stages:
  - {cell: basic, out: 8}
  - {cell: mbconv, out: 16, stride: 2, params: {expansion: 2.0, se: 0.25}}
head: [{op: global_avgpool}]
"""
HAS_ONNX = all(importlib.util.find_spec(name) is not None for name in ("onnx", "onnxruntime"))


@pytest.fixture()
def trained(tmp_path):
    """A genome file and weights that differ from any fresh initialisation (batch-norm statistics too)."""
    (tmp_path / "tiny.yaml").write_text(TINY)
    genome = Genome.load(tmp_path / "tiny.yaml")
    torch.manual_seed(3)
    model = built_model(genome)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():
                positive = name.endswith("running_var")
                tensor.copy_(torch.rand_like(tensor) + 0.5 if positive else torch.randn_like(tensor) * 0.3)
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    return genome, tmp_path


FORMATS = ["torchscript", "exported",
           pytest.param("onnx", marks=pytest.mark.skipif(not HAS_ONNX, reason="onnx/onnxruntime not installed "
                                                          "(optional extra: pip install -e '.[onnx]' from the checkout)"))]


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_exported_model_gives_the_built_models_outputs(fmt, trained, capsys):
    genome, folder = trained
    out = folder / f"model.{fmt}"
    assert main(["export", str(folder / "tiny.yaml"), "--format", fmt, "-o", str(out),
                 "--weights", str(folder / "weights.pt")]) == 0
    assert str(out) in capsys.readouterr().out
    reference = built_model(genome, folder / "weights.pt")
    run = load_exported(out, fmt)
    for batch in (1, 5):  # not only the traced batch size
        x = example_input(genome, batch, seed=batch)
        with torch.no_grad():
            expected = reference(x)
            got = run(x)
        assert got.shape == expected.shape == (batch, 10)
        assert torch.allclose(got, expected, atol=1e-4, rtol=1e-4)
    # trained weights matter: an untrained export differs
    with torch.no_grad():
        assert not torch.allclose(built_model(genome)(example_input(genome)), reference(example_input(genome)))


def test_an_existing_file_is_kept_unless_forced(trained, capsys):
    genome, folder = trained
    mine = folder / "mine.pt"
    mine.write_text("the user's file")
    assert main(["export", str(folder / "tiny.yaml"), "--format", "torchscript", "-o", str(mine)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "exists; choose another file" in error and "--force" in error
    assert mine.read_text() == "the user's file"
    assert main(["export", str(folder / "tiny.yaml"), "--format", "torchscript", "-o", str(mine), "--force"]) == 0
    assert load_exported(mine, "torchscript") is not None
    assert sorted(p.name for p in folder.iterdir()) == ["mine.pt", "tiny.yaml", "weights.pt"]  # no temporary left


def test_a_missing_folder_of_the_output_is_created_as_scale_and_draw_do(trained):
    genome, folder = trained
    out = folder / "exports" / "onnx-later" / "m.pt"
    assert main(["export", str(folder / "tiny.yaml"), "--format", "torchscript", "-o", str(out)]) == 0
    assert load_exported(out, "torchscript") is not None
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.pt"]


@pytest.mark.parametrize("case", ["folder", "parent_is_a_file", "wrong_weights", "not_weights"])
def test_bad_destinations_and_weights_are_one_line(case, trained, capsys):
    genome, folder = trained
    out = folder / "m.pt"
    weights = folder / "weights.pt"
    if case == "folder":
        out = folder
    elif case == "parent_is_a_file":
        out = folder / "weights.pt" / "m.pt"
    elif case == "wrong_weights":
        other = Genome.from_dict({**genome.to_dict(), "num_classes": 3})
        torch.save(built_model(other).state_dict(), folder / "other.pt")
        weights = folder / "other.pt"
    else:
        (folder / "junk.pt").write_text("not torch")
        weights = folder / "junk.pt"
    code = main(["export", str(folder / "tiny.yaml"), "--format", "exported", "-o", str(out),
                 "--weights", str(weights)])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.count("\n") == 0 and error.startswith("nas export: error:"), error
    assert not (folder / "m.pt").exists()


def test_python_api_refuses_an_unknown_format(trained):
    genome, folder = trained
    with pytest.raises(Exception, match="unknown format 'tflite'"):
        export(genome, folder / "m.tflite", "tflite")
