"""Training a child network: settings, the loop, NaN detection, exact resume from a checkpoint, caps,
failure reasons, and the Ray Tune trainable itself (a real Tuner on the session's Ray)."""
import math
import tempfile
from pathlib import Path

import pytest
import torch
from ray import tune

import nas
from nas.compiler import build
from nas.engine.checkpoint_report import PREFIX, host_tag
from nas.genome import Genome
from nas.train import loop
from nas.train.checkpointing import TrainingState, load_weights
from nas.train.datasets import load_dataset
from nas.train.failures import TrialFailure, failure_reason
from nas.train.settings import SettingsError, TrainSettings
from nas.train.trainable import check_caps, train_genome
from tests.test_checkpoint_report import dead_pid

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny networks: faster on one thread, more so on a busy machine

TINY = {
    "name": "tiny",
    "input": {"channels": 1, "size": 8},
    "num_classes": 10,
    "stem": [{"op": "conv", "out": 8, "kernel": 3}],
    "stages": [{"cell": "basic", "out": 8}, {"cell": "basic", "out": 16, "stride": 2}],
    "head": [{"op": "global_avgpool"}],
}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


@pytest.fixture(scope="module")
def few_digits():
    return load_dataset("digits", train_limit=200)


def fresh(settings: TrainSettings, data, seed: int = 0):
    torch.manual_seed(seed)
    model = build(Genome.from_dict(TINY), num_classes=10, in_channels=1, input_size=8)
    optimizer = loop.make_optimizer(model, settings)
    scheduler = loop.make_scheduler(optimizer, settings, loop.steps_per_epoch(len(data.train), settings.batch_size))
    precision = loop.Precision.choose(settings.precision, torch.device("cpu"))
    return TrainingState(model, optimizer, scheduler, precision.scaler(), torch.Generator().manual_seed(seed)), precision


def epoch(state, precision, settings, data, number, channels_last=False):
    return loop.train_epoch(state.model, data, data.train, state.optimizer, state.scheduler, state.scaler, precision,
                            settings, state.generator, number, channels_last)


def test_settings_validate_and_default_by_optimizer():
    assert TrainSettings().learning_rate == 0.05 and TrainSettings(optimizer="adamw").learning_rate == 0.002
    assert TrainSettings(lr=0.1).learning_rate == 0.1
    with pytest.raises(SettingsError, match="unknown training setting 'lr_max'"):
        TrainSettings.from_dict({"lr_max": 1})
    with pytest.raises(SettingsError, match="optimizer must be one of sgd, adamw"):
        TrainSettings(optimizer="lbfgs")
    with pytest.raises(SettingsError, match="epochs must be a positive integer"):
        TrainSettings(epochs=0)
    every_two = TrainSettings(epochs=5, checkpoint_every=2)
    assert [e for e in range(1, 6) if every_two.checkpoint_due(e)] == [2, 4, 5]
    assert [e for e in range(1, 4) if TrainSettings(epochs=3, checkpoint_every=0).checkpoint_due(e)] == [3]
    assert TrainSettings.from_dict(TrainSettings(lr=0.3).to_dict()) == TrainSettings(lr=0.3)


def test_training_learns_and_batches_never_fall_below_the_batch_size(digits):
    sizes = [len(b) for b in loop.batches(100, 32, torch.Generator().manual_seed(0))]
    assert sizes == [34, 33, 33] and sum(sizes) == 100
    settings = TrainSettings(epochs=2, batch_size=32)
    state, precision = fresh(settings, digits)
    losses = [epoch(state, precision, settings, digits, e) for e in (1, 2)]
    assert losses[1] < losses[0]
    assert loop.evaluate(state.model, digits, digits.val, precision, 64) > 0.5  # 10 classes: chance is 0.1
    # the cosine schedule ends at zero after the last step
    assert state.optimizer.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-9)


def test_a_huge_learning_rate_fails_with_nan_at_the_epoch(few_digits):
    settings = TrainSettings(epochs=2, lr=1e12)
    state, precision = fresh(settings, few_digits)
    with pytest.raises(TrialFailure, match=r"^loss became NaN at epoch 1$"):
        epoch(state, precision, settings, few_digits, 1)


def test_resuming_from_a_checkpoint_continues_exactly(few_digits, tmp_path):
    settings = TrainSettings(epochs=2, batch_size=32, optimizer="sgd", label_smoothing=0.1)
    straight, precision = fresh(settings, few_digits)
    straight_losses = [epoch(straight, precision, settings, few_digits, e) for e in (1, 2)]

    first, _ = fresh(settings, few_digits)
    loss_1 = epoch(first, precision, settings, few_digits, 1)
    first.save(tmp_path, 1, {"train_loss": loss_1})
    torch.manual_seed(12345)  # the resumed run must not depend on the process's random state
    resumed, _ = fresh(settings, few_digits, seed=99)  # different initial weights and batch order: all overwritten
    done, metrics = resumed.load(tmp_path)
    assert done == 1 and metrics == {"train_loss": loss_1}
    loss_2 = epoch(resumed, precision, settings, few_digits, 2)
    assert [loss_1, loss_2] == straight_losses
    for (name, a), (_, b) in zip(straight.model.state_dict().items(), resumed.model.state_dict().items()):
        assert torch.equal(a, b), name
    assert set(load_weights(tmp_path)) == set(straight.model.state_dict())


