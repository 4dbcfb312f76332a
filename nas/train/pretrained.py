"""Start a genome from a reference model's weights: torchvision or timm, from their local caches or a file.

    torchvision:resnet50                 the DEFAULT weights, from torch.hub's cache (TORCH_HOME)
    torchvision:resnet50:IMAGENET1K_V1   other weights of that model, from the same cache
    timm:resnet18.a1_in1k                timm's pretrained weights, from the Hugging Face hub cache (HF_HOME),
                                         or torch.hub's cache for weights timm fetches by URL
    torchvision:resnet18=r18.pt          a state_dict of that model in a file (torch.save, or .safetensors)
    timm:resnet18=r18.safetensors

Nothing is ever downloaded: a file not in the cache is one line naming where it was looked for and
how to get it. The reference's weights go into the genome built for the data (`load_reference`)
through `nas.transfer_weights`, which pairs layer by layer and fails loudly on any mismatch; then
two kinds of tensors may differ in shape, and only these two:

- the classifier, when the data has other classes than the reference (1000 for ImageNet): it starts
  afresh (the genome's own initialisation) and is reported as new;
- the first convolution, when the data has other input channels (Fashion-MNIST's 1 against RGB's 3):
  for one channel its weights are summed over the reference's input channels (the network then computes
  on a grey image what the reference computes on that image copied into every channel); for C channels
  the reference's are repeated in turn up to C and scaled by (reference channels) / C, which keeps the
  weights' sum over channels about the same (exactly, and the same first-layer output for an image whose
  channels are all equal, when C is a multiple of the reference's channels). This is timm's rule for
  ``in_chans`` (`timm.models.adapt_input_conv`), written here for any number of reference channels.

Any other difference (a tensor whose shape depends on the input size, another architecture) is an
error naming the tensor. Images keep the data's own size and normalisation: nothing is resized.
"""
from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from nas.compiler import build
from nas.errors import NasError
from nas.genome import Genome
from nas.transfer import TransferError, transfer_weights

LIBRARIES = ("torchvision", "timm")
PROBE_SIZES = (32, 64, 224, 331)  # input sides tried for the forward pass that pairs layers (the first that runs)


class PretrainedError(NasError):
    """A reference model or its weights cannot be had, or do not fit the genome."""


def is_reference(text: object) -> bool:
    """Whether `--from` names a reference model (``torchvision:...``, ``timm:...``) rather than a weights file."""
    return isinstance(text, str) and text.split(":", 1)[0] in LIBRARIES and ":" in text


@dataclass(frozen=True)
class ReferenceSpec:
    """``LIBRARY:NAME[:WEIGHTS][=FILE]`` parsed: which model, which of its weights, or a file holding them."""

    library: str
    name: str
    weights: str | None = None  # torchvision only: a member of the model's weights enum; None: DEFAULT
    file: Path | None = None

    @staticmethod
    def parse(text: str) -> "ReferenceSpec":
        spec, _, file = text.partition("=")
        library, _, rest = spec.partition(":")
        name, _, weights = rest.partition(":")
        if library not in LIBRARIES or not name:
            raise PretrainedError(f"--from {text}: expected torchvision:NAME[:WEIGHTS] or timm:NAME, optionally "
                                  f"=FILE (a state_dict of that model)")
        if weights and library != "torchvision":
            raise PretrainedError(f"--from {text}: a weights name after the model is for torchvision; "
                                  f"timm names its weights in the model name (e.g. timm:resnet18.a1_in1k)")
        if _ and not file:
            raise PretrainedError(f"--from {text}: no file after '='")
        if file and weights:
            raise PretrainedError(f"--from {text}: give a weights name or a file, not both")
        return ReferenceSpec(library, name, weights or None, Path(file) if file else None)

    def __str__(self) -> str:
        text = f"{self.library}:{self.name}" + (f":{self.weights}" if self.weights else "")
        return text + (f"={self.file}" if self.file else "")


