"""CPU seconds to count parameters and FLOPs: `nas.summarize` (each op counted alone, the counts cached by
op, params and input shape) next to counting the whole network at once (the network built on the meta
device, one forward pass under torch.utils.flop_counter), on the same genomes in the same process.

Two workloads: the baselines (`--baselines`, default all), and `--samples` seeded samples of the `--space`
space (default `cells`, realized for 3x32x32 inputs and 10 classes), as a search's trials summarise theirs.
Each round (`--rounds`) times both ways with `nas.summarize`'s caches emptied first ("cold"), alternating
which goes first, then `nas.summarize` again with its caches full ("warm"). Shape inference's cache
(nas.expand), which both ways use, is filled before the rounds. Every count must equal the whole network's;
the script says so when one does not and exits with status 1.

    python benchmarks/summary_speed.py
    python benchmarks/summary_speed.py --rounds 5 --samples 200
    python benchmarks/summary_speed.py --baselines resnet50 densenet121 --samples 0
"""
from __future__ import annotations

import argparse
import random
import statistics
import sys
import time

import torch

from nas import baselines
from nas.errors import NasError
from nas.expand import expand
from nas.genome import Genome
from nas.spaces import load_space
from nas.summary import count_flops, count_params, forget_costs, meta_network, summary


def whole_network(genome: Genome) -> tuple[int, int]:
    plan, model = meta_network(genome)
    return count_params(model), count_flops(model, torch.empty((1, *plan.input_shape), device="meta"))


def per_op(genome: Genome) -> tuple[int, int]:
    result = summary(genome)
    return result.params, result.flops


def timed(count, genomes: list[Genome]) -> tuple[float, list[tuple[int, int]]]:
    started = time.process_time()
    counts = [count(genome) for genome in genomes]
    return time.process_time() - started, counts


def workloads(args: argparse.Namespace) -> dict[str, list[Genome]]:
    named = {"baselines": [baselines.get(name) for name in args.baselines or baselines.names()]}
    if args.samples:
        space = load_space(args.space, input_channels=3, input_size=32, num_classes=10)
        rng = random.Random(args.seed)
        named[f"{args.samples} samples of {args.space}"] = [space.realize(space.sample(rng))
                                                            for _ in range(args.samples)]
    return {name: genomes for name, genomes in named.items() if genomes}


def count(least: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        return value
    return parse


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baselines", nargs="*", default=None, choices=baselines.names(), metavar="NAME",
                        help="baseline names (default: all)")
    parser.add_argument("--space", default="cells")
    parser.add_argument("--samples", type=count(0), default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=count(1), default=3)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    try:
        named = workloads(args)
    except NasError as error:  # an unknown space, a space file that is not one
        print(f"summary_speed.py: {error}", file=sys.stderr)
        return 2
    unequal = 0
    for name, genomes in named.items():
        for genome in genomes:
            expand(genome)  # shape inference's cache, which both ways share
        whole_times, cold_times, warm_times = [], [], []
        for round_index in range(args.rounds):
            forget_costs()
            if round_index % 2 == 0:
                whole_s, expected = timed(whole_network, genomes)
                cold_s, counts = timed(per_op, genomes)
            else:
                cold_s, counts = timed(per_op, genomes)
                whole_s, expected = timed(whole_network, genomes)
            warm_s, warm = timed(per_op, genomes)
            for genome, want, got, again in zip(genomes, expected, counts, warm):
                if not want == got == again:
                    unequal += 1
                    print(f"UNEQUAL {genome.name}: whole network {want}, nas.summarize {got}, warm {again}")
            whole_times.append(whole_s)
            cold_times.append(cold_s)
            warm_times.append(warm_s)
        whole, cold, warm = (statistics.median(t) for t in (whole_times, cold_times, warm_times))
        print(f"{name} ({len(genomes)} genomes), CPU seconds, median of {args.rounds}:")
        print(f"  whole network            {whole:8.2f}")
        print(f"  nas.summarize, cold      {cold:8.2f}   {whole / max(cold, 1e-9):6.1f}x faster")
        print(f"  nas.summarize, warm      {warm:8.2f}   {whole / max(warm, 1e-9):6.1f}x faster")
    if unequal:
        print(f"{unequal} count(s) differ from the whole network's")
        return 1
    print("every count equals the whole network's")
    return 0


if __name__ == "__main__":
    sys.exit(main())
