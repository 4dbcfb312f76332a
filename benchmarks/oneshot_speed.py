"""Supernet epoch time over the epoch time of one network it holds: what a one-shot search costs per epoch.

For each one-shot strategy (SPOS, DARTS first order, PC-DARTS with K = 4, ENAS), one epoch of supernet
training (`OneShotSearch.train_pass`: SPOS one uniform path per batch over the training split; DARTS
an architecture step and a weight step per batch, each on half the training split; ENAS one path
sampled by the controller per batch, then the epoch's controller steps, whose share it prints) and one epoch of
training a derived network (`nas.build` of a path of the same supernet: SGD over the whole training
split, same batch size) take turns in one process, `--repeats` times, the order alternating. It prints
the median of each (process CPU seconds, steadier than wall time on a busy machine; wall time beside)
and the ratio supernet / derived network, with the targets: SPOS and ENAS <= 1.5, DARTS <= 10, PC-DARTS <= 4.
Beside it, the ratio of the two epochs' arithmetic: one more epoch of each run under
`torch.utils.flop_counter.FlopCounterMode` (convolutions and matrix products, forward and backward). For
a cells space, both ratios' range over `--samples` sampled paths' networks follows (the first path's
network is the ratio's base); the derived cell's ops set them: pooling and skips cost nothing,
convolutions most. Where the time ratio is close to the FLOP ratio, the supernet does about as much
arithmetic per second as the derived network, and only less arithmetic (fewer ops, partial channels)
lowers its ratio.

    python benchmarks/oneshot_speed.py                                  # the cells space, digits, 1 thread
    python benchmarks/oneshot_speed.py --channels-last off              # both networks NCHW
    python benchmarks/oneshot_speed.py --strategies darts --samples 5   # against 5 paths' networks
    python benchmarks/oneshot_speed.py --space search_spaces/cells.yaml --dataset fashion_mnist \\
        --train-limit 2000 --option channels=16 --device cuda

A stage space (`--space mobile`, `compact`, `macro`: kind ``stages``, SPOS only) is compared with derived
networks: `--samples` sampled paths' (the ratio's base: their mean epoch, as SPOS trains uniform paths)
and the largest path's (every numeric choice at its largest option, others at their first); the memory
of a training step is printed beside: on a GPU the peak memory allocated, on a CPU the tensors autograd
keeps for the backward pass (activations) plus the weights (the supernet's: the mean of 3 random paths).

The supernet and the derived networks train in one memory format: `--channels-last` auto (the searches'
default, as `nas train`'s: channels-last on a CPU), on or off.
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from nas import build
from nas.oneshot.search import make_search
from nas.search.strategies import strategy_class
from nas.spaces import load_space
from nas.train.datasets import load_dataset
from nas.train.loop import batches, inputs, to_device
from nas.train.settings import TrainSettings

TARGETS = {"spos": 1.5, "darts": 10.0, "pcdarts": 4.0, "enas": 1.5}


def clock(device: torch.device) -> tuple[float, float]:
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.process_time(), time.perf_counter()


def derived_epoch(model: nn.Module, data, split, batch_size: int, generator: torch.Generator,
                  device: torch.device, channels_last: bool = False) -> tuple[float, float]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    model.train()
    cpu, wall = clock(device)
    for index in batches(len(split), batch_size, generator):
        index = index.to(split.x.device)
        loss = criterion(model(inputs(data, split.x[index], channels_last)), split.y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
    end_cpu, end_wall = clock(device)
    return end_cpu - cpu, end_wall - wall


def epoch_flops(run) -> int:
    """The FLOPs of the epoch `run()` trains (forward and backward: what the timed epochs compute)."""
    with FlopCounterMode(display=False) as counter:
        run()
    return counter.get_total_flops()


def in_format(model: nn.Module, channels_last: bool) -> nn.Module:
    """`model` in the supernet's memory format."""
    return model.to(memory_format=torch.channels_last) if channels_last else model


def supernet_epoch(search, device: torch.device) -> tuple[float, float, float]:
    """(cpu s, wall s, cpu s of ENAS's controller phase within them: 0 for the others)."""
    cpu, wall = clock(device)
    search.train_pass()
    end_cpu, end_wall = clock(device)
    return end_cpu - cpu, end_wall - wall, getattr(search, "controller_cpu_s", 0.0)