def test_augmented_training_is_seeded_and_resumes_exactly(few_digits, tmp_path):
    settings = TrainSettings(epochs=2, batch_size=32, augment="crop,flip,cutout")
    assert loop.augmentation(settings, few_digits).describe() == "crop=1,flip,cutout=4"
    straight, precision = fresh(settings, few_digits)
    straight_losses = [epoch(straight, precision, settings, few_digits, e) for e in (1, 2)]
    first, _ = fresh(settings, few_digits)
    loss_1 = epoch(first, precision, settings, few_digits, 1)
    first.save(tmp_path, 1, {})
    resumed, _ = fresh(settings, few_digits, seed=99)
    resumed.load(tmp_path)
    assert [loss_1, epoch(resumed, precision, settings, few_digits, 2)] == straight_losses
    plain_settings = TrainSettings(epochs=2, batch_size=32, augment="none")
    plain, _ = fresh(plain_settings, few_digits)
    assert epoch(plain, precision, plain_settings, few_digits, 1) != straight_losses[0]  # augmentation changed the inputs


def test_channels_last_and_precision_choice(few_digits):
    assert loop.Precision.choose("auto", torch.device("cpu")).name == "fp32"
    assert loop.Precision.choose("bf16", torch.device("cuda")).dtype == torch.bfloat16
    assert loop.Precision.choose("fp16", torch.device("cuda")).name == "fp16"
    assert loop.Precision.choose("off", torch.device("cuda")).dtype is None
    settings = TrainSettings(epochs=1, channels_last=True)
    state, precision = fresh(settings, few_digits)
    state.model.to(memory_format=torch.channels_last)
    assert math.isfinite(epoch(state, precision, settings, few_digits, 1, channels_last=True))


def test_caps_and_failure_reasons():
    check_caps(1000, 10**6, TrainSettings(max_params=1000, max_flops=10**6))
    with pytest.raises(TrialFailure, match="genome too big: 1,001 parameters > max_params 1,000"):
        check_caps(1001, 1, TrainSettings(max_params=1000))
    with pytest.raises(TrialFailure, match="FLOPs per image > max_flops"):
        check_caps(1, 10**9, TrainSettings(max_flops=10**6))
    assert failure_reason(TrialFailure("loss became NaN at epoch 3")) == "loss became NaN at epoch 3"
    assert failure_reason(ValueError("bad\nthing")) == "ValueError: bad thing"
    try:
        try:
            raise KeyError("inner")
        except KeyError as error:
            raise RuntimeError("outer") from error
    except RuntimeError as error:
        assert failure_reason(error) == "KeyError: 'inner'"
    assert failure_reason("Traceback...\n  File x\nnas.train.failures.TrialFailure: out of memory\n") == \
        "nas.train.failures.TrialFailure: out of memory"
    assert failure_reason(None) == ""


def test_trainable_reports_every_epoch_checkpoints_and_fails_alone(ray_session, few_digits, tmp_path):
    genome = Genome.from_dict(TINY)
    good = {"genome": TINY, "fingerprint": genome.fingerprint(), "train": {"epochs": 2, "checkpoint_every": 1}}
    broken = {"genome": {**TINY, "stages": []}, "train": {"epochs": 1}}

    def case_trainable(config, data):  # nested: Ray ships it by value (the test module is not importable there)
        train_genome(config["case"], data)

    trainable = tune.with_resources(tune.with_parameters(case_trainable, data=few_digits), {"cpu": 1})
    # the checkpoint scratch folder a killed trial worker left behind: the next trial's process removes it
    killed = Path(tempfile.gettempdir()) / f"{PREFIX}{host_tag()}-{dead_pid()}-abc_12"
    killed.mkdir()
    (killed / "state.pt").write_bytes(b"weights")
    results = tune.Tuner(
        trainable,
        param_space={"case": tune.grid_search([good, broken])},
        tune_config=tune.TuneConfig(reuse_actors=True, max_concurrent_trials=2),
        run_config=tune.RunConfig(name="trainable", storage_path=str(tmp_path), verbose=0,
                                  failure_config=tune.FailureConfig(max_failures=0, fail_fast=False)),
    ).fit()
    assert len(results) == 2
    names = {"good": good, "broken": broken}
    by_case = {name: next(r for r in results if r.config["case"] == case) for name, case in names.items()}
    ok = by_case["good"]
    assert ok.error is None
    history = ok.metrics_dataframe
    assert list(history["epoch"]) == [1, 2]
    for key in ("val_accuracy", "train_loss", "params", "flops", "epoch", "epoch_time", "node_ip", "node_id"):
        assert key in ok.metrics
    cost = nas.summarize(genome, num_classes=10, in_channels=1, input_size=8)
    assert ok.metrics["params"] == cost.params and ok.metrics["flops"] == cost.flops
    assert 0.0 <= ok.metrics["val_accuracy"] <= 1.0
    assert ok.metrics["train_time"] >= ok.metrics["epoch_time"] > 0
    assert ok.metrics["cpu_s"] > 0 and ok.metrics["gpu_s"] == 0.0  # CPU seconds of the trial; no GPU here
    assert list(history["cpu_s"])[1] > list(history["cpu_s"])[0]  # cumulative over the epochs
    assert ok.metrics["augment"] == "none"  # digits' default
    assert ok.checkpoint is not None
    assert not killed.exists()
    with ok.checkpoint.as_directory() as directory:
        weights = load_weights(directory)
    build(genome, num_classes=10, in_channels=1, input_size=8).load_state_dict(weights)  # strict
    # a trainable that raised: its reason as Tune recorded it. A TrialFailure's own message (a genome over the
    # caps) reaches Tune's errors in test_search_run's failing trial, and a loss that blew up raises one
    # (test_a_huge_learning_rate_fails_with_nan_at_the_epoch); each failed trial costs Tune a new worker process
    assert failure_reason(by_case["broken"].error).startswith("GenomeError: stages")
