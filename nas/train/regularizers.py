"""The pieces of published final trainings that act on the network while it trains (`TrainSettings`):

- drop-path on the cells' branches (`CellDropPath`), with DARTS's linear schedule: at (1-based) epoch
  e of E the probability is ``drop_path * (e - 1) / E`` (0 in the first epoch, growing linearly);
  0 in evaluation. A branch is a node of a multi-node cell whose output only an ``add`` merge reads
  (a DARTS cell's ops into its intermediate sums, a residual block's branch); identity nodes are never
  dropped (DARTS drops every op but its skip connections). Forward hooks on the branch modules: the
  built network is unchanged (its weights, TorchScript, export), the hooks go with `remove`.
- an auxiliary head (`AuxiliaryHead`, DARTS's ``AuxiliaryHeadCIFAR``: ReLU, 5x5 average pool with
  stride 3, 1x1 conv to 128, BN, ReLU, conv to 768 over what is left of the image, BN, ReLU, linear)
  reading the output of the last cell of the stage the genome marks ``aux: true`` (DARTS: the second
  reduction cell); its loss, times `aux_weight`, is added in training only. It is not a module of the
  network: the saved and exported weights never hold it (a resumed training keeps it in state.pt).
- an exponential moving average of the weights and buffers (torch.optim.swa_utils.AveragedModel with
  get_ema_multi_avg_fn), updated after every step; it is what is evaluated and saved.
- gradient clipping of the global norm (torch.nn.utils.clip_grad_norm_, after unscaling fp16 gradients).

`Extras.create(model, genome, settings, ...)` makes those the settings ask for; `nas.train.loop.train_epoch`
calls its hooks. Warm-up is a schedule (`warmed_up`), used by `nas.train.loop.make_scheduler`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from nas.expand import expand
from nas.genome import Genome
from nas.modules import ADD, DagCell
from nas.ops.regularization import DropPath
from nas.train.settings import TrainSettings

AUX_CHANNELS, AUX_FEATURES = 128, 768  # DARTS's AuxiliaryHeadCIFAR


def drop_path_probability(maximum: float, epoch: int, epochs: int) -> float:
    """DARTS's schedule: ``maximum * (epoch - 1) / epochs`` for 1-based `epoch` of `epochs`."""
    return maximum * (epoch - 1) / epochs


def warmed_up(schedule: Callable[[int], float], warmup_steps: int, total: int) -> Callable[[int], float]:
    """A learning-rate factor per step: linear from 1/warmup_steps to 1 over the first `warmup_steps`
    steps, then `schedule` over the remaining steps (restarted at 0, so a cosine still ends at 0)."""
    warmup_steps = min(warmup_steps, total - 1)
    if warmup_steps <= 0:
        return schedule

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return schedule(step - warmup_steps)

    return factor


def branch_modules(model: nn.Module) -> list[nn.Module]:
    """The modules whose outputs `CellDropPath` drops: in every multi-node cell of the network's stages,
    each non-identity op whose output is read only by an ``add`` merge of two or more inputs."""
    stages = getattr(model, "stages", model)
    found: list[nn.Module] = []
    for cell in stages.modules():
        if not isinstance(cell, DagCell):
            continue
        readers: dict[int, int] = {}
        for sources in cell.sources:
            for j in sources:
                readers[j] = readers.get(j, 0) + 1
        for i, sources in enumerate(cell.sources):
            if cell.merges[i] != ADD or len(sources) < 2:
                continue
            for j in sources:
                if j < cell.num_inputs or readers[j] != 1:
                    continue
                module = cell.ops[j - cell.num_inputs]
                if not isinstance(module, nn.Identity) and all(m is not module for m in found):
                    found.append(module)
    return found


class CellDropPath:
    """Drop-path on the branches of `model`'s cells (`branch_modules`), at probability `p` (set per epoch)."""

    def __init__(self, model: nn.Module):
        self.drop = DropPath(0.0)
        self.branches = branch_modules(model)
        self.handles = [m.register_forward_hook(self._hook) for m in self.branches]

    @property
    def p(self) -> float:
        return self.drop.p

    def set(self, p: float) -> None:
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1), got {p}")
        self.drop.p = p

    def _hook(self, module: nn.Module, args: Any, output: torch.Tensor) -> torch.Tensor | None:
        if module.training and self.drop.p > 0.0:
            return self.drop(output)
        return None

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []


def aux_stage(genome: Genome) -> int | None:
    """The index of the stage the genome marks ``aux: true``, or None."""
    return next((i for i, stage in enumerate(genome.stages) if stage.aux), None)


class AuxiliaryHead(nn.Module):
    """DARTS's auxiliary head for CIFAR (on 8x8 features), for any feature size: the pooling applies
    where the features are at least 5 pixels a side, and the second conv covers what is left."""

    def __init__(self, channels: int, size: tuple[int, int], num_classes: int):
        super().__init__()
        pool = min(size) >= 5
        left = tuple((s - 5) // 3 + 1 for s in size) if pool else tuple(size)
        self.features = nn.Sequential(
            nn.ReLU(),
            nn.AvgPool2d(5, stride=3, padding=0, count_include_pad=False) if pool else nn.Identity(),
            nn.Conv2d(channels, AUX_CHANNELS, 1, bias=False), nn.BatchNorm2d(AUX_CHANNELS), nn.ReLU(inplace=True),
            nn.Conv2d(AUX_CHANNELS, AUX_FEATURES, left, bias=False), nn.BatchNorm2d(AUX_FEATURES),
            nn.ReLU(inplace=True))
        self.classifier = nn.Linear(AUX_FEATURES, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).flatten(1))


