"""Helpers the commands share: reading SOURCE, parsing ``--input``, the training-recipe options, shapes and tables."""
from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from nas import baselines
from nas.cli import given_options
from nas.errors import NasError
from nas.genome import Genome
from nas.train.augment_policy import AugmentError
from nas.train.augment_policy import check_setting as check_augment
from nas.train.recipe import load_recipe, recipe_names
from nas.train.settings import OPTIMIZER_DEFAULTS, PRECISIONS, SCHEDULES, TrainSettings

GENOME_SUFFIXES = (".yaml", ".yml", ".json")
_INPUT = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def add_source(parser: argparse.ArgumentParser, optional: bool = False) -> None:
    parser.add_argument("source", metavar="SOURCE", **({"nargs": "?"} if optional else {}),
                        help="a baseline name (see `nas baselines`) or a genome file (.yaml, .yml or .json)")


def add_input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", metavar="CxHxW", default=None,
                        help="input channels, height and width (default: the genome's), e.g. 3x32x32")


def load_source(source: str) -> Genome:
    """The genome SOURCE names: a genome file if it has a genome suffix or is a file, else a baseline."""
    path = Path(source)
    if path.suffix.lower() in GENOME_SUFFIXES:
        try:
            return Genome.load(path)
        except UnicodeDecodeError:
            raise NasError(f"{source}: not a text file") from None
    if path.is_file():
        raise NasError(f"{source}: not a genome file (use .yaml, .yml or .json)")
    if path.is_dir():
        raise NasError(f"{source}: is a folder, not a genome file or baseline name")
    return baselines.get(source)


# The training recipe `nas search` and `nas compare` share (TrainSettings field -> default); epochs
# stay with each command, whose defaults differ.
RECIPE_DEFAULTS = {"batch_size": TrainSettings.batch_size, "optimizer": TrainSettings.optimizer, "lr": None,
                   "weight_decay": None, "label_smoothing": 0.0, "augment": TrainSettings.augment, "precision": "auto"}
# the final-training pieces (nas.train.regularizers) and the SGD and schedule fields a recipe file may set
RECIPE_DEFAULTS.update({"momentum": TrainSettings.momentum, "nesterov": TrainSettings.nesterov,
                        "schedule": TrainSettings.schedule, "warmup_epochs": TrainSettings.warmup_epochs,
                        "grad_clip": None, "drop_path": TrainSettings.drop_path,
                        "aux_weight": TrainSettings.aux_weight, "ema_decay": None,
                        "decay_norm_bias": TrainSettings.decay_norm_bias})


def add_recipe(group: argparse._ArgumentGroup) -> None:
    group.add_argument("--batch-size", type=int, default=RECIPE_DEFAULTS["batch_size"], metavar="B",
                       help="training batch size")
    group.add_argument("--optimizer", choices=list(OPTIMIZER_DEFAULTS), default=RECIPE_DEFAULTS["optimizer"],
                       help="sgd (momentum, nesterov) or adamw")
    per_optimizer = {name: dict(zip(("lr", "wd"), values)) for name, values in OPTIMIZER_DEFAULTS.items()}
    group.add_argument("--lr", type=float, metavar="LR", help="learning rate (default: " + ", ".join(
        f"{name} {v['lr']:g}" for name, v in per_optimizer.items()) + ")")
    group.add_argument("--weight-decay", type=float, metavar="WD", help="weight decay (default: " + ", ".join(
        f"{name} {v['wd']:g}" for name, v in per_optimizer.items()) + ")")
    group.add_argument("--label-smoothing", type=float, default=RECIPE_DEFAULTS["label_smoothing"], metavar="EPS",
                       help="label smoothing of the cross-entropy loss")
    group.add_argument("--augment", type=augment_argument, default=RECIPE_DEFAULTS["augment"], metavar="POLICY",
                       help="training-data augmentation: auto (the data set's default: crop+flip for CIFAR, flip for "
                            "Fashion-MNIST, none for MNIST, digits and your own data), none, or a comma list of "
                            "crop[=PAD], flip, cutout[=SIDE]")
    group.add_argument("--precision", choices=PRECISIONS, default=RECIPE_DEFAULTS["precision"],
                       help="mixed precision on GPUs")
    add_final_training(group)


