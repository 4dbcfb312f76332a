"""Export a genome, with its trained weights, as a file other tools run without `nas`.

    export(genome, "model.pt", "torchscript", weights="best_weights.pt")   # torch.jit.load(...)
    export(genome, "model.pt2", "exported")                                # torch.export.load(...).module()
    export(genome, "model.onnx", "onnx")                                   # needs the onnx extra

The network is `nas.build(genome)` for the genome's input and classes, in eval mode; the file takes a
float batch (N, C, H, W) of the genome's input shape, any N (traced on a batch of 2; `exported`
and `onnx` declare the batch dimension dynamic). The file is written next to its destination and
moved into place at the end, and an existing file is replaced only with `force`.

`contract` (`nas.train.contract`: input shape, pixel scale, mean/std, class names) goes into the file:
an extra file ``input.json`` in TorchScript and torch.export files, metadata_props in ONNX (the
whole contract as JSON under ``nas.input_contract``, and its fields one by one); `read_contract` reads
it back. With `include_preprocessing`, the normalisation is the network's first layer (`Normalize`), so
the file takes pixels / pixel_max (0..1) instead of normalised inputs.

Which format: ONNX (any runtime, any language) or torch.export's .pt2 (PyTorch, no Python source
needed); TorchScript still loads everywhere PyTorch runs, but PyTorch has deprecated it and
`torch.jit.load` warns (docs/export.md).
"""
from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.compiler import build
from nas.errors import NasError
from nas.genome import Genome
from nas.engine.folder import check_output_file
from nas.train.contract import CONTRACT_FILE, METADATA_KEY, check_contract, to_json, with_normalization
from nas.train.fit import TrainError, read_weights

EXAMPLE_BATCH = 2


class ExportError(NasError):
    """A genome cannot be exported (unknown format, missing package, unwritable file)."""


def example_input(genome: Genome, batch: int = EXAMPLE_BATCH, seed: int = 0) -> torch.Tensor:
    height, width = genome.input.size
    return torch.randn(batch, genome.input.channels, height, width, generator=torch.Generator().manual_seed(seed))


def built_model(genome: Genome, weights: str | Path | Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """`build(genome)` in eval mode, with `weights` (a state_dict or its file) loaded: every tensor's name
    and shape must match."""
    model = build(genome)
    if weights is not None:
        state = read_weights(weights)
        where = str(weights) if not isinstance(weights, Mapping) else "weights"
        own = model.state_dict()
        wrong = sorted(k for k in set(own) | set(state)
                       if k not in own or k not in state or own[k].shape != state[k].shape)
        if wrong:
            raise TrainError(f"{where}: not weights of this genome ({len(wrong)} tensors differ in name or shape, "
                             f"e.g. {wrong[0]!r})")
        model.load_state_dict(state)
    return model.eval()


class Normalize(nn.Module):
    """The training's normalisation as a layer: pixels / pixel_max (0..1) -> (x - mean) / std per channel."""

    def __init__(self, mean: list[float], std: list[float]) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def _torchscript(model: nn.Module, x: torch.Tensor, path: Path, extra: Mapping[str, str]) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit is deprecated": still what many runtimes load
        traced = torch.jit.trace(model, (x,), check_trace=False)
        torch.jit.save(traced, str(path), _extra_files=dict(extra))


def _exported(model: nn.Module, x: torch.Tensor, path: Path, extra: Mapping[str, str]) -> None:
    batch = torch.export.Dim("batch", min=1, max=65536)
    with torch.no_grad():
        program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path), extra_files=dict(extra))


def _onnx(model: nn.Module, x: torch.Tensor, path: Path, extra: Mapping[str, str]) -> None:
    try:
        import onnx  # noqa: F401  (optional: the onnx extra; the exporter writes through it)
    except ImportError:
        raise ExportError("--format onnx needs the onnx package: from the checkout, pip install -e '.[onnx]'") from None
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript-based exporter needs only `onnx` (the torch.export-based one also needs onnxscript)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (x,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)
    if extra:
        graph = onnx.load(str(path))
        onnx.helper.set_model_props(graph, dict(extra))
        onnx.save(graph, str(path))


def _onnx_metadata(contract: Mapping[str, Any]) -> dict[str, str]:
    """ONNX metadata_props (strings): the whole contract as JSON, and each field on its own."""
    return {METADATA_KEY: to_json(contract).strip(),
            **{f"nas.{name}": value if isinstance(value, str) else json.dumps(value) for name, value in contract.items()}}