class SavedBytes:
    """The bytes of the tensors autograd saves for backward while active (a CPU step's activation memory)."""

    def __init__(self) -> None:
        self.total = 0
        self.hooks = torch.autograd.graph.saved_tensors_hooks(self.pack, lambda x: x)

    def pack(self, tensor: torch.Tensor) -> torch.Tensor:
        self.total += tensor.numel() * tensor.element_size()
        return tensor

    def __enter__(self) -> "SavedBytes":
        self.hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.hooks.__exit__(*exc)


def step_memory(model: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device, **forward) -> float:
    """MiB of one training step: peak allocated on a GPU; on a CPU the saved activations plus the weights."""
    model.train()
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats(device)
        start = torch.cuda.memory_allocated(device)
        nn.CrossEntropyLoss()(model(x, **forward), y).backward()
        torch.cuda.synchronize()
        used = torch.cuda.max_memory_allocated(device) - start
        model.zero_grad(set_to_none=True)
        return (used + sum(p.numel() * p.element_size() for p in model.parameters())) / 2 ** 20
    with SavedBytes() as saved:
        loss = nn.CrossEntropyLoss()(model(x, **forward), y)
    loss.backward()
    model.zero_grad(set_to_none=True)
    return (saved.total + sum(p.numel() * p.element_size() for p in model.parameters())) / 2 ** 20


def largest_path(space) -> dict:
    """Every active numeric choice at its largest option, the others at their first."""
    path: dict = {}
    for choice in space.choices:
        if choice.is_active(path):
            numbers = [o for o in choice.options if isinstance(o, (int, float)) and not isinstance(o, bool)]
            path[choice.name] = max(numbers) if len(numbers) == len(choice.options) else choice.options[0]
    return path


def stage_space(space, search, data, train, args, device: torch.device) -> None:
    """SPOS on a stage space against a sampled and the largest derived network: epoch time and step memory."""
    generator = torch.Generator().manual_seed(0)
    index = batches(len(train), args.batch_size, generator)[0].to(train.x.device)
    x, y = inputs(data, train.x[index], search.channels_last), train.y[index]
    nets = {**{f"sampled{k}": search.space.sample(random.Random(k)) for k in range(args.samples)},
            "largest": largest_path(search.space)}
    models = {k: in_format(build(search.space.realize(p)).to(device), search.channels_last) for k, p in nets.items()}
    times: dict[str, list] = {"supernet": [], **{k: [] for k in models}}
    for repeat in range(args.repeats):
        runs = [("supernet", lambda: supernet_epoch(search, device))] + [
            (k, lambda m=m: derived_epoch(m, data, train, args.batch_size, generator, device, search.channels_last))
            for k, m in models.items()]
        for name, run in (runs if repeat % 2 == 0 else runs[::-1]):
            times[name].append(run())
    memory = {"supernet": statistics.mean(step_memory(search.supernet, x, y, device, path=search.space.sample(
        random.Random(seed))) for seed in range(3)), **{k: step_memory(m, x, y, device) for k, m in models.items()}}
    params = {"supernet": sum(p.numel() for p in search.supernet.parameters()),
              **{k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}}
    cpu = device.type == "cpu"
    medians = {k: tuple(statistics.median(t[i] for t in v) for i in (0, 1)) for k, v in times.items()}
    base = medians["supernet"][0 if cpu else 1]
    print(f"{'network':9} {'epoch cpu s':>11} {'(wall s)':>9} {'step ms':>8} {'step MiB':>9} {'params':>10} "
          f"{'supernet / it':>13}")
    steps = max(1, len(batches(len(train), args.batch_size, generator)))
    for name, (c, w) in medians.items():
        ratio = base / (c if cpu else w)
        print(f"{name:9} {c:11.2f} {w:9.2f} {1000 * w / steps:8.1f} {memory[name]:9.1f} {params[name]:10,} "
              f"{ratio:13.2f}")
    sampled = statistics.mean(medians[k][0 if cpu else 1] for k in medians if k.startswith("sampled"))
    ratio = base / sampled
    print(f"spos epoch / the sampled networks' mean epoch: {ratio:.2f} (target {TARGETS['spos']}): "
          f"{'ok' if ratio <= TARGETS['spos'] else 'OVER'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--space", default="cells")
    parser.add_argument("--dataset", default="digits")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--strategies", nargs="+", default=list(TARGETS))
    parser.add_argument("--samples", type=int, default=3,
                        help="sampled paths' networks to compare (cells spaces: the first is the ratio's base)")
    parser.add_argument("--option", action="append", default=[], help="KEY=VALUE for every strategy, e.g. channels=16")
    parser.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto",
                        help="the supernet's and the derived networks' memory format (auto: the searches' default)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = load_dataset(args.dataset, args.data_dir, val_fraction=0.1, seed=0, train_limit=args.train_limit)
    space = load_space(args.space, input_channels=data.channels, input_size=data.size, num_classes=data.num_classes)
    settings = TrainSettings(epochs=1, batch_size=args.batch_size, lr=0.05, augment="none",
                             channels_last={"auto": None, "on": True, "off": False}[args.channels_last])
    extra = {}
    for item in args.option:
        key, _, value = item.partition("=")
        extra[key] = int(value) if value.isdigit() else value
    train = to_device(data.train, device)
    print(f"{data.describe()}; space {args.space}; batch {args.batch_size}; {args.threads} thread(s); {device}; "
          f"channels-last {args.channels_last}")
    from nas.spaces.stages import StageSpace

    if isinstance(space, StageSpace):
        options = strategy_class("spos").resolve_options(extra)
        clock_start = time.perf_counter()
        search = make_search("spos", space, data, settings, options, seed=0, paths=1, device=device)
        print(f"stage supernet derived in {time.perf_counter() - clock_start:.1f} s")
        stage_space(space, search, data, train, args, device)
        return
    cell_space(space, data, train, settings, extra, args, device)


