"""The user's own data: ``npz:PATH`` (numpy arrays) and ``folder:PATH`` (one sub-folder of images per class).

    load_dataset("npz:data/mine.npz")     # arrays x, y (and optionally x_test, y_test)
    load_dataset("folder:data/flowers")   # flowers/<class>/*.png, or flowers/train/<class>/... + flowers/test/<class>/...

npz: ``x`` is uint8 images N x H x W (one channel), N x H x W x C or N x C x H x W (C of 1, 3 or 4;
the channel axis is the one of that size, the last one if both are), ``y`` integer labels 0..K-1
(K = the largest label + 1). ``x_test`` and ``y_test`` are the test set; without them a stratified
part of the training data is carved off, as for digits. Loaded without pickles (allow_pickle=False).

folder: the classes are the sub-folders (sorted by name, as torchvision's ImageFolder numbers them),
the images every file torchvision's ImageFolder accepts (png, jpg, bmp, ...), read with PIL. All images
must have one size and one mode (L: one channel, RGB: three, RGBA: four); resize them beforehand. If
the folder holds exactly the sub-folders ``train`` and ``test``, they are the two splits and must have
the same classes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from nas.train.raw import MAX_CHANNELS, DatasetError, RawData, integer_labels, shape_text

CHANNELS = {"L": 1, "RGB": 3, "RGBA": 4}
SPLIT_FOLDERS = ("test", "train")


# ----- npz -----
def load_npz(path: Path) -> RawData:
    """A NumPy .npz file: arrays x (uint8 images N x H x W, N x H x W x C or N x C x H x W) and y (integer labels
    0..K-1), optionally x_test and y_test (else a stratified 20% is carved off)."""
    name = f"npz:{path}"
    if path.is_dir():
        raise DatasetError(f"{name}: is a folder, not an .npz file (for a folder of images use folder:{path})")
    if not path.is_file():
        raise DatasetError(f"{name}: no such file")
    try:
        with path.open("rb") as file:
            head = file.read(6)
    except OSError as error:
        raise DatasetError(f"{name}: cannot read ({' '.join(str(error).split())})") from None
    if head == b"\x93NUMPY":
        raise DatasetError(f"{name}: holds a single array, not named arrays x and y (save them with np.savez)")
    if not head.startswith(b"PK"):
        raise DatasetError(f"{name}: not an .npz file (not a zip archive of arrays; save them with np.savez)")
    try:
        archive = np.load(path, allow_pickle=False)
        with archive:
            arrays = {key: archive[key] for key in archive.files}
    except DatasetError:
        raise
    except Exception as error:  # not a zip, a truncated file, an object array (pickles are refused)
        message = " ".join(str(error).split()) or type(error).__name__
        raise DatasetError(f"{name}: cannot read as an .npz file ({message[:200]})") from None
    for key in ("x", "y"):
        if key not in arrays:
            raise DatasetError(f"{name}: no array {key!r} (found: {', '.join(sorted(arrays)) or 'none'}; "
                               "expected x, y and optionally x_test, y_test)")
    if ("x_test" in arrays) != ("y_test" in arrays):
        missing = "y_test" if "x_test" in arrays else "x_test"
        raise DatasetError(f"{name}: has {'x_test' if missing == 'y_test' else 'y_test'} but no {missing}")
    train_x = _images_nchw(name, "x", arrays["x"])
    train_y = integer_labels(name, "y", arrays["y"])
    test_x = _images_nchw(name, "x_test", arrays["x_test"]) if "x_test" in arrays else None
    test_y = integer_labels(name, "y_test", arrays["y_test"]) if "y_test" in arrays else None
    for part, x, y in (("x", train_x, train_y), ("x_test", test_x, test_y)):
        if x is not None and len(x) != len(y):
            label = "y" if part == "x" else "y_test"
            raise DatasetError(f"{name}: {part} has {len(x)} images but {label} has {len(y)} labels")
    if len(train_y) == 0:
        raise DatasetError(f"{name}: x and y hold no images")
    for key, y in (("y", train_y), ("y_test", test_y)):
        if y is not None and len(y) and y.min() < 0:
            raise DatasetError(f"{name}: {key} has negative label {int(y.min())} (labels are class numbers 0..K-1)")
    classes = int(train_y.max()) + 1
    unused = np.flatnonzero(np.bincount(train_y, minlength=classes) == 0)
    if len(unused):
        shown = ", ".join(map(str, unused[:5])) + (", ..." if len(unused) > 5 else "")
        raise DatasetError(f"{name}: y uses labels up to {classes - 1}, but no image has label {shown}: labels must "
                           "be 0..K-1 with every class present (np.unique(y, return_inverse=True)[1] renumbers them)")
    if classes < 2:
        raise DatasetError(f"{name}: y has one class only (label 0); a classifier needs at least 2")
    if test_y is not None and test_y.max() >= classes:
        raise DatasetError(f"{name}: y_test has label {int(test_y.max())}, but the labels in y go up to {classes - 1}")
    return RawData(name, train_x, train_y, test_x, test_y, classes)


def _images_nchw(name: str, key: str, x: np.ndarray) -> np.ndarray:
    if x.dtype != np.uint8:
        hint = " (convert with (x * 255).round().astype('uint8'))" if np.issubdtype(x.dtype, np.floating) else ""
        raise DatasetError(f"{name}: {key} must be uint8 (0..255), got {x.dtype}{hint}")
    if x.ndim == 3:
        return np.ascontiguousarray(x[:, None])
    if x.ndim != 4:
        raise DatasetError(f"{name}: {key} must be N x H x W, N x H x W x C or N x C x H x W, got shape {x.shape}")
    if x.shape[3] <= MAX_CHANNELS:
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))
    if x.shape[1] <= MAX_CHANNELS:
        return np.ascontiguousarray(x)
    raise DatasetError(f"{name}: {key} has shape {x.shape}: no axis of 1 to {MAX_CHANNELS} channels "
                       "(expected N x H x W x C or N x C x H x W)")


# ----- folder -----
def load_folder(path: Path) -> RawData:
    """A folder with one sub-folder of same-size images per class (as torchvision's ImageFolder), optionally
    split into train/ and test/ (else a stratified 20% is carved off)."""
    name = f"folder:{path}"
    if path.is_file():
        raise DatasetError(f"{name}: is a file, not a folder (for numpy arrays use npz:{path})")
    if not path.is_dir():
        raise DatasetError(f"{name}: no such folder")
    subfolders = sorted(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    if tuple(subfolders) == SPLIT_FOLDERS:
        train_classes, train_x, train_y = _read_classes(name, path / "train")
        test_classes, test_x, test_y = _read_classes(name, path / "test")
        if test_classes != train_classes:
            extra = sorted(set(test_classes) ^ set(train_classes))
            raise DatasetError(f"{name}: train/ and test/ must have the same class folders; "
                               f"differ in {', '.join(extra[:5])}")
        if test_x.shape[1:] != train_x.shape[1:]:
            raise DatasetError(f"{name}: test images are {_mode_size(test_x)}, train images {_mode_size(train_x)}")
        return RawData(name, train_x, train_y, test_x, test_y, len(train_classes))
    classes, x, y = _read_classes(name, path)
    return RawData(name, x, y, None, None, len(classes))


def _mode_size(x: np.ndarray) -> str:
    return f"{shape_text(x.shape[2:])} with {x.shape[1]} channel(s)"


def _read_classes(name: str, root: Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    # deferred: torchvision and torch (the argument checks import this module and must stay torch-free)
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    try:
        classes, index = find_classes(str(root))
        samples = make_dataset(str(root), index, extensions=IMG_EXTENSIONS, allow_empty=True)
    except FileNotFoundError:
        raise DatasetError(f"{name}: no class folders in {root} (expected one sub-folder of images per class)") from None
    if len(classes) < 2:
        raise DatasetError(f"{name}: {len(classes)} class folder(s) in {root}; a classifier needs at least 2")
    empty = sorted(set(classes) - {classes[label] for _, label in samples})
    if empty:
        raise DatasetError(f"{name}: class folder {root / empty[0]} has no images "
                           f"({', '.join(e.lstrip('.') for e in IMG_EXTENSIONS)})")
    images = [_read_image(name, Path(file)) for file, _ in samples]
    first_file, (first_mode, first) = samples[0][0], images[0]
    for (file, _), (mode, image) in zip(samples, images):
        if mode != first_mode or image.shape != first.shape:
            raise DatasetError(f"{name}: images differ in size or mode: {file} is {image.shape[1]}x{image.shape[0]} "
                               f"{mode}, {first_file} is {first.shape[1]}x{first.shape[0]} {first_mode} "
                               "(resize / convert them to one size and mode first)")
    x = np.stack([image for _, image in images])
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    y = np.array([label for _, label in samples], dtype=np.int64)
    return classes, np.ascontiguousarray(x), y


def _read_image(name: str, file: Path) -> tuple[str, np.ndarray]:
    from PIL import Image, UnidentifiedImageError  # deferred: Pillow (comes with torchvision; only images need it)

    try:
        with Image.open(file) as image:
            mode = image.mode
            if mode not in CHANNELS:
                raise DatasetError(f"{name}: {file} has image mode {mode}; use one of {', '.join(CHANNELS)} "
                                   "(8 bits per channel)")
            return mode, np.asarray(image, dtype=np.uint8).copy()
    except DatasetError:
        raise
    except (OSError, UnidentifiedImageError, ValueError) as error:
        message = " ".join(str(error).split()) or type(error).__name__
        raise DatasetError(f"{name}: cannot read image {file} ({message[:160]})") from None
