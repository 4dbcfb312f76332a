"""Data sets: digits offline, and small files in the real on-disk formats read by torchvision's loaders."""
import gzip
import pickle
import struct

import numpy as np
import pytest
import torch

from nas.train.datasets import DatasetError, dataset_names, load_dataset


# ----- writers of the official on-disk formats (small) -----
def write_idx(path, array: np.ndarray, compress: bool) -> None:
    """An IDX file (big-endian header: 0, 0, type 0x08 = uint8, number of dims, then the dims)."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def make_mnist(root, folder: str, n_train: int, n_test: int, compress: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    arrays = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = np.arange(n, dtype=np.uint8) % 10
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, compress)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, compress)
        arrays[prefix] = (images, labels)
    return arrays


def make_cifar(root, classes: int, n_train: int, n_test: int, seed: int = 0):
    """CIFAR's python pickles: cifar-10-batches-py (5 batches + test_batch + batches.meta) or cifar-100-python."""
    rng = np.random.default_rng(seed)
    ten = classes == 10
    folder = root / ("cifar-10-batches-py" if ten else "cifar-100-python")
    folder.mkdir(parents=True)
    label_key = "labels" if ten else "fine_labels"

    def batch(n):
        data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
        return {"data": data, label_key: [int(i % classes) for i in range(n)]}

    train_files = [f"data_batch_{i}" for i in range(1, 6)] if ten else ["train"]
    train = [batch(n_train // len(train_files)) for _ in train_files]
    for name, content in zip(train_files, train):
        (folder / name).write_bytes(pickle.dumps(content))
    test = batch(n_test)
    (folder / ("test_batch" if ten else "test")).write_bytes(pickle.dumps(test))
    meta_name, meta_key = ("batches.meta", "label_names") if ten else ("meta", "fine_label_names")
    (folder / meta_name).write_bytes(pickle.dumps({meta_key: [f"class{i}" for i in range(classes)]}))
    return train, test


# ----- tests -----
def test_digits_splits_are_stratified_disjoint_and_normalised():
    data = load_dataset("digits")
    assert data.input_shape == (1, 8, 8) and data.num_classes == 10 and data.scale == 16.0
    sizes = len(data.train), len(data.val), len(data.test)
    assert sum(sizes) == 1797
    assert abs(len(data.val) - 0.1 * 1797) < 12 and abs(len(data.test) - 0.2 * 1797) < 12
    # stratified: every class in every split, in about the same proportion
    for split in (data.train, data.val, data.test):
        counts = torch.bincount(split.y, minlength=10).float()
        assert counts.min() > 0
        assert (counts / counts.sum() - 0.1).abs().max() < 0.02
    # disjoint: no image of val or test is in train (digits has a few exact duplicate images; allow them)
    train_rows = {bytes(row) for row in data.train.x.flatten(1).numpy()}
    overlap = sum(bytes(row) in train_rows for row in data.test.x.flatten(1).numpy())
    assert overlap < 5
    inputs = data.normalize(data.train.x)
    assert inputs.dtype == torch.float32
    assert inputs.mean().abs() < 1e-4 and abs(inputs.std().item() - 1.0) < 0.01


def test_digits_split_is_fixed_by_the_seed():
    a, b, c = load_dataset("digits"), load_dataset("digits"), load_dataset("digits", seed=1)
    assert torch.equal(a.val.y, b.val.y) and torch.equal(a.val.x, b.val.x)
    assert not torch.equal(a.val.x, c.val.x)


def test_train_limit_keeps_a_stratified_subset():
    data = load_dataset("digits", train_limit=200)
    assert len(data.train) == 200
    assert torch.bincount(data.train.y, minlength=10).min() >= 18


def test_mnist_uncompressed_idx_files(tmp_path):
    arrays = make_mnist(tmp_path, "MNIST", n_train=120, n_test=30, compress=False)
    data = load_dataset("mnist", tmp_path, val_fraction=0.25)
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10 and data.scale == 255.0
    assert (len(data.train), len(data.val), len(data.test)) == (90, 30, 30)
    images, labels = arrays["t10k"]
    assert torch.equal(data.test.x[:, 0], torch.from_numpy(images))
    assert torch.equal(data.test.y, torch.from_numpy(labels.astype(np.int64)))
    train_images = {bytes(r) for r in arrays["train"][0].reshape(120, -1)}
    assert all(bytes(r) in train_images for r in data.val.x.flatten(1).numpy())


def test_fashion_mnist_gzipped_idx_files_are_extracted_by_torchvision(tmp_path):
    arrays = make_mnist(tmp_path, "FashionMNIST", n_train=100, n_test=20, compress=True, seed=3)
    data = load_dataset("fashion_mnist", tmp_path)
    assert (tmp_path / "FashionMNIST" / "raw" / "train-images-idx3-ubyte").is_file()  # gunzipped
    assert len(data.train) + len(data.val) == 100 and len(data.test) == 20
    assert torch.equal(data.test.x[:, 0], torch.from_numpy(arrays["t10k"][0]))


def test_cifar10_python_pickles(tmp_path):
    train, test = make_cifar(tmp_path, 10, n_train=100, n_test=20)
    data = load_dataset("cifar10", tmp_path, val_fraction=0.2)
    assert data.input_shape == (3, 32, 32) and data.num_classes == 10
    assert (len(data.train), len(data.val), len(data.test)) == (80, 20, 20)
    # CIFAR rows are channel planes (R, G, B) of 32x32: the first test image, red plane, first row
    assert torch.equal(data.test.x[0, 0, 0], torch.from_numpy(test["data"][0, :32]))
    assert torch.equal(data.test.x[0, 2, 31], torch.from_numpy(test["data"][0, -32:]))
    assert len(data.mean) == 3 and all(0.3 < m < 0.7 for m in data.mean)


def test_cifar100_python_pickles(tmp_path):
    make_cifar(tmp_path, 100, n_train=400, n_test=100)
    data = load_dataset("cifar100", tmp_path, val_fraction=0.25)
    assert data.num_classes == 100
    assert (len(data.train), len(data.val), len(data.test)) == (300, 100, 100)
    assert set(data.val.y.tolist()) == set(range(100))  # stratified: one of each class


def test_missing_files_fail_with_the_download_error(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tv_utils, "_urlretrieve", offline)
    monkeypatch.setattr(tv_utils, "_get_redirect_url", lambda url, max_hops=3: url)
    with pytest.raises(DatasetError, match="downloading it failed.*unreachable"):
        load_dataset("cifar10", tmp_path)
    with pytest.raises(DatasetError, match="unknown data set 'imagenet'"):
        load_dataset("imagenet")
    assert dataset_names() == ["digits", "mnist", "fashion_mnist", "cifar10", "cifar100"]


def test_splits_pickle_as_numpy_and_round_trip():
    data = load_dataset("digits")
    copy = pickle.loads(pickle.dumps(data))
    assert torch.equal(copy.train.x, data.train.x) and torch.equal(copy.test.y, data.test.y)
    assert copy.mean == data.mean and copy.input_shape == data.input_shape
