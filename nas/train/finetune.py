"""Fine-tuning from weights: where the start comes from, what stays frozen, and the learning rate of each part.

`FineTune.create(...)` checks the request and resolves a reference model (`nas.train.pretrained`)
before any data is loaded; `prepare` loads the weights into the network built for the data and
freezes what was asked; `optimizer` splits the optimizer's parameter groups into pretrained and new
parts, the pretrained ones at `pretrained_lr_scale` times the learning rate. `record` is what
``train.json`` keeps under ``"transfer"``.

- Pretrained tensors are those loaded from the weights (a reference model's, or the genome's own
  ``--from WEIGHTS``); new ones start afresh (a classifier for other classes).
- `freeze` names parts (`nas.train.freeze` paths) whose weights do not change; a new tensor cannot be
  frozen (it would keep its random values). `train_only` freezes every pretrained weight outside the
  parts it names: new tensors are always trained, so ``train_only="head"`` on a ResNet trains the new
  classifier alone.
- Batch-norm layers whose weights are all frozen are kept in eval mode while training (`frozen_bn`
  "eval", the default): they use and keep the reference's running statistics, so a frozen part computes
  exactly what it did before. With "train" they normalise with each batch's statistics and update
  their running statistics, as the rest of the network does; their scale and shift stay frozen.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from nas.compiler import build
from nas.errors import NasError
from nas.genome import Genome
from nas.train.freeze import PartPath, covered, parse_paths, select
from nas.train.pretrained import Reference, load_reference, reference

FROZEN_BN = ("eval", "train")
BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


class FineTuneError(NasError):
    """A fine-tuning request that cannot be carried out (bad part paths, nothing left to train, ...)."""


def _keep_eval(module: nn.Module, args: Any) -> None:
    module.training = False  # a frozen batch norm: running statistics used, never updated


@dataclass
class FineTune:
    source: Reference | None = None  # a reference model; None: the genome's own weights (`weights=`) or none
    weights_label: str | None = None
    freeze: tuple[PartPath, ...] = ()
    train_only: tuple[PartPath, ...] | None = None
    pretrained_lr_scale: float = 1.0
    frozen_bn: str = "eval"
    record: dict[str, Any] = field(default_factory=dict)
    new: set[str] = field(default_factory=set)

    @staticmethod
    def create(weights: object = None, pretrained: object = None, freeze: str | Sequence[str] | None = None,
               train_only: str | Sequence[str] | None = None, pretrained_lr_scale: float = 1.0,
               frozen_bn: str = "eval") -> "FineTune | None":
        """The request checked (and a reference model resolved); None when none of it was asked for."""
        if weights is not None and pretrained is not None:
            raise FineTuneError("give starting weights once: weights (this genome's own) or pretrained "
                                "(a reference model's), not both")
        if freeze is not None and train_only is not None:
            raise FineTuneError("--freeze and --train-only exclude each other: name what to freeze, "
                                "or what to train")
        if not isinstance(pretrained_lr_scale, (int, float)) or isinstance(pretrained_lr_scale, bool) \
                or not 0 < pretrained_lr_scale < float("inf"):
            raise FineTuneError(f"--pretrained-lr-scale must be a positive number, got {pretrained_lr_scale!r} "
                                f"(to keep weights fixed, freeze them)")
        if frozen_bn not in FROZEN_BN:
            raise FineTuneError(f"--frozen-bn must be one of {', '.join(FROZEN_BN)}, got {frozen_bn!r}")
        asked = freeze is not None or train_only is not None or pretrained_lr_scale != 1.0
        if pretrained is None and not asked:
            return None
        if pretrained is None and weights is None:
            raise FineTuneError("--freeze, --train-only and --pretrained-lr-scale need starting weights "
                                "(--from; in Python weights= or pretrained=)")
        return FineTune(
            source=reference(pretrained) if pretrained is not None else None,
            weights_label=None if weights is None else (str(weights) if not isinstance(weights, Mapping)
                                                        else "a state_dict"),
            freeze=parse_paths(freeze, "--freeze") if freeze is not None else (),
            train_only=parse_paths(train_only, "--train-only") if train_only is not None else None,
            pretrained_lr_scale=float(pretrained_lr_scale), frozen_bn=frozen_bn)

    def check(self, genome: Genome) -> None:
        """Part paths checked against `genome`'s network (built without memory) before any data loads."""
        model = build(genome, device="meta")
        if self.freeze:
            select(model, self.freeze, "--freeze")
        if self.train_only is not None:
            select(model, self.train_only, "--train-only", allow_empty=True)

    def prepare(self, model: nn.Module, genome: Genome, reinitialised: list[str]) -> list[str]:
        """Load the reference's weights into `model` (built for the data) if there is one, freeze what was asked.
        Returns the tensors that start afresh (`reinitialised` for the genome's own weights)."""
        self.record = {"from": self.source.source if self.source else self.weights_label}
        if self.source is not None:
            loaded = load_reference(self.source, genome, model)
            reinitialised = loaded.new
            self.record.update(file=loaded.file, layers_copied=loaded.layers, adapted=loaded.adapted)
        self.new = set(reinitialised)
        self.record["new"] = list(reinitialised)
        self._freeze(model)
        return list(reinitialised)

    def _freeze(self, model: nn.Module) -> None:
        params = dict(model.named_parameters())
        new = {n for n in params if n in self.new}
        if self.freeze:
            frozen: set[str] = set()
            for text, names in select(model, self.freeze, "--freeze").items():
                fresh = [n for n in names if n in new]
                if fresh:
                    raise FineTuneError(f"--freeze {text}: {fresh[0]} starts afresh (not in the starting weights "
                                        f"in this shape); frozen, it would keep its random values")
                frozen.update(names)
            outside = [p for path in self.freeze for p in path.prefixes(model, "--freeze")]
            in_frozen_part = lambda name: covered(name, outside)  # noqa: E731
        elif self.train_only is not None:
            chosen = select(model, self.train_only, "--train-only", allow_empty=True)
            trainable = {n for names in chosen.values() for n in names} | new
            frozen = set(params) - trainable
            inside = [p for path in self.train_only for p in path.prefixes(model, "--train-only")]
            in_frozen_part = lambda name: not covered(name, inside)  # noqa: E731
        else:
            frozen, in_frozen_part = set(), lambda name: False  # noqa: E731
        if frozen and frozen == set(params):
            raise FineTuneError("nothing left to train: every weight is frozen")
        for name in frozen:
            params[name].requires_grad_(False)
        kept = 0
        if self.frozen_bn == "eval" and frozen:
            for name, module in model.named_modules():
                if not isinstance(module, BATCH_NORMS):
                    continue
                own = [f"{name}.{k}" for k, _ in module.named_parameters(recurse=False)]
                if (own and all(n in frozen for n in own)) or (not own and in_frozen_part(name)):
                    module.register_forward_pre_hook(_keep_eval)
                    kept += 1
        count = lambda names: sum(params[n].numel() for n in names)  # noqa: E731
        self.record.update(
            freeze=[p.text for p in self.freeze] or None,
            train_only=[p.text for p in self.train_only] if self.train_only is not None else None,
            frozen_tensors=len(frozen), frozen_parameters=count(frozen),
            trainable_parameters=count(set(params) - frozen),
            frozen_bn=self.frozen_bn, bn_layers_in_eval=kept, pretrained_lr_scale=self.pretrained_lr_scale)

    def optimizer(self, optimizer: torch.optim.Optimizer, model: nn.Module) -> torch.optim.Optimizer:
        """Each parameter group of `optimizer` (before its first step) split into its pretrained tensors, at
        `pretrained_lr_scale` times the group's learning rate, and its new ones; the same optimizer back."""
        names = {id(p): n for n, p in model.named_parameters()}
        groups = []
        for group in optimizer.param_groups:
            options = {k: v for k, v in group.items() if k != "params"}
            # a tensor outside `model` (the recipe's auxiliary head) is new
            pretrained = [p for p in group["params"] if id(p) in names and names[id(p)] not in self.new]
            fresh = [p for p in group["params"] if id(p) not in names or names[id(p)] in self.new]
            if pretrained:
                groups.append({**options, "params": pretrained, "lr": options["lr"] * self.pretrained_lr_scale,
                               "part": "pretrained"})
            if fresh:
                groups.append({**options, "params": fresh, "part": "new"})
        optimizer.param_groups.clear()
        for group in groups:
            optimizer.add_param_group(group)
        self.record["param_groups"] = [
            {"part": g["part"], "lr": float(f"{g['lr']:.12g}"), "weight_decay": g.get("weight_decay"),
             "tensors": len(g["params"]),
             "parameters": sum(p.numel() for p in g["params"])} for g in optimizer.param_groups]
        return optimizer
