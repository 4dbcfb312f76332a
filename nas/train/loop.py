"""The training loop's parts, free of Ray: device and precision, optimizer, schedule, one epoch, evaluation.

Data are whole uint8 tensors already on the device; a batch is an index slice, normalised (and in
training augmented, nas.train.augment) on the fly.
"""
from __future__ import annotations

import contextlib
import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from nas.train.augment import Augmentation
from nas.train.datasets import DatasetSplits, Split
from nas.train.failures import TrialFailure
from nas.train.regularizers import Extras, warmed_up
from nas.train.settings import TrainSettings


def trial_seed(seed: int, fingerprint: str) -> int:
    """A seed for one architecture's training: the search seed mixed with the genome's fingerprint."""
    return int(hashlib.sha256(f"{seed}:{fingerprint}".encode()).hexdigest()[:15], 16)


@dataclass(frozen=True)
class Precision:
    """Autocast dtype (None: full precision) and whether fp16 needs a gradient scaler."""

    dtype: torch.dtype | None
    device_type: str

    @staticmethod
    def choose(setting: str, device: torch.device) -> "Precision":
        if device.type != "cuda" or setting == "off":
            return Precision(None, device.type)  # autocast on CPUs is slower than fp32 for these convs
        if setting == "auto":
            setting = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return Precision(torch.bfloat16 if setting == "bf16" else torch.float16, device.type)

    @property
    def name(self) -> str:
        return {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[self.dtype]

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def scaler(self) -> torch.amp.GradScaler:
        return torch.amp.GradScaler(self.device_type, enabled=self.dtype == torch.float16)


def _sgd(params, settings: TrainSettings) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=settings.learning_rate, momentum=settings.momentum,
                           nesterov=settings.nesterov and settings.momentum > 0, weight_decay=settings.decay)


def _adamw(params, settings: TrainSettings) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=settings.learning_rate, weight_decay=settings.decay)


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"sgd": _sgd, "adamw": _adamw}


def make_optimizer(model: nn.Module, settings: TrainSettings) -> torch.optim.Optimizer:
    """Weight decay on weights only (not on biases and norm scales, which are 1-D), unless the settings'
    `decay_norm_bias` says every parameter (as DARTS)."""
    decay = [p for p in model.parameters() if p.requires_grad and (p.dim() > 1 or settings.decay_norm_bias)]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.dim() <= 1 and not settings.decay_norm_bias]
    groups = [{"params": decay}, {"params": no_decay, "weight_decay": 0.0}]
    return OPTIMIZERS[settings.optimizer]([g for g in groups if g["params"]], settings)


SCHEDULES: dict[str, Callable[[int], Callable[[int], float]]] = {
    "cosine": lambda total: lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total)),
    "constant": lambda total: lambda step: 1.0,
}


