"""How fast the trials' training loop runs, against a plain PyTorch loop, and what each speed setting is worth.

For each network (`--models`: `small`, resnet20 at width 0.6, 125k parameters; `pnas`, the 23k-parameter
network a PNAS search found on Fashion-MNIST, `results/strategies-fashion-mnist/runs/pnas-seed2/best_genome.yaml`)
training on `--dataset` (default Fashion-MNIST, no augmentation) it prints images/s of `--batches` training
steps (after a warm-up) for:

  loop          the toolkit's loop (`nas.train.loop.train_epoch`, as `nas train` and the search trials run it)
  plain         a hand-written loop on the same network, batch, optimizer and data (the reference);
                goal: loop / plain time <= 1.05
  plain slices  the plain loop reading contiguous slices of pre-shuffled data instead of gathering a batch
                of random indices
  NCHW / channels-last, bf16 autocast, 1 and 2 threads, batch sizes, torch.compile (`--compile`, slow
  to compile), and data-parallel training (`--workers`, `nas.train.parallel`: processes of one thread,
  DDP over gloo; the epoch time its workers measure, after their start-up, which is printed apart),
  and oneDNN (torch.backends.mkldnn) switched off (`--onednn-off`)
  accuracy      one short training (`--accuracy-train` images, one epoch, the same seed and order) per
                variant, scored on (at most) 1,000 validation images: fp32 against bf16 autocast, and batch 2x / 4x
                with the learning rate scaled as much (the linear scaling rule): speed AND accuracy at
                equal epochs (images per CPU-second: the work, less sensitive to other processes)

Every figure is measured `--repeats` times, the variants taking turns in each round, so a busy machine
slows them alike; the median and the spread (min-max) are printed, and each ratio is taken against the
reference variant of the same round. Rely on the ratios when the machine is shared.

    python benchmarks/train_speed.py                                  # both networks, 2 threads, ~5 min idle
    python benchmarks/train_speed.py --models pnas --batches 50 --repeats 5
    python benchmarks/train_speed.py --compile                        # adds torch.compile (a minute to compile)
    python benchmarks/train_speed.py --device cuda                    # the same on a GPU (benchmarks/gpu_check.sh)
    python benchmarks/train_speed.py --dataset digits --batches 2 --repeats 1 --models small --parts loop  # smoke test
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PNAS_GENOME = ROOT / "results" / "strategies-fashion-mnist" / "runs" / "pnas-seed2" / "best_genome.yaml"
PARTS = ("loop", "layout", "threads", "batch", "parallel", "accuracy")
MODELS = ("small", "pnas")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--data-dir")
    parser.add_argument("--batch", type=int, default=32, help="batch size (default 32, the recipe's)")
    parser.add_argument("--batches", type=int, default=60, help="timed training steps per figure (default 60)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of every variant (default 3)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the one-process variants")
    parser.add_argument("--workers", type=int, default=2, help="processes of the data-parallel variant (default 2)")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile (slow to compile)")
    parser.add_argument("--onednn-off", action="store_true",
                        help="also measure the layout part with oneDNN switched off (slow: about 7x)")
    parser.add_argument("--accuracy-train", type=int, default=3000,
                        help="training images of each run of the accuracy part (default 3000)")
    args = parser.parse_args(argv)
    args.models = [m.strip() for m in args.models.split(",") if m.strip()]
    args.parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    for name, chosen, known in (("models", args.models, MODELS), ("parts", args.parts, PARTS)):
        bad = [c for c in chosen if c not in known]
        if bad or not chosen:
            parser.error(f"--{name}: unknown {bad[0]!r} (known: {', '.join(known)})" if bad else f"--{name}: none")
    for name in ("batch", "batches", "repeats", "threads", "workers", "accuracy_train"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}: must be a positive integer")
    return args


def genome_for(name: str):
    import nas
    from nas import baselines

    if name == "small":
        return nas.scale(baselines.get("resnet20"), width=0.6)
    if not PNAS_GENOME.is_file():
        return None
    return nas.Genome.from_yaml(PNAS_GENOME.read_text())


class Bench:
    """The shared pieces: data on the device, a network per variant, timing."""

    def __init__(self, args: argparse.Namespace, genome, data):
        import torch

        self.args, self.genome, self.data = args, genome, data
        self.device = torch.device(args.device)

    def sync(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def model(self, channels_last: bool, compile_: bool = False):
        import torch

        from nas.compiler import build
        from nas.train.loop import trial_seed

        torch.manual_seed(trial_seed(0, self.genome.fingerprint()))
        model = build(self.genome).to(self.device,
                                      memory_format=torch.channels_last if channels_last else torch.preserve_format)
        return torch.compile(model) if compile_ else model

    def images(self, batch: int, steps: int):
        from nas.train.datasets import Split

        count = batch * steps
        train = self.data.train
        index = [i % len(train) for i in range(count)]
        return Split(train.x[index].to(self.device), train.y[index].to(self.device))

    def loop(self, batch: int, channels_last: bool, bf16: bool = False, compile_: bool = False) -> Callable[[], float]:
        """The toolkit's train_epoch over `--batches` steps; returns a timer of one pass (images/s)."""
        import torch

        from nas.train.loop import Precision, make_optimizer, make_scheduler, train_epoch
        from nas.train.settings import TrainSettings

        settings = TrainSettings(batch_size=batch, augment="none", epochs=1, channels_last=channels_last)
        model = self.model(channels_last, compile_)
        optimizer = make_optimizer(model, settings)
        scheduler = make_scheduler(optimizer, settings, 10 ** 6)
        precision = Precision(torch.bfloat16 if bf16 else None, self.device.type)
        scaler = precision.scaler()
        generator = torch.Generator().manual_seed(0)
        timed, warm = self.images(batch, self.args.batches), self.images(batch, 3)

        def run(split) -> None:
            train_epoch(model, self.data, split, optimizer, scheduler, scaler, precision, settings, generator, 1,
                        channels_last)

        run(warm)
        return lambda: self.timed(lambda: run(timed), len(timed))

    def short_training(self, batch: int, bf16: bool = False, lr_scale: float = 1.0) -> Callable[[], float]:
        """One epoch on the first `--accuracy-train` training images (channels-last, the toolkit's loop,
        the learning rate times `lr_scale`), from the same initial weights and in the same order for every
        variant; each call trains afresh and returns images/s, appending the validation accuracy on the
        first 1,000 validation images (fp32) to `self.accuracies`."""
        import torch

        from nas.train.datasets import Split
        from nas.train.loop import Precision, evaluate, make_optimizer, make_scheduler, steps_per_epoch, train_epoch
        from nas.train.settings import TrainSettings

        count = min(self.args.accuracy_train, len(self.data.train))
        train = Split(self.data.train.x[:count].to(self.device), self.data.train.y[:count].to(self.device))
        val = Split(self.data.val.x[:1000].to(self.device), self.data.val.y[:1000].to(self.device))
        base = TrainSettings(augment="none", epochs=1)
        settings = TrainSettings(batch_size=batch, augment="none", epochs=1, channels_last=True,
                                 lr=base.learning_rate * lr_scale)
        precision = Precision(torch.bfloat16 if bf16 else None, self.device.type)
        self.accuracies: list[float] = getattr(self, "accuracies", [])

        def run() -> None:
            model = self.model(True)
            optimizer = make_optimizer(model, settings)
            scheduler = make_scheduler(optimizer, settings, steps_per_epoch(len(train), batch))
            generator = torch.Generator().manual_seed(0)
            train_epoch(model, self.data, train, optimizer, scheduler, precision.scaler(), precision, settings,
                        generator, 1, True)
            self.accuracies.append(evaluate(model, self.data, val, Precision(None, self.device.type), 256, True))

        return lambda: self.timed(run, count)

    def plain(self, batch: int, channels_last: bool, slices: bool = False) -> Callable[[], float]:
        """A plain PyTorch loop: index a batch, normalise, forward, loss, backward, SGD step."""
        import torch
        from torch import nn

        model = self.model(channels_last)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True, weight_decay=5e-4)
        criterion = nn.CrossEntropyLoss()
        mean = torch.tensor(self.data.mean, device=self.device).view(1, -1, 1, 1)
        std = torch.tensor(self.data.std, device=self.device).view(1, -1, 1, 1)
        scale = float(self.data.scale)
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        generator = torch.Generator().manual_seed(0)

        def run(split) -> None:
            model.train()
            if slices:  # shuffled once, then read as contiguous slices
                order = torch.randperm(len(split), generator=generator).to(self.device)
                xs, ys = split.x[order], split.y[order]
            else:
                order = torch.randperm(len(split), generator=generator).to(self.device)
            for start in range(0, len(split) - batch + 1, batch):
                if slices:
                    x, y = xs[start:start + batch], ys[start:start + batch]
                else:
                    index = order[start:start + batch]
                    x, y = split.x[index], split.y[index]
                x = ((x.float() / scale - mean) / std).contiguous(memory_format=fmt)
                loss = criterion(model(x), y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()

        timed, warm = self.images(batch, self.args.batches), self.images(batch, 3)
        run(warm)
        return lambda: self.timed(lambda: run(timed), len(timed))

    def parallel(self, batch: int, workers: int) -> tuple[Callable[[], float], list[float]]:
        """Data-parallel training of the same images, two epochs; the second one's time as its workers
        measure it (start-up and the first, warm-up epoch apart)."""
        from nas.compiler import build
        from nas.train.parallel import run_workers
        from nas.train.settings import TrainSettings

        settings = TrainSettings(batch_size=batch, augment="none", epochs=2, channels_last=True)
        timed = self.images(batch, self.args.batches)
        few = self.images(batch, 1)
        data = dataclasses.replace(self.data, train=timed, val=few, test=few)
        startups: list[float] = []

        def once() -> float:
            started = time.perf_counter()
            _, history, _, _ = run_workers(self.genome, data, settings, build(self.genome).state_dict(), workers)
            startups.append(time.perf_counter() - started - sum(h["epoch_time"] for h in history))
            return len(timed) / history[-1]["epoch_time"]  # the second epoch: warmed up, as the other variants

        return once, startups

    def timed(self, work: Callable[[], None], images: int) -> float:
        """images/s of `work`; also records images per CPU-second of this process in `CPU_RATES`."""
        self.sync()
        started, cpu = time.perf_counter(), time.process_time()
        work()
        self.sync()
        CPU_RATES.append(images / max(1e-9, time.process_time() - cpu))
        return images / (time.perf_counter() - started)


CPU_RATES: list[float] = []  # images per CPU-second of this process, one per timed pass (Bench.timed)


def measure(variants: dict[str, Callable[[], float]], repeats: int, reference: str) -> dict[str, list[float]]:
    """images/s of every variant, `repeats` rounds, the variants taking turns; also `name ratio` lists
    (the variant's images/s over the reference's in the same round) and `name cpu` lists (images per
    CPU-second of this process: the work, less sensitive to other processes; none for the workers)."""
    figures: dict[str, list[float]] = {name: [] for name in variants}
    for name in variants:
        figures[f"{name} cpu"] = []
    for _ in range(repeats):
        for name, timer in variants.items():
            CPU_RATES.clear()
            figures[name].append(timer())
            figures[f"{name} cpu"] += CPU_RATES
    for name in variants:
        figures[f"{name} ratio"] = [v / r for v, r in zip(figures[name], figures[reference])]
    return figures


def spread(values: list[float], digits: int = 0) -> str:
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{middle:.{digits}f}"
    return f"{middle:.{digits}f} ({min(values):.{digits}f}-{max(values):.{digits}f})"


def report(title: str, figures: dict[str, list[float]], reference: str) -> None:
    print(f"\n{title}  (images/s: median (min-max) of the rounds; ratio to '{reference}' in the same round)")
    names = [n for n in figures if not n.endswith((" ratio", " cpu"))]
    width = max(len(n) for n in names)
    for name in names:
        cpu = figures.get(name + " cpu")
        work = f"   {spread(cpu)} images/CPU-s" if cpu else ""
        print(f"  {name:<{width}}  {spread(figures[name]):>20}   x {spread(figures[name + ' ratio'], 2)}{work}",
              flush=True)


def run_model(args: argparse.Namespace, name: str, data) -> None:
    import torch

    from nas.train.fit import for_data

    genome = genome_for(name)
    if genome is None:
        print(f"\n{name}: skipped ({PNAS_GENOME.relative_to(ROOT)} not found)")
        return
    genome = for_data(genome, data)
    from nas.summary import summary

    params = summary(genome, num_classes=data.num_classes, in_channels=data.channels, input_size=data.size).params
    bench = Bench(args, genome, data)
    b, threads = args.batch, args.threads
    head = f"{name} ({params:,} parameters, {data.name}, batch {b}, {threads} threads, {args.device})"
    torch.set_num_threads(threads)
    if "loop" in args.parts:
        variants = {"plain, channels-last": bench.plain(b, True), "loop, channels-last": bench.loop(b, True),
                    "plain NCHW": bench.plain(b, False), "loop NCHW": bench.loop(b, False),
                    "plain slices, channels-last": bench.plain(b, True, slices=True)}
        figures = measure(variants, args.repeats, "plain, channels-last")
        report(f"{head}: the toolkit's loop against a plain loop", figures, "plain, channels-last")
        time_ratio = [1 / r for r in figures["loop, channels-last ratio"]]
        print(f"  loop / plain time (channels-last): {spread(time_ratio, 3)}  (goal <= 1.05)")
    if "layout" in args.parts:
        variants = {"NCHW fp32": bench.loop(b, False), "channels-last fp32": bench.loop(b, True),
                    "channels-last bf16 autocast": bench.loop(b, True, bf16=True),
                    "NCHW bf16 autocast": bench.loop(b, False, bf16=True)}
        if args.compile:
            started = time.perf_counter()
            variants["channels-last torch.compile"] = bench.loop(b, True, compile_=True)
            print(f"  (torch.compile: {time.perf_counter() - started:.0f} s to compile and warm up)")
        if args.device == "cpu" and args.onednn_off:
            def without_onednn(timer: Callable[[], float]) -> Callable[[], float]:
                def run() -> float:
                    with torch.backends.mkldnn.flags(enabled=False):
                        return timer()
                return run

            with torch.backends.mkldnn.flags(enabled=False):
                variants["channels-last fp32, oneDNN off"] = without_onednn(bench.loop(b, True))
        report(f"{head}: memory format and precision (the toolkit's loop)",
               measure(variants, args.repeats, "NCHW fp32"), "NCHW fp32")
    if "threads" in args.parts and args.device == "cpu":
        def with_threads(count: int, timer: Callable[[], float]) -> Callable[[], float]:
            def run() -> float:
                torch.set_num_threads(count)
                try:
                    return timer()
                finally:
                    torch.set_num_threads(threads)
            return run

        variants = {f"{count} thread{'s' * (count > 1)}, channels-last": with_threads(count, bench.loop(b, True))
                    for count in sorted({1, 2, threads})}
        first = next(iter(variants))
        report(f"{head}: torch threads (the toolkit's loop; inter-op threads are not used by this loop)",
               measure(variants, args.repeats, first), first)
    if "batch" in args.parts:
        sizes = sorted({max(1, b // 2), b, b * 2, b * 4})
        variants = {f"batch {size}, channels-last": bench.loop(size, True) for size in sizes}
        reference = f"batch {b}, channels-last"
        report(f"{head}: batch size (the toolkit's loop, same number of steps)",
               measure(variants, args.repeats, reference), reference)
    if "parallel" in args.parts and args.device == "cpu":
        if b % args.workers:
            print(f"\n{head}: data-parallel skipped (batch {b} not divisible by {args.workers} workers)")
            return
        once, startups = bench.parallel(b, args.workers)
        variants = {f"one process, {threads} threads, channels-last": bench.loop(b, True),
                    f"{args.workers} workers x 1 thread, channels-last": once}
        reference = next(iter(variants))
        report(f"{head}: data-parallel ({args.workers} workers, batch {b // args.workers} each, gradients averaged)",
               measure(variants, args.repeats, reference), reference)
        print(f"  workers' start-up (processes, imports, data, rendezvous): {spread(startups, 1)} s per run")
    if "accuracy" in args.parts:
        accuracy_part(args, bench, head)


def accuracy_part(args: argparse.Namespace, bench: "Bench", head: str) -> None:
    """Speed and validation accuracy of short trainings: fp32 (reference), bf16 autocast, larger batches
    with the learning rate scaled as much."""
    b = args.batch
    runs = {f"fp32 batch {b}": bench.short_training(b), f"bf16 autocast batch {b}": bench.short_training(b, True),
            f"fp32 batch {2 * b}, lr x2": bench.short_training(2 * b, lr_scale=2.0),
            f"fp32 batch {4 * b}, lr x4": bench.short_training(4 * b, lr_scale=4.0)}
    bench.accuracies = []
    figures = measure(runs, args.repeats, f"fp32 batch {b}")
    report(f"{head}: short trainings ({min(args.accuracy_train, len(bench.data.train)):,} images, 1 epoch, "
           f"channels-last)", figures, f"fp32 batch {b}")
    names = list(runs)
    for position, name in enumerate(names):
        mine = bench.accuracies[position::len(names)]  # the rounds, in the order measure ran them
        print(f"  {name:<28} val accuracy {spread(mine, 4)} ({min(1000, len(bench.data.val)):,} validation images)")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import torch

    from nas.train.datasets import DatasetError, load_dataset

    if args.device == "cuda" and not torch.cuda.is_available():
        print("train_speed: no CUDA GPU visible (use --device cpu)", file=sys.stderr)
        return 2
    try:
        data = load_dataset(args.dataset, args.data_dir)
    except DatasetError as error:
        print(f"train_speed: {error}", file=sys.stderr)
        return 2
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads available by default, device {args.device}; "
          f"{args.batches} steps of batch {args.batch} per figure, {args.repeats} rounds", flush=True)
    for name in args.models:
        run_model(args, name, data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