FORMATS: dict[str, tuple[Callable[[nn.Module, torch.Tensor, Path, Mapping[str, str]], None], str]] = {  # format -> (writer, suffix)
    "torchscript": (_torchscript, ".pt"),
    "exported": (_exported, ".pt2"),
    "onnx": (_onnx, ".onnx"),
}


def export(genome: Genome, path: str | Path, format: str, *,
           weights: str | Path | Mapping[str, torch.Tensor] | None = None, force: bool = False,
           contract: Mapping[str, Any] | None = None, include_preprocessing: bool = False) -> Path:
    """Write `genome`'s network (with `weights`) to `path` in `format` (torchscript, exported, onnx).

    `contract`: the weights' input contract (`nas.train.contract`), stored in the file; with
    `include_preprocessing` (which needs it) the file normalises its input itself and takes pixels / pixel_max."""
    if format not in FORMATS:
        raise ExportError(f"unknown format {format!r} (known: {', '.join(FORMATS)})")
    if include_preprocessing and contract is None:
        raise ExportError("--include-preprocessing needs the input contract (mean and std the weights were trained "
                          "with): a train.json or best_input.json beside the weights, or --contract FILE")
    if contract is not None:
        contract = check_contract(contract, "input contract")
        if contract["normalization_included"] and include_preprocessing:
            raise ExportError("the input contract says the normalisation is already included")
        if include_preprocessing:
            contract = with_normalization(contract)
    path = Path(path)
    check_output_file(path, force)  # a folder, a file where a folder should be, an existing file: one line
    model = built_model(genome, weights)
    if include_preprocessing:
        model = nn.Sequential(Normalize(contract["mean"], contract["std"]), model).eval()
    extra = {} if contract is None else (_onnx_metadata(contract) if format == "onnx"
                                         else {CONTRACT_FILE: to_json(contract)})
    writer, _ = FORMATS[format]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)  # as `nas scale` and `nas draw` do
        handle, temporary = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".part", dir=path.parent)
    except OSError as error:
        raise ExportError(f"-o {path}: cannot write in {path.parent} ({error.strerror or error})") from None
    os.close(handle)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)  # as a plainly created file (mkstemp makes it private)
    try:
        try:
            writer(model, example_input(genome), Path(temporary), extra)
        except ExportError:
            raise
        except OSError as error:  # a full disk, a folder that went away
            raise ExportError(f"-o {path}: cannot write ({error.strerror or error})") from None
        except Exception as error:  # the exporter refused the network: say so in one line
            message = " ".join(str(error).split())[:300]
            raise ExportError(f"{format} export of {genome.name!r} failed: {type(error).__name__}: {message}") from None
        if force:
            os.replace(temporary, path)
        else:
            try:
                os.link(temporary, path)  # fails if the file appeared meanwhile: never replaced without --force
            except FileExistsError:
                raise ExportError(f"-o {path}: exists already; use --force to replace it") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return path


def load_exported(path: str | Path, format: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """A callable running an exported file (torchscript, exported; onnx through onnxruntime if installed)."""
    path = str(path)
    if format == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(path)
    if format == "exported":
        return torch.export.load(path).module()
    if format == "onnx":
        import onnxruntime  # optional: the onnx extra may be missing

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return lambda x: torch.from_numpy(np.asarray(session.run(None, {"input": x.numpy()})[0]))
    raise ExportError(f"unknown format {format!r} (known: {', '.join(FORMATS)})")


def read_contract(path: str | Path, format: str) -> dict[str, Any] | None:
    """The input contract stored in an exported file (None if it holds none)."""
    path = str(path)
    if format == "onnx":
        import onnx  # optional: the onnx extra may be missing

        props = {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}
        text = props.get(METADATA_KEY)
    else:
        files = {CONTRACT_FILE: ""}
        if format == "torchscript":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                torch.jit.load(path, _extra_files=files)
        elif format == "exported":
            torch.export.load(path, extra_files=files)
        else:
            raise ExportError(f"unknown format {format!r} (known: {', '.join(FORMATS)})")
        text = files[CONTRACT_FILE]
    if not text:
        return None
    if isinstance(text, bytes):
        text = text.decode()
    return check_contract(json.loads(text), path)
