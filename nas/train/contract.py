"""The input contract of a trained network: what it must be fed for its accuracy to hold.

A network trained here never sees raw pixels: `DatasetSplits.normalize` divides them by the data set's
full-intensity value (255, or 16 for digits) and then subtracts the training split's per-channel mean
and divides by its standard deviation. Whoever runs the network elsewhere must do the same, so the
contract is written wherever trained weights are: `train.json` ("input"), a search's
`best_input.json`, and exported files (`nas.export`: ONNX metadata, TorchScript and torch.export extra
files).

    {"dataset": "fashion_mnist", "layout": "NCHW", "shape": [1, 28, 28], "dtype": "float32",
     "pixel_max": 255.0, "mean": [0.28597], "std": [0.35299], "normalization_included": false,
     "num_classes": 10, "class_names": ["T-shirt/top", ...]}

The network's input is ``(pixels / pixel_max - mean) / std`` per channel; with
``normalization_included`` (an export made with ``--include-preprocessing``) it is ``pixels /
pixel_max``, values in 0..1, and the network normalises them itself. Free of torch.
"""
from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.errors import NasError
from nas.train.catalog import class_names

CONTRACT_FILE = "input.json"  # the name inside exported files (TorchScript, torch.export)
METADATA_KEY = "nas.input_contract"  # ONNX metadata_props key holding the whole contract as JSON
FIELDS = ("dataset", "layout", "shape", "dtype", "pixel_max", "mean", "std", "normalization_included",
          "num_classes", "class_names")


class ContractError(NasError):
    """An input contract is missing, unreadable or malformed."""


def input_contract(data: Any) -> dict[str, Any]:
    """The contract of a network trained on `data` (a `nas.train.datasets.DatasetSplits`)."""
    names = class_names(data.name)
    return {
        "dataset": data.name,
        "layout": "NCHW",
        "shape": [int(s) for s in data.input_shape],
        "dtype": "float32",
        "pixel_max": float(data.scale),
        "mean": [float(m) for m in data.mean],
        "std": [float(s) for s in data.std],
        "normalization_included": False,
        "num_classes": int(data.num_classes),
        "class_names": list(names) if names is not None and len(names) == data.num_classes else None,
    }


def check_contract(contract: Any, where: str) -> dict[str, Any]:
    """`contract` if it has every field with a sensible value; else ContractError naming `where`."""
    if not isinstance(contract, Mapping):
        raise ContractError(f"{where}: no input contract (expected an object with {', '.join(FIELDS)})")
    missing = [name for name in FIELDS if name not in contract]
    if missing:
        raise ContractError(f"{where}: the input contract lacks {', '.join(missing)}")
    shape, mean, std = contract["shape"], contract["mean"], contract["std"]
    if not (isinstance(shape, Sequence) and len(shape) == 3 and all(isinstance(s, int) and s > 0 for s in shape)):
        raise ContractError(f"{where}: input shape must be [C, H, W] of positive integers, got {shape!r}")
    for label, values in (("mean", mean), ("std", std)):
        if not (isinstance(values, Sequence) and len(values) == shape[0]
                and all(_number(v) for v in values)):
            raise ContractError(f"{where}: {label} must be {shape[0]} numbers (one per channel), got {values!r}")
    if any(v <= 0 for v in std) or not (_number(contract["pixel_max"]) and contract["pixel_max"] > 0):
        raise ContractError(f"{where}: std and pixel_max must be positive")
    names = contract["class_names"]
    if names is not None and not (isinstance(names, Sequence) and all(isinstance(n, str) for n in names)):
        raise ContractError(f"{where}: class_names must be a list of strings or null")
    return dict(contract)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def read_contract(path: str | Path) -> dict[str, Any]:
    """The contract in `path`: a `train.json` (its "input"), a search's `best_input.json` or summary.json
    ("input"), or a file holding the contract itself."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except OSError as error:
        raise ContractError(f"{path}: {error.strerror or error}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ContractError(f"{path}: not JSON ({error})") from None
    if isinstance(data, Mapping) and isinstance(data.get("input"), Mapping):
        data = data["input"]
    return check_contract(data, str(path))


# the files beside trained weights that hold their contract: `nas train`'s folder, a search's run folder
SIDECARS = ("train.json", "best_input.json")


def find_contract(weights: str | Path) -> Path | None:
    """The file beside `weights` that records their input contract (None if there is none)."""
    folder = Path(weights).parent
    return next((folder / name for name in SIDECARS if (folder / name).is_file()), None)


def with_normalization(contract: Mapping[str, Any]) -> dict[str, Any]:
    """The contract of the network with its normalisation as its first layer (it takes pixels / pixel_max)."""
    return {**contract, "normalization_included": True}


def describe(contract: Mapping[str, Any]) -> list[str]:
    """Lines saying what to feed the network and what its outputs mean."""
    c, h, w = contract["shape"]
    scale = f"{contract['pixel_max']:g}"
    mean = ", ".join(f"{m:.5f}" for m in contract["mean"])
    std = ", ".join(f"{s:.5f}" for s in contract["std"])
    lines = [f"input: {contract['dtype']} N x {c} x {h} x {w} ({contract['layout']}), trained on {contract['dataset']}"]
    if contract["normalization_included"]:
        lines.append(f"  feed pixels / {scale} (values 0..1); the network normalises them itself "
                     f"(mean {mean}, std {std})")
    else:
        lines.append(f"  feed (pixels / {scale} - mean) / std per channel: mean {mean}, std {std} "
                     "(--include-preprocessing puts this step in the file)")
    names = contract.get("class_names")
    lines.append(f"output: {contract['num_classes']} logits" + (
        f", classes {', '.join(names)}" if names else " (class names not known)"))
    return lines


def to_json(contract: Mapping[str, Any]) -> str:
    return json.dumps({name: contract[name] for name in FIELDS}, indent=2) + "\n"
