"""The user's own data: npz:PATH and folder:PATH, their splits, and one clear line for bad data."""
import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from nas.cli import main
from nas.train.datasets import DatasetError, load_dataset


def save_images(folder, arrays, labels, classes=("cat", "dog", "owl"), mode="L"):
    for i, (image, label) in enumerate(zip(arrays, labels)):
        target = folder / classes[label]
        target.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image, mode=mode).save(target / f"{i:03d}.png")


def noise(n, shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=(n, *shape), dtype=np.uint8)


# ----- npz -----
@pytest.mark.parametrize("layout", ["NHW", "NHWC", "NCHW"])
def test_npz_layouts_give_nchw_images_and_the_built_in_splits(tmp_path, layout):
    x = noise(60, (3, 10, 12))  # N C H W
    y = np.arange(60) % 3
    stored = {"NHW": x[:, 0], "NHWC": x.transpose(0, 2, 3, 1), "NCHW": x}[layout]
    np.savez(tmp_path / "d.npz", x=stored, y=y)
    data = load_dataset(f"npz:{tmp_path / 'd.npz'}", val_fraction=0.25, seed=3)
    channels = 1 if layout == "NHW" else 3
    assert data.input_shape == (channels, 10, 12) and data.num_classes == 3 and data.scale == 255.0
    assert (len(data.train), len(data.val), len(data.test)) == (33, 15, 12)  # test: 20% carved, val: 25% of all
    every = {bytes(r) for r in (x[:, :1] if layout == "NHW" else x).reshape(60, -1)}
    for split in (data.train, data.val, data.test):
        assert all(bytes(r) in every for r in split.x.flatten(1).numpy())
        assert torch.bincount(split.y, minlength=3).min() > 0  # stratified
    assert data.augment == "none" and data.name == f"npz:{tmp_path / 'd.npz'}"
    again = load_dataset(f"npz:{tmp_path / 'd.npz'}", val_fraction=0.25, seed=3)
    assert torch.equal(again.val.x, data.val.x)
    copy = pickle.loads(pickle.dumps(data))  # what Ray's object store does
    assert torch.equal(copy.train.x, data.train.x) and copy.augment == data.augment


def test_npz_with_its_own_test_set_and_float_integer_labels(tmp_path):
    np.savez(tmp_path / "d.npz", x=noise(40, (8, 8)), y=(np.arange(40) % 4).astype(np.float32),
             x_test=noise(12, (8, 8), seed=1), y_test=np.arange(12) % 4)
    data = load_dataset(f"npz:{tmp_path / 'd.npz'}", val_fraction=0.25)
    assert (len(data.train), len(data.val), len(data.test)) == (30, 10, 12)
    assert torch.equal(data.test.x[:, 0], torch.from_numpy(noise(12, (8, 8), seed=1)))


