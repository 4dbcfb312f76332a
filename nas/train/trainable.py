"""The Ray Tune trainable: train one genome and report after every epoch.

    trainable = tune.with_parameters(train_genome, data=load_dataset("digits"))

`config` is a searcher's suggestion ``{"genome", "sample", "fingerprint"}`` plus ``"train"`` (the
`TrainSettings` fields). The genome is built for the data set's channels, classes and input size,
trained for `epochs`, and after every epoch the trial reports

    val_accuracy (0..1), train_loss, params, flops, epoch, epoch_time,

plus build_time, train_time (the trial's own compute so far: build and epochs), cpu_s and gpu_s (its
cost so far: CPU seconds of the trial's process, GPU seconds = wall time x the GPU fraction it holds;
both carried over a resume), node_ip, node_id, device, precision, augment (the policy applied) (and test_accuracy after the last epoch when the settings say `test_at_end`,
as `nas compare` does; a search never looks at the test split), and (every `checkpoint_every`
epochs and after the last) checkpoints its whole training state, so a stopped trial resumes mid-way. Failures end the trial with a one-line reason:
a loss that is no longer finite ("loss became NaN at epoch 2"), out of memory, a genome over the
caps (checked on the meta device before any allocation), or any other exception.
"""
from __future__ import annotations

import time
from typing import Any

import ray
import torch
from ray import tune

from nas.compiler import build
from nas.engine.board import trial_progress
from nas.engine.checkpoint_report import report_with_checkpoint
from nas.engine.stopping import stops_quietly
from nas.genome import Genome
from nas.summary import summary
from nas.train.checkpointing import TrainingState, read_state
from nas.train.datasets import DatasetSplits
from nas.train.failures import TrialFailure, is_out_of_memory
from nas.train.loop import (Precision, augmentation, evaluate, make_optimizer, make_scheduler, steps_per_epoch,
                            to_device, train_epoch, trial_seed)
from nas.train.loop import tagged
from nas.train.regularizers import Extras
from nas.train.settings import TrainSettings
from nas.train.speed import resolve_channels_last


def placement() -> dict[str, Any]:
    """Where this trial runs: node, device, and the CPUs Ray gave it (torch uses that many threads)."""
    context = ray.get_runtime_context()
    assigned = context.get_assigned_resources()
    cuda = bool(assigned.get("GPU")) and torch.cuda.is_available()
    return {
        "node_ip": ray.util.get_node_ip_address(),
        "node_id": context.get_node_id(),
        "device": torch.device("cuda", 0) if cuda else torch.device("cpu"),  # Ray sets CUDA_VISIBLE_DEVICES
        "threads": max(1, int(assigned.get("CPU", 1) or 1)),
        "gpu_fraction": float(assigned.get("GPU", 0.0) or 0.0) if cuda else 0.0,
    }


class CostClock:
    """What a trial has cost so far: CPU seconds of this process (every thread; `time.process_time`)
    and GPU seconds (wall time x the fraction of a GPU the trial holds), plus what earlier runs of the
    same trial spent before its checkpoint (`carry`)."""

    def __init__(self, gpu_fraction: float):
        self.gpu_fraction = gpu_fraction
        self.cpu_before = self.gpu_before = 0.0
        self.cpu_started, self.wall_started = time.process_time(), time.perf_counter()

    def carry(self, before: dict[str, Any]) -> None:
        """Add the cost a checkpoint's metrics record (a resumed trial's earlier runs)."""
        self.cpu_before += float(before.get("cpu_s") or 0.0)
        self.gpu_before += float(before.get("gpu_s") or 0.0)

    def read(self) -> dict[str, float]:
        cpu = self.cpu_before + time.process_time() - self.cpu_started
        gpu = self.gpu_before + (time.perf_counter() - self.wall_started) * self.gpu_fraction
        return {"cpu_s": cpu, "gpu_s": gpu}


def check_caps(params: int, flops: int, settings: TrainSettings) -> None:
    reason = settings.over_caps(params, flops)
    if reason is not None:
        raise TrialFailure(reason)


