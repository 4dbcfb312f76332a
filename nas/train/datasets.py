"""Image-classification data sets as in-memory tensors: train / validation / test splits.

    data = load_dataset("digits")                      # scikit-learn's 8x8 digits, shipped offline
    data = load_dataset("cifar10", data_dir="data")    # torchvision's CIFAR-10 (downloaded if missing)

    data = load_dataset("fashion_mnist")               # data/FashionMNIST/raw, else Debian's /usr/share/datasets/fashion-mnist
    data = load_dataset("npz:mine.npz")                # the user's own data (nas.train.user_data)
    data = load_dataset("folder:photos")               # one sub-folder of images per class

Images are kept as uint8 tensors (N, C, H, W) plus a per-channel mean/std of the training split;
`DatasetSplits.normalize` turns a batch into float inputs. The validation split is carved from the
training data (stratified, seeded); the test split is the official test set (for `digits` and user
data without one, a stratified, seeded part of the whole set). Small enough to live in memory and to
be shared with trials through Ray's object store: the tensors pickle as numpy arrays, which Ray
reads back without a copy.

Data sets are registered by name in `DATASETS` (name -> loader(data_dir) -> RawData; a plug-in adds
one with `DATASETS.add(name, loader)`), and kinds of the user's own data in `KINDS` (kind ->
loader(path), named "kind:PATH"); both live in `nas.train.catalog`, which needs no torch; the built-in
loaders are in `nas.train.builtin_data`.

The torchvision loaders trust files that are already present (their per-file checksums are those of
the official releases, so subsets and re-packed copies would be refused) and verify downloads
against the official archive checksums. MNIST and Fashion-MNIST are first looked for in data_dir
(torchvision's layout), then as the original IDX files in SYSTEM_DIRS (read in place), and only then
downloaded (`nas.train.builtin_data`).
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nas.train.catalog import (DATA_DIR_ENV, DATASETS, KINDS, check_data_dir,  # noqa: F401 (re-exported)
                               check_dataset_name, dataset_names, default_data_dir)
from nas.train.idx import IdxError, read_idx
from nas.train.raw import DatasetError, RawData


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
    augment: str = "none"  # what `--augment auto` means here (nas.train.augment)
    official_test: bool = True  # the data set's own test images (False: carved from its training images by seed)
    val_of: int | None = None  # the validation split's size before a validation limit cut it (None: not cut)

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
        val = f"{len(self.val)} of {self.val_of}" if self.val_of is not None else str(len(self.val))
        return (f"{self.name}: {c}x{h}x{w}, {self.num_classes} classes, "
                f"train {len(self.train)} / val {val} / test {len(self.test)}")


CARVED_TEST_FRACTION = 0.2  # for data sets without a test set of their own (digits; user data without one)


def load_raw(name: str, data_dir: str | Path | None = None) -> RawData:
    """What data set `name`'s loader reads, unsplit."""
    check_dataset_name(name)
    kind, sep, path = name.partition(":")
    if sep and kind in KINDS:
        return KINDS.get(kind)(Path(path).expanduser())
    check_data_dir(data_dir)
    return DATASETS.get(name)(Path(data_dir) if data_dir is not None else default_data_dir())