@pytest.mark.parametrize("arrays, message", [
    ({"x": noise(10, (8, 8))}, r"no array 'y' \(found: x;"),
    ({"x": noise(10, (8, 8)), "y": np.arange(10) % 2, "x_test": noise(4, (8, 8))}, "has x_test but no y_test"),
    ({"x": noise(10, (8, 8)), "y": np.arange(10) % 3 - 1}, r"y has negative label -1 \(labels are class numbers"),
    ({"x": noise(10, (8, 8)), "y": -1 - np.arange(10) % 2}, r"y has negative label -2 \(labels are class numbers"),
    ({"x": noise(10, (8, 8)), "y": np.arange(10) % 2, "x_test": noise(2, (8, 8)), "y_test": np.array([0, -1])},
     "y_test has negative label -1"),
    ({"x": noise(10, (8, 8)), "y": 100 + np.arange(10) % 10},
     r"y uses labels up to 109, but no image has label 0, 1, 2, 3, 4, \.\.\.: labels must be 0..K-1"),
    ({"x": noise(10, (8, 8)), "y": np.arange(10) % 2, "x_test": noise(4, (8, 8)), "y_test": np.array([0, 1, 2, 1])},
     "y_test has label 2, but the labels in y go up to 1"),
    ({"x": noise(10, (8, 8)), "y": np.arange(10) * 0.5}, "y labels must be integers, got float64 with fractional"),
    ({"x": noise(10, (8, 8)), "y": np.array(["a"] * 10)}, "y labels must be integers"),
    ({"x": noise(10, (8, 8)).astype(np.float32), "y": np.arange(10) % 2}, r"x must be uint8 .* got float32 \(convert"),
    ({"x": noise(10, (8, 8)), "y": np.arange(9) % 2}, "x has 10 images but y has 9 labels"),
    ({"x": noise(10, (8, 8)), "y": np.zeros(10, dtype=int)}, "y has one class only"),
    ({"x": noise(2, (1, 5000)), "y": np.arange(2)}, "sides of 1 to 4096 pixels"),
    ({"x": noise(4, (6, 6, 6)), "y": np.arange(4) % 2}, "no axis of 1 to 4 channels"),
    ({"x": noise(4, (6, 6, 6, 6)), "y": np.arange(4) % 2}, "x must be N x H x W, N x H x W x C or N x C x H x W"),
    ({"x": noise(10, (8, 8)), "y": np.arange(10) % 2, "x_test": noise(4, (9, 9)), "y_test": np.arange(4) % 2},
     "test images are 1x9x9, train images 1x8x8"),
    ({"x": noise(3, (8, 8)), "y": np.arange(3)}, "cannot carve a stratified"),
])
def test_bad_npz_data_fails_with_one_line(tmp_path, arrays, message):
    np.savez(tmp_path / "d.npz", **arrays)
    with pytest.raises(DatasetError, match=message) as caught:
        load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert "\n" not in str(caught.value) and str(caught.value).startswith(f"npz:{tmp_path / 'd.npz'}")


