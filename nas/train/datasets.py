"""Image-classification data sets as in-memory tensors: train / validation / test splits.

    data = load_dataset("digits")                      # scikit-learn's 8x8 digits, shipped offline
    data = load_dataset("cifar10", data_dir="data")    # torchvision's CIFAR-10 (downloaded if missing)

Images are kept as uint8 tensors (N, C, H, W) plus a per-channel mean/std of the training split;
`DatasetSplits.normalize` turns a batch into float inputs. The validation split is carved from the
training data (stratified, seeded); the test split is the official test set (for `digits`, which
has none, a stratified, seeded part of the whole set). Small enough to live in memory and to be
shared with trials through Ray's object store: the tensors pickle as numpy arrays, which Ray
reads back without a copy.

The torchvision loaders trust files that are already present (their per-file checksums are those of
the official releases, so subsets and re-packed copies would be refused) and verify downloads
against the official archive checksums.
"""
from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nas.errors import NasError

DATA_DIR_ENV = "NAS_DATA_DIR"


class DatasetError(NasError):
    """A data set is unknown, missing, or cannot be read."""


@dataclass(frozen=True, eq=False)
class Split:
    """Images (uint8, N x C x H x W) and integer labels (int64, N)."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.dtype != torch.uint8 or self.x.dim() != 4:
            raise DatasetError(f"split images must be a uint8 N x C x H x W tensor, got {self.x.dtype} {tuple(self.x.shape)}")
        if self.y.dtype != torch.int64 or self.y.shape != (self.x.shape[0],):
            raise DatasetError(f"split labels must be an int64 tensor of length {self.x.shape[0]}")

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def __reduce__(self):
        # numpy arrays travel out of band through Ray's object store (zero-copy reads)
        return _split_from_numpy, (self.x.numpy(), self.y.numpy())


def _split_from_numpy(x: np.ndarray, y: np.ndarray) -> Split:
    with warnings.catch_warnings():  # object-store buffers are read-only; the data is never written
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return Split(torch.from_numpy(x), torch.from_numpy(y))


@dataclass(frozen=True, eq=False)
class DatasetSplits:
    """A data set's three splits, its input shape and classes, and the normalisation of its pixels."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    scale: float  # the raw value of a full-intensity pixel (255, or 16 for digits)
    mean: tuple[float, ...]  # per channel, of x / scale over the training split
    std: tuple[float, ...]

    @property
    def channels(self) -> int:
        return int(self.train.x.shape[1])

    @property
    def size(self) -> int:
        return int(self.train.x.shape[2])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.train.x.shape[1:])  # type: ignore[return-value]

    def normalize(self, x: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """uint8 images (on any device) -> float inputs with zero mean and unit variance per channel."""
        shape = (1, -1, 1, 1)
        mean = torch.tensor(self.mean, dtype=dtype, device=x.device).view(shape)
        std = torch.tensor(self.std, dtype=dtype, device=x.device).view(shape)
        return (x.to(dtype) / self.scale - mean) / std

    def describe(self) -> str:
        c, h, w = self.input_shape
        return (f"{self.name}: {c}x{h}x{w}, {self.num_classes} classes, "
                f"train {len(self.train)} / val {len(self.val)} / test {len(self.test)}")


@dataclass(frozen=True)
class _Raw:
    """What a loader reads: the official train and test data (test may be None), uint8 NCHW."""

    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray | None
    test_y: np.ndarray | None
    num_classes: int
    scale: float


# ----- loaders -----
def _digits(root: Path) -> _Raw:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.uint8)[:, None, :, :]  # values 0..16
    return _Raw(x, bunch.target.astype(np.int64), None, None, len(bunch.target_names), 16.0)


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


