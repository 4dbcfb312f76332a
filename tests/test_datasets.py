"""Data sets: digits offline, and small files in the real on-disk formats read by torchvision's loaders."""
import gzip
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from nas.train.builtin_data import SYSTEM_DIRS
from nas.train.datasets import DatasetError, dataset_names, load_dataset
from nas.train.idx import IdxError, read_idx

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
needs_debian_fashion = pytest.mark.skipif(
    not all((DEBIAN_FASHION / f"{stem}.gz").is_file() for stem in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                                                    "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")),
    reason="Fashion-MNIST's IDX files are not in /usr/share/datasets/fashion-mnist (apt-get install dataset-fashion-mnist)")


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


def test_mnist_uncompressed_idx_files(tmp_path, monkeypatch):
    monkeypatch.setitem(SYSTEM_DIRS, "mnist", ())
    arrays = make_mnist(tmp_path, "MNIST", n_train=120, n_test=30, compress=False)
    data = load_dataset("mnist", tmp_path, val_fraction=0.25)
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10 and data.scale == 255.0
    assert (len(data.train), len(data.val), len(data.test)) == (90, 30, 30)
    images, labels = arrays["t10k"]
    assert torch.equal(data.test.x[:, 0], torch.from_numpy(images))
    assert torch.equal(data.test.y, torch.from_numpy(labels.astype(np.int64)))
    train_images = {bytes(r) for r in arrays["train"][0].reshape(120, -1)}
    assert all(bytes(r) in train_images for r in data.val.x.flatten(1).numpy())


def test_fashion_mnist_gzipped_idx_files_are_extracted_by_torchvision(tmp_path, monkeypatch):
    monkeypatch.setitem(SYSTEM_DIRS, "fashion_mnist", ())
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
    assert dataset_names() == ["cifar10", "cifar100", "digits", "fashion_mnist", "mnist"]


def test_splits_pickle_as_numpy_and_round_trip():
    data = load_dataset("digits")
    copy = pickle.loads(pickle.dumps(data))
    assert torch.equal(copy.train.x, data.train.x) and torch.equal(copy.test.y, data.test.y)
    assert copy.mean == data.mean and copy.input_shape == data.input_shape


# ----- the original IDX files where Debian puts them -----
def test_idx_reader_reads_every_type_and_refuses_broken_files(tmp_path):
    images = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a", images, compress=True)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), images) and read_idx(tmp_path / "a.gz").flags.writeable
    wide = np.array([1, -2, 300000], dtype=">i4")
    (tmp_path / "b").write_bytes(struct.pack(">BBBBI", 0, 0, 0x0C, 1, 3) + wide.tobytes())
    assert read_idx(tmp_path / "b").tolist() == [1, -2, 300000]
    (tmp_path / "short").write_bytes(struct.pack(">BBBBII", 0, 0, 0x08, 2, 2, 2) + b"abc")
    (tmp_path / "text").write_bytes(b"hello world")
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    for name, message in (("short", "3 bytes of data, the header"), ("text", "not an IDX file"),
                          ("bad.gz", "cannot read"), ("missing", "cannot read")):
        with pytest.raises(IdxError, match=message):
            read_idx(tmp_path / name)


def test_mnist_family_falls_back_to_the_system_folder_read_in_place(tmp_path, monkeypatch):
    system = tmp_path / "system"
    arrays = make_mnist(tmp_path, "fake", n_train=50, n_test=20, compress=True, seed=4)
    (tmp_path / "fake" / "raw").rename(system)
    system.chmod(0o555)  # read-only: nothing is extracted or copied there
    monkeypatch.setitem(SYSTEM_DIRS, "fashion_mnist", (tmp_path / "elsewhere", system))
    empty = tmp_path / "data"
    data = load_dataset("fashion_mnist", empty, val_fraction=0.2)
    assert (len(data.train), len(data.val), len(data.test)) == (40, 10, 20)
    assert torch.equal(data.test.x[:, 0], torch.from_numpy(arrays["t10k"][0]))
    assert data.augment == "flip" and not empty.exists()  # nothing written
    assert sorted(p.name for p in system.iterdir()) == sorted(f"{s}.gz" for s in (
        "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"))
    system.chmod(0o755)


def test_nothing_found_says_where_it_looked(tmp_path, monkeypatch):
    import torchvision.datasets.utils as tv_utils

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(tv_utils, "_urlretrieve", offline)
    monkeypatch.setattr(tv_utils, "_get_redirect_url", lambda url, max_hops=3: url)
    monkeypatch.setitem(SYSTEM_DIRS, "mnist", (tmp_path / "nowhere",))
    with pytest.raises(DatasetError) as caught:
        load_dataset("mnist", tmp_path / "data")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cannot load MNIST from {tmp_path / 'data'} nor from {tmp_path / 'nowhere'} "
                              "and downloading it failed")


@needs_debian_fashion
def test_fashion_mnist_from_debians_files_trains_a_few_steps(tmp_path):
    from nas.compiler import build
    from nas.genome import Genome
    from nas.train import loop
    from nas.train.settings import TrainSettings

    data = load_dataset("fashion_mnist", tmp_path / "empty", val_fraction=0.02, train_limit=512)
    assert data.input_shape == (1, 28, 28) and data.num_classes == 10
    assert (len(data.train), len(data.val), len(data.test)) == (512, 512, 10000)  # validation follows the limit
    assert data.val_of == 1200
    assert torch.bincount(data.test.y).tolist() == [1000] * 10  # the official test set
    genome = Genome.from_dict({"name": "small", "input": {"channels": 1, "size": 28}, "num_classes": 10,
                               "stem": [{"op": "conv", "out": 8, "kernel": 3, "stride": 2}],
                               "stages": [{"cell": "basic", "out": 16, "stride": 2}], "head": [{"op": "global_avgpool"}]})
    torch.manual_seed(0)
    model = build(genome, num_classes=10, in_channels=1, input_size=28)
    settings = TrainSettings(epochs=2, batch_size=32, lr=0.1)
    assert loop.augmentation(settings, data).describe() == "flip"
    optimizer = loop.make_optimizer(model, settings)
    scheduler = loop.make_scheduler(optimizer, settings, loop.steps_per_epoch(len(data.train), 32))
    precision = loop.Precision.choose("off", torch.device("cpu"))
    generator = torch.Generator().manual_seed(0)
    losses = [loop.train_epoch(model, data, data.train, optimizer, scheduler, precision.scaler(), precision,
                               settings, generator, e) for e in (1, 2)]
    assert losses[1] < losses[0] < 2.4  # it learns (chance: ln 10 = 2.30 after the first steps)
    accuracy = loop.evaluate(model, data, data.val, precision, 512)
    assert accuracy > 0.2  # after 32 steps (10 classes: chance is 0.1)