def test_npz_files_that_are_no_npz_fail_with_one_line(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not numpy at all")
    np.save(tmp_path / "single.npy", np.zeros(3))
    (tmp_path / "cut.npz").write_bytes((lambda p: (np.savez(p, x=noise(50, (8, 8)), y=np.arange(50) % 2),
                                                   p.read_bytes()[:300])[1])(tmp_path / "whole.npz"))
    np.savez(tmp_path / "objects.npz", x=np.array([{"a": 1}], dtype=object), y=np.arange(1))
    cases = {"junk.npz": "not an .npz file", "single.npy": "holds a single array", "cut.npz": "cannot read as an .npz",
             "objects.npz": "cannot read as an .npz", "missing.npz": "no such file", "": "is a folder, not an .npz"}
    for name, message in cases.items():
        with pytest.raises(DatasetError, match=message):
            load_dataset(f"npz:{tmp_path / name}")
    with pytest.raises(DatasetError, match="give a path after npz:"):
        load_dataset("npz:")
    with pytest.raises(DatasetError, match=r"unknown data set 'zip:x' .*or folder:PATH, npz:PATH"):
        load_dataset("zip:x")


# ----- folder -----
def test_folder_of_class_folders_reads_every_image(tmp_path):
    images = noise(30, (9, 7))
    save_images(tmp_path / "set", images, np.arange(30) % 3)
    (tmp_path / "set" / "owl" / "notes.txt").write_text("not an image: skipped")
    data = load_dataset(f"folder:{tmp_path / 'set'}", val_fraction=0.2)
    assert data.input_shape == (1, 9, 7) and data.num_classes == 3
    assert len(data.train) + len(data.val) + len(data.test) == 30
    everything = torch.cat([data.train.x, data.val.x, data.test.x])[:, 0]
    assert {bytes(r) for r in everything.flatten(1).numpy()} == {bytes(r) for r in images.reshape(30, -1)}


def test_folder_with_train_and_test_subfolders_and_rgb_images(tmp_path):
    save_images(tmp_path / "set" / "train", noise(20, (6, 6, 3)), np.arange(20) % 2, mode="RGB")
    test = noise(6, (6, 6, 3), seed=1)
    save_images(tmp_path / "set" / "test", test, np.arange(6) % 2, mode="RGB")
    data = load_dataset(f"folder:{tmp_path / 'set'}", val_fraction=0.25)
    assert data.input_shape == (3, 6, 6) and data.num_classes == 2
    assert (len(data.train), len(data.val), len(data.test)) == (15, 5, 6)
    assert torch.equal(data.test.x[0], torch.from_numpy(test[0]).permute(2, 0, 1))  # 000.png, class cat


def test_bad_folders_fail_with_one_line(tmp_path):
    def case(name):
        return tmp_path / name

    save_images(case("mixed_size"), noise(4, (8, 8)), [0, 1, 0, 1])
    save_images(case("mixed_size"), noise(1, (9, 8)), [2])
    save_images(case("mixed_mode"), noise(4, (8, 8)), [0, 1, 0, 1])
    save_images(case("mixed_mode"), noise(1, (8, 8, 3)), [2], mode="RGB")
    save_images(case("one_class"), noise(4, (8, 8)), [0, 0, 0, 0])
    case("empty").mkdir()
    save_images(case("empty_class"), noise(4, (8, 8)), [0, 1, 0, 1])
    (case("empty_class") / "owl").mkdir()
    save_images(case("corrupt"), noise(4, (8, 8)), [0, 1, 0, 1])
    (case("corrupt") / "dog" / "bad.png").write_bytes(b"\x89PNG broken")
    save_images(case("palette"), noise(4, (8, 8)), [0, 1, 0, 1])
    Image.fromarray(noise(1, (8, 8))[0]).convert("P").save(case("palette") / "cat" / "p.png")
    save_images(case("splits") / "train", noise(4, (8, 8)), [0, 1, 0, 1])
    save_images(case("splits") / "test", noise(2, (8, 8)), [0, 2])
    np.savez(case("arrays.npz"), x=noise(4, (8, 8)), y=np.arange(4) % 2)
    cases = {"mixed_size": "images differ in size or mode: .*owl/000.png is 8x9 L", "mixed_mode": "is 8x8 RGB",
             "one_class": "1 class folder", "empty": r"no class folders in .*empty \(expected one sub-folder",
             "empty_class": "owl has no images",
             "corrupt": "cannot read image .*bad.png", "palette": "has image mode P; use one of L, RGB, RGBA",
             "splits": "train/ and test/ must have the same class folders; differ in dog, owl",
             "arrays.npz": "is a file, not a folder .*use npz:", "missing": "no such folder"}
    for name, message in cases.items():
        with pytest.raises(DatasetError, match=message) as caught:
            load_dataset(f"folder:{case(name)}")
        assert "\n" not in str(caught.value), name


# ----- end to end -----
def test_a_search_on_npz_data_from_the_cli(tmp_path, ray_session, capsys):
    from sklearn.datasets import load_digits

    digits = load_digits()
    np.savez(tmp_path / "digits.npz", x=(digits.images * 15).astype(np.uint8), y=digits.target)
    space = tmp_path / "one.yaml"
    space.write_text("kind: stages\nname: one\ninput: {channels: 1, size: 8}\nnum_classes: 10\n"
                     "stem: {out: 8, act: relu, max_size: 16}\nstages:\n  - {width: [8], stride: 1}\n"
                     "repeats: [1]\nfamilies:\n  residual:\n    template: basic\nhead: [{op: global_avgpool}]\n")
    out = tmp_path / "run"
    assert main(["search", "--strategy", "random", "--space", str(space), "--trials", "1", "--epochs", "1",
                 "--dataset", f"npz:{tmp_path / 'digits.npz'}", "--train-limit", "300", "--augment", "crop,flip",
                 "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["completed"] == 1 and summary["augment"] == "crop=1,flip"
    assert summary["data"].startswith(f"npz:{tmp_path / 'digits.npz'}: 1x8x8, 10 classes, train 300")
    assert json.loads((out / "search.json").read_text())["train"]["augment"] == "crop,flip"
    assert main(["search", "--strategy", "random", "--dataset", f"npz:{tmp_path / 'nothing.npz'}",
                 "--out", str(tmp_path / "bad")]) == 2
    assert capsys.readouterr().err.strip().endswith("nothing.npz: no such file")
    assert not (tmp_path / "bad").exists()  # a bad data set leaves no run folder behind
