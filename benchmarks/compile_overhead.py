"""Train-step time of genome-built networks over their reference implementations.

For each model, the reference (torchvision or timm) and the network `nas.build` makes from the
baseline genome take turns, one training step each (forward, cross-entropy, backward, SGD step),
in one process; the order alternates every repeat so neither side always runs first. The script
prints each side's median step time, wall-clock and process CPU time (steadier on a busy machine),
and the ratios ours / reference (target: <= 1.03).

    python benchmarks/compile_overhead.py                    # every model whose baseline exists
    python benchmarks/compile_overhead.py --models resnet50 --batch 8 --size 224 --repeats 15
    python benchmarks/compile_overhead.py --models nasnet_a_large --batch 2 --size 99   # two-input cells

NASNet-A Large and PNASNet-5 Large have cells that read the two previous cells: they measure the
wired forward pass (outputs kept until their last reader) against timm's hand-written one.
"""
from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

import nas
from nas import baselines
from nas.summary import count_params


def _torchvision(name: str) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(weights=None)

    return make


def _timm(name: str) -> Callable[[], nn.Module]:
    def make() -> nn.Module:
        import timm

        return timm.create_model(name, pretrained=False)

    return make


@dataclass(frozen=True)
class Pair:
    """A reference implementation and the baseline genome that matches it."""

    reference: str
    make_reference: Callable[[], nn.Module]
    genome: str
    size: int | None = None  # the model's own input size (Xception 299, NASNet 331), used unless --size says otherwise


PAIRS = {
    "resnet50": Pair("torchvision resnet50", _torchvision("resnet50"), "resnet50"),
    "efficientnet_b0": Pair("torchvision efficientnet_b0", _torchvision("efficientnet_b0"), "efficientnet_b0"),
    "densenet121": Pair("torchvision densenet121", _torchvision("densenet121"), "densenet121"),
    "xception": Pair("timm legacy_xception", _timm("legacy_xception"), "xception", size=299),
    "nasnet_a_large": Pair("timm nasnetalarge", _timm("nasnetalarge"), "nasnet_a_large", size=331),
    "pnasnet_5_large": Pair("timm pnasnet5large", _timm("pnasnet5large"), "pnasnet_5_large", size=331),
}


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, images: torch.Tensor,
               labels: torch.Tensor) -> tuple[float, float]:
    """Wall-clock and process CPU seconds of one forward + backward + SGD step.

    CPU time (all threads of this process) is the steadier measure on a machine shared with other work.
    """
    wall, cpu = time.perf_counter(), time.process_time()
    optimizer.zero_grad(set_to_none=True)
    loss = nn.functional.cross_entropy(model(images), labels)
    loss.backward()
    optimizer.step()
    return time.perf_counter() - wall, time.process_time() - cpu


def compare(key: str, batch: int, size: int, repeats: int, warmup: int) -> dict:
    pair = PAIRS[key]
    genome = baselines.get(pair.genome)
    size = pair.size if pair.size is not None and size is None else size or 224
    torch.manual_seed(0)
    reference = pair.make_reference().train()
    ours = nas.build(genome).train()
    counts = [count_params(m) for m in (reference, ours)]
    images = torch.randn(batch, genome.input.channels, size, size)
    labels = torch.randint(genome.num_classes, (batch,))
    models = {"reference": reference, "ours": ours}
    optimizers = {side: torch.optim.SGD(m.parameters(), lr=1e-3, momentum=0.9) for side, m in models.items()}
    times: dict[str, list[tuple[float, float]]] = {"reference": [], "ours": []}
    for i in range(warmup + repeats):
        order = ("reference", "ours") if i % 2 == 0 else ("ours", "reference")
        for side in order:
            seconds = train_step(models[side], optimizers[side], images, labels)
            if i >= warmup:
                times[side].append(seconds)
    result = {
        "model": key,
        "genome": genome.name,
        "reference": pair.reference,
        "params": counts,
        "input": f"{batch}x{genome.input.channels}x{size}x{size}",
        "reference_s": statistics.median(wall for wall, _ in times["reference"]),
        "ours_s": statistics.median(wall for wall, _ in times["ours"]),
        "reference_cpu_s": statistics.median(cpu for _, cpu in times["reference"]),
        "ours_cpu_s": statistics.median(cpu for _, cpu in times["ours"]),
    }
    result["ratio"] = result["ours_s"] / result["reference_s"]
    result["cpu_ratio"] = result["ours_cpu_s"] / result["reference_cpu_s"]
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", choices=sorted(PAIRS), default=list(PAIRS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=None,
                        help="input height and width (default 224, or the model's own: Xception 299, NASNet 331)")
    parser.add_argument("--repeats", type=int, default=9, help="timed steps per side (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per side first")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}, "
          f"{args.repeats} repeats after {args.warmup} warm-up steps")
    results = []
    for key in args.models:
        result = compare(key, args.batch, args.size, args.repeats, args.warmup)
        results.append(result)
        same = "same" if result["params"][0] == result["params"][1] else "DIFFERENT"
        print(f"{key:16s} {result['input']:>16s}  wall: reference {result['reference_s'] * 1000:8.1f} ms, "
              f"ours {result['ours_s'] * 1000:8.1f} ms, ratio {result['ratio']:.3f}  |  cpu: reference "
              f"{result['reference_cpu_s'] * 1000:8.1f} ms, ours {result['ours_cpu_s'] * 1000:8.1f} ms, "
              f"ratio {result['cpu_ratio']:.3f}  ({same} params: {result['params'][0]:,} / {result['params'][1]:,})",
              flush=True)
    worst = max(results, key=lambda r: r["ratio"])
    worst_cpu = max(results, key=lambda r: r["cpu_ratio"])
    print(f"worst wall ratio {worst['ratio']:.3f} ({worst['model']}), worst cpu ratio {worst_cpu['cpu_ratio']:.3f} "
          f"({worst_cpu['model']}); target <= 1.03")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
