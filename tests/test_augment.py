"""Batch augmentation: each part changes images as intended, the same seed gives the same images, and
the recipe's default depends on the data set."""
import pytest
import torch

from nas.train.augment import AugmentError, Augmentation, check_setting, parse_parts
from nas.train.settings import SettingsError, TrainSettings


def ramp(n=6, c=2, h=8, w=8):
    """Images whose every pixel is distinct (so where it moved is visible), values > 0."""
    return (torch.arange(n * c * h * w, dtype=torch.float32).view(n, c, h, w) + 1.0)


def test_policies_parse_with_defaults_from_the_image_side():
    assert Augmentation.parse("none", 32) == Augmentation()
    assert Augmentation.parse("crop,flip", 32) == Augmentation(crop=4, flip=True)
    assert Augmentation.parse("crop, flip ,cutout", 28) == Augmentation(crop=3, flip=True, cutout=14)
    assert Augmentation.parse("crop=2,cutout=5", 8).describe() == "crop=2,cutout=5"
    assert Augmentation.parse("crop", 8).describe() == "crop=1" and Augmentation().describe() == "none"
    assert Augmentation.resolve("auto", "crop,flip", 32).describe() == "crop=4,flip"
    assert Augmentation.resolve("flip", "crop,flip", 32).describe() == "flip"
    assert parse_parts("CROP=3") == {"crop": 3}
    for bad, message in (("rotate", "unknown part 'rotate'"), ("crop,crop", "crop given twice"),
                         ("flip=2", "flip takes no value"), ("crop=0", "positive number"), ("", "augment must be")):
        with pytest.raises(AugmentError, match=message):
            check_setting(bad)
    check_setting("auto")
    with pytest.raises(SettingsError, match="unknown part 'blur'"):
        TrainSettings(augment="blur")
    assert TrainSettings().augment == "auto"


def test_crop_shifts_each_image_by_at_most_the_padding_and_fills_with_zero():
    x = ramp()
    out = Augmentation(crop=2)(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2))
    shifts = []
    for i in range(len(x)):  # every output is one window of the padded image, the same for all channels
        windows = [(dy, dx) for dy in range(5) for dx in range(5)
                   if torch.equal(out[i], padded[i, :, dy:dy + 8, dx:dx + 8])]
        assert len(windows) == 1
        shifts.append(windows[0])
    assert len(set(shifts)) > 1  # offsets differ across the batch
    big = Augmentation(crop=3)(ramp(n=64), torch.Generator().manual_seed(1))
    assert (big == 0).any()  # some windows reach into the zero padding


def test_flip_mirrors_about_half_of_the_batch_left_to_right():
    x = ramp(n=200, c=1, h=4, w=4)
    out = Augmentation(flip=True)(x, torch.Generator().manual_seed(0))
    same = [torch.equal(a, b) for a, b in zip(out, x)]
    mirrored = [torch.equal(a, b.flip(2)) for a, b in zip(out, x)]
    assert all(s != m for s, m in zip(same, mirrored))  # each image is either kept or mirrored
    assert 70 < sum(mirrored) < 130


def test_cutout_zeroes_one_square_per_image_and_leaves_the_rest():
    x = ramp(n=50, c=3, h=16, w=16)
    out = Augmentation(cutout=6)(x, torch.Generator().manual_seed(0))
    zero = out == 0
    assert torch.equal(out[~zero], x[~zero])  # nothing else changed
    for i in range(len(x)):
        mask = zero[i, 0]
        assert torch.equal(zero[i, 1], mask) and torch.equal(zero[i, 2], mask)  # all channels
        rows, cols = mask.any(1).nonzero().flatten(), mask.any(0).nonzero().flatten()
        assert 1 <= len(rows) <= 6 and 1 <= len(cols) <= 6
        assert int(mask.sum()) == len(rows) * len(cols)  # a (clipped) rectangle
    assert int(zero[:, 0].sum(dim=(1, 2)).max()) == 36  # some squares fit whole


def test_the_same_seed_gives_the_same_images_and_another_seed_others():
    policy = Augmentation.parse("crop,flip,cutout", 8)
    x = ramp(n=32)
    a = policy(x, torch.Generator().manual_seed(5))
    b = policy(x, torch.Generator().manual_seed(5))
    c = policy(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert Augmentation()(x, torch.Generator()) is x  # none: untouched, no random numbers drawn
