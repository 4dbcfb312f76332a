"""Speed settings of training: the measured defaults, channels-last equal to NCHW, data-parallel training on
CPU cores (nas.train.parallel), and benchmarks/train_speed.py in a tiny mode."""
import argparse
import dataclasses

import benchmark_scripts
import pytest
import torch

import nas
from nas.compiler import build
from nas.errors import NasError
from nas.genome import Genome
from nas.train import loop, parallel
from nas.train.datasets import load_dataset
from nas.train.settings import TrainSettings
from nas.train.speed import resolve_channels_last

TINY = {
    "name": "tiny",
    "input": {"channels": 1, "size": 8},
    "num_classes": 10,
    "stem": [{"op": "conv", "out": 8, "kernel": 3}],
    "stages": [{"cell": "mbconv", "out": 8, "params": {"expansion": 2}}, {"cell": "basic", "out": 16, "stride": 2}],
    "head": [{"op": "global_avgpool"}],
}


@pytest.fixture(scope="module")
def few_digits():
    return load_dataset("digits", train_limit=400)


def test_defaults_are_the_measured_ones():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_channels_last(None, cpu) and resolve_channels_last(None, cuda)  # channels-last on both
    assert not resolve_channels_last(False, cpu) and resolve_channels_last(True, cpu)  # an explicit setting wins
    assert loop.Precision.choose("auto", cpu).dtype is None  # fp32 on CPUs
    assert TrainSettings().eval_batch_size == 256 and TrainSettings().batch_size == 32


def test_auto_workers(monkeypatch):
    monkeypatch.setattr(parallel, "cores", lambda: 2)
    settings = TrainSettings(epochs=1)
    cpu = torch.device("cpu")
    assert parallel.auto_workers(settings, 54_000, cpu) == 2
    assert parallel.auto_workers(settings, 1_000, cpu) == 1  # too little work for the workers' start-up
    assert parallel.auto_workers(settings, 54_000, torch.device("cuda")) == 1
    assert parallel.auto_workers(TrainSettings(epochs=1, batch_size=15), 54_000, cpu) == 1  # odd batch
    monkeypatch.setattr(parallel, "cores", lambda: 1)
    assert parallel.auto_workers(settings, 54_000, cpu) == 1


def epoch_losses(data, channels_last: bool, steps: int = 4) -> list[float]:
    torch.manual_seed(0)
    model = build(Genome.from_dict(TINY), num_classes=10, in_channels=1, input_size=8)
    model = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
    settings = TrainSettings(batch_size=16, augment="none", epochs=2)
    optimizer = loop.make_optimizer(model, settings)
    scheduler = loop.make_scheduler(optimizer, settings, steps)
    precision = loop.Precision.choose("auto", torch.device("cpu"))
    generator = torch.Generator().manual_seed(1)
    part = dataclasses.replace(data.train, x=data.train.x[:16 * steps], y=data.train.y[:16 * steps])
    return [loop.train_epoch(model, data, part, optimizer, scheduler, precision.scaler(), precision, settings,
                             generator, epoch, channels_last) for epoch in (1, 2)]


def test_channels_last_trains_as_nchw(few_digits):
    nchw, last = epoch_losses(few_digits, False), epoch_losses(few_digits, True)
    assert last == pytest.approx(nchw, rel=1e-4)


def test_shards_are_equal_and_disjoint():
    split = load_dataset("digits", train_limit=101).train
    order = torch.randperm(len(split), generator=torch.Generator().manual_seed(0))
    a, b = parallel.shard(split, 0, 2, order), parallel.shard(split, 1, 2, order)
    assert len(a) == len(b) == 50
    assert torch.equal(a.y, split.y[order[:100][0::2]]) and torch.equal(b.y, split.y[order[:100][1::2]])


def test_two_workers_train_digits_deterministically(few_digits):
    genome = Genome.from_dict(TINY)
    runs = [nas.fit(genome, few_digits, epochs=3, workers=2, lr=0.1) for _ in range(2)]
    one = nas.fit(genome, few_digits, epochs=3, workers=1, lr=0.1)
    assert [h["train_loss"] for h in runs[0].history] == [h["train_loss"] for h in runs[1].history]
    assert runs[0].test_accuracy == runs[1].test_accuracy
    first, second = runs[0].model.state_dict(), runs[1].model.state_dict()
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert len(runs[0].history) == 3 and runs[0].history[-1]["train_loss"] < runs[0].history[0]["train_loss"]
    assert runs[0].val_accuracy > 0.2  # chance is 0.1; one process reaches 0.27 here
    assert abs(runs[0].val_accuracy - one.val_accuracy) < 0.1 and abs(runs[0].test_accuracy - one.test_accuracy) < 0.1
    assert not runs[0].model.training


def test_refusals_are_one_line(few_digits, monkeypatch):
    genome = Genome.from_dict(TINY)
    with pytest.raises(NasError, match="batch size \\(15\\) must be divisible"):
        nas.fit(genome, few_digits, epochs=1, workers=2, batch_size=15)
    with pytest.raises(NasError, match="workers must be a positive integer"):
        nas.fit(genome, few_digits, epochs=1, workers=0)
    with pytest.raises(NasError, match="runs on CPU cores"):
        parallel.check(TrainSettings(), 2, torch.device("cuda"))
    monkeypatch.setattr(parallel, "SUPPORTED", parallel.SUPPORTED - {"label_smoothing"})
    with pytest.raises(NasError, match="'label_smoothing' is not supported"):
        parallel.check(TrainSettings(label_smoothing=0.1), 2, torch.device("cpu"))
    parallel.check(TrainSettings(), 2, torch.device("cpu"))  # at its default, an unknown setting is fine


def test_the_workers_argument():
    from nas.cli.train import workers_argument

    assert workers_argument("auto") == "auto" and workers_argument("2") == 2
    for bad in ("0", "two", "-1"):
        with pytest.raises(argparse.ArgumentTypeError):
            workers_argument(bad)


def test_the_benchmark_runs_in_a_tiny_mode(capsys):
    bench = benchmark_scripts.load("train_speed")
    assert bench.main(["--dataset", "digits", "--models", "small", "--parts", "loop,layout,accuracy", "--batches", "1",
                       "--repeats", "1", "--batch", "8", "--accuracy-train", "64"]) == 0
    printed = capsys.readouterr().out
    assert "loop / plain time (channels-last)" in printed and "channels-last bf16 autocast" in printed
    assert printed.count("val accuracy") == 4  # fp32, bf16, batch 16 and 32
    with pytest.raises(SystemExit):
        bench.main(["--parts", "speed"])
