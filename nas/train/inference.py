"""Fast inference on a trained network: batch norms folded into their convolutions, and the accuracy on a
split computed without autograd's bookkeeping.

A batch norm in evaluation mode is an affine map per channel (running mean and variance, weight, bias);
when it directly follows a convolution (or a linear layer) it can be folded into that layer's weights and
bias, which removes one pass over every feature map. The folded copy computes the same function up to
float rounding; it is for inference only (its batch norms are gone, so training it is not the same).

On a CPU the batches are shared among threads, each running torch's operations on one core, instead of
one batch at a time split among OpenMP's threads: the feature maps of small images are too small for
that split to pay (every operation ends in a barrier where the threads wait for each other, and a core
taken by another process stalls them all), while whole batches in parallel keep every core busy. Each
batch is computed as it would be alone, so the predictions are the same.
"""
from __future__ import annotations

import copy
import threading

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

# (layer, the batch norm that may follow it, torch's public function folding the pair)
_FOLDABLE = ((nn.Conv2d, nn.BatchNorm2d, fuse_conv_bn_eval), (nn.Linear, nn.BatchNorm1d, fuse_linear_bn_eval))


def _fold_pair(layer: nn.Module, norm: nn.Module) -> nn.Module | None:
    """`layer` with `norm` folded in, or None when the pair cannot be folded exactly. Exact classes only
    (a subclass may compute something else), and a norm that uses running statistics in evaluation."""
    for layer_type, norm_type, fuse in _FOLDABLE:
        if type(layer) is layer_type and type(norm) is norm_type:
            if norm.running_mean is None or norm.running_var is None or not norm.track_running_stats:
                return None  # normalises by each batch's statistics even in evaluation: not a fixed map
            width = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
            if width != norm.num_features:
                return None
            return fuse(layer, norm)
    return None


def fold_batch_norms(model: nn.Module) -> nn.Module:
    """An evaluation-mode copy of `model` in which every batch norm that directly follows a convolution or
    a linear layer in an `nn.Sequential` is folded into it (the norm becomes an `nn.Identity`). `model` is
    left as it was. The copy gives the same outputs up to float rounding, in evaluation mode only."""
    folded = copy.deepcopy(model).eval()
    for module in list(folded.modules()):
        if not isinstance(module, nn.Sequential):
            continue
        for position in range(len(module) - 1):
            fused = _fold_pair(module[position], module[position + 1])
            if fused is not None:
                module[position] = fused
                module[position + 1] = nn.Identity()
    return folded


def count_folded(original: nn.Module, folded: nn.Module) -> int:
    """How many batch norms of `original` are gone from `folded`."""
    def norms(model: nn.Module) -> int:
        return sum(isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)) for m in model.modules())

    return norms(original) - norms(folded)


def predictions(model: nn.Module, x: torch.Tensor, batch_size: int, channels_last: bool = False,
                normalize=None, workers: int = 1) -> torch.Tensor:
    """The predicted class (argmax of the outputs) of every sample of `x`, in batches of `batch_size`, the
    model in evaluation mode; `normalize` (a function of a batch) is applied to each batch first.
    `workers` > 1 (CPU tensors): that many threads share the batches, each computing on one core (torch's
    thread count is set back afterwards); the first batch runs alone first, so that whatever a module
    prepares on its first call is ready before the threads share it."""
    model.eval()
    starts = list(range(0, len(x), batch_size))

    def predict(start: int) -> torch.Tensor:
        batch = x[start:start + batch_size]
        if normalize is not None:
            batch = normalize(batch)
        if channels_last and batch.dim() == 4:
            batch = batch.contiguous(memory_format=torch.channels_last)
        return model(batch).argmax(dim=1)

    if not starts:
        return torch.zeros(0, dtype=torch.int64)
    with torch.inference_mode():
        chunks = [predict(starts[0])]
    if workers > 1 and len(starts) > 2 and x.device.type == "cpu":
        chunks += _shared(predict, starts[1:], min(workers, len(starts) - 1))
    else:
        with torch.inference_mode():
            chunks += [predict(start) for start in starts[1:]]
    return torch.cat(chunks)


def _shared(predict, starts: list[int], workers: int) -> list[torch.Tensor]:
    """`predict(start)` for every start, the starts taken in turn by `workers` threads (this one among
    them) that run torch on one thread each; torch's thread count is set back at the end. A failure in
    any thread (or an interrupt of this one) stops the others after their current batch."""
    results: list[torch.Tensor | None] = [None] * len(starts)
    order = iter(range(len(starts)))
    lock = threading.Lock()
    ready = threading.Barrier(workers)  # every thread on one core before any computes
    stop = threading.Event()
    failures: list[BaseException] = []

    def work() -> None:
        try:
            torch.set_num_threads(1)
            ready.wait()
            with torch.inference_mode():
                while not stop.is_set():
                    with lock:
                        position = next(order, None)
                    if position is None:
                        return
                    results[position] = predict(starts[position])
        except threading.BrokenBarrierError:
            pass  # another thread failed before the start
        except BaseException as error:  # noqa: BLE001 - raised again in the calling thread
            failures.append(error)
            stop.set()
            ready.abort()

    previous = torch.get_num_threads()
    helpers = [threading.Thread(target=work, name=f"nas-predict-{n}", daemon=True) for n in range(workers - 1)]
    try:
        for helper in helpers:
            helper.start()
        work()
        for helper in helpers:
            helper.join()
    finally:
        stop.set()
        ready.abort()
        torch.set_num_threads(previous)
    if failures:
        raise failures[0]
    return results


def accuracy(model: nn.Module, data, split, batch_size: int, channels_last: bool = False) -> float:
    """Top-1 accuracy (0..1) of `model` on `split` (of `data`, a `DatasetSplits`: its normalisation is
    applied), computed on a batch-norm-folded copy (`fold_batch_norms`) without autograd: the accuracy an
    evaluation-mode forward of `model` gives, up to float rounding, in less time. `model` is not changed.
    On a CPU its batches are shared by `torch.get_num_threads()` threads, one core each (`predictions`)."""
    if len(split) == 0:
        return 0.0
    workers = torch.get_num_threads() if split.x.device.type == "cpu" else 1  # batches shared by the cores
    predicted = predictions(fold_batch_norms(model), split.x, batch_size, channels_last, data.normalize, workers)
    return int((predicted == split.y.to(predicted.device)).sum()) / len(split)
