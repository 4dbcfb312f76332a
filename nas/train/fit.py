"""Train or fine-tune one genome outside a search, with the search trials' recipe (no Ray).

    result = nas.fit(genome, "digits", epochs=10)                  # from scratch
    result = nas.fit(genome, data, weights="best_weights.pt")      # fine-tune found weights
    result = nas.fit(genome, data, pretrained="torchvision:resnet18", freeze="stem,stages[0:2]")
    result.test_accuracy, result.model

The recipe is a trial's (`TrainSettings`: optimizer, per-step cosine schedule, label smoothing,
precision; seeds from the settings' seed and the genome's fingerprint, as `nas.train.trainable`),
built from the same loop (`nas.train.loop`); after the last epoch the test split is evaluated once.
With `out`, the genome, its trained weights (a state_dict of `nas.build(genome)` for the data) and
``train.json`` (settings, per-epoch history, accuracies) go into a folder this call creates.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from nas.compiler import build
from nas.errors import NasError
from nas.genome import Genome
from nas.summary import summary
from nas.train.checkpointing import STATE_FILE, TrainingState, read_state
from nas.train.contract import input_contract
from nas.train.datasets import DatasetSplits, load_dataset
from nas.train.failures import TrialFailure
from nas.train.finetune import FineTune
from nas.train.loop import (Precision, evaluate, make_optimizer, make_scheduler, steps_per_epoch, to_device,
                            train_epoch, trial_seed)
from nas.train.loop import tagged
from nas.train.parallel import train_data_parallel
from nas.train.recipe import load_recipe
from nas.train.regularizers import Extras
from nas.train.resume import RUN_FILE, ResumeError, finished, read_run, write_run
from nas.train.settings import TrainSettings
from nas.train.speed import resolve_channels_last

GENOME_FILE, WEIGHTS_FILE, RESULT_FILE = "genome.yaml", "weights.pt", "train.json"


class TrainError(NasError):
    """Training cannot start: unreadable or mismatched weights, an unusable output folder."""


@dataclass
class TrainResult:
    """A trained network: the model (eval mode, on its device), its accuracies and per-epoch history."""

    model: nn.Module
    genome: Genome
    test_accuracy: float
    val_accuracy: float
    settings: TrainSettings
    history: list[dict[str, float]] = field(default_factory=list)
    reinitialised: list[str] = field(default_factory=list)  # tensors of `weights` left out (shape differed)
    folder: Path | None = None
    transfer: dict[str, Any] | None = None  # fine-tuning: start, frozen parts, lr groups (nas.train.finetune)
    applied: dict[str, Any] = field(default_factory=dict)  # the recipe and what its pieces act on

    def to_dict(self) -> dict[str, Any]:
        return {"genome": self.genome.name, "fingerprint": self.genome.fingerprint(),
                "test_accuracy": self.test_accuracy, "val_accuracy": self.val_accuracy,
                "settings": self.settings.to_dict(), "history": self.history, "reinitialised": self.reinitialised,
                "applied": self.applied, **({"transfer": self.transfer} if self.transfer is not None else {})}


def why_not_weights(path: Path) -> str:
    """Why torch.load(weights_only=True) refused `path`, in words (not PyTorch's advice to unpickle it)."""
    with open(path, "rb") as file:
        head = file.read(4)
    if not head:
        reason = "an empty file, not a weights file"
    elif head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":  # torch.save's zip, or a legacy pickle
        reason = ("not a state_dict of tensors, or damaged (weights are read with weights_only=True: "
                      "nas never runs code stored in a weights file)")
    else:
        reason = "not a weights file (not written by torch.save; expected e.g. a run's best_weights.pt)"
    return reason


def read_weights(weights: str | Path | Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """A state_dict, or one read from a file (a ``best_weights.pt`` / ``weights.pt``)."""
    if isinstance(weights, Mapping):
        return weights
    path = Path(weights)
    if not path.is_file():
        raise TrainError(f"{path}: no such weights file")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a torch file, truncated, pickled objects
        raise TrainError(f"{path}: {why_not_weights(path)}") from None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise TrainError(f"{path}: not a state_dict (a mapping of tensor names to tensors)")
    return state


def load_matching(model: nn.Module, weights: Mapping[str, torch.Tensor], where: str = "weights") -> list[str]:
    """Copy `weights` into `model`. Every tensor name must match; tensors whose shape differs (e.g. a
    classifier for another number of classes) keep their fresh initialisation and are returned."""
    own = model.state_dict()
    missing = sorted(set(own) - set(weights))
    unexpected = sorted(set(weights) - set(own))
    if missing or unexpected:
        first = f"missing {missing[0]!r}" if missing else f"unexpected {unexpected[0]!r}"
        raise TrainError(f"{where}: not weights of this genome ({len(missing)} missing, {len(unexpected)} unexpected "
                         f"tensors; {first})")
    kept = {k: v for k, v in weights.items() if v.shape == own[k].shape}
    skipped = sorted(set(weights) - set(kept))
    if len(skipped) > len(own) // 2:
        raise TrainError(f"{where}: most tensors have other shapes than this genome's for this data "
                         f"(e.g. {skipped[0]!r}: {tuple(weights[skipped[0]].shape)} vs {tuple(own[skipped[0]].shape)})")
    model.load_state_dict(kept, strict=False)
    return skipped


def for_data(genome: Genome, data: DatasetSplits) -> Genome:
    """`genome` with the data set's input and classes (what its weights are for; a search's trials train
    genomes realized for their data set, so a found genome is unchanged)."""
    spec = genome.to_dict()
    spec.update(input={"channels": data.channels, "size": data.size}, num_classes=data.num_classes)
    return Genome.from_dict(spec)


def new_folder(out: str | Path) -> Path:
    """`out` created for this run (or an existing empty folder); never a folder holding files."""
    folder = Path(out)
    if folder.exists():
        if not folder.is_dir():
            raise TrainError(f"--out {folder}: is a file, not a folder")
        if any(folder.iterdir()):
            raise TrainError(f"--out {folder}: folder exists and is not empty; choose a new one")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrainError(f"--out {folder}: cannot create the folder ({error.strerror or error})") from None
    return folder


def train(genome: Genome, data: DatasetSplits | str, *, epochs: int | None = None,
          weights: str | Path | Mapping[str, torch.Tensor] | None = None, out: str | Path | None = None,
          settings: TrainSettings | Mapping[str, Any] | None = None, seed: int = 0, data_dir: str | Path | None = None,
          val_fraction: float = 0.1, train_limit: int | None = None, device: str | torch.device | None = None,
          progress: Callable[[dict[str, float]], None] | None = None, recipe: str | Path | None = None,
          resume: bool = False, pretrained: Any = None, freeze: str | Sequence[str] | None = None,
          train_only: str | Sequence[str] | None = None, pretrained_lr_scale: float = 1.0, frozen_bn: str = "eval",
          on_batch: Callable[..., None] | None = None, val_limit: int | str | None = None,
          source: Mapping[str, Any] | None = None, workers: int | str = 1,
          resume_state: Mapping[str, Any] | None = None, **fields: Any) -> TrainResult:
    """Train `genome` on `data` (a `DatasetSplits`, or a data set name for `load_dataset`) with the
    search trials' recipe and return the trained model with its test accuracy.

    `recipe` (a name of `nas recipes` or a .yaml file, `nas.train.recipe`) gives the settings, `settings`
    (a `TrainSettings` or its fields) and `fields` (single fields: lr=..., optimizer=...) override them
    in that order; `epochs` and `seed` too. `weights` (a state_dict or a file) fine-tunes instead of
    starting from scratch. `out`: a new folder for genome.yaml, weights.pt, train.json; while training
    it holds run.json and, after every epoch, state.pt (`nas.train.resume`). `resume`: continue the
    unfinished training in `out` (the same arguments; a finished one raises TrainError); `resume_state`:
    its state.pt as `nas.train.checkpointing.read_state` gave it to a caller that read it already (not
    read again). `source`: how a `DatasetSplits` given as `data` was loaded (`load_dataset`'s name,
    data_dir, val_fraction, train_limit, val_limit, seed), recorded in run.json so that `nas train
    --resume` loads it again.
    `progress` is called with each epoch's record, `on_batch` after every batch with
    ``(phase, epoch, done, total, loss)``: phase "train", "val" or "test", batches done of total, and
    `loss` as `nas.train.loop.BatchHook` has it (nas.train.display.TrainDisplay.batch is one).

    Transfer learning (nas.train.finetune, docs/transfer-learning.md): `pretrained` starts from a reference
    model's weights ("torchvision:resnet18", "timm:NAME", "torchvision:resnet18=FILE", or an nn.Module),
    read from local caches only; `freeze` / `train_only` name genome parts ("stem,stages[0:2]", "head");
    `pretrained_lr_scale` multiplies the learning rate of pretrained weights; `frozen_bn` ("eval" or
    "train") is what frozen batch-norm layers do while training.

    `workers` (a count, or "auto") other than 1 trains data-parallel on CPU cores (`nas.train.parallel`),
    from scratch or from `weights`, in one go: it does not resume or fine-tune with frozen parts.
    """
    tuning = FineTune.create(weights, pretrained, freeze, train_only, pretrained_lr_scale, frozen_bn)
    if tuning is not None:
        tuning.check(genome)  # part paths against this genome, before any data loads
    if workers != 1 and (resume or tuning is not None):
        raise TrainError("--workers other than 1 trains in one go, from scratch or from --from weights: it does not "
                         f"{'resume' if resume else 'fine-tune with frozen parts or a pretrained model'}; use --workers 1")
    dataset = data if isinstance(data, str) else None
    if isinstance(data, str):
        data = load_dataset(data, data_dir, val_fraction=val_fraction, seed=seed, train_limit=train_limit,
                            val_limit=val_limit)
    genome = for_data(genome, data)
    base = settings.to_dict() if isinstance(settings, TrainSettings) else dict(settings or {})
    if recipe is not None:
        base = {**load_recipe(recipe).settings, **base}
    base.setdefault("seed", seed)
    if epochs is not None:
        base["epochs"] = epochs
    settings = TrainSettings.from_dict({**base, **fields})
    state = read_weights(weights) if weights is not None else None
    created = out is not None and not Path(out).exists()
    if resume:
        folder = resumable_folder(out)
    else:
        folder = new_folder(out) if out is not None else None
    loaded = {"dataset": dataset, "data_dir": str(data_dir) if data_dir else None, "val_fraction": val_fraction,
              "split_seed": seed, "train_limit": train_limit, "val_limit": val_limit}
    if dataset is None and source is not None:  # a DatasetSplits the caller loaded: how, as it says
        loaded.update({key: source[key] for key in loaded if key in source})
        loaded["dataset"] = source.get("dataset")
    run = {"genome": genome.to_dict(), **loaded,
           "settings": settings.to_dict(), "recipe": str(recipe) if recipe is not None else None,
           "weights": str(weights) if weights is not None and not isinstance(weights, Mapping) else None,
           "transfer": None if tuning is None else {
               "pretrained": pretrained if isinstance(pretrained, str) or pretrained is None
               else getattr(pretrained, "spec", None) or repr(pretrained),
               "freeze": freeze, "train_only": train_only, "pretrained_lr_scale": pretrained_lr_scale,
               "frozen_bn": frozen_bn}}
    try:
        try:
            if workers != 1:
                return train_data_parallel(genome, data, settings, state, weights, folder, device, progress, workers)
            return _train(genome, data, settings, state, weights, folder, device, progress, run, tuning, on_batch,
                          resume_state)
        except TrialFailure as failure:  # e.g. "loss became NaN at epoch 2"
            raise TrainError(f"training failed: {failure}") from None
    except BaseException:
        if created and folder is not None and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()  # a folder this call made, still empty: no trace of the failed start
        raise


def resumable_folder(out: str | Path | None) -> Path:
    """`out` when it holds an unfinished `nas train` (run.json, no train.json); TrainError otherwise."""
    if out is None:
        raise TrainError("resume: give the folder of the training to continue (out=...)")
    try:
        read_run(out)
        if finished(out) is not None:
            raise TrainError(f"{out}: finished already ({RESULT_FILE}); not retrained")
    except ResumeError as error:
        raise TrainError(str(error)) from None
    return Path(out)


def _train(genome: Genome, data: DatasetSplits, settings: TrainSettings, state, weights, folder: Path | None,
           device, progress, run: dict[str, Any] | None = None, tuning: FineTune | None = None,
           on_batch=None, resume_state: Mapping[str, Any] | None = None) -> TrainResult:
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(device)
    fingerprint = genome.fingerprint()
    torch.manual_seed(trial_seed(settings.seed, fingerprint))
    generator = torch.Generator().manual_seed(trial_seed(settings.seed + 1, fingerprint))
    precision = Precision.choose(settings.precision, device)
    channels_last = resolve_channels_last(settings.channels_last, device)
    model = build(genome)
    skipped = load_matching(model, state, str(weights) if not isinstance(weights, Mapping) else "weights") \
        if state is not None else []
    if tuning is not None:
        skipped = tuning.prepare(model, genome, skipped)
    model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
    train_split, val = to_device(data.train, device), to_device(data.val, device)
    extras = Extras.create(model, genome, settings, data.num_classes, data.channels, data.size, device)
    optimizer = make_optimizer(extras.trained(), settings)
    if tuning is not None:
        optimizer = tuning.optimizer(optimizer, model)
    scheduler = make_scheduler(optimizer, settings, steps_per_epoch(len(train_split), settings.batch_size))
    scaler = precision.scaler()
    checkpoint = TrainingState(model, optimizer, scheduler, scaler, generator, extras)
    evaluated = extras.evaluated()  # the weights' moving average where the settings keep one

    history: list[dict[str, float]] = []
    accuracy = float("nan")
    done = 0
    if folder is not None:
        done, history, skipped = _start_or_resume(folder, checkpoint, run, skipped, resume_state)
        if history:
            accuracy = history[-1]["val_accuracy"]
    for epoch in range(done + 1, settings.epochs + 1):
        started = time.perf_counter()
        loss = train_epoch(model, data, train_split, optimizer, scheduler, scaler, precision, settings, generator,
                           epoch, channels_last, extras=extras, on_batch=tagged(on_batch, "train", epoch))
        accuracy = evaluate(evaluated, data, val, precision, settings.eval_batch_size, channels_last,
                            on_batch=tagged(on_batch, "val", epoch))
        history.append({"epoch": epoch, "train_loss": loss, "val_accuracy": accuracy,
                        "epoch_time": time.perf_counter() - started})
        if folder is not None and settings.checkpoint_due(epoch):
            _save_state(folder, checkpoint, epoch, history, skipped)
        if progress is not None:
            progress(history[-1])
    test = evaluate(evaluated, data, to_device(data.test, device), precision, settings.eval_batch_size, channels_last,
                    on_batch=tagged(on_batch, "test", settings.epochs))
    extras.remove()  # the network as built: no drop-path or auxiliary hooks
    evaluated.eval()
    applied = {"recipe": (run or {}).get("recipe"), **extras.describe(), "resumed_after_epoch": done}
    result = TrainResult(evaluated, genome, test, accuracy, settings, history, skipped, applied=applied)
    result.transfer = tuning.record if tuning is not None else None
    if folder is not None:
        try:
            write_result(folder, result, data)
            (folder / STATE_FILE).unlink(missing_ok=True)  # finished: train.json says so, nothing to resume
        except OSError as error:  # a full disk, a folder removed meanwhile
            raise TrainError(f"{folder}: cannot write the result ({error.strerror or error})") from None
    return result


def _start_or_resume(folder: Path, checkpoint: TrainingState, run: dict[str, Any] | None, skipped: list[str],
                     saved: Mapping[str, Any] | None = None) -> tuple[int, list[dict[str, float]], list[str]]:
    """A new training writes run.json; an unfinished one (its run.json there) continues from state.pt
    (`saved`: as read already): (epochs done, their history, the tensors of --from left out)."""
    if not (folder / RUN_FILE).exists():
        try:
            write_run(folder, run or {})
        except OSError as error:
            raise TrainError(f"{folder}: cannot write {RUN_FILE} ({error.strerror or error})") from None
        return 0, [], skipped
    try:
        saved_run = read_run(folder)
    except ResumeError as error:
        raise TrainError(str(error)) from None
    for key in ("settings", "genome"):  # a resumed training is the same training
        if run is not None and json.loads(json.dumps(run[key])) != saved_run.get(key):
            raise TrainError(f"{folder}: resume with the {key} it was started with ({folder / RUN_FILE})")
    if not (folder / STATE_FILE).exists():
        return 0, [], skipped  # stopped before its first epoch ended: from the start
    saved, why = (saved, None) if saved is not None else read_state(folder)
    if saved is None:
        raise TrainError(f"{folder / STATE_FILE}: {why}; cannot resume (start a new training)")
    done, metrics = checkpoint.restore(saved)
    return done, list(metrics.get("history", [])), list(metrics.get("reinitialised", skipped))


def _save_state(folder: Path, checkpoint: TrainingState, epoch: int, history: list[dict[str, float]],
                skipped: list[str]) -> None:
    try:
        checkpoint.save(folder, epoch, {"history": history, "reinitialised": skipped})
    except OSError as error:
        raise TrainError(f"{folder}: cannot write {STATE_FILE} ({error.strerror or error})") from None


def write_result(folder: Path, result: TrainResult, data: DatasetSplits) -> None:
    """genome.yaml, weights.pt (CPU tensors) and train.json into `folder` (new files only)."""
    genome = result.genome
    cost = summary(genome, num_classes=data.num_classes, in_channels=data.channels, input_size=data.size)
    for name in (GENOME_FILE, WEIGHTS_FILE, RESULT_FILE):
        if (folder / name).exists():
            raise TrainError(f"{folder / name}: exists already; not overwritten")
    genome.save(folder / GENOME_FILE)
    torch.save({k: v.detach().to("cpu") for k, v in result.model.state_dict().items()}, folder / WEIGHTS_FILE)

    record = {**result.to_dict(), "data": data.describe(), "params": cost.params, "flops": cost.flops,
              "genome_file": GENOME_FILE, "weights_file": WEIGHTS_FILE,
              "input": input_contract(data)}  # what the weights must be fed (nas.train.contract)
    (folder / RESULT_FILE).write_text(json.dumps(record, indent=2) + "\n")
    result.folder = folder