@dataclass
class Reference:
    """A reference model with its weights, and where they came from (a description and the file)."""

    model: nn.Module
    source: str
    file: Path | None = None
    spec: str | None = None  # the text it was named by ("torchvision:resnet18"), what a resumed training reads again

    def describe(self) -> str:
        return self.source + (f" ({self.file})" if self.file and str(self.file) not in self.source else "")


def reference(spec: str | ReferenceSpec | nn.Module | Reference) -> Reference:
    """The reference model `spec` names, with its weights, read from a local file only."""
    if isinstance(spec, Reference):
        return spec
    if isinstance(spec, nn.Module):
        return Reference(spec, type(spec).__name__)
    if isinstance(spec, str):
        spec = ReferenceSpec.parse(spec)
    found = _torchvision(spec) if spec.library == "torchvision" else _timm(spec)
    found.spec = str(spec)
    return found


# ----- torchvision -----
def _torchvision(spec: ReferenceSpec) -> Reference:
    import torchvision  # deferred: torchvision (a second; only --from torchvision:NAME needs it)

    if spec.name not in torchvision.models.list_models():
        close = _close(spec.name, torchvision.models.list_models())
        raise PretrainedError(f"--from {spec}: torchvision has no model {spec.name!r}{close}")
    if spec.file is not None:
        model = torchvision.models.get_model(spec.name, weights=None)
        return Reference(_load_file(model, spec), str(spec), spec.file)
    try:
        enum = torchvision.models.get_model_weights(spec.name)
    except ValueError:
        enum = None
    members = [w.name for w in enum] if enum is not None else []
    if not members:
        raise PretrainedError(f"--from {spec}: torchvision has no pretrained weights for {spec.name}")
    if spec.weights is not None and spec.weights not in members and spec.weights != "DEFAULT":
        raise PretrainedError(f"--from {spec}: {spec.name} has no weights {spec.weights!r} "
                              f"(it has {', '.join(members)})")
    weights = enum.DEFAULT if spec.weights in (None, "DEFAULT") else enum[spec.weights]
    path = torch_hub_file(weights.url)
    if not path.is_file():
        raise PretrainedError(
            f"--from {spec}: {type(weights).__name__}.{weights.name} is not in the local cache (looked for {path}); "
            f"nas never downloads: on a machine that is online run `python -c \"import torchvision; "
            f"torchvision.models.get_model('{spec.name}', weights='{weights.name}')\"` and copy {path.name} there "
            f"(or set TORCH_HOME), or give a file: --from torchvision:{spec.name}=FILE")
    # the file is in the cache, so torchvision's own loader reads it from there without downloading
    model = torchvision.models.get_model(spec.name, weights=weights)
    return Reference(model, f"torchvision:{spec.name}:{weights.name}", path)


