"""Transfer learning: a reference model's weights (torchvision/timm, from a file or the local caches, never
downloaded) into a genome built for the data; frozen parts, frozen batch norms, learning-rate groups; the
command line. All weights are made here (random models saved to files): nothing is downloaded."""
import json
import socket
import time

import numpy as np
import pytest
import torch
import torchvision

import nas
from nas import baselines
from nas.cli import main
from nas.compiler import build
from nas.genome import Genome
from nas.train.datasets import DatasetSplits, Split, load_dataset
from nas.train.finetune import FineTuneError
from nas.train.freeze import PathError, parse_paths, select
from nas.train.pretrained import PretrainedError, adapt_input_conv, load_reference, reference

# ResNet-18 declared at 32x32 (the reference is paired with it by a forward pass at 32x32: quick)
RESNET18 = Genome.from_dict({**baselines.get("resnet18").to_dict(), "input": {"channels": 3, "size": 32}})


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError("a network connection was attempted")
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.fixture(scope="module")
def r18_file(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "r18.pt"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return path


@pytest.fixture(scope="module")
def few():
    """32 training, 16 validation and 16 test images of digits (1x8x8, 10 classes)."""
    d = load_dataset("digits")
    cut = lambda s, n: Split(s.x[:n], s.y[:n])  # noqa: E731
    return DatasetSplits(d.name, cut(d.train, 32), cut(d.val, 16), cut(d.test, 16), d.num_classes, d.scale,
                         d.mean, d.std, d.augment)


def for_data(genome, channels, classes):
    return Genome.from_dict({**genome.to_dict(), "input": {"channels": channels, "size": 32}, "num_classes": classes})


def test_reference_weights_give_the_reference_outputs(r18_file):
    ref = reference(f"torchvision:resnet18={r18_file}")
    model = build(RESNET18)
    loaded = load_reference(ref, RESNET18, model)
    assert (loaded.new, loaded.adapted, loaded.layers) == ([], {}, 41)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model.eval()(x), ref.model.eval()(x), rtol=1e-4, atol=1e-5)


def test_one_channel_sums_the_stem_over_colours_and_other_classes_get_a_new_classifier(r18_file):
    ref = reference(f"torchvision:resnet18={r18_file}")
    grey = for_data(RESNET18, 1, 1000)
    model = build(grey)
    loaded = load_reference(ref, grey, model)
    assert loaded.adapted == {"stem.0.0.weight": "summed over the reference's 3 input channels"} and loaded.new == []
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():  # a grey image gives what the reference gives on that image in every colour channel
        assert torch.allclose(model.eval()(x), ref.model.eval()(x.repeat(1, 3, 1, 1)), rtol=1e-4, atol=1e-4)

    ten = for_data(RESNET18, 3, 10)
    model, fresh = build(ten), build(ten)
    fresh.load_state_dict(model.state_dict())
    loaded = load_reference(ref, ten, model)
    assert loaded.new == ["classifier.weight", "classifier.bias"]
    assert torch.equal(model.classifier.weight, fresh.classifier.weight)  # the genome's own initialisation
    assert torch.equal(model.stem[0][0].weight, ref.model.conv1.weight)


def test_input_conv_for_more_channels_repeats_and_scales():
    weight = torch.randn(4, 3, 3, 3)
    five = adapt_input_conv(weight, 5)
    assert five.shape == (4, 5, 3, 3)
    assert torch.allclose(five[:, 3:], weight[:, :2] * 3 / 5) and torch.allclose(five[:, :3], weight * 3 / 5)
    # for a multiple of the reference's channels, an image whose channels are all equal gives the same output
    six, x = adapt_input_conv(weight, 6), torch.randn(1, 1, 8, 8)
    assert torch.allclose(torch.conv2d(x.repeat(1, 6, 1, 1), six), torch.conv2d(x.repeat(1, 3, 1, 1), weight),
                          atol=1e-5)


