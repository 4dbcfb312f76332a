"""`nas train GENOME --dataset D`: train or fine-tune one genome with a search trial's recipe; report test accuracy.

    nas train results/runs/evo/best_genome.yaml --dataset digits --epochs 20
    nas train best_genome.yaml --from best_weights.pt --epochs 5 --lr 0.01      # fine-tune found weights
    nas train resnet20 --dataset cifar10 --data-dir data --out results/train/resnet20
    nas train resnet18 --dataset fashion_mnist --from torchvision:resnet18 --freeze stem,stages[0:2]

    nas train darts_v2 --dataset cifar10 --recipe darts                        # DARTS's final training
    nas train --resume results/train/darts_v2-20260101-120000                  # continue a stopped training

Writes genome.yaml, weights.pt and train.json into a new folder (--out, default
results/train/<genome>-<timestamp>); an existing folder is used only when it is empty. While it
trains, the folder holds run.json and, after every epoch, state.pt: a training stopped by Ctrl-C,
SIGTERM or a kill continues with --resume and ends as an uninterrupted one would.
"""
from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from nas.cli.common import (add_recipe, add_source, add_val_limit, dataset_help, load_source, recipe_from_args,
                            workers_argument)
from nas.cli.train_resume import interruptible, resume, train_seeds
from nas.errors import NasError
from nas.train.display import TrainDisplay, data_lines
from nas.train.pace import TrainingPace
from nas.train.settings import TrainSettings

DEFAULT_EPOCHS = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source(parser, optional=True)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="digits", metavar="NAME",
                      help=dataset_help("digits"))
    data.add_argument("--data-dir", metavar="DIR", help="where data files are (downloaded if missing); default ./data")
    data.add_argument("--val-fraction", type=float, default=0.1, metavar="F",
                      help="share of the training data held out for validation (default 0.1)")
    data.add_argument("--train-limit", type=int, metavar="N", help="train on a stratified subset of N images")
    add_val_limit(data)
    train = parser.add_argument_group("training (the recipe of a search's trials)")
    train.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, metavar="E",
                       help=f"epochs (default {DEFAULT_EPOCHS})")
    add_recipe(train)
    train.add_argument("--seed", type=int, default=0, metavar="S", help="seed of weights and batch order (default 0)")
    train.add_argument("--seeds", type=int, nargs="+", metavar="S",
                       help="train once per seed, as parallel Ray Tune trials: a folder per seed and the mean and "
                            "standard deviation of the test accuracy (instead of --seed)")
    train.add_argument("--cpus-per-trial", type=float, default=1.0, metavar="N", help="CPUs per seed with --seeds")
    train.add_argument("--gpus-per-trial", type=float, default=0.0, metavar="N", help="GPUs per seed with --seeds")
    train.add_argument("--workers", type=workers_argument, default=1, metavar="N",
                       help="data-parallel processes of one thread each on the CPU cores (nas.train.parallel; "
                            "batch split evenly, gradients averaged; no --resume, no frozen parts); auto: every core "
                            "for trainings of 20,000 images x epochs or more on a CPU, else 1 (default 1)")
    train.add_argument("--from", dest="weights", metavar="WEIGHTS",
                       help="fine-tune these weights (a state_dict file, e.g. a run's best_weights.pt); "
                            "a classifier for another number of classes starts afresh. Or a reference model's: "
                            "torchvision:NAME[:WEIGHTS] or timm:NAME from the local caches (never downloaded), "
                            "torchvision:NAME=FILE or timm:NAME=FILE (a state_dict of that model)")
    tune = parser.add_argument_group("fine-tuning (with --from; see docs/transfer-learning.md)")
    parts = tune.add_mutually_exclusive_group()
    parts.add_argument("--freeze", metavar="PARTS",
                       help="parts whose weights stay fixed, e.g. stem,stages[0:2] (stem, stages, stages[i], "
                            "stages[i:j], stages[i][k], head, classifier)")
    parts.add_argument("--train-only", metavar="PARTS",
                       help="freeze every pretrained weight outside these parts (new layers always train), "
                            "e.g. head")
    tune.add_argument("--pretrained-lr-scale", type=float, default=1.0, metavar="F",
                      help="learning rate of pretrained weights: F times --lr (new layers: --lr) (default 1.0)")
    tune.add_argument("--frozen-bn", choices=("eval", "train"), default="eval",
                      help="batch norms whose weights are all frozen: keep the pretrained running statistics "
                           "(eval) or update them (train) (default eval)")
    output = parser.add_argument_group("output")
    output.add_argument("--out", metavar="DIR",
                        help="new folder for genome.yaml, weights.pt, train.json "
                             "(default results/train/<genome>-<time>)")
    output.add_argument("--quiet", action="store_true", help="no progress and no per-epoch lines (only the result)")
    output.add_argument("--resume", metavar="DIR",
                        help="continue the stopped training in DIR (its --out) with its own settings")


