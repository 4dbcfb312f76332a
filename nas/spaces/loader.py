"""`load_space`: a search space from a shipped name (``cells``, ``macro``, ``mobile``) or a YAML file.

Every space file names its `kind` (the Python class that interprets it) and may give the default
`input` ({channels, size}) and `num_classes`; the keyword overrides of `load_space` (the data set's)
replace them.

`KINDS` is a `nas.registry.Registry` of `SearchSpace` subclasses (constructed as
``cls(spec: Fields, *, input_channels, input_size, num_classes)``): register one from Python with
``KINDS.add(name, cls)`` or from another package's entry point in group ``nas.spaces``. A kind that
needs no file is also a space name: ``load_space("mykind")`` reads it from ``{kind: mykind}``.
"""
from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from nas.errors import GenomeError
from nas.limits import MAX_TEXT, check_data
from nas.plugins import GROUPS
from nas.registry import Registry
from nas.resources import data_dir, space_names
from nas.spaces.base import SearchSpace, SpaceError
from nas.spaces.fields import Fields
from nas.suggest import did_you_mean


def _kind_entry(name: str, entry: object) -> type[SearchSpace]:
    if not (isinstance(entry, type) and issubclass(entry, SearchSpace)):
        raise TypeError(f"a search-space kind must be a subclass of nas.spaces.SearchSpace, got {entry!r}")
    return entry


# kind -> a SearchSpace subclass, or (module, class) for the built-in ones, imported on use (they need
# torch, and the command line checks a space's name without it: `check_space_name`)
KINDS: Registry[type[SearchSpace] | tuple[str, str]] = Registry("search-space kind", GROUPS["spaces"], _kind_entry)
KINDS.add("cells", ("nas.spaces.cell_space", "CellSpace"))
KINDS.add("stages", ("nas.spaces.stages", "StageSpace"))


def kind_class(kind: str) -> type[SearchSpace]:
    """The SearchSpace subclass of registered kind `kind`."""
    entry = KINDS.get(kind)
    if isinstance(entry, tuple):
        module, name = entry
        return getattr(importlib.import_module(module), name)
    return entry


def space_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise SpaceError(f"no such search-space file: {path}")
        return path
    shipped = data_dir("search_spaces") / f"{name_or_path}.yaml"
    if not shipped.is_file():
        raise SpaceError(f"unknown search space {str(name_or_path)!r} (known: {', '.join(space_names())}; "
                         "a search-space kind: " + ", ".join(KINDS) + "; or give a path to a .yaml file)"
                         + did_you_mean(name_or_path, [*space_names(), *KINDS]))
    return shipped


def check_space_name(name_or_path: str | Path) -> None:
    """A shipped space, a kind that needs no file or an existing .yaml file; else SpaceError (the file's
    contents are read by `load_space`). Imports no torch."""
    name = str(name_or_path)
    if Path(name).suffix in (".yaml", ".yml") or name not in KINDS:
        space_path(name_or_path)


def load_space(name_or_path: str | Path, *, input_channels: int | None = None, input_size: int | None = None,
               num_classes: int | None = None) -> SearchSpace:
    """The search space `name_or_path`, realizing genomes for the given input and classes."""
    name = str(name_or_path)
    if Path(name).suffix not in (".yaml", ".yml") and not (data_dir("search_spaces") / f"{name}.yaml").is_file() \
            and name in KINDS:
        data, label = {"kind": name}, name  # a kind that needs no file
    else:
        path = space_path(name_or_path)
        label = path.name
        text = path.read_text()
        if len(text) > MAX_TEXT:
            raise SpaceError(f"{path}: {len(text):,} characters; a search-space file may have at most {MAX_TEXT:,}")
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise SpaceError(f"{path}: malformed YAML: {error}") from None
        try:  # the same bounds as genome files: an alias bomb or absurd nesting ends here, at once
            check_data(data, label)
        except GenomeError as error:
            raise SpaceError(str(error).replace("the genome holds", "the file holds")) from None
    spec = Fields(data, label)
    kind = spec.get("kind", str)
    if kind not in KINDS:
        raise SpaceError(f"{label}.kind: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    given = spec.sub("input", {})
    given.check_keys({"channels", "size"})
    return kind_class(kind)(
        spec,
        input_channels=input_channels or given.get("channels", int, 3),
        input_size=input_size or given.get("size", int, 32),
        num_classes=num_classes or spec.get("num_classes", int, 10),
    )
