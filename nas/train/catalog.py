"""The data sets by name, without torch: the registries `DATASETS` and `KINDS`, name checks, the data folder.

The command line checks `--dataset` and `--data-dir` here before it imports torch, so that a typo is
answered at once. The built-in data sets register themselves in `nas.train.builtin_data` (torch-free
too), which the registry imports on its first use. A plug-in adds a data set
with ``DATASETS.add(name, loader)`` (a loader: data_dir -> `nas.train.raw.RawData`) or through an entry
point in group ``nas.datasets``.
"""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from nas.plugins import GROUPS
from nas.registry import Registry
from nas.suggest import did_you_mean
from nas.train.raw import DatasetError, RawData
from nas.train.user_data import load_folder, load_npz

DATA_DIR_ENV = "NAS_DATA_DIR"

# What each class index means, for the data sets whose classes are known by name (the input contract
# of a trained network records them); data sets not named here record none.
DIGITS = tuple(str(d) for d in range(10))
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "digits": DIGITS,
    "mnist": DIGITS,
    "fashion_mnist": ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                      "Ankle boot"),
    "cifar10": ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}


# name -> loader(data_dir) -> RawData; plug-ins add theirs with DATASETS.add(name, loader)
DATASETS: Registry[Callable[[Path], RawData]] = Registry("data set", GROUPS["datasets"],
                                                       builtins=("nas.train.builtin_data",))

# kind -> loader(path) -> RawData, for names "kind:PATH" (the user's own data)
KINDS: Registry[Callable[[Path], RawData]] = Registry("data set kind")
KINDS.add("npz", load_npz)
KINDS.add("folder", load_folder)


def dataset_names() -> list[str]:
    """The registered data sets (the user's own data are named "npz:PATH" or "folder:PATH")."""
    return DATASETS.names()


def check_dataset_name(name: str) -> str:
    """`name` if it is a registered data set or "kind:PATH" of a registered kind; else DatasetError."""
    kind, sep, path = name.partition(":")
    if sep and kind in KINDS:
        if not path.strip():
            raise DatasetError(f"data set {name!r}: give a path after {kind}:")
        return name
    if name not in DATASETS:
        kinds = ", ".join(f"{k}:PATH" for k in KINDS)
        raise DatasetError(f"unknown data set {name!r} (known: {', '.join(DATASETS)}; or {kinds})"
                           + did_you_mean(name, DATASETS))
    return name


def check_data_dir(data_dir: str | Path | None) -> None:
    """A data folder that exists must be a folder (one that does not is made when files are downloaded)."""
    if data_dir is not None and Path(data_dir).exists() and not Path(data_dir).is_dir():
        raise DatasetError(f"data folder {data_dir}: is a file, not a folder")


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, "data"))


def class_names(name: str) -> tuple[str, ...] | None:
    """The names of data set `name`'s classes in index order, where they are known (else None)."""
    return CLASS_NAMES.get(name)
