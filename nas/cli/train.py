"""`nas train GENOME --dataset D`: train or fine-tune one genome with a search trial's recipe; report test accuracy.

    nas train results/runs/evo/best_genome.yaml --dataset digits --epochs 20
    nas train best_genome.yaml --from best_weights.pt --epochs 5 --lr 0.01      # fine-tune found weights
    nas train resnet20 --dataset cifar10 --data-dir data --out results/train/resnet20

Writes genome.yaml, weights.pt and train.json into a new folder (--out, default
results/train/<genome>-<timestamp>); an existing folder is used only when it is empty.
"""
from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from nas.cli.common import add_recipe, add_source, dataset_help, load_source, recipe_from_args

DEFAULT_EPOCHS = 10


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_source(parser)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="digits", metavar="NAME",
                      help=dataset_help("digits"))
    data.add_argument("--data-dir", metavar="DIR", help="where data files are (downloaded if missing); default ./data")
    data.add_argument("--val-fraction", type=float, default=0.1, metavar="F",
                      help="share of the training data held out for validation (default 0.1)")
    data.add_argument("--train-limit", type=int, metavar="N", help="train on a stratified subset of N images")
    train = parser.add_argument_group("training (the recipe of a search's trials)")
    train.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, metavar="E",
                       help=f"epochs (default {DEFAULT_EPOCHS})")
    add_recipe(train)
    train.add_argument("--seed", type=int, default=0, metavar="S", help="seed of weights and batch order (default 0)")
    train.add_argument("--workers", type=workers_argument, default="auto", metavar="N",
                       help="data-parallel processes of one thread each on the CPU cores (nas.train.parallel; "
                            "batch split evenly, gradients averaged); auto: every core for trainings of 20,000 "
                            "images x epochs or more on a CPU, else 1 (default auto)")
    train.add_argument("--from", dest="weights", metavar="WEIGHTS",
                       help="fine-tune these weights (a state_dict file, e.g. a run's best_weights.pt); "
                            "a classifier for another number of classes starts afresh")
    output = parser.add_argument_group("output")
    output.add_argument("--out", metavar="DIR",
                        help="new folder for genome.yaml, weights.pt, train.json "
                             "(default results/train/<genome>-<time>)")
    output.add_argument("--quiet", action="store_true", help="no per-epoch lines")


def run(args: argparse.Namespace) -> int:
    from nas.train.fit import new_folder, train
    from nas.train.settings import TrainSettings

    genome = load_source(args.source)
    settings = TrainSettings.from_dict({"epochs": args.epochs, "seed": args.seed, **recipe_from_args(args)})
    out = Path(args.out) if args.out else Path("results/train") / f"{genome.name}-{datetime.now():%Y%m%d-%H%M%S}"
    if out.exists():
        new_folder(out)  # refuses a file or a folder holding files before any data is loaded

    def progress(record: dict) -> None:
        if not args.quiet:
            print(f"epoch {record['epoch']}/{settings.epochs}: train loss {record['train_loss']:.4f}, "
                  f"val accuracy {record['val_accuracy']:.4f} ({record['epoch_time']:.1f} s)", flush=True)

    result = train(genome, args.dataset, settings=settings, weights=args.weights, out=out, data_dir=args.data_dir,
                   val_fraction=args.val_fraction, train_limit=args.train_limit, progress=progress,
                   workers=args.workers)
    if result.reinitialised:
        print(f"started afresh (shape differs from --from): {', '.join(result.reinitialised)}")
    print(f"test accuracy {result.test_accuracy:.4f} (val {result.val_accuracy:.4f}) -> {result.folder}")
    return 0


def workers_argument(text: str) -> int | str:
    """`--workers`: a positive integer or auto."""
    if text.strip().lower() == "auto":
        return "auto"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer or auto, got {text!r}")
    return value
