"""Export a genome, with its trained weights, as a file other tools run without `nas`.

    export(genome, "model.pt", "torchscript", weights="best_weights.pt")   # torch.jit.load(...)
    export(genome, "model.pt2", "exported")                                # torch.export.load(...).module()
    export(genome, "model.onnx", "onnx")                                   # needs the onnx extra

The network is `nas.build(genome)` for the genome's input and classes, in eval mode; the file takes a
float batch (N, C, H, W) of the genome's input shape, any N (traced on a batch of 2; `exported`
and `onnx` declare the batch dimension dynamic). The file is written next to its destination and
moved into place at the end, and an existing file is replaced only with `force`.
"""
from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from nas.compiler import build
from nas.errors import NasError
from nas.genome import Genome
from nas.search.folder import check_output_file

EXAMPLE_BATCH = 2


class ExportError(NasError):
    """A genome cannot be exported (unknown format, missing package, unwritable file)."""


def example_input(genome: Genome, batch: int = EXAMPLE_BATCH, seed: int = 0) -> torch.Tensor:
    height, width = genome.input.size
    return torch.randn(batch, genome.input.channels, height, width, generator=torch.Generator().manual_seed(seed))


def built_model(genome: Genome, weights: str | Path | Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """`build(genome)` in eval mode, with `weights` (a state_dict or its file) loaded: every tensor's name
    and shape must match."""
    from nas.train.fit import TrainError, read_weights

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


def _torchscript(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # "torch.jit is deprecated": still what many runtimes load
        traced = torch.jit.trace(model, (x,), check_trace=False)
        torch.jit.save(traced, str(path))


def _exported(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    batch = torch.export.Dim("batch", min=1, max=65536)
    with torch.no_grad():
        program = torch.export.export(model, (x,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(path))


def _onnx(model: nn.Module, x: torch.Tensor, path: Path) -> None:
    try:
        import onnx  # noqa: F401  (the exporter writes through it)
    except ImportError:
        raise ExportError("--format onnx needs the onnx package: from the checkout, pip install -e '.[onnx]'") from None
    with torch.no_grad(), warnings.catch_warnings():
        # the TorchScript-based exporter needs only `onnx` (the torch.export-based one also needs onnxscript)
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (x,), str(path), input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}}, dynamo=False)


FORMATS: dict[str, tuple[Callable[[nn.Module, torch.Tensor, Path], None], str]] = {  # format -> (writer, suffix)
    "torchscript": (_torchscript, ".pt"),
    "exported": (_exported, ".pt2"),
    "onnx": (_onnx, ".onnx"),
}


def export(genome: Genome, path: str | Path, format: str, *,
           weights: str | Path | Mapping[str, torch.Tensor] | None = None, force: bool = False) -> Path:
    """Write `genome`'s network (with `weights`) to `path` in `format` (torchscript, exported, onnx)."""
    if format not in FORMATS:
        raise ExportError(f"unknown format {format!r} (known: {', '.join(FORMATS)})")
    path = Path(path)
    check_output_file(path, force)  # a folder, a file where a folder should be, an existing file: one line
    model = built_model(genome, weights)
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
            writer(model, example_input(genome), Path(temporary))
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
        import numpy as np
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        return lambda x: torch.from_numpy(np.asarray(session.run(None, {"input": x.numpy()})[0]))
    raise ExportError(f"unknown format {format!r} (known: {', '.join(FORMATS)})")
