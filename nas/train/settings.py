"""How a child network is trained: one plain, validated record shared by every trial of a search.

It travels in each trial's config under ``"train"`` (so a trial's config says everything about it);
a suggestion may override single fields for its own trial.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from nas.errors import NasError
from nas.suggest import did_you_mean
from nas.train.augment_policy import AugmentError
from nas.train.augment_policy import check_setting as check_augment

OPTIMIZER_DEFAULTS = {  # optimizer -> (learning rate, weight decay)
    "sgd": (0.05, 5e-4),
    "adamw": (2e-3, 0.05),
}
SCHEDULES = ("cosine", "constant")
PRECISIONS = ("auto", "bf16", "fp16", "off")  # auto: bf16 on a GPU that has it, else fp16 on a GPU; off on a CPU


class SettingsError(NasError, ValueError):
    """A training setting is invalid."""


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_extras(settings: "TrainSettings") -> None:
    """The final-training pieces: warm-up, gradient clipping, drop-path, auxiliary loss, EMA, decay of norms."""
    if not isinstance(settings.warmup_epochs, int) or isinstance(settings.warmup_epochs, bool) \
            or settings.warmup_epochs < 0:
        raise SettingsError(f"warmup_epochs must be an integer >= 0, got {settings.warmup_epochs!r}")
    if settings.grad_clip is not None and not (_number(settings.grad_clip) and settings.grad_clip > 0):
        raise SettingsError(f"grad_clip must be a positive number or None, got {settings.grad_clip!r}")
    if not (_number(settings.drop_path) and 0.0 <= settings.drop_path < 1.0):
        raise SettingsError(f"drop_path must be in [0, 1), got {settings.drop_path!r}")
    if not (_number(settings.aux_weight) and settings.aux_weight >= 0):
        raise SettingsError(f"aux_weight must be a non-negative number, got {settings.aux_weight!r}")
    if settings.ema_decay is not None and not (_number(settings.ema_decay) and 0.0 < settings.ema_decay < 1.0):
        raise SettingsError(f"ema_decay must be in (0, 1) or None, got {settings.ema_decay!r}")
    if not (_number(settings.momentum) and 0.0 <= settings.momentum < 1.0):
        raise SettingsError(f"momentum must be in [0, 1), got {settings.momentum!r}")
    if not isinstance(settings.nesterov, bool):
        raise SettingsError(f"nesterov must be true or false, got {settings.nesterov!r}")
    if not isinstance(settings.decay_norm_bias, bool):
        raise SettingsError(f"decay_norm_bias must be true or false, got {settings.decay_norm_bias!r}")


@dataclass(frozen=True)
class TrainSettings:
    epochs: int = 3
    batch_size: int = 32
    optimizer: str = "sgd"
    lr: float | None = None  # None: the optimizer's default (OPTIMIZER_DEFAULTS)
    weight_decay: float | None = None
    momentum: float = 0.9  # SGD only
    nesterov: bool = True  # SGD only
    schedule: str = "cosine"  # per step, over all epochs
    label_smoothing: float = 0.0
    augment: str = "auto"  # auto (the data set's default), none, or e.g. crop,flip,cutout (nas.train.augment)
    precision: str = "auto"
    channels_last: bool | None = None  # None: the measured default of the device (nas.train.speed)
    max_params: int | None = 50_000_000  # a trial whose genome is bigger fails before allocating
    max_flops: int | None = None  # per image (2 per multiply-add)
    checkpoint_every: int = 1  # epochs between checkpoints; 0: only after the last epoch
    # evaluation (eval mode: the batch changes no result): 256 tested 10,000 Fashion-MNIST images in 8.5-10.2 s
    # against 12.9 s at 1024 (a 504k-parameter MBConv network, 2 idle cores)
    eval_batch_size: int = 256
    seed: int = 0  # with the genome's fingerprint, seeds weights and batch order
    test_at_end: bool = False  # after the last epoch also report test_accuracy (final retraining, never search)
    # the pieces of published final trainings (nas.train.regularizers; all off by default)
    warmup_epochs: int = 0  # linear warm-up of the learning rate over these epochs, then the schedule
    grad_clip: float | None = None  # clip the gradients' global norm to this (DARTS: 5)
    drop_path: float = 0.0  # drop-path on the cells' branches, growing linearly with the epochs to this
    aux_weight: float = 0.0  # weight of the auxiliary head's loss, where the genome marks a stage `aux: true`
    ema_decay: float | None = None  # exponential moving average of the weights (evaluated and saved), e.g. 0.9998
    decay_norm_bias: bool = False  # weight decay also on biases and norm scales (DARTS decays every parameter)

    def __post_init__(self) -> None:
        def positive(name: str) -> None:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SettingsError(f"{name} must be a positive integer, got {value!r}")

        for name in ("epochs", "batch_size", "eval_batch_size"):
            positive(name)
        if self.optimizer not in OPTIMIZER_DEFAULTS:
            raise SettingsError(f"optimizer must be one of {', '.join(OPTIMIZER_DEFAULTS)}, got {self.optimizer!r}")
        if self.schedule not in SCHEDULES:
            raise SettingsError(f"schedule must be one of {', '.join(SCHEDULES)}, got {self.schedule!r}")
        if self.precision not in PRECISIONS:
            raise SettingsError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        for name in ("lr", "weight_decay"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise SettingsError(f"{name} must be a non-negative number, got {value!r}")
        try:
            check_augment(self.augment)
        except AugmentError as error:
            raise SettingsError(str(error)) from None
        if not (_number(self.label_smoothing) and 0.0 <= self.label_smoothing < 1.0):
            raise SettingsError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every < 0:
            raise SettingsError(f"checkpoint_every must be an integer >= 0, got {self.checkpoint_every!r}")
        check_extras(self)
        for name in ("max_params", "max_flops"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise SettingsError(f"{name} must be a positive integer or None, got {value!r}")

    @property
    def learning_rate(self) -> float:
        return float(self.lr if self.lr is not None else OPTIMIZER_DEFAULTS[self.optimizer][0])

    @property
    def decay(self) -> float:
        return float(self.weight_decay if self.weight_decay is not None else OPTIMIZER_DEFAULTS[self.optimizer][1])

    def checkpoint_due(self, epoch: int) -> bool:
        """Checkpoint after this (1-based) epoch? Always after the last one (its weights are the result)."""
        return epoch == self.epochs or (self.checkpoint_every > 0 and epoch % self.checkpoint_every == 0)

    def over_caps(self, params: int, flops: int) -> str | None:
        """Why a genome of `params` parameters and `flops` FLOPs per image is over `max_params` / `max_flops`
        ("genome too big: ..."); None when it is within them."""
        if self.max_params is not None and params > self.max_params:
            return f"genome too big: {params:,} parameters > max_params {self.max_params:,}"
        if self.max_flops is not None and flops > self.max_flops:
            return f"genome too big: {flops:,} FLOPs per image > max_flops {self.max_flops:,}"
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @staticmethod
    def from_dict(spec: Mapping[str, Any] | None) -> "TrainSettings":
        spec = dict(spec or {})
        known = {f.name for f in fields(TrainSettings)}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise SettingsError(f"unknown training setting {unknown[0]!r} (known: {', '.join(sorted(known))})"
                                + did_you_mean(unknown[0], known))
        return TrainSettings(**spec)