def make_scheduler(optimizer: torch.optim.Optimizer, settings: TrainSettings, steps_per_epoch: int):
    """A per-step schedule over all epochs (cosine: from the learning rate down to 0), after a linear
    warm-up over the settings' `warmup_epochs` (nas.train.regularizers.warmed_up)."""
    total = max(1, settings.epochs * steps_per_epoch)
    warmup = min(settings.warmup_epochs * steps_per_epoch, total - 1)
    factor = warmed_up(SCHEDULES[settings.schedule](max(1, total - warmup)), warmup, total)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def steps_per_epoch(train_size: int, batch_size: int) -> int:
    return max(1, train_size // batch_size)


def batches(size: int, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """A shuffled permutation cut into `size // batch_size` near-equal batches (none smaller than the
    batch size, so batch norm never sees a batch of one)."""
    order = torch.randperm(size, generator=generator)
    return torch.tensor_split(order, steps_per_epoch(size, batch_size))


def augmentation(settings: TrainSettings, data: DatasetSplits) -> Augmentation:
    """The training recipe's augmentation for this data set (``auto``: the data set's default)."""
    return Augmentation.resolve(settings.augment, data.augment, min(data.input_shape[1:]))


def inputs(data: DatasetSplits, x: torch.Tensor, channels_last: bool,
           augment: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:
    x = data.normalize(x)
    if augment is not None:
        x = augment(x)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


# `on_batch(done, total, loss)`: called after each batch of `train_epoch` and `evaluate` with the batches
# done and the total (done ends at total); `loss` is a function returning the mean training loss so far
# (it reads the running total from the device, a sync: call it at a display's rate, not per batch), or
# None while evaluating. The loop itself adds no device sync for it.
BatchHook = Callable[[int, int, Callable[[], float] | None], None]


def tagged(hook: Callable[..., None] | None, *tags) -> BatchHook | None:
    """A `BatchHook` that calls ``hook(*tags, done, total, loss)`` (e.g. tags: phase and epoch); None for None."""
    if hook is None:
        return None
    return lambda done, total, loss: hook(*tags, done, total, loss)


def train_epoch(model: nn.Module, data: DatasetSplits, train: Split, optimizer: torch.optim.Optimizer,
                scheduler, scaler: torch.amp.GradScaler, precision: Precision, settings: TrainSettings,
                generator: torch.Generator, epoch: int, channels_last: bool = False,
                extras: Extras | None = None, on_batch: BatchHook | None = None) -> float:
    """One pass over `train` (tensors on the model's device); the mean training loss (of the network's
    own output; `extras` add drop-path, an auxiliary loss, gradient clipping and EMA updates).

    Raises TrialFailure when the loss stops being finite ("loss became NaN at epoch e").
    `on_batch` (see `BatchHook`) is told of every batch done.
    """
    model.train()
    criterion = nn.CrossEntropyLoss(label_smoothing=settings.label_smoothing)
    policy = augmentation(settings, data)
    augment = (lambda x: policy(x, generator)) if policy.active else None
    total = torch.zeros((), device=train.x.device)
    count = 0
    if extras is not None:
        extras.start_epoch(epoch)
    order = batches(len(train), settings.batch_size, generator)
    running = (lambda: float(total) / max(1, count)) if on_batch is not None else None
    for done, index in enumerate(order, 1):
        index = index.to(train.x.device)
        x, y = inputs(data, train.x[index], channels_last, augment), train.y[index]
        with precision.autocast():
            loss = criterion(model(x), y)
            optimized = extras.loss(loss, criterion, y) if extras is not None else loss
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(optimized).backward()
        if extras is not None:
            extras.before_step(optimizer, scaler)
        scaler.step(optimizer)
        scaler.update()
        if extras is not None:
            extras.after_step()
        scheduler.step()
        total += loss.detach().float() * len(index)
        count += len(index)
        if on_batch is not None:
            on_batch(done, len(order), running)
    mean = float(total) / count
    if not math.isfinite(mean):
        raise TrialFailure(f"loss became {'NaN' if math.isnan(mean) else 'inf'} at epoch {epoch}")
    return mean


@torch.no_grad()
def evaluate(model: nn.Module, data: DatasetSplits, split: Split, precision: Precision, batch_size: int,
             channels_last: bool = False, on_batch: BatchHook | None = None) -> float:
    """Top-1 accuracy (0..1) on `split` (tensors on the model's device); `on_batch` is told of every batch."""
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=split.x.device)
    total = -(-len(split) // batch_size)
    for done, start in enumerate(range(0, len(split), batch_size), 1):
        x = inputs(data, split.x[start:start + batch_size], channels_last)
        with precision.autocast():
            logits = model(x)
        correct += (logits.argmax(dim=1) == split.y[start:start + batch_size]).sum()
        if on_batch is not None:
            on_batch(done, total, None)
    return int(correct) / max(1, len(split))


def to_device(split: Split, device: torch.device) -> Split:
    if device.type == "cpu":
        return split
    return Split(split.x.to(device, non_blocking=True), split.y.to(device, non_blocking=True))