def run(args: argparse.Namespace) -> int:
    from nas.cli.checks import check_data, check_genome_source  # deferred: numpy (keeps `nas train --help` fast)

    if args.resume:
        return resume(args)
    if args.source is None:
        raise NasError("give SOURCE (a baseline name or a genome file), or --resume DIR")
    settings = TrainSettings.from_dict({"epochs": args.epochs, "seed": args.seed, **recipe_from_args(args)})
    check_data(args.dataset, args.data_dir)
    check_genome_source(args.source)
    genome = load_source(args.source)  # (its validation imports torch)
    from nas.train.fit import new_folder, train  # torch: after the checks above
    from nas.train.pretrained import is_reference, reference  # deferred: torch (as above)
    out = Path(args.out) if args.out else Path("results/train") / f"{genome.name}-{datetime.now():%Y%m%d-%H%M%S}"
    if out.exists():
        new_folder(out)  # refuses a file or a folder holding files before any data is loaded
    if settings.aux_weight and not any(stage.aux for stage in genome.stages):
        print(f"note: aux weight {settings.aux_weight:g}, but {genome.name} marks no stage `aux: true`: "
              "no auxiliary head", flush=True)
    if args.seeds:
        return train_seeds(args, genome, settings, out)

    weights, pretrained = (None, reference(args.weights)) if is_reference(args.weights) else (args.weights, None)
    if pretrained is not None and not args.quiet:  # found in a cache or a file, before any data loads
        print(f"starting from {pretrained.describe()}", flush=True)
    from nas.train.datasets import load_dataset  # deferred: torch (keeps `nas train --help` torch-free)

    if not args.quiet:
        print(f"loading {args.dataset}", flush=True)
    source = {"dataset": args.dataset, "data_dir": args.data_dir, "val_fraction": args.val_fraction, "split_seed": 0,
              "train_limit": args.train_limit, "val_limit": args.val_limit}  # train()'s split: seed 0
    data = load_dataset(args.dataset, args.data_dir, val_fraction=args.val_fraction, seed=0,
                        train_limit=args.train_limit, val_limit=args.val_limit)
    pace = TrainingPace.for_run(settings, len(data.train), len(data.val))
    with interruptible(out), TrainDisplay(pace, enabled=not args.quiet) as display:  # a bar, or lines
        for line in data_lines(data, args.val_limit):
            display.print(line)
        result = train(genome, data, settings=settings, weights=weights, out=out, progress=display.epoch_done,
                       on_batch=display.batch, source=source, recipe=args.recipe, pretrained=pretrained,
                       freeze=args.freeze, train_only=args.train_only,
                       pretrained_lr_scale=args.pretrained_lr_scale, frozen_bn=args.frozen_bn,
                       workers=args.workers)
    if result.transfer is not None:
        print(describe_transfer(result.transfer))
    if result.reinitialised:
        print(f"started afresh (shape differs from --from): {', '.join(result.reinitialised)}")
    print(f"test accuracy {result.test_accuracy:.4f} (val {result.val_accuracy:.4f}) -> {result.folder}")
    return 0


def describe_transfer(record: dict) -> str:
    """One line: what was adapted, frozen and at which learning rates (train.json has it all)."""
    parts = [f"{k} {v}" for k, v in record.get("adapted", {}).items()]
    frozen = record.get("freeze") or ([f"all but {', '.join(record['train_only'])}"] if record.get("train_only")
                                      else None)
    if frozen:
        parts.append(f"frozen: {', '.join(frozen)} ({record['frozen_parameters']:,} weights, "
                     f"{record['bn_layers_in_eval']} batch norms in eval mode)")
    rates = {g["part"]: g["lr"] for g in record.get("param_groups", [])}
    parts.append("learning rate " + ", ".join(f"{part} {lr:g}" for part, lr in rates.items()))
    return "; ".join(parts)