class AuxiliaryLoss:
    """Captures the output of the marked stage's last cell in training and gives the auxiliary loss."""

    def __init__(self, model: nn.Module, stage: int, shape: tuple[int, ...], num_classes: int, weight: float):
        self.weight = weight
        self.stage = stage
        self.head = AuxiliaryHead(shape[0], (shape[1], shape[2]), num_classes)
        cell = model.stages[stage][-1]
        target = cell.ops[-1] if isinstance(cell, DagCell) else cell  # forward_ports bypasses the cell's hooks
        self.captured: torch.Tensor | None = None
        self.handle = target.register_forward_hook(self._capture)

    def _capture(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        if module.training:
            self.captured = output

    def loss(self, criterion: nn.Module, y: torch.Tensor) -> torch.Tensor | None:
        """`aux_weight` x the head's loss on the features the last training forward pass captured."""
        features, self.captured = self.captured, None
        if features is None:
            return None
        self.head.train()
        return self.weight * criterion(self.head(features), y)

    def remove(self) -> None:
        self.handle.remove()


class Extras:
    """The training-time pieces the settings ask for, around one network (see the module docstring)."""

    def __init__(self, model: nn.Module, settings: TrainSettings, drop: CellDropPath | None,
                 aux: AuxiliaryLoss | None, ema: AveragedModel | None):
        self.model, self.settings, self.drop, self.aux, self.ema = model, settings, drop, aux, ema

    @staticmethod
    def create(model: nn.Module, genome: Genome, settings: TrainSettings, num_classes: int, in_channels: int,
               input_size: int | tuple[int, int], device: torch.device | None = None) -> "Extras":
        """The pieces `settings` ask for on `model` (built from `genome` for this input and classes)."""
        ema = None
        if settings.ema_decay is not None:  # copied before any hook is attached: the average carries none
            ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(settings.ema_decay), use_buffers=True)
        drop = CellDropPath(model) if settings.drop_path > 0 else None
        aux = None
        stage = aux_stage(genome)
        if settings.aux_weight > 0 and stage is not None:
            plan = expand(genome, num_classes=num_classes, in_channels=in_channels, input_size=input_size)
            shape = tuple(plan.stages[stage][-1].out_shape)
            aux = AuxiliaryLoss(model, stage, shape, num_classes, settings.aux_weight)
            if device is not None:
                aux.head.to(device)
        return Extras(model, settings, drop, aux, ema)

    @property
    def active(self) -> bool:
        return bool(self.drop or self.aux or self.ema or self.settings.grad_clip)

    def trained(self) -> nn.Module:
        """What the optimizer trains: the network, and the auxiliary head when there is one."""
        return self.model if self.aux is None else nn.ModuleList([self.model, self.aux.head])

    def evaluated(self) -> nn.Module:
        """The network that is evaluated and saved: the weights' moving average, or the network itself."""
        return self.ema.module if self.ema is not None else self.model

    # ----- the loop's hooks -----
    def start_epoch(self, epoch: int) -> None:
        if self.drop is not None:
            self.drop.set(drop_path_probability(self.settings.drop_path, epoch, self.settings.epochs))

    def loss(self, loss: torch.Tensor, criterion: nn.Module, y: torch.Tensor) -> torch.Tensor:
        """The loss to minimise: `loss` plus the auxiliary head's weighted loss (training only)."""
        if self.aux is None:
            return loss
        extra = self.aux.loss(criterion, y)
        return loss if extra is None else loss + extra

    def before_step(self, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler) -> float | None:
        """Clip the gradients' global norm (unscaled first); the norm before clipping, or None."""
        if self.settings.grad_clip is None:
            return None
        scaler.unscale_(optimizer)
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        return float(nn.utils.clip_grad_norm_(params, self.settings.grad_clip))

    def after_step(self) -> None:
        if self.ema is not None:
            self.ema.update_parameters(self.model)

    # ----- checkpoints -----
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {}
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if self.aux is not None:
            state["aux_head"] = self.aux.head.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.ema is not None and "ema" in state:
            self.ema.load_state_dict(state["ema"])
        if self.aux is not None and "aux_head" in state:
            self.aux.head.load_state_dict(state["aux_head"])

    def describe(self) -> dict[str, Any]:
        """What this training applies (for train.json): the branches dropped, the aux head's stage, EMA."""
        return {"drop_path_branches": len(self.drop.branches) if self.drop is not None else 0,
                "aux_stage": self.aux.stage if self.aux is not None else None,
                "ema": self.ema is not None, "grad_clip": self.settings.grad_clip}

    def remove(self) -> None:
        for piece in (self.drop, self.aux):
            if piece is not None:
                piece.remove()
