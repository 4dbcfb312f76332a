"""What a data-set loader returns (`RawData`: the train and test arrays as read), checked in one place.

Every loader, built in or added by a plug-in, returns a `RawData`; its checks turn bad data (wrong
types, labels out of range, absurd image sizes, mismatched lengths) into one `DatasetError` line that
names the data set.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nas.errors import NasError
from nas.train.augment_policy import AugmentError, parse_parts

MAX_SIDE = 4096  # pixels; an image side outside 1..MAX_SIDE is a wrong axis order, not a data set
MAX_CHANNELS = 4


class DatasetError(NasError):
    """A data set is unknown, missing, or cannot be read."""


@dataclass(frozen=True)
class RawData:
    """The official train and test data (test may be None: then a stratified part of train is carved
    off), images uint8 N x C x H x W, labels int64 in 0..num_classes-1.

    `scale` is the raw value of a full-intensity pixel (255, or 16 for digits); `augment` is what
    `--augment auto` means for this data set (see nas.train.augment)."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray | None
    test_y: np.ndarray | None
    num_classes: int
    scale: float = 255.0
    augment: str = "none"

    def __post_init__(self) -> None:
        if (self.test_x is None) != (self.test_y is None):
            raise DatasetError(f"{self.name}: test images and test labels must both be given or both be absent")
        if not isinstance(self.num_classes, int) or self.num_classes < 2:
            raise DatasetError(f"{self.name}: needs at least 2 classes, got {self.num_classes}")
        for part, x, y in (("train", self.train_x, self.train_y), ("test", self.test_x, self.test_y)):
            if x is not None:
                check_images(self.name, part, x)
                check_labels(self.name, part, y, len(x), self.num_classes)
        if self.test_x is not None and self.test_x.shape[1:] != self.train_x.shape[1:]:
            raise DatasetError(f"{self.name}: test images are {shape_text(self.test_x.shape[1:])}, "
                               f"train images {shape_text(self.train_x.shape[1:])}")
        try:
            parse_parts(self.augment)
        except AugmentError as error:
            raise DatasetError(f"{self.name}: default {error}") from None


def shape_text(shape) -> str:
    return "x".join(str(int(s)) for s in shape)


def check_images(name: str, part: str, x: np.ndarray) -> None:
    if not isinstance(x, np.ndarray) or x.dtype != np.uint8 or x.ndim != 4:
        kind = f"{x.dtype} array of shape {x.shape}" if isinstance(x, np.ndarray) else type(x).__name__
        raise DatasetError(f"{name}: {part} images must be a uint8 N x C x H x W array, got a {kind}")
    n, c, h, w = x.shape
    if n == 0:
        raise DatasetError(f"{name}: no {part} images")
    if not 1 <= c <= MAX_CHANNELS or not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise DatasetError(f"{name}: {part} images are {shape_text((c, h, w))} (C x H x W): expected 1 to "
                           f"{MAX_CHANNELS} channels and sides of 1 to {MAX_SIDE} pixels")


def check_labels(name: str, part: str, y, count: int, num_classes: int) -> None:
    if not isinstance(y, np.ndarray) or y.dtype != np.int64 or y.shape != (count,):
        kind = f"{y.dtype} array of shape {y.shape}" if isinstance(y, np.ndarray) else type(y).__name__
        raise DatasetError(f"{name}: {part} labels must be an int64 array of length {count} (one per image), got a {kind}")
    low, high = int(y.min()), int(y.max())
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise DatasetError(f"{name}: {part} label {bad} is out of range (classes are 0..{num_classes - 1})")


def integer_labels(name: str, part: str, y) -> np.ndarray:
    """Labels as int64: integer arrays as they are, floats only when every value is a whole number."""
    y = np.asarray(y)
    if y.ndim != 1:
        raise DatasetError(f"{name}: {part} labels must be one-dimensional, got shape {y.shape}")
    if np.issubdtype(y.dtype, np.integer) or y.dtype == np.bool_:
        return y.astype(np.int64)
    if np.issubdtype(y.dtype, np.floating) and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        return y.astype(np.int64)
    raise DatasetError(f"{name}: {part} labels must be integers, got {y.dtype}"
                       + (" with fractional or non-finite values" if np.issubdtype(y.dtype, np.floating) else ""))
