"""The built-in data sets: each one a loader data_dir -> `nas.train.raw.RawData`, registered here in
`nas.train.catalog.DATASETS` (one line per data set). No torch at import: the registry imports this module
on its first use, and the command line checks `--dataset` before it imports torch; torchvision (and with
it torch) is imported by the loaders that read through it, when they run.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from nas.train.catalog import DATASETS
from nas.train.idx import IdxError, read_idx
from nas.train.raw import DatasetError, RawData


def _digits(root: Path) -> RawData:
    """scikit-learn's digits, shipped with it: 1,797 8x8 grey images (values 0..16) of 10 classes; no test
    set of its own (a stratified 20% is carved off); no augmentation by default."""
    from sklearn.datasets import load_digits  # deferred: scikit-learn (seconds to import; only digits needs it)

    bunch = load_digits()
    x = bunch.images.astype(np.uint8)[:, None, :, :]  # values 0..16
    return RawData("digits", x, bunch.target.astype(np.int64), None, None, len(bunch.target_names), 16.0)


def _mnist_present_files_trusted(cls: type) -> type:
    """An MNIST-family class that uses raw files already present as they are (no checksum) and
    verifies the ones it has to download. Same name, so torchvision's folder layout is unchanged."""

    def __init__(self, root, **kwargs):
        raw = Path(root) / cls.__name__ / "raw"
        self.resources = [(name, None if (raw / name).is_file() else md5) for name, md5 in cls.resources]
        cls.__init__(self, root, **kwargs)

    return type(cls.__name__, (cls,), {"__init__": __init__})


def _cifar_present_files_trusted(cls: type) -> type:
    """A CIFAR class whose per-file checksums are off (the archive's checksum still guards downloads)."""
    return type(cls.__name__, (cls,), {
        "train_list": [[name, None] for name, _ in cls.train_list],
        "test_list": [[name, None] for name, _ in cls.test_list],
        "meta": {**cls.meta, "md5": None},
    })


def _torchvision(name: str, class_name: str, trusting: Callable[[type], type], augment: str,
                 elsewhere: Callable[[], RawData | None] | None = None,
                 looked: Callable[[], str] = lambda: "") -> Callable[[Path], RawData]:
    """A loader through torchvision's dataset class `class_name` (imported on use: torchvision takes
    seconds to import, and trial workers that only receive tensors never need it). `elsewhere` reads
    the data from another place (a system folder) when `data_dir` lacks it, before any download."""

    def load(root: Path) -> RawData:
        if elsewhere is not None and not (root / class_name / "raw").is_dir():
            found = elsewhere()
            if found is not None:
                return found
        from torchvision import datasets  # deferred: torchvision and torch (see the docstring above)

        cls = trusting(getattr(datasets, class_name))
        parts = []
        for train in (True, False):
            try:
                dataset = cls(str(root), train=train, download=True)
            except Exception as error:  # no network, a corrupt archive, unreadable files
                message = " ".join(str(error).split())
                raise DatasetError(f"cannot load {class_name} from {root}{looked()} and downloading it failed: "
                                   f"{message[:300]}") from None
            data = dataset.data
            x = data.numpy() if hasattr(data, "numpy") else np.asarray(data)  # a tensor (MNIST) or an array (CIFAR)
            x = x[:, None, :, :] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # N x H x W (x C) -> N x C x H x W
            targets = dataset.targets
            y = targets.numpy() if hasattr(targets, "numpy") else np.asarray(targets)
            parts.append((np.ascontiguousarray(x, dtype=np.uint8), y.astype(np.int64), len(dataset.classes)))
        (train_x, train_y, classes), (test_x, test_y, _) = parts
        return RawData(name, train_x, train_y, test_x, test_y, classes, 255.0, augment)

    where = "".join(f", else the original IDX files in {folder}" for folder in SYSTEM_DIRS.get(name, ()))
    load.__doc__ = (f"torchvision's {class_name} files under --data-dir{where}, else downloaded (when online); "
                    f"augmentation by default: {augment}.")
    return load


# Where Debian's packages (`apt-get install dataset-fashion-mnist`) put the original IDX files; MNIST
# has no such package, its folder is the same convention. Searched when `data_dir` lacks the files.
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion_mnist": (Path("/usr/share/datasets/fashion-mnist"),),
    "mnist": (Path("/usr/share/datasets/mnist"),),
}
IDX_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
             "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _idx_file(folder: Path, stem: str) -> Path | None:
    return next((p for p in (folder / f"{stem}.gz", folder / stem) if p.is_file()), None)


def _system_idx(name: str, augment: str) -> tuple[Callable[[], RawData | None], Callable[[], str]]:
    """A reader of the four original IDX files in the first of SYSTEM_DIRS[name] that has them all
    (None when none has), read in place (no copy, no write access needed), and the text saying where
    it looked."""

    def read() -> RawData | None:
        for folder in SYSTEM_DIRS.get(name, ()):
            files = {stem: _idx_file(folder, stem) for pair in IDX_FILES.values() for stem in pair}
            if all(files.values()):
                try:
                    arrays = [read_idx(files[stem]) for pair in IDX_FILES.values() for stem in pair]
                except IdxError as error:
                    raise DatasetError(f"{name}: {error}") from None
                train_x, train_y, test_x, test_y = arrays
                for images in (train_x, test_x):
                    if images.dtype != np.uint8 or images.ndim != 3:
                        raise DatasetError(f"{name}: {folder} holds no uint8 N x H x W images "
                                           f"({images.dtype}, {images.shape})")
                return RawData(name, np.ascontiguousarray(train_x[:, None]), train_y.astype(np.int64),
                               np.ascontiguousarray(test_x[:, None]), test_y.astype(np.int64), 10, 255.0, augment)
        return None

    def looked() -> str:
        return "".join(f" nor from {folder}" for folder in SYSTEM_DIRS.get(name, ()))

    return read, looked


def _mnist_family(name: str, class_name: str, augment: str) -> Callable[[Path], RawData]:
    elsewhere, looked = _system_idx(name, augment)
    return _torchvision(name, class_name, _mnist_present_files_trusted, augment, elsewhere, looked)


# The built-in data sets. `--augment auto` per data set (nas.train.augment's docstring says why): measured on
# Fashion-MNIST, flips helped and crops cost accuracy at search budgets; crop + flip is CIFAR's standard recipe.
DATASETS.add("digits", _digits)
DATASETS.add("mnist", _mnist_family("mnist", "MNIST", "none"))  # a mirrored digit is another digit, or none
DATASETS.add("fashion_mnist", _mnist_family("fashion_mnist", "FashionMNIST", "flip"))
DATASETS.add("cifar10", _torchvision("cifar10", "CIFAR10", _cifar_present_files_trusted, "crop,flip"))
DATASETS.add("cifar100", _torchvision("cifar100", "CIFAR100", _cifar_present_files_trusted, "crop,flip"))