def _stratified(labels: np.ndarray, fraction: float, seed: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Indexes (kept, carved): `fraction` of every class carved out, seeded."""
    from sklearn.model_selection import train_test_split  # deferred: scikit-learn (seconds; workers never split)

    index = np.arange(len(labels))
    try:
        kept, carved = train_test_split(index, test_size=fraction, random_state=seed, stratify=labels)
    except ValueError as error:  # a class with one image, or fewer images to carve than classes
        raise DatasetError(f"{what}: cannot carve a stratified {fraction:.0%} from {len(labels)} images of "
                           f"{len(np.unique(labels))} classes ({' '.join(str(error).split())})") from None
    return np.sort(kept), np.sort(carved)


def _split(x: np.ndarray, y: np.ndarray, index: np.ndarray) -> Split:
    return Split(torch.from_numpy(np.ascontiguousarray(x[index])), torch.from_numpy(np.ascontiguousarray(y[index])))


def val_limit_for(val_limit: int | str | None, train_limit: int | None) -> int | None:
    """The validation images to keep at most: `val_limit` (a count), none for "all", and by default (None)
    the train limit's count: validation follows the training subset, so a limited epoch does not spend
    most of its time validating (a proportional share would leave too few images to rank networks by)."""
    if val_limit is None:
        return train_limit
    if val_limit == "all":
        return None
    if isinstance(val_limit, bool) or not isinstance(val_limit, int) or val_limit < 1:
        raise DatasetError(f"val_limit must be a positive integer or 'all', got {val_limit!r}")
    return val_limit


def load_dataset(name: str, data_dir: str | Path | None = None, *, val_fraction: float = 0.1, seed: int = 0,
                 train_limit: int | None = None, val_limit: int | str | None = None) -> DatasetSplits:
    """The splits of data set `name` (see `dataset_names()`).

    `val_fraction` of the training data (stratified, seeded by `seed`) becomes the validation split;
    `train_limit` keeps a stratified subset of that many training images (a cheaper search proxy);
    `val_limit` a stratified subset of at most that many validation images ("all": every one; None:
    as many as `train_limit`, see `val_limit_for`).
    Files live under `data_dir` (default: $NAS_DATA_DIR or ./data); `digits` needs none.
    """
    check_dataset_name(name)
    val_keep = val_limit_for(val_limit, train_limit)
    if not 0.0 < val_fraction < 1.0:
        raise DatasetError(f"val_fraction must be in (0, 1), got {val_fraction}")
    raw = load_raw(name, data_dir)
    train_x, train_y, test_x, test_y = raw.train_x, raw.train_y, raw.test_x, raw.test_y
    if test_x is None:
        kept, test_index = _stratified(train_y, CARVED_TEST_FRACTION, seed, f"{name}: test split")
        test_x, test_y = train_x[test_index], train_y[test_index]
        train_x, train_y = train_x[kept], train_y[kept]
    # with no test set of its own, carve val as the same share of the whole set
    share = val_fraction / (1.0 - CARVED_TEST_FRACTION) if raw.test_x is None else val_fraction
    kept, val_index = _stratified(train_y, share, seed + 1, f"{name}: validation split")
    if train_limit is not None and train_limit < len(kept):
        if train_limit < raw.num_classes:
            raise DatasetError(f"train_limit must be at least the number of classes ({raw.num_classes}), got {train_limit}")
        _, chosen = _stratified(train_y[kept], train_limit / len(kept), seed + 2, f"{name}: train_limit")
        kept = kept[chosen]
    val_of = None
    if val_keep is not None and val_keep < len(val_index):
        if val_keep < raw.num_classes:
            raise DatasetError(f"val_limit must be at least the number of classes ({raw.num_classes}), got {val_keep}"
                               + (" (it follows train_limit; set val_limit)" if val_limit is None else ""))
        val_of, val_index = len(val_index), val_index[_stratified_count(train_y[val_index], val_keep, seed + 3)]
    train = _split(train_x, train_y, kept)
    mean, std = channel_moments(train.x.numpy(), raw.scale)
    return DatasetSplits(
        name=name,
        train=train,
        val=_split(train_x, train_y, val_index),
        test=Split(torch.from_numpy(np.ascontiguousarray(test_x)), torch.from_numpy(np.ascontiguousarray(test_y))),
        num_classes=raw.num_classes,
        scale=raw.scale,
        mean=mean,
        std=std,
        augment=raw.augment,
        official_test=raw.test_x is not None,
        val_of=val_of,
    )


def _stratified_count(labels: np.ndarray, count: int, seed: int) -> np.ndarray:
    """Indexes of `count` of `labels` (at least one of each class), stratified and seeded, sorted."""
    from sklearn.model_selection import train_test_split  # deferred: scikit-learn (as in _stratified)

    try:
        _, chosen = train_test_split(np.arange(len(labels)), test_size=count, random_state=seed, stratify=labels)
    except ValueError as error:  # a class with one image
        raise DatasetError(f"val_limit: cannot keep a stratified {count} of {len(labels)} validation images "
                           f"({' '.join(str(error).split())})") from None
    return np.sort(chosen)


def channel_moments(x: np.ndarray, scale: float) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and (sample) standard deviation of uint8 images N x C x H x W divided by
    `scale`, from each channel's histogram of the 256 values (exact, and no float copy of the images)."""
    values = np.arange(256, dtype=np.float64) / scale
    means, stds = [], []
    for channel in range(x.shape[1]):
        counts = np.bincount(x[:, channel].ravel(), minlength=256).astype(np.float64)
        n = counts.sum()
        mean = float((counts * values).sum() / n)
        variance = float((counts * (values - mean) ** 2).sum() / max(1.0, n - 1))
        means.append(mean)
        stds.append(max(variance ** 0.5, 1e-6))
    return tuple(means), tuple(stds)