def torch_hub_file(url: str) -> Path:
    """Where torch.hub keeps the file of `url` (``<TORCH_HOME>/hub/checkpoints/<file name>``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(url).path)


# ----- timm -----
def _timm(spec: ReferenceSpec) -> Reference:
    import timm  # optional: the timm package may be missing (only --from timm:NAME needs it)
    import timm.models  # optional: as timm above

    if not timm.is_model(spec.name):
        raise PretrainedError(f"--from {spec}: timm has no model {spec.name!r}"
                              f"{_close(spec.name.split('.')[0], timm.list_models())}")
    if spec.file is not None:
        model = timm.create_model(spec.name, pretrained=False)
        return Reference(_load_file(model, spec), str(spec), spec.file)
    try:
        cfg = timm.models.get_pretrained_cfg(spec.name)
    except RuntimeError as error:  # an unknown pretrained tag
        raise PretrainedError(f"--from {spec}: {error}") from None
    if cfg is None:
        raise PretrainedError(f"--from {spec}: timm has no pretrained weights for {spec.name}")
    looked: list[str] = []
    path = _timm_cached(cfg, looked)
    if path is None:
        how = (f"`python -c \"import timm; timm.create_model('{spec.name}', pretrained=True)\"`")
        raise PretrainedError(
            f"--from {spec}: its weights are not in the local cache (looked for {'; '.join(looked)}); "
            f"nas never downloads: on a machine that is online run {how} and copy the cache there "
            f"(or set HF_HOME / TORCH_HOME), or give a file: --from timm:{spec.name}=FILE")
    # timm reads a pretrained file given as `file` before any other source (no hub access)
    model = timm.create_model(spec.name, pretrained=True, pretrained_cfg_overlay={"file": str(path)})
    tag = f".{cfg.tag}" if getattr(cfg, "tag", None) and "." not in spec.name else ""
    return Reference(model, f"timm:{spec.name}{tag}", path)


def _timm_cached(cfg: Any, looked: list[str]) -> Path | None:
    """The cached weights file of a timm pretrained config: the Hugging Face hub cache (as timm fetches by
    default), else torch.hub's cache (timm's URL weights); every place tried is added to `looked`."""
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        import huggingface_hub  # optional: comes with timm (not a dependency of nas)
        import huggingface_hub.constants  # optional: as huggingface_hub above

        cache = huggingface_hub.constants.HF_HUB_CACHE
        wanted = getattr(cfg, "hf_hub_filename", None)
        names = [wanted] if wanted else ["model.safetensors", "pytorch_model.bin"]
        for name in names:
            found = huggingface_hub.try_to_load_from_cache(hub_id, name, cache_dir=cache)
            if isinstance(found, str):
                return Path(found)
        looked.append(f"{' or '.join(names)} of {hub_id} in {cache}")
    url = getattr(cfg, "url", None)
    if url:
        path = torch_hub_file(url)
        if path.is_file():
            return path
        looked.append(str(path))
    return None


# ----- a state_dict file of the reference model -----
def _load_file(model: nn.Module, spec: ReferenceSpec) -> nn.Module:
    state = read_state_file(spec.file, f"--from {spec}")
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if len(str(error).splitlines()) > 1 else str(error)
        raise PretrainedError(f"--from {spec}: {spec.file} is not a state_dict of {spec.library}'s {spec.name} "
                              f"({first.rstrip('.')})") from None
    return model


def read_state_file(path: Path, where: str) -> Mapping[str, torch.Tensor]:
    """A state_dict from a torch.save file (read with weights_only=True) or a .safetensors file."""
    if not path.is_file():
        raise PretrainedError(f"{where}: no such file {path}")
    try:
        if path.suffix == ".safetensors":
            import safetensors.torch  # optional: comes with timm (not a dependency of nas)

            state = safetensors.torch.load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # not a weights file, truncated, pickled objects  # noqa: BLE001
        raise PretrainedError(f"{where}: {path} is not a state_dict file (torch.save or .safetensors; "
                              f"read with weights_only=True: nas never runs code stored in a weights file)") from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]  # a training checkpoint holding the model's state_dict
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise PretrainedError(f"{where}: {path} is not a state_dict (a mapping of tensor names to tensors)")
    return state


def _close(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


# ----- into the genome -----
@dataclass
class Loaded:
    """What `load_reference` did: layers paired, tensors that start afresh, tensors adapted (and how)."""

    source: str
    file: str | None
    layers: int
    new: list[str] = field(default_factory=list)
    adapted: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "file": self.file, "layers": self.layers, "new": self.new,
                "adapted": self.adapted}


def load_reference(ref: Reference, genome: Genome, model: nn.Module) -> Loaded:
    """Copy `ref`'s weights into `model`, which is `build(genome)` (the genome realised for the data).

    The genome is first built with the reference's input channels and classes, the weights copied into
    that by `transfer_weights` (layer by layer, loudly on any mismatch); then its tensors go into `model`:
    the classifier starts afresh when the classes differ, the first convolution is adapted when the
    input channels differ (see the module's doc), anything else must have the same shape.
    """
    reference_model = ref.model
    channels = _input_channels(reference_model, ref.source)
    classes, size = _probe(reference_model, channels, ref.source)
    shaped = build(genome, num_classes=classes, in_channels=channels, input_size=size)
    try:
        pairs = transfer_weights(reference_model, shaped, (1, channels, size, size))
    except TransferError as error:
        raise PretrainedError(f"--from {ref.source}: its layers do not match genome {genome.name}: {error}") from None
    except RuntimeError as error:  # the genome cannot run at the reference's input
        raise PretrainedError(f"--from {ref.source}: genome {genome.name} does not run on {channels}x{size}x{size} "
                              f"inputs: {str(error).splitlines()[0]}") from None
    source, target = shaped.state_dict(), model.state_dict()
    data_classes, data_channels = genome.num_classes, genome.input.channels
    by_classes = _differing(genome, (classes, channels), (data_classes, channels))
    by_channels = _differing(genome, (classes, channels), (classes, data_channels))
    merged: dict[str, torch.Tensor] = {}
    loaded = Loaded(ref.source, str(ref.file) if ref.file else None, len(pairs))
    for key, value in source.items():
        own = target[key]
        if value.shape == own.shape:
            merged[key] = value
        elif key in by_classes:
            merged[key] = own
            loaded.new.append(key)
        elif key in by_channels and value.dim() == 4 and value.shape[1] == channels and own.shape[1] == data_channels \
                and value.shape[0] == own.shape[0] and value.shape[2:] == own.shape[2:]:
            merged[key] = adapt_input_conv(value, data_channels)
            loaded.adapted[key] = (f"summed over the reference's {channels} input channels" if data_channels == 1 else
                                   f"{channels} input channels repeated to {data_channels}, "
                                   f"scaled by {channels}/{data_channels}")
        else:
            raise PretrainedError(
                f"--from {ref.source}: tensor {key} is {tuple(value.shape)} in the reference, {tuple(own.shape)} "
                f"for this data ({data_channels}x{genome.input.size[0]}x{genome.input.size[1]}, {data_classes} "
                f"classes); only the classifier and the first convolution may differ (images are not resized)")
    model.load_state_dict(merged)
    return loaded


def adapt_input_conv(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A first convolution's weight (out, reference channels, kh, kw) for `channels` input channels:
    summed over the reference's channels for one, else repeated in turn and scaled by reference / new."""
    base = weight.shape[1]
    if channels == base:
        return weight
    if channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-channels // base)
    return weight.repeat(1, repeats, 1, 1)[:, :channels] * (base / channels)


def _input_channels(model: nn.Module, source: str) -> int:
    first = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if first is None:
        raise PretrainedError(f"--from {source}: the reference has no convolution to read its input channels from")
    return first.in_channels


def _probe(model: nn.Module, channels: int, source: str) -> tuple[int, int]:
    """The reference's number of outputs (classes) and the smallest of PROBE_SIZES it runs at."""
    was_training = model.training
    model.eval()
    try:
        for size in PROBE_SIZES:
            try:
                with torch.no_grad():
                    out = model(torch.zeros(1, channels, size, size))
            except RuntimeError:
                continue
            if not isinstance(out, torch.Tensor) or out.dim() != 2:
                raise PretrainedError(f"--from {source}: the reference does not return one row of logits per image")
            return int(out.shape[1]), size
    finally:
        model.train(was_training)
    raise PretrainedError(f"--from {source}: the reference does not run on {channels}-channel images of side "
                          f"{', '.join(map(str, PROBE_SIZES))}")


def _differing(genome: Genome, a: tuple[int, int], b: tuple[int, int]) -> set[str]:
    """Tensor names whose shape differs between the genome built for (classes, channels) `a` and `b`."""
    if a == b:
        return set()
    first = build(genome, num_classes=a[0], in_channels=a[1], device="meta").state_dict()
    second = build(genome, num_classes=b[0], in_channels=b[1], device="meta").state_dict()
    return {k for k in first if first[k].shape != second[k].shape}