def test_frozen_parts_do_not_change_the_new_classifier_does_and_lr_groups_are_as_set(r18_file, few, tmp_path):
    spec = f"torchvision:resnet18={r18_file}"
    result = nas.fit(RESNET18, few, epochs=1, batch_size=16, pretrained=spec, freeze="stem,stages[0:3]",
                       pretrained_lr_scale=0.1, out=tmp_path / "run")
    start = build(result.genome)
    load_reference(reference(spec), result.genome, start)
    before, after = start.state_dict(), result.model.state_dict()
    frozen = [k for k in before if k.startswith(("stem.", "stages.0.", "stages.1.", "stages.2."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)  # running statistics too (eval mode)
    assert not torch.equal(before["classifier.weight"], after["classifier.weight"])
    assert not torch.equal(before["stages.3.1.ops.1.0.weight"], after["stages.3.1.ops.1.0.weight"])
    assert not all(p.requires_grad for p in result.model.stem.parameters())

    record = json.loads((tmp_path / "run" / "train.json").read_text())["transfer"]
    assert record["from"] == spec and record["freeze"] == ["stem", "stages[0:3]"] and record["frozen_bn"] == "eval"
    assert record["new"] == ["classifier.weight", "classifier.bias"] and record["bn_layers_in_eval"] == 15
    rates = {(g["part"], g["weight_decay"]): g["lr"] for g in record["param_groups"]}
    assert rates == pytest.approx({("pretrained", 5e-4): 0.005, ("new", 5e-4): 0.05,
                                   ("pretrained", 0.0): 0.005, ("new", 0.0): 0.05})
    trained = sum(g["parameters"] for g in record["param_groups"])
    assert trained == record["trainable_parameters"] == sum(p.numel() for p in start.parameters()) - \
        record["frozen_parameters"]


def test_train_only_head_trains_the_new_classifier_and_frozen_bn_train_updates_statistics(r18_file, few):
    spec = f"torchvision:resnet18={r18_file}"
    result = nas.fit(RESNET18, few, epochs=1, batch_size=16, pretrained=spec, train_only="head", frozen_bn="train",
                       optimizer="adamw")
    start = build(result.genome)
    load_reference(reference(spec), result.genome, start)
    before, after = start.state_dict(), result.model.state_dict()
    params = {n for n, _ in start.named_parameters()}
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert {k for k in changed if k in params} == {"classifier.weight", "classifier.bias"}
    assert "stem.0.1.running_mean" in changed  # with --frozen-bn train, batch statistics still update
    assert [g["part"] for g in result.transfer["param_groups"]] == ["new", "new"]
    assert result.transfer["bn_layers_in_eval"] == 0


def test_freezing_works_from_the_genomes_own_weights(few):
    tiny = Genome.from_dict({"name": "tiny", "input": {"channels": 1, "size": 8}, "num_classes": 10,
                             "stem": [{"op": "conv", "out": 8, "kernel": 3}],
                             "stages": [{"cell": "basic", "out": 8}, {"cell": "basic", "out": 16, "stride": 2}],
                             "head": [{"op": "global_avgpool"}]})
    first = nas.fit(tiny, few, epochs=1, batch_size=16)
    weights = {k: v.clone() for k, v in first.model.state_dict().items()}
    tuned = nas.fit(tiny, few, epochs=1, batch_size=16, weights=weights, freeze="stages[0]")
    after = tuned.model.state_dict()
    assert all(torch.equal(weights[k], after[k]) for k in weights if k.startswith("stages.0."))
    stem = next(k for k in weights if k.startswith("stem.") and k.endswith("weight"))
    assert not torch.equal(weights[stem], after[stem])
    assert tuned.transfer["from"] == "a state_dict" and tuned.transfer["new"] == []


def test_part_paths_parse_and_name_what_is_wrong():
    model = build(RESNET18, device="meta")
    chosen = select(model, parse_paths("stem, stages[1:3], stages[-1][0], classifier"))
    assert list(chosen) == ["stem", "stages[1:3]", "stages[-1][0]", "classifier"]
    assert chosen["stem"] == ["stem.0.0.weight", "stem.0.1.weight", "stem.0.1.bias"]
    assert {n.split(".")[1] for n in chosen["stages[1:3]"]} == {"1", "2"}
    assert all(n.startswith("stages.3.0.") for n in chosen["stages[-1][0]"])
    for text, message in [("stages[4]", "out of range: there are 4 stages"), ("stages[2:2]", "selects none"),
                          ("stages[0][5]", "there are 2 cells in stages[0]"), ("head", "names no weights"),
                          ("stem[0]", "only stages are indexed"), ("trunk", "expected a part of the genome"),
                          ("stages[0:2][1]", "cells are chosen in one stage"), ("stages[]", "bad index")]:
        with pytest.raises(PathError, match=message.replace("[", r"\[")):
            select(model, parse_paths(text))
    squeeze = build(baselines.get("squeezenet1_0"), device="meta")
    with pytest.raises(PathError, match="classifier: none"):
        select(squeeze, parse_paths("classifier"))


def test_bad_requests_are_one_clear_error(r18_file, few):
    spec = reference(f"torchvision:resnet18={r18_file}")  # resolved once: a Reference is accepted too
    cases = [(dict(pretrained=spec, freeze="classifier"), FineTuneError, "classifier.weight starts afresh"),
             (dict(pretrained=spec, train_only="head", num_classes=1000), None, None),
             (dict(freeze="stem"), FineTuneError, "need starting weights"),
             (dict(pretrained=spec, weights={}), FineTuneError, "not both"),
             (dict(pretrained=spec, freeze="stem", train_only="head"), FineTuneError, "exclude each other"),
             (dict(pretrained=spec, pretrained_lr_scale=0), FineTuneError, "positive number"),
]
    for kwargs, error, message in cases:
        if kwargs.pop("num_classes", None):  # the reference's 1000 classes: the classifier is pretrained, not new
            genome = for_data(RESNET18, 1, 1000)
            data = DatasetSplits(few.name, few.train, few.val, few.test, 1000, few.scale, few.mean, few.std)
            with pytest.raises(FineTuneError, match="nothing left to train"):
                nas.fit(genome, data, epochs=1, batch_size=16, **kwargs)
            continue
        with pytest.raises(error, match=message):
            nas.fit(RESNET18, few, epochs=1, batch_size=16, **kwargs)
    other = Genome.from_dict({**RESNET18.to_dict(), "stages": RESNET18.to_dict()["stages"][:3]})
    with pytest.raises(PretrainedError, match="its layers do not match genome resnet18"):
        nas.fit(other, few, epochs=1, pretrained=spec)
    for text, message in [("torchvision:resnet34=" + str(r18_file), "not a state_dict of"),
                          ("torchvision:resnet81", "did you mean resnet18"), ("timm:resnet18:x", "for torchvision")]:
        with pytest.raises(PretrainedError, match=message):
            reference(text)


def test_torchvision_weights_come_from_the_torch_hub_cache_only(r18_file, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(PretrainedError) as missing:
        reference("torchvision:resnet18")
    line = str(missing.value)
    expected = tmp_path / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert "\n" not in line and str(expected) in line and "never downloads" in line
    expected.parent.mkdir(parents=True)
    expected.write_bytes(r18_file.read_bytes())
    found = reference("torchvision:resnet18")
    assert found.file == expected and found.source == "torchvision:resnet18:IMAGENET1K_V1"
    assert torch.equal(found.model.conv1.weight, torch.load(r18_file, weights_only=True)["conv1.weight"])


def test_timm_weights_come_from_the_hugging_face_cache_only(tmp_path, monkeypatch):
    import huggingface_hub.constants
    import safetensors.torch
    import timm

    hub = tmp_path / "hf"
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(PretrainedError, match=r"looked for model.safetensors or pytorch_model.bin of "
                                              r"timm/resnet18.a1_in1k in .*hf; .*resnet18_a1_0-d63eafa0.pth\)"):
        reference("timm:resnet18")
    snapshot = hub / "models--timm--resnet18.a1_in1k" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (hub / "models--timm--resnet18.a1_in1k" / "refs").mkdir()
    (hub / "models--timm--resnet18.a1_in1k" / "refs" / "main").write_text("0" * 40)
    state = timm.create_model("resnet18").state_dict()
    safetensors.torch.save_file(state, str(snapshot / "model.safetensors"))
    found = reference("timm:resnet18")
    assert found.source == "timm:resnet18.a1_in1k" and found.file == snapshot / "model.safetensors"
    assert torch.equal(found.model.conv1.weight, state["conv1.weight"])
    # and from a file: timm's resnet18 is the same network as torchvision's, so it transfers into the genome
    torch.save(state, tmp_path / "t18.pt")
    model = build(RESNET18)
    load_reference(reference(f"timm:resnet18={tmp_path / 't18.pt'}"), RESNET18, model)
    assert torch.equal(model.stem[0][0].weight, state["conv1.weight"])


@pytest.fixture(scope="module")
def small_npz(tmp_path_factory):
    digits = load_dataset("digits")
    path = tmp_path_factory.mktemp("data") / "small.npz"
    x, y = (digits.train.x[:, 0] * 15).numpy().astype(np.uint8), digits.train.y.numpy()
    np.savez(path, x=x[:50], y=y[:50], x_test=x[50:60], y_test=y[50:60])
    return path


def test_cli_fine_tunes_a_reference_and_a_missing_cache_is_one_line(r18_file, small_npz, tmp_path, monkeypatch,
                                                                    capsys):
    data = ["--dataset", f"npz:{small_npz}", "--val-fraction", "0.2"]
    out = tmp_path / "run"
    assert main(["train", "resnet18", *data, "--epochs", "1", "--batch-size", "16",
                 "--from", f"torchvision:resnet18={r18_file}", "--freeze", "stem,stages[0:3]",
                 "--pretrained-lr-scale", "0.1", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"starting from torchvision:resnet18={r18_file}\n" in printed
    assert "stem.0.0.weight summed over the reference's 3 input channels; frozen: stem, stages[0:3]" in printed
    assert "learning rate pretrained 0.005, new 0.05" in printed
    record = json.loads((out / "train.json").read_text())
    assert record["transfer"]["pretrained_lr_scale"] == 0.1 and record["transfer"]["layers_copied"] == 41
    # the written genome and weights are a plain genome's: they load as `--from WEIGHTS`, with --train-only
    again = tmp_path / "again"
    assert main(["train", str(out / "genome.yaml"), *data, "--epochs", "1",
                 "--batch-size", "16", "--from", str(out / "weights.pt"), "--train-only", "classifier",
                 "--out", str(again), "--quiet"]) == 0
    first, second = (torch.load(p / "weights.pt", weights_only=True) for p in (out, again))
    assert torch.equal(first["stages.3.0.ops.0.0.weight"], second["stages.3.0.ops.0.0.weight"])
    assert not torch.equal(first["classifier.weight"], second["classifier.weight"])
    capsys.readouterr()

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    started = time.perf_counter()
    assert main(["train", "resnet18", *data, "--from", "torchvision:resnet50",
                 "--out", str(tmp_path / "never")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "resnet50-11ad3fa6.pth" in err and "never downloads" in err
    assert not (tmp_path / "never").exists() and time.perf_counter() - started < 30


def test_a_stopped_fine_tuning_resumes_from_the_command_line_to_the_uninterrupted_result(tmp_path):
    tiny = Genome.from_dict({"name": "tiny", "input": {"channels": 1, "size": 8}, "num_classes": 10,
                             "stem": [{"op": "conv", "out": 8, "kernel": 3}],
                             "stages": [{"cell": "basic", "out": 8}, {"cell": "basic", "out": 16, "stride": 2}],
                             "head": [{"op": "global_avgpool"}]})
    start = nas.fit(tiny, "digits", epochs=1, batch_size=16, train_limit=64)
    torch.save(start.model.state_dict(), tmp_path / "start.pt")
    args = dict(epochs=2, batch_size=16, train_limit=64, weights=str(tmp_path / "start.pt"), freeze="stages[0]",
                pretrained_lr_scale=0.5)
    whole = nas.fit(tiny, "digits", out=tmp_path / "whole", **args)

    def stop_after_the_first_epoch(record):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        nas.fit(tiny, "digits", out=tmp_path / "stopped", progress=stop_after_the_first_epoch, **args)
    assert main(["train", "--resume", str(tmp_path / "stopped"), "--quiet"]) == 0
    resumed = torch.load(tmp_path / "stopped" / "weights.pt", weights_only=True)
    assert all(torch.equal(resumed[k], v) for k, v in whole.model.state_dict().items())
    record = json.loads((tmp_path / "stopped" / "train.json").read_text())
    assert record["applied"]["resumed_after_epoch"] == 1
    assert record["transfer"]["param_groups"] == whole.transfer["param_groups"]
    assert record["test_accuracy"] == whole.test_accuracy
