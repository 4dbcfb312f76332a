"""Supernet epoch time over the epoch time of one network it holds: what a one-shot search costs per epoch.

For each one-shot strategy (SPOS, DARTS first order, PC-DARTS with K = 4, ENAS), one epoch of supernet
training (`OneShotSearch.train_pass`: SPOS one uniform path per batch over the training split; DARTS
an architecture step and a weight step per batch, each on half the training split; ENAS one path
sampled by the controller per batch, then the epoch's controller steps, whose share it prints) and one epoch of
training a derived network (`nas.build` of a path of the same supernet: SGD over the whole training
split, same batch size) take turns in one process, `--repeats` times, the order alternating. It prints
the median of each (process CPU seconds, steadier than wall time on a busy machine; wall time beside)
and the ratio supernet / derived network, with the targets: SPOS and ENAS <= 1.5, DARTS <= 10, PC-DARTS <= 4.

    python benchmarks/oneshot_speed.py                                  # the cells space, digits, 1 thread
    python benchmarks/oneshot_speed.py --space search_spaces/cells.yaml --dataset fashion_mnist \\
        --train-limit 2000 --option channels=16 --device cuda
"""
from __future__ import annotations

import argparse
import random
import statistics
import time

import torch
from torch import nn

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
                  device: torch.device) -> tuple[float, float]:
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    criterion = nn.CrossEntropyLoss()
    model.train()
    cpu, wall = clock(device)
    for index in batches(len(split), batch_size, generator):
        index = index.to(split.x.device)
        loss = criterion(model(inputs(data, split.x[index], False)), split.y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        optimizer.step()
    end_cpu, end_wall = clock(device)
    return end_cpu - cpu, end_wall - wall


def supernet_epoch(search, device: torch.device) -> tuple[float, float, float]:
    """(cpu s, wall s, cpu s of ENAS's controller phase within them: 0 for the others)."""
    cpu, wall = clock(device)
    search.train_pass()
    end_cpu, end_wall = clock(device)
    return end_cpu - cpu, end_wall - wall, getattr(search, "controller_cpu_s", 0.0)


def main() -> None:
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
    parser.add_argument("--option", action="append", default=[], help="KEY=VALUE for every strategy, e.g. channels=16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    data = load_dataset(args.dataset, args.data_dir, val_fraction=0.1, seed=0, train_limit=args.train_limit)
    space = load_space(args.space, input_channels=data.channels, input_size=data.size, num_classes=data.num_classes)
    settings = TrainSettings(epochs=1, batch_size=args.batch_size, lr=0.05, augment="none")
    extra = {}
    for item in args.option:
        key, _, value = item.partition("=")
        extra[key] = int(value) if value.isdigit() else value
    train = to_device(data.train, device)
    print(f"{data.describe()}; space {args.space}; batch {args.batch_size}; {args.threads} thread(s); {device}")
    print(f"{'strategy':9} {'supernet cpu s':>14} {'derived cpu s':>13} {'ratio':>6} {'(wall)':>7} {'target':>7}")
    for name in args.strategies:
        options = strategy_class(name).resolve_options(extra)
        search = make_search(name, space, data, settings, options, seed=0, paths=1, device=device)
        search.epoch = 1  # past any warm-up: DARTS takes its architecture steps
        path = search.space.sample(random.Random(0))
        model = build(search.space.realize(path)).to(device)
        generator = torch.Generator().manual_seed(0)
        supernet_times, derived_times = [], []
        for repeat in range(args.repeats):
            runs = [lambda: supernet_times.append(supernet_epoch(search, device)),
                    lambda: derived_times.append(derived_epoch(model, data, train, args.batch_size, generator, device))]
            for run in (runs if repeat % 2 == 0 else runs[::-1]):
                run()
        s_cpu, s_wall = (statistics.median(t[i] for t in supernet_times) for i in (0, 1))
        d_cpu, d_wall = (statistics.median(t[i] for t in derived_times) for i in (0, 1))
        ratio = s_cpu / d_cpu if device.type == "cpu" else s_wall / d_wall
        print(f"{name:9} {s_cpu:14.2f} {d_cpu:13.2f} {ratio:6.2f} {s_wall / d_wall:7.2f} {TARGETS.get(name, 0):7.1f}"
              f"  {'ok' if ratio <= TARGETS.get(name, float('inf')) else 'OVER'}")
        controller = statistics.median(t[2] for t in supernet_times)
        if controller:
            print(f"{'':9} of which the controller's steps {controller:.2f} cpu s; the shared weights' pass alone: "
                  f"{(s_cpu - controller) / d_cpu:.2f}x")


if __name__ == "__main__":
    main()