def cell_space(space, data, train, settings, extra, args, device: torch.device) -> None:
    """Each strategy's supernet against the networks of `--samples` sampled paths; the ratio's base is the
    first path's network (a range over all of them, in time and in FLOPs, on the line below)."""
    print(f"{'strategy':9} {'supernet cpu s':>14} {'derived cpu s':>13} {'ratio':>6} {'(wall)':>7} {'target':>7}"
          f"  {'FLOP ratio':>10}")
    for name in args.strategies:
        options = strategy_class(name).resolve_options(extra)
        search = make_search(name, space, data, settings, options, seed=0, paths=1, device=device)
        search.epoch = 1  # past any warm-up: DARTS takes its architecture steps
        models = [in_format(build(search.space.realize(search.space.sample(random.Random(k)))).to(device),
                            search.channels_last) for k in range(max(1, args.samples))]
        generator = torch.Generator().manual_seed(0)

        def derived(model: nn.Module) -> tuple[float, float]:
            return derived_epoch(model, data, train, args.batch_size, generator, device, search.channels_last)

        supernet_times, derived_times = [], [[] for _ in models]
        for repeat in range(args.repeats):
            runs = [lambda: supernet_times.append(supernet_epoch(search, device))] + [
                lambda k=k: derived_times[k].append(derived(models[k])) for k in range(len(models))]
            for run in (runs if repeat % 2 == 0 else runs[::-1]):
                run()
        s_cpu, s_wall = (statistics.median(t[i] for t in supernet_times) for i in (0, 1))
        d_cpu, d_wall = ([statistics.median(t[i] for t in times) for times in derived_times] for i in (0, 1))
        ratios = [s_cpu / c for c in d_cpu] if device.type == "cpu" else [s_wall / w for w in d_wall]
        supernet_flops = epoch_flops(search.train_pass)
        flops = [supernet_flops / epoch_flops(lambda m=model: derived(m)) for model in models]
        print(f"{name:9} {s_cpu:14.2f} {d_cpu[0]:13.2f} {ratios[0]:6.2f} {s_wall / d_wall[0]:7.2f} "
              f"{TARGETS.get(name, 0):7.1f}  {flops[0]:10.2f}  "
              f"{'ok' if ratios[0] <= TARGETS.get(name, float('inf')) else 'OVER'}")
        controller = statistics.median(t[2] for t in supernet_times)
        if controller:
            print(f"{'':9} of which the controller's steps {controller:.2f} cpu s; the shared weights' pass alone: "
                  f"{(s_cpu - controller) / d_cpu[0]:.2f}x")
        if len(models) > 1:  # the derived cell's ops set the floor: pooling and skips cost nothing, convolutions most
            print(f"{'':9} against {len(models)} sampled paths' networks: ratio {min(ratios):.2f} to "
                  f"{max(ratios):.2f}, FLOP ratio {min(flops):.2f} to {max(flops):.2f}")


if __name__ == "__main__":
    main()
