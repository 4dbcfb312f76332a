"""Check the GPU path on a machine with a CUDA GPU: training throughput, trial packing, a real search.

Five parts, each printed as it finishes (the defaults are sized to take under eight minutes on one
GPU; not yet timed on one, as none was available when it was written):

  throughput  images/s of one training epoch of a CIFAR-size network (`--model`, default resnet20, on
              random 3x32x32 images) through the trials' own loop (`nas.train.loop.train_epoch`), in
              fp32 and with automatic mixed precision (`--precision auto`: bf16, or fp16 with a
              gradient scaler), each in the default and the channels-last memory format;
  packing     the same `--pack-trials` random-search trials on `--dataset` run twice, one at a time
              (`--gpus-per-trial 1`) and four at once on one GPU (`--gpus-per-trial 0.25`): the
              wall-clock speed-up of packing (random search with one seed proposes the same
              architectures in the same order either way);
  search      a short search end to end (`--strategy`, default pnas over the cells space) on the
              data set with `--gpus-per-trial 0.25`: best validation and test accuracy, and time.
  train_speed benchmarks/train_speed.py on the device: the toolkit's loop against a plain PyTorch loop,
              memory format, bf16 autocast and batch size, for a 125k- and a 23k-parameter network on
              the data set (images/s, ratios measured side by side).
  oneshot     benchmarks/oneshot_speed.py on the device: one epoch of each one-shot strategy's supernet
              (`--oneshot-strategies`) against sampled paths' networks over the cells space at width
              `--oneshot-channels`, on `--oneshot-images` training images of the data set (wall-time
              ratios on a GPU, with the FLOP ratios beside).

    bash benchmarks/gpu_check.sh                              # on the GPU machine, data under ./data
    bash benchmarks/gpu_check.sh --data-dir /data/fashion     # Fashion-MNIST files elsewhere
    python benchmarks/gpu_check.py --device cpu --parts throughput --images 256 --batch 32   # smoke test

Without a CUDA GPU (and without `--device cpu`) it prints one line saying so and exits with status 2.
Run folders go to `--out` (default: a new temporary folder, printed at the start).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

PARTS = ("throughput", "packing", "search", "train_speed", "oneshot")


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="cuda (default); cpu only proves the code runs (no GPU figures)")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)} (default all)")
    parser.add_argument("--model", default="resnet20", help="baseline genome for the throughput part (default resnet20)")
    parser.add_argument("--images", type=int, default=25_600, help="images per throughput measurement (default 25600)")
    parser.add_argument("--batch", type=int, default=256, help="batch size of the throughput part (default 256)")
    parser.add_argument("--dataset", default="fashion_mnist", help="data set of the packing and search parts")
    parser.add_argument("--data-dir", help="where the data set's files are (default $NAS_DATA_DIR or ./data)")
    parser.add_argument("--train-limit", type=int, default=10_000, help="training images per trial (default 10000)")
    parser.add_argument("--pack-trials", type=int, default=8, help="trials of each packing run (default 8)")
    parser.add_argument("--pack-epochs", type=int, default=1, help="epochs per packing trial (default 1)")
    parser.add_argument("--strategy", default="pnas", help="strategy of the search part (default pnas)")
    parser.add_argument("--space", default="cells", help="space of the search part (default cells)")
    parser.add_argument("--search-trials", type=int, default=12, help="trials of the search part (default 12)")
    parser.add_argument("--search-epochs", type=int, default=2, help="epochs per search trial (default 2)")
    parser.add_argument("--oneshot-strategies", default="spos,darts,pcdarts,enas",
                        help="one-shot strategies of the oneshot part (default spos,darts,pcdarts,enas)")
    parser.add_argument("--oneshot-channels", type=int, default=16, help="cell width C of the oneshot part (default 16)")
    parser.add_argument("--oneshot-images", type=int, default=2000, help="training images of the oneshot part (default 2000)")
    parser.add_argument("--oneshot-repeats", type=int, default=3, help="repeats of the oneshot part (default 3)")
    parser.add_argument("--out", help="folder for the run folders (must not exist; default: a new temporary folder)")
    args = parser.parse_args(argv)
    args.parts = [part.strip() for part in args.parts.split(",") if part.strip()]
    unknown = [part for part in args.parts if part not in PARTS]
    if unknown or not args.parts:
        parser.error(f"--parts: unknown part {unknown[0]!r} (known: {', '.join(PARTS)})" if unknown else "--parts: none given")
    for name in ("images", "batch", "train_limit", "pack_trials", "pack_epochs", "search_trials", "search_epochs",
                 "oneshot_channels", "oneshot_images", "oneshot_repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: must be a positive integer, got {getattr(args, name)}")
    return args


def refuse(message: str) -> int:
    print(f"gpu_check: {message}", file=sys.stderr)
    return 2


def cuda_problem() -> str | None:
    """Why the GPU path cannot be checked here (None: a CUDA GPU is usable)."""
    import torch

    if torch.version.cuda is None:
        return (f"this torch {torch.__version__} is built without CUDA, so no GPU can be used; install a CUDA "
                "build of torch on the GPU machine (or pass --device cpu to smoke-test the script)")
    if not torch.cuda.is_available():
        return (f"no CUDA GPU is visible (torch {torch.__version__}, CUDA {torch.version.cuda}; "
                f"CUDA_VISIBLE_DEVICES={os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')}); run this on a machine "
                "with an NVIDIA GPU and its driver (or pass --device cpu to smoke-test the script)")
    return None


# ----- throughput -----
def random_splits(images: int, seed: int = 0):
    """Random uint8 3x32x32 images with 10 classes, as a data set (normalised like a real one)."""
    import torch

    from nas.train.datasets import DatasetSplits, Split

    generator = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (images, 3, 32, 32), dtype=torch.uint8, generator=generator)
    y = torch.randint(0, 10, (images,), generator=generator)
    split = Split(x, y)
    return DatasetSplits(name="random", train=split, val=split, test=split, num_classes=10, scale=255.0,
                         mean=(0.5, 0.5, 0.5), std=(0.29, 0.29, 0.29))


def throughput(args: argparse.Namespace, device) -> list[tuple[str, str, float]]:
    """(precision, memory format, images/s) of one epoch of `args.model` in each configuration."""
    import torch

    from nas import baselines, build
    from nas.train.loop import (Precision, make_optimizer, make_scheduler, steps_per_epoch, to_device,
                                train_epoch)
    from nas.train.settings import TrainSettings

    data = random_splits(args.images)
    train = to_device(data.train, device)
    warm = to_device(random_splits(min(args.images, 4 * args.batch), seed=1).train, device)
    settings = TrainSettings(epochs=1, batch_size=args.batch)
    genome = baselines.get(args.model)
    rows = []
    for setting in ("off", "auto"):
        for channels_last in (False, True):
            precision = Precision.choose(setting, device)
            torch.manual_seed(0)
            model = build(genome, num_classes=10, in_channels=3, input_size=32)
            model = model.to(device, memory_format=torch.channels_last if channels_last else torch.preserve_format)
            optimizer = make_optimizer(model, settings)
            scheduler = make_scheduler(optimizer, settings, steps_per_epoch(len(train), settings.batch_size))
            scaler = precision.scaler()
            generator = torch.Generator().manual_seed(0)
            train_epoch(model, data, warm, optimizer, scheduler, scaler, precision, settings, generator, 0, channels_last)
            synchronize(device)
            clock = time.perf_counter()
            train_epoch(model, data, train, optimizer, scheduler, scaler, precision, settings, generator, 1, channels_last)
            synchronize(device)
            seconds = time.perf_counter() - clock
            trained = steps_per_epoch(len(train), settings.batch_size) * settings.batch_size
            label = "fp32" if setting == "off" else f"amp ({precision.name})"
            rows.append((label, "channels-last" if channels_last else "default", trained / seconds))
            print(f"  {args.model} {label:>11} {rows[-1][1]:>13}: {rows[-1][2]:10,.0f} images/s "
                  f"(batch {args.batch}, {trained} images in {seconds:.2f} s)", flush=True)
            del model, optimizer, scheduler
    return rows


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ----- searches -----
def search(args: argparse.Namespace, folder: Path, strategy: str, space: str, trials: int, epochs: int,
           concurrent: int, gpus: float, cpus: float) -> dict:
    from nas.search.run import SearchConfig, run_search

    config = SearchConfig(strategy=strategy, space=space, dataset=args.dataset, data_dir=args.data_dir,
                          train_limit=args.train_limit, trials=trials, concurrent=concurrent, seed=0,
                          cpus_per_trial=cpus, gpus_per_trial=gpus, train={"epochs": epochs})
    clock = time.perf_counter()
    outcome = run_search(config, folder, verbose=False)
    summary = dict(outcome.summary)
    summary["wall_s"] = time.perf_counter() - clock
    return summary


def packing(args: argparse.Namespace, out: Path, gpu: bool) -> float:
    cpus = max(1, (os.cpu_count() or 1) // 4)
    runs = {}
    for label, concurrent, gpus in (("one at a time", 1, 1.0 if gpu else 0.0), ("four packed", 4, 0.25 if gpu else 0.0)):
        summary = search(args, out / f"packing-{concurrent}", "random", "macro", args.pack_trials, args.pack_epochs,
                         concurrent, gpus, cpus)
        runs[label] = summary
        print(f"  {label:>13} (--gpus-per-trial {gpus:g}, {cpus} CPUs per trial): {args.pack_trials} trials in "
              f"{summary['timings']['search_s']:.1f} s, {summary['counts']['failed']} failed", flush=True)
    speedup = runs["one at a time"]["timings"]["search_s"] / runs["four packed"]["timings"]["search_s"]
    print(f"  speed-up of packing four trials per GPU: {speedup:.2f}x", flush=True)
    return speedup


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    import torch

    if args.device == "cuda":
        problem = cuda_problem()
        if problem:
            return refuse(problem)
    device = torch.device(args.device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        print(f"GPU: {name}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
              f"bf16 {'yes' if torch.cuda.is_bf16_supported() else 'no'}", flush=True)
    else:
        print(f"CPU smoke test (torch {torch.__version__}): figures say nothing about a GPU; mixed precision is "
              "GPU-only, so its rows train in fp32", flush=True)
    needs_data = [part for part in args.parts if part != "throughput"]  # checked here: one line if missing
    needs_out = [part for part in args.parts if part in ("packing", "search")]  # their run folders
    if args.out and Path(args.out).exists():
        return refuse(f"--out {args.out} exists; give a new folder (this script only writes folders it creates)")
    if needs_data:
        from nas.errors import NasError
        from nas.train.datasets import load_dataset

        try:
            data = load_dataset(args.dataset, args.data_dir, train_limit=args.train_limit)
        except NasError as error:
            return refuse(f"--dataset {args.dataset}: {error} (copy the files beside the repository and pass --data-dir)")
        print(f"data: {data.describe()}", flush=True)
    out = Path(".")
    if needs_out:
        out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="nas-gpu-check-"))
        out.mkdir(parents=True, exist_ok=True)
        print(f"run folders: {out}", flush=True)
    started = time.perf_counter()
    if "throughput" in args.parts:
        print("throughput (one training epoch, the trials' own loop):", flush=True)
        rows = throughput(args, device)
        base = rows[0][2]
        print("  speed-up over fp32 default: " + ", ".join(f"{p} {f} {ips / base:.2f}x" for p, f, ips in rows[1:]),
              flush=True)
    if "packing" in args.parts:
        print(f"packing ({args.pack_trials} random-search trials over macro on {args.dataset}, "
              f"{args.pack_epochs} epoch(s), {args.train_limit} training images):", flush=True)
        packing(args, out, device.type == "cuda")
    if "search" in args.parts:
        gpus = 0.25 if device.type == "cuda" else 0.0
        print(f"search ({args.strategy} over {args.space} on {args.dataset}, {args.search_trials} trials x "
              f"{args.search_epochs} epochs, --gpus-per-trial {gpus:g}):", flush=True)
        cpus = max(1, (os.cpu_count() or 1) // 4)
        summary = search(args, out / "search", args.strategy, args.space, args.search_trials, args.search_epochs,
                         4, gpus, cpus)
        best = summary.get("best") or {}
        print(f"  {summary['counts']} in {summary['wall_s']:.1f} s; best val accuracy {best.get('val_accuracy')}, "
              f"its test accuracy {best.get('test_accuracy')}, {best.get('params')} params; run folder {out / 'search'}",
              flush=True)
    if "train_speed" in args.parts:
        print("speed (benchmarks/train_speed.py):", flush=True)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import train_speed

        train_speed.main(["--device", args.device, "--dataset", args.dataset, "--parts", "loop,layout,batch",
                          "--batches", "50", "--repeats", "3"] + (["--data-dir", args.data_dir] if args.data_dir else []))
    if "oneshot" in args.parts:
        print("one-shot supernets (benchmarks/oneshot_speed.py):", flush=True)
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import oneshot_speed

        oneshot_speed.main(["--device", args.device, "--dataset", args.dataset, "--train-limit", str(args.oneshot_images),
                            "--option", f"channels={args.oneshot_channels}", "--repeats", str(args.oneshot_repeats),
                            "--strategies", *args.oneshot_strategies.split(",")]
                           + (["--data-dir", args.data_dir] if args.data_dir else []))
    print(f"gpu_check done in {time.perf_counter() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
