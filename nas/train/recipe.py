"""Named training recipes: YAML files of training settings (`TrainSettings` fields) with a description.

    recipe = load_recipe("darts")              # recipes/darts.yaml shipped with nas, or a path to a .yaml file
    settings = TrainSettings.from_dict({**recipe.settings, "seed": 1})

A recipe file is a mapping: ``description`` (one line) and any of the fields in `RECIPE_FIELDS` (the
training options the commands take: ``--batch-size``, ``--drop-path``, ...), e.g.

    description: DARTS's final CIFAR-10 training
    epochs: 600
    batch_size: 96
    lr: 0.025

It is user input, read within the bounds genome files are (`nas.limits`: size, nesting, alias bombs),
with PyYAML's safe loader; an unknown key is named with a did-you-mean, a bad value as the settings'
own checks word it. Free of torch: `nas recipes` and `--help` do not load it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nas.errors import GenomeError, NasError
from nas.limits import MAX_TEXT, check_data
from nas.resources import data_dir
from nas.suggest import did_you_mean
from nas.train.settings import SettingsError, TrainSettings

RECIPES_DIR = "recipes"
SUFFIXES = (".yaml", ".yml")
# the settings a recipe may give: the training options of `nas train`, `nas search` and `nas compare`
RECIPE_FIELDS = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "momentum", "nesterov", "schedule",
                 "label_smoothing", "augment", "precision", "warmup_epochs", "grad_clip", "drop_path", "aux_weight",
                 "ema_decay", "decay_norm_bias")
MAX_RECIPE_TEXT = MAX_TEXT // 10  # a recipe is a few lines
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class RecipeError(NasError, ValueError):
    """A recipe cannot be found or read, or holds an invalid setting."""


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    settings: dict[str, Any] = field(default_factory=dict)  # TrainSettings fields, as written
    path: Path | None = None

    def train_settings(self, **overrides: Any) -> TrainSettings:
        return TrainSettings.from_dict({**self.settings, **overrides})

    def key_settings(self) -> str:
        """The settings in a few words, e.g. ``600 epochs, batch 96, sgd lr 0.025, drop-path 0.2``."""
        s = self.train_settings()
        parts = [f"{s.epochs} epochs", f"batch {s.batch_size}", f"{s.optimizer} lr {s.learning_rate:g}",
                 f"wd {s.decay:g}"]
        if s.warmup_epochs:
            parts.append(f"warm-up {s.warmup_epochs}")
        if s.augment != "auto":
            parts.append(f"augment {s.augment}")
        for name, label in (("label_smoothing", "smoothing"), ("drop_path", "drop-path"), ("aux_weight", "aux"),
                            ("grad_clip", "clip"), ("ema_decay", "ema")):
            value = getattr(s, name)
            if value:
                parts.append(f"{label} {value:g}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "settings": dict(self.settings),
                "file": str(self.path) if self.path else None}


def recipe_names() -> list[str]:
    """The recipes shipped with nas (files in ``recipes/``)."""
    return sorted(path.stem for path in data_dir(RECIPES_DIR).glob("*.yaml"))


def recipe_path(name_or_path: str | Path) -> Path:
    """The file `name_or_path` names: a .yaml/.yml path, or a shipped recipe's name."""
    text = str(name_or_path)
    path = Path(text)
    if path.suffix.lower() in SUFFIXES:
        if not path.is_file():
            raise RecipeError(f"{path}: " + ("not a file" if path.exists() else "no such recipe file"))
        return path
    shipped = data_dir(RECIPES_DIR) / f"{text}.yaml"
    if not shipped.is_file():
        names = recipe_names()
        raise RecipeError(f"unknown recipe {text!r} (known: {', '.join(names)}; or give a path to a .yaml file)"
                          + did_you_mean(text, names))
    return shipped


def load_recipe(name_or_path: str | Path) -> Recipe:
    """The recipe a name or path gives, checked: one RecipeError line naming the file and the field otherwise."""
    path = recipe_path(name_or_path)
    label = str(name_or_path) if path.parent == data_dir(RECIPES_DIR) else str(path)
    try:
        with open(path, encoding="utf-8") as file:  # a bounded read: a huge file or a device never loads whole
            text = file.read(MAX_RECIPE_TEXT + 1)
    except UnicodeDecodeError:
        raise RecipeError(f"{label}: not a text file") from None
    except OSError as error:
        raise RecipeError(f"{label}: cannot read it ({error.strerror or error})") from None
    return parse_recipe(text, label, path)


def parse_recipe(text: str, label: str, path: Path | None = None) -> Recipe:
    if len(text) > MAX_RECIPE_TEXT:
        raise RecipeError(f"{label}: too large for a recipe ({len(text):,} characters; at most {MAX_RECIPE_TEXT:,})")
    try:
        data = yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise RecipeError(f"{label}: malformed YAML{at}: {getattr(error, 'problem', None) or error}") from None
    except (RecursionError, ValueError):
        raise RecipeError(f"{label}: malformed YAML: nested too deeply or a number too long") from None
    try:  # the bounds of genome files: an alias bomb or absurd nesting ends here, at once
        check_data(data)
    except GenomeError as error:
        raise RecipeError(f"{label}: {str(error).replace('the genome holds', 'the file holds')}") from None
    if not isinstance(data, Mapping):
        raise RecipeError(f"{label}: a recipe is a mapping of training settings (description, epochs, lr, ...); "
                          f"got {'nothing' if data is None else type(data).__name__}")
    unknown = [key for key in data if key != "description" and key not in RECIPE_FIELDS]
    if unknown:
        key = unknown[0]
        raise RecipeError(f"{label}: unknown setting {key!r} (known: description, {', '.join(RECIPE_FIELDS)})"
                          + did_you_mean(key, ("description", *RECIPE_FIELDS)))
    description = data.get("description", "")
    if not isinstance(description, str):
        raise RecipeError(f"{label}.description: must be one line of text, got {description!r}")
    settings = {key: value for key, value in data.items() if key != "description"}
    try:
        TrainSettings.from_dict(settings)
    except (SettingsError, TypeError) as error:
        raise RecipeError(f"{label}: {error}") from None
    name = path.stem if path is not None else label
    return Recipe(name, " ".join(description.split()), settings, path)