def add_final_training(group: argparse._ArgumentGroup) -> None:
    """`--recipe` and the options of published final trainings (each overrides the recipe's value)."""
    group.add_argument("--recipe", metavar="NAME|FILE",
                       help=f"a training recipe: a shipped one ({', '.join(recipe_names())}; `nas recipes` shows "
                            "them) or a .yaml file; the options written on the command line override its settings")
    group.add_argument("--momentum", type=float, default=RECIPE_DEFAULTS["momentum"], metavar="M",
                       help="SGD momentum")
    group.add_argument("--nesterov", type=bool_argument, default=RECIPE_DEFAULTS["nesterov"], metavar="BOOL",
                       help="Nesterov momentum for SGD: true or false")
    group.add_argument("--schedule", choices=SCHEDULES, default=RECIPE_DEFAULTS["schedule"],
                       help="learning-rate schedule per step")
    group.add_argument("--warmup-epochs", type=int, default=RECIPE_DEFAULTS["warmup_epochs"], metavar="E",
                       help="linear learning-rate warm-up over the first E epochs")
    group.add_argument("--grad-clip", type=float, metavar="NORM",
                       help="clip the gradients' global norm (DARTS: 5; default: none)")
    group.add_argument("--drop-path", type=float, default=RECIPE_DEFAULTS["drop_path"], metavar="P",
                       help="drop-path on the cells' branches, growing linearly to P over the epochs")
    group.add_argument("--aux-weight", type=float, default=RECIPE_DEFAULTS["aux_weight"], metavar="W",
                       help="loss weight of an auxiliary head where the genome marks a stage aux: true")
    group.add_argument("--ema-decay", type=float, metavar="D",
                       help="evaluate and save a moving average of the weights (e.g. 0.9998; default: none)")
    group.add_argument("--decay-norm-bias", type=bool_argument, default=RECIPE_DEFAULTS["decay_norm_bias"],
                       metavar="BOOL", help="weight decay also on biases and norm scales (default: false)")


def bool_argument(text: str) -> bool:
    value = text.strip().lower()
    if value in ("true", "yes", "on", "1"):
        return True
    if value in ("false", "no", "off", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def count_or(word: str, what: str) -> Callable[[str], int | str]:
    """An argument type: a positive whole number (`what`, in words), or `word` (``all``, ``auto``)."""

    def parse(text: str) -> int | str:
        if text.strip().lower() == word:
            return word
        try:
            value = int(text)
        except ValueError:
            value = 0
        if value < 1:
            raise argparse.ArgumentTypeError(f"expected {what} or '{word}', got {text!r}")
        return value

    return parse


val_limit_argument = count_or("all", "a positive number of images")  # --val-limit
workers_argument = count_or("auto", "a positive number of workers")  # nas train --workers


def add_val_limit(group: argparse._ArgumentGroup) -> None:
    """`--val-limit N|all` (after `--train-limit`, whose count it follows by default)."""
    group.add_argument("--val-limit", type=val_limit_argument, metavar="N|all",
                       help="validate on a stratified subset of N images, or all (default: as many as "
                            "--train-limit when that is given, else all)")


def augment_argument(text: str) -> str:
    try:
        check_augment(text)
    except AugmentError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("augment: ")) from None
    return text.strip().lower()


def dataset_argument(text: str) -> str:
    """`--dataset`: a registered data set, npz:PATH or folder:PATH (checked by name; files when loaded).
    The names come from `nas.train.catalog` (no torch) when a value is checked, not when `--help` is shown."""
    from nas.train.catalog import DatasetError, check_dataset_name  # deferred: numpy (keeps --help fast)

    try:
        return check_dataset_name(text)
    except DatasetError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def dataset_help(default: str | None = None) -> str:
    head = ("a data set by name (digits, shipped with scikit-learn, mnist, fashion_mnist, cifar10, cifar100 or "
            "a plug-in's; a wrong name lists them all), npz:FILE (arrays x, y[, x_test, y_test]) or folder:DIR "
            "(a sub-folder per class)")
    return head + (f" (default: {default})" if default else "")


def recipe_from_args(args: argparse.Namespace) -> dict[str, object]:
    """The training settings the options give: with `--recipe`, the recipe's settings (its epochs
    included), each overridden by an option written on the command line; else the options' values."""
    values = {name: getattr(args, name) for name in RECIPE_DEFAULTS}
    if not getattr(args, "recipe", None):
        return values
    recipe = load_recipe(args.recipe)
    written = _written(args, values)
    merged = {**values, **recipe.settings}
    merged.update({name: value for name, value in values.items() if name in written})
    if "epochs" in written:
        merged["epochs"] = args.epochs
    return merged


def _written(args: argparse.Namespace, values: dict[str, object]) -> frozenset[str]:
    """The options written on the command line (`nas.cli.given_options`); for a Namespace made in Python,
    the recipe options whose values differ from their defaults."""
    if getattr(args, "argv", None) is not None and getattr(args, "command", None):
        return given_options(args.argv, args.command)
    return frozenset(name for name, value in values.items() if value != RECIPE_DEFAULTS[name])


def parse_input(text: str | None) -> tuple[int, tuple[int, int]] | tuple[None, None]:
    """``"3x32x32"`` -> ``(3, (32, 32))``; None -> ``(None, None)`` (keep the genome's input)."""
    if text is None:
        return None, None
    match = _INPUT.match(text)
    if not match or min(int(g) for g in match.groups()) < 1:
        raise NasError(f"--input: expected CxHxW with positive integers, e.g. 3x224x224; got {text!r}")
    channels, height, width = (int(g) for g in match.groups())
    return channels, (height, width)


def shape_text(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]], right: Sequence[int] = ()) -> str:
    """Plain text with aligned columns; column indexes in `right` are right-aligned (numbers)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        parts = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule] + [line(row) for row in cells[1:]])
