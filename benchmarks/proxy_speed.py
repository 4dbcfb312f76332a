"""Seconds to score one network with each zero-cost proxy, and seconds for 1,000 table lookups.

The network is the sample of the `cells` space (realized for digits, 1x8x8, 10 classes) whose parameter
count is nearest `--params` (default 100,000) among the first `--draws` seeded samples; each proxy scores
it `--repeats` times on one minibatch of `--batch` digits images (a fresh, seeded network each time, as in
a search's trial, and `nas.summarize`'s per-op counts forgotten, as in a worker's first trial; the
network's build is included, the data set's loading is not); the script prints the median wall and CPU
seconds per score (target: at most 1 s on 2 cores; `--threads 1` by default, as a search's trial with one
CPU runs torch, two such trials sharing the two cores). Then a table of `--entries`
distinct architectures of the space answers 1,000 lookups, every one a hit, timed whole (target: under
1 s): `Table.lookup(genome, spec)` with the genome's dict, as a trial receives it (building the genome,
which a trial does anyway, is not timed); then the same without the dict, each match confirmed by genome
equality (an isomorphism check), timed over 100 and scaled to 1,000.

    python benchmarks/proxy_speed.py
    python benchmarks/proxy_speed.py --threads 2 --repeats 9 --proxies synflow naswot params
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from collections.abc import Callable

import torch

from nas.evaluate.proxies import Candidate, score
from nas.evaluate.registry import builtin_names
from nas.evaluate.table import Entry, Table
from nas.genome import Genome
from nas.spaces import load_space
from nas.summary import forget_costs, summary
from nas.train.datasets import load_dataset


def nearest_network(space, draws: int, target: int, seed: int) -> tuple[Genome, int]:
    rng = random.Random(seed)
    best: tuple[int, Genome, int] | None = None
    for _ in range(draws):
        genome = space.realize(space.sample(rng))
        params = summary(genome, num_classes=space.num_classes, in_channels=space.input_channels,
                         input_size=space.input_size).params
        if best is None or abs(params - target) < best[0]:
            best = (abs(params - target), genome, params)
    return best[1], best[2]


def time_proxies(fresh: Callable[[], Candidate], names: list[str], repeats: int) -> list[tuple[str, float, float]]:
    """Median wall and CPU seconds of each proxy, each time on a fresh candidate (as a trial: minibatch, network
    and, for params and flops, `nas.summary`)."""
    rows = []
    for name in names:
        score(name, fresh())  # warm-up (first-call costs: imports, allocator)
        walls, cpus = [], []
        for _ in range(repeats):
            wall, cpu = time.perf_counter(), time.process_time()
            score(name, fresh())
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        rows.append((name, statistics.median(walls), statistics.median(cpus)))
    return rows


def time_lookups(space, entries: int, lookups: int, seed: int) -> tuple[int, float]:
    rng = random.Random(seed + 1)
    genomes: dict[str, Genome] = {}
    for _ in range(entries * 20):
        if len(genomes) >= entries:
            break
        genome = space.realize(space.sample(rng))
        genomes.setdefault(genome.fingerprint(), genome)
    table = Table({"space": "cells", "dataset": "digits", "epochs": 1, "seed": seed},
                  [Entry(fp, g.to_dict(), None, [0.5], 0.5, 1, 1, 0.0, 0.0, 0.0, seed) for fp, g in genomes.items()])
    table = Table.from_dict(json.loads(json.dumps(table.to_dict())))  # as read from its file
    asked = [rng.choice(list(genomes.values())).to_dict() for _ in range(lookups)]
    built = [Genome.from_dict(spec) for spec in asked]  # a trial builds its genome anyway, to evaluate it
    table.lookup(built[0], asked[0])  # warm-up
    started = time.perf_counter()
    hits = sum(table.lookup(genome, spec) is not None for genome, spec in zip(built, asked))
    fast = time.perf_counter() - started
    started = time.perf_counter()
    hits_slow = sum(table.lookup(genome) is not None for genome in built[:100])  # confirmed by ==, not by the dict
    return hits, fast, hits_slow, (time.perf_counter() - started) * len(asked) / 100


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proxies", nargs="+", default=None, help="default: every built-in proxy")
    parser.add_argument("--params", type=int, default=100_000, help="parameter count of the network to score")
    parser.add_argument("--draws", type=int, default=40, help="samples of the space to pick it from")
    parser.add_argument("--batch", type=int, default=64, help="minibatch size")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: what a trial of --cpus-per-trial 1 uses; 2 trials share 2 cores)")
    parser.add_argument("--entries", type=int, default=100, help="architectures in the lookup table")
    parser.add_argument("--lookups", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = load_dataset("digits")
    space = load_space("cells", input_channels=data.channels, input_size=data.size, num_classes=data.num_classes)
    genome, params = nearest_network(space, args.draws, args.params, args.seed)

    def fresh() -> Candidate:
        # nas.summarize's per-op counts forgotten, as in a worker's first trial (the draws above filled them)
        forget_costs()
        return Candidate.of(genome, data, seed=args.seed, batch_size=args.batch)
    print(f"network: {genome.name} ({params:,} parameters), minibatch {args.batch} x 1x8x8, "
          f"{args.threads} threads, median of {args.repeats}")
    print(f"{'proxy':<10} {'wall s':>8} {'CPU s':>8}")
    for name, wall, cpu in time_proxies(fresh, args.proxies or builtin_names(), args.repeats):
        print(f"{name:<10} {wall:>8.3f} {cpu:>8.3f}")
    hits, seconds, hits_slow, slow = time_lookups(space, args.entries, args.lookups, args.seed)
    print(f"{args.lookups} lookups in a table of {args.entries} architectures: {seconds:.3f} s ({hits} hits; "
          f"the genome given with the dict a trial receives)")
    print(f"without the dict (every match confirmed by genome ==): {slow:.1f} s per {args.lookups} "
          f"(timed over 100, {hits_slow} hits)")


if __name__ == "__main__":
    main()
