"""`nas train` / `nas.train`: a genome trained with a search trial's recipe, fine-tuned from weights, its
folder written without touching the user's files."""
import json

import pytest
import torch

import nas
from nas.cli import main
from nas.genome import Genome
from nas.train.datasets import load_dataset

TINY = """
name: tiny
input: {channels: 3, size: 32}
num_classes: 1000
stem: [{op: conv, out: 8, kernel: 3}]
stages:
  - {cell: basic, out: 8}
  - {cell: basic, out: 16, stride: 2}
head: [{op: global_avgpool}]
"""
FAST = ["--dataset", "digits", "--train-limit", "200", "--batch-size", "32"]


@pytest.fixture()
def genome_file(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY)
    return path


def test_nas_train_writes_a_new_folder_and_fine_tunes_from_it(genome_file, tmp_path, capsys):
    out = tmp_path / "trained"
    assert main(["train", str(genome_file), *FAST, "--epochs", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "epoch 2/2" in printed and "test accuracy" in printed and str(out) in printed
    assert sorted(p.name for p in out.iterdir()) == ["genome.yaml", "run.json", "train.json", "weights.pt"]
    record = json.loads((out / "train.json").read_text())
    assert len(record["history"]) == 2 and 0.0 <= record["test_accuracy"] <= 1.0
    assert record["settings"]["epochs"] == 2 and record["settings"]["optimizer"] == "sgd"
    # the written genome is for the data (8x8 grey digits, 10 classes) and the weights are its network's
    genome = Genome.load(out / "genome.yaml")
    assert (genome.input.channels, genome.input.size, genome.num_classes) == (1, (8, 8), 10)
    nas.build(genome).load_state_dict(torch.load(out / "weights.pt", weights_only=True))

    # fine-tune from those weights: all of them load (nothing started afresh)
    again = tmp_path / "tuned"
    assert main(["train", str(out / "genome.yaml"), *FAST, "--epochs", "1", "--lr", "0.01",
                 "--from", str(out / "weights.pt"), "--out", str(again), "--quiet"]) == 0
    assert "started afresh" not in capsys.readouterr().out
    assert json.loads((again / "train.json").read_text())["settings"]["lr"] == 0.01


def test_same_recipe_and_seed_give_the_same_network(genome_file):
    data = load_dataset("digits", train_limit=200)
    genome = Genome.load(genome_file)
    first = nas.fit(genome, data, epochs=1)
    second = nas.fit(genome, data, epochs=1)
    assert first.test_accuracy == second.test_accuracy
    assert first.history[0]["train_loss"] == second.history[0]["train_loss"]
    other = nas.fit(genome, data, epochs=1, seed=1)
    assert other.history[0]["train_loss"] != first.history[0]["train_loss"]


def test_fine_tuning_starts_from_the_given_weights(genome_file):
    data = load_dataset("digits", train_limit=200)
    genome = Genome.load(genome_file)
    first = nas.fit(genome, data, epochs=1)
    weights = {k: v.clone() for k, v in first.model.state_dict().items()}
    still = nas.fit(genome, data, epochs=1, lr=0.0, weights=weights)  # a learning rate of 0: nothing moves
    for name, parameter in still.model.named_parameters():
        assert torch.equal(parameter.detach(), weights[name]), name
    assert still.test_accuracy == pytest.approx(first.test_accuracy, abs=0.05)  # batch-norm statistics move a bit


def test_fine_tuning_on_other_classes_restarts_only_the_classifier(genome_file):
    data = load_dataset("digits", train_limit=200)
    genome = Genome.load(genome_file)
    five = Genome.from_dict({**genome.to_dict(), "num_classes": 5, "input": {"channels": 1, "size": 8}})
    weights = nas.build(five).state_dict()
    result = nas.fit(genome, data, epochs=1, weights=weights)
    assert result.reinitialised and all("weight" in n or "bias" in n for n in result.reinitialised)
    assert len(result.reinitialised) <= 2


@pytest.mark.parametrize("case", ["not_empty", "is_file", "bad_weights", "bad_dataset", "bad_lr"])
def test_bad_input_is_one_line_and_leaves_the_users_files_alone(case, genome_file, tmp_path, capsys):
    out = tmp_path / "out"
    extra = []
    if case == "not_empty":
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    elif case == "is_file":
        out.write_text("mine")
    elif case == "bad_weights":
        (tmp_path / "w.pt").write_text("junk")
        extra = ["--from", str(tmp_path / "w.pt")]
    elif case == "bad_dataset":
        extra = ["--dataset", "nosuchdata"]
    else:
        extra = ["--lr", "-1"]
    code = main(["train", str(genome_file), *FAST, "--epochs", "1", "--out", str(out), *extra])
    error = capsys.readouterr().err.strip()
    assert code == 2 and error.count("\n") == 0 and error.startswith("nas train: error:"), error
    if case == "not_empty":
        assert [p.name for p in out.iterdir()] == ["notes.txt"]
    elif case == "is_file":
        assert out.read_text() == "mine"
    else:
        assert not out.exists()  # nothing written for a command that could not start
