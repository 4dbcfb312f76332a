"""What one epoch of a final training costs per network: CPU seconds and wall seconds of one trial, measured
side by side on a timed subset and extrapolated to the whole training split.

    python benchmarks/final_epoch_cost.py RUN_DIR... --baselines twoconv FILE.yaml ... --recipe final \
        --dataset fashion_mnist --val-fraction 0.025 --split-seed 0 --images 1920 --rounds 3 --json out.json

Every network is fitted to the data set as `nas compare` fits it (`nas.compare.plan.plan_models`) and
trained with the toolkit's own loop pieces (`nas.train.loop`: the recipe's optimizer, schedule, augmentation,
label smoothing and extras, channels-last by default), in one thread, as a `nas compare` trial with one CPU
runs. Round-robin: every round trains each network on the same `--images` training images (one pass) and
evaluates it on `--val-images` images, so a machine that is busier in one minute than in the next slows
every network alike; the first round is a warm-up (oneDNN picks its kernels) and is not counted. Per
network: the median over the counted rounds of CPU seconds (`time.process_time`, this process) and wall
seconds per training image and per evaluated image, and their extrapolation to one epoch of the whole
training split with its validation, and to the test pass that ends a trial.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from nas.compare.plan import plan_models, read_run
from nas.compiler import build
from nas.summary import summary
from nas.train.datasets import load_dataset
from nas.train.loop import Precision, evaluate, make_optimizer, make_scheduler, steps_per_epoch, train_epoch
from nas.train.recipe import load_recipe
from nas.train.regularizers import Extras
from nas.train.speed import resolve_channels_last


def prepare(genome, settings, data):
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    device = torch.device("cpu")
    precision = Precision.choose(settings.precision, device)
    channels_last = resolve_channels_last(settings.channels_last, device)
    model = build(genome, num_classes=data.num_classes, in_channels=data.channels, input_size=data.size)
    model = model.to(memory_format=torch.channels_last if channels_last else torch.preserve_format)
    extras = Extras.create(model, genome, settings, data.num_classes, data.channels, data.size, device)
    optimizer = make_optimizer(extras.trained(), settings)
    scheduler = make_scheduler(optimizer, settings, steps_per_epoch(len(data.train), settings.batch_size))
    return {"model": model, "extras": extras, "optimizer": optimizer, "scheduler": scheduler,
            "scaler": precision.scaler(), "precision": precision, "generator": generator,
            "channels_last": channels_last, "epoch": 0}


def one_round(state, settings, data) -> dict[str, float]:
    state["epoch"] += 1
    cpu, wall = time.process_time(), time.perf_counter()
    train_epoch(state["model"], data, data.train, state["optimizer"], state["scheduler"], state["scaler"],
                state["precision"], settings, state["generator"], state["epoch"], state["channels_last"],
                extras=state["extras"])
    train_cpu, train_wall = time.process_time() - cpu, time.perf_counter() - wall
    cpu, wall = time.process_time(), time.perf_counter()
    evaluate(state["extras"].evaluated(), data, data.val, state["precision"], settings.eval_batch_size,
             state["channels_last"])
    eval_cpu, eval_wall = time.process_time() - cpu, time.perf_counter() - wall
    trained = steps_per_epoch(len(data.train), settings.batch_size) * settings.batch_size
    return {"train_cpu": train_cpu / trained, "train_wall": train_wall / trained,
            "eval_cpu": eval_cpu / len(data.val), "eval_wall": eval_wall / len(data.val)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", help="search run folders (their best genomes)")
    parser.add_argument("--baselines", nargs="*", default=[], help="baseline names or genome files")
    parser.add_argument("--recipe", default="final")
    parser.add_argument("--ema", action="append", default=[], metavar="LABEL:DECAY",
                        help="also time this model with an EMA of its weights (e.g. pnas-seed2:0.999)")
    parser.add_argument("--dataset", default="fashion_mnist")
    parser.add_argument("--val-fraction", type=float, default=0.025)
    parser.add_argument("--split-seed", type=int, default=0)
    parser.add_argument("--images", type=int, default=1920, help="training images timed per round")
    parser.add_argument("--val-images", type=int, default=512, help="evaluated images timed per round")
    parser.add_argument("--rounds", type=int, default=3, help="counted rounds (after one warm-up round)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    recipe = load_recipe(args.recipe)
    settings = recipe.train_settings(seed=0)
    whole = load_dataset(args.dataset, val_fraction=args.val_fraction, seed=args.split_seed)
    data = load_dataset(args.dataset, val_fraction=args.val_fraction, seed=args.split_seed,
                        train_limit=args.images, val_limit=args.val_images)
    runs = [read_run(path) for path in args.runs]
    models = plan_models(runs, args.baselines, [], data.input_shape, data.num_classes)
    variants = [(m.label, m.genome, settings) for m in models]
    for item in args.ema:
        label, decay = item.rsplit(":", 1)
        genome = next(m.genome for m in models if m.label == label)
        variants.append((f"{label}+ema{decay}", genome, recipe.train_settings(seed=0, ema_decay=float(decay))))
    states = {label: prepare(genome, s, data) for label, genome, s in variants}
    samples: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in variants}
    started = time.perf_counter()
    for round_ in range(args.rounds + 1):
        for label, _, s in variants:
            figures = one_round(states[label], s, data)
            if round_ > 0:
                samples[label].append(figures)
        print(f"round {round_} done ({'warm-up' if round_ == 0 else 'counted'}), "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)

    n_train, n_val, n_test = len(whole.train), len(whole.val), len(whole.test)
    results = []
    for label, genome, s in variants:
        median = {k: statistics.median(f[k] for f in samples[label]) for k in samples[label][0]}
        cost = summary(genome, num_classes=data.num_classes, in_channels=data.channels, input_size=data.size)
        epoch_cpu = median["train_cpu"] * n_train + median["eval_cpu"] * n_val
        epoch_wall = median["train_wall"] * n_train + median["eval_wall"] * n_val
        results.append({"model": label, "params": cost.params, "flops": cost.flops,
                        "train_cpu_ms_per_image": 1e3 * median["train_cpu"],
                        "eval_cpu_ms_per_image": 1e3 * median["eval_cpu"],
                        "epoch_cpu_s": epoch_cpu, "epoch_wall_s": epoch_wall,
                        "test_pass_cpu_s": median["eval_cpu"] * n_test})
    print(f"{'model':28} {'params':>8} {'MFLOPs':>7} {'train ms/img':>12} {'eval ms/img':>11} "
          f"{'epoch CPU s':>11} {'epoch wall s':>12}")
    for r in results:
        print(f"{r['model']:28} {r['params']:>8,} {r['flops'] / 1e6:>7.1f} {r['train_cpu_ms_per_image']:>12.3f} "
              f"{r['eval_cpu_ms_per_image']:>11.3f} {r['epoch_cpu_s']:>11.1f} {r['epoch_wall_s']:>12.1f}")
    if args.json:
        args.json.write_text(json.dumps({
            "command": " ".join(sys.argv), "recipe": recipe.to_dict(), "threads": args.threads,
            "timed_images": len(data.train), "timed_val_images": len(data.val), "rounds": args.rounds,
            "whole": {"train": n_train, "val": n_val, "test": n_test}, "models": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
