"""Inference latency of a genome, measured on this machine.

The network is built fresh (latency does not depend on the trained weights), put in eval mode and
timed under `torch.inference_mode` on batches of random inputs: a few warm-up passes, then
`repeats` timed passes; the median is reported (robust to the odd slow pass). Timing runs with a
fixed number of torch threads (1 by default) so models are measured alike and the figure does not
depend on what else the machine is doing with its other cores.
"""
from __future__ import annotations

import platform
import statistics
import time
from dataclasses import dataclass

import torch

from nas.compiler import build
from nas.genome import Genome


@dataclass(frozen=True)
class Latency:
    batch_size: int
    median_ms: float  # per batch
    threads: int
    repeats: int

    @property
    def per_image_ms(self) -> float:
        return self.median_ms / self.batch_size


def machine() -> str:
    """A one-line description of where the latencies were measured."""
    return f"{platform.processor() or platform.machine()}, {platform.system()}, torch {torch.__version__}"


def measure_latency(genome: Genome, input_shape: tuple[int, int, int], num_classes: int, *, batch_size: int = 1,
                    repeats: int = 50, warmup: int = 5, threads: int = 1, seed: int = 0) -> Latency:
    """Median wall time of one forward pass of `genome` (built for `input_shape` = (C, H, W)) on a CPU."""
    if repeats < 1 or batch_size < 1:
        raise ValueError("repeats and batch_size must be positive")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(seed)
        channels, height, width = input_shape
        model = build(genome, num_classes=num_classes, in_channels=channels, input_size=(height, width)).eval()
        example = torch.randn(batch_size, channels, height, width)
        times = []
        with torch.inference_mode():
            for i in range(warmup + repeats):
                started = time.perf_counter()
                model(example)
                if i >= warmup:
                    times.append(time.perf_counter() - started)
    finally:
        torch.set_num_threads(previous)
    return Latency(batch_size, statistics.median(times) * 1000.0, threads, repeats)