@stops_quietly  # the run was interrupted (nas.engine.stopping): the trial ends where it is
def train_genome(config: dict[str, Any], data: DatasetSplits, board: str | None = None) -> None:
    """Train one genome, reporting every epoch (and with `board`, the name of the run's progress board,
    posting its in-epoch progress there and ending early at the run's stop flag: nas.engine.board, .stopping)."""
    started, started_at = time.perf_counter(), time.time()
    settings = TrainSettings.from_dict(config.get("train"))
    where = placement()
    clock = CostClock(where["gpu_fraction"])
    torch.set_num_threads(where["threads"])
    device: torch.device = where["device"]
    genome = Genome.from_dict(config["genome"])
    fingerprint = config.get("fingerprint") or genome.fingerprint()
    cost = summary(genome, num_classes=data.num_classes, in_channels=data.channels, input_size=data.size)
    check_caps(cost.params, cost.flops, settings)

    torch.manual_seed(trial_seed(settings.seed, fingerprint))
    generator = torch.Generator().manual_seed(trial_seed(settings.seed + 1, fingerprint))
    precision = Precision.choose(settings.precision, device)
    channels_last = resolve_channels_last(settings.channels_last, device)
    try:
        model = build(genome, num_classes=data.num_classes, in_channels=data.channels, input_size=data.size)
        model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
        train, val = to_device(data.train, device), to_device(data.val, device)
    except Exception as error:
        if is_out_of_memory(error):
            raise TrialFailure(f"out of memory building the network ({cost.params:,} parameters) on {device}") from None
        raise
    extras = Extras.create(model, genome, settings, data.num_classes, data.channels, data.size, device)
    optimizer = make_optimizer(extras.trained(), settings)
    scheduler = make_scheduler(optimizer, settings, steps_per_epoch(len(train), settings.batch_size))
    state = TrainingState(model, optimizer, scheduler, precision.scaler(), generator, extras)
    evaluated = extras.evaluated()  # the weights' moving average where the settings keep one
    fixed = {"params": cost.params, "flops": cost.flops, "started_at": started_at,
             "node_ip": where["node_ip"], "node_id": where["node_id"],
             "device": str(device), "precision": precision.name,
             "augment": augmentation(settings, data).describe(), "evaluator": "train"}

    done, last, spent = 0, None, 0.0
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as directory:
            saved, _ = read_state(directory)
            if saved is not None:  # else damaged (the driver says so): the trial starts again from scratch
                done, last = state.restore(saved)
        if last is not None:
            spent = float(last.get("train_time", 0.0))
            clock.carry(last)
    build_time = time.perf_counter() - started
    spent += build_time
    if done >= settings.epochs:
        # finished, but stopped before Tune recorded it: report the final metrics again, unchanged (no training)
        tune.report(last)
        return

    # the batch hook: in-epoch progress to the run's board, and the run's stop flag (None without a board name)
    live = trial_progress(board, settings, len(train), len(val), done)
    for epoch in range(done + 1, settings.epochs + 1):
        epoch_started = time.perf_counter()
        try:
            loss = train_epoch(model, data, train, optimizer, scheduler, state.scaler, precision, settings,
                               generator, epoch, channels_last, extras=extras, on_batch=tagged(live, "train", epoch))
            accuracy = evaluate(evaluated, data, val, precision, settings.eval_batch_size, channels_last,
                                on_batch=tagged(live, "val", epoch))
        except TrialFailure:
            raise
        except Exception as error:
            if is_out_of_memory(error):
                raise TrialFailure(f"out of memory at epoch {epoch} (batch size {settings.batch_size}, "
                                   f"{cost.params:,} parameters) on {device}") from None
            raise
        epoch_time = time.perf_counter() - epoch_started
        spent += epoch_time
        metrics = {"val_accuracy": accuracy, "train_loss": loss, "epoch": epoch, "epoch_time": epoch_time,
                   "reported_at": time.time(),
                   "build_time": build_time, "train_time": spent, "resumed_from": done, **fixed}
        if settings.test_at_end and epoch == settings.epochs:
            metrics["test_accuracy"] = evaluate(evaluated, data, to_device(data.test, device), precision,
                                                settings.eval_batch_size, channels_last)
        metrics.update(clock.read())
        if settings.checkpoint_due(epoch):
            report_with_checkpoint(metrics, lambda folder: state.save(folder, epoch, metrics))
        else:
            tune.report(metrics)


def tune_trainable(data: DatasetSplits, resources: dict[str, float], board: str | None = None):
    """`train_genome` as a Ray Tune trainable: `data` put in the object store once and shared by every
    trial, `resources` (e.g. ``{"cpu": 1, "gpu": 0.25}``) reserved for each; `board`: the run's board name
    (nas.engine.board: in-epoch progress, the stop flag; None: neither)."""
    return tune.with_resources(tune.with_parameters(train_genome, data=data, board=board), resources)