def _torchvision(class_name: str, trusting: Callable[[type], type]) -> Callable[[Path], _Raw]:
    """A loader through torchvision's dataset class `class_name` (imported on use: torchvision takes
    seconds to import, and trial workers that only receive tensors never need it)."""

    def load(root: Path) -> _Raw:
        from torchvision import datasets

        cls = trusting(getattr(datasets, class_name))
        parts = []
        for train in (True, False):
            try:
                dataset = cls(str(root), train=train, download=True)
            except Exception as error:  # no network, a corrupt archive, unreadable files
                message = " ".join(str(error).split())
                raise DatasetError(f"cannot load {class_name} from {root} and downloading it failed: {message[:300]}") from None
            data = dataset.data
            x = data.numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
            x = x[:, None, :, :] if x.ndim == 3 else x.transpose(0, 3, 1, 2)  # N x H x W (x C) -> N x C x H x W
            targets = dataset.targets
            y = targets.numpy() if isinstance(targets, torch.Tensor) else np.asarray(targets)
            parts.append((np.ascontiguousarray(x, dtype=np.uint8), y.astype(np.int64), len(dataset.classes)))
        (train_x, train_y, classes), (test_x, test_y, _) = parts
        return _Raw(train_x, train_y, test_x, test_y, classes, 255.0)

    return load


LOADERS: dict[str, Callable[[Path], _Raw]] = {
    "digits": _digits,
    "mnist": _torchvision("MNIST", _mnist_present_files_trusted),
    "fashion_mnist": _torchvision("FashionMNIST", _mnist_present_files_trusted),
    "cifar10": _torchvision("CIFAR10", _cifar_present_files_trusted),
    "cifar100": _torchvision("CIFAR100", _cifar_present_files_trusted),
}
DIGITS_TEST_FRACTION = 0.2  # digits has no official test set


def dataset_names() -> list[str]:
    return list(LOADERS)


def default_data_dir() -> Path:
    return Path(os.environ.get(DATA_DIR_ENV, "data"))


def _stratified(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indexes (kept, carved): `fraction` of every class carved out, seeded."""
    from sklearn.model_selection import train_test_split

    index = np.arange(len(labels))
    kept, carved = train_test_split(index, test_size=fraction, random_state=seed, stratify=labels)
    return np.sort(kept), np.sort(carved)


def _split(x: np.ndarray, y: np.ndarray, index: np.ndarray) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(x[index])), torch.from_numpy(np.ascontiguousarray(y[index])))


def load_dataset(name: str, data_dir: str | Path | None = None, *, val_fraction: float = 0.1, seed: int = 0,
                 train_limit: int | None = None) -> DatasetSplits:
    """The splits of data set `name` (see `dataset_names()`).

    `val_fraction` of the training data (stratified, seeded by `seed`) becomes the validation split;
    `train_limit` keeps a stratified subset of that many training images (a cheaper search proxy).
    Files live under `data_dir` (default: $NAS_DATA_DIR or ./data); `digits` needs none.
    """
    if name not in LOADERS:
        raise DatasetError(f"unknown data set {name!r} (known: {', '.join(LOADERS)})")
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"val_fraction must be in (0, 1), got {val_fraction}")
    raw = LOADERS[name](Path(data_dir) if data_dir is not None else default_data_dir())
    train_x, train_y, test_x, test_y = raw.train_x, raw.train_y, raw.test_x, raw.test_y
    if test_x is None:
        kept, test_index = _stratified(train_y, DIGITS_TEST_FRACTION, seed)
        test_x, test_y = train_x[test_index], train_y[test_index]
        train_x, train_y = train_x[kept], train_y[kept]
    # with no test set of its own, carve val as the same share of the whole set
    share = val_fraction / (1.0 - DIGITS_TEST_FRACTION) if raw.test_x is None else val_fraction
    kept, val_index = _stratified(train_y, share, seed + 1)
    if train_limit is not None and train_limit < len(kept):
        if train_limit < raw.num_classes:
            raise DatasetError(f"train_limit must be at least the number of classes ({raw.num_classes}), got {train_limit}")
        _, chosen = _stratified(train_y[kept], train_limit / len(kept), seed + 2)
        kept = kept[chosen]
    train = _split(train_x, train_y, kept)
    pixels = train.x.to(torch.float64) / raw.scale
    mean = pixels.mean(dim=(0, 2, 3))
    std = pixels.std(dim=(0, 2, 3)).clamp_min(1e-6)
    return DatasetSplits(
        name=name,
        train=train,
        val=_split(train_x, train_y, val_index),
        test=Split(torch.from_numpy(np.ascontiguousarray(test_x)), torch.from_numpy(np.ascontiguousarray(test_y))),
        num_classes=raw.num_classes,
        scale=raw.scale,
        mean=tuple(float(m) for m in mean),
        std=tuple(float(s) for s in std),
    )
