"""`nas train --resume DIR` and the honest Ctrl-C of `nas train` (a stopped training says how to continue
it), and `nas train --seeds S ...` (`nas.train.seeds`)."""
from __future__ import annotations

import argparse
import contextlib
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

from nas.cli import given_options
from nas.engine.interrupts import Interrupts
from nas.errors import NasError
from nas.genome import Genome
from nas.train.display import TrainDisplay, data_lines
from nas.train.pace import TrainingPace
from nas.train.resume import RUN_FILE, finished, read_run
from nas.train.settings import TrainSettings

RESUME_FREE = {"resume", "quiet", "command", "run", "argv"}  # what --resume may be written with


def resume_command(folder: Path) -> str:
    return shlex.join(["nas", "train", "--resume", str(folder)])


@contextlib.contextmanager
def interruptible(folder: Path) -> Iterator[None]:
    """SIGINT and SIGTERM stop the training (`nas.engine.interrupts`); the command to continue it is printed."""
    try:
        with Interrupts():
            yield
    except KeyboardInterrupt:
        if (folder / RUN_FILE).is_file():
            print(f"interrupted; to continue, run: {resume_command(folder)}", file=sys.stderr, flush=True)
        else:
            print("interrupted before training started; nothing to resume", file=sys.stderr, flush=True)
        raise


def resume(args: argparse.Namespace) -> int:
    from nas.train.checkpointing import STATE_FILE  # deferred: torch (keeps `nas train --help` torch-free)
    from nas.train.fit import train  # deferred: torch (as above)

    folder = Path(args.resume)
    written = _written(args)
    if written:
        raise NasError(f"--resume continues the training with the settings in {folder}/run.json; leave out "
                       f"{', '.join(written)}")
    spec = read_run(folder)
    done = finished(folder)
    if done is not None:
        print(f"finished already, not retrained: test accuracy {done.get('test_accuracy', float('nan')):.4f} "
              f"(val {done.get('val_accuracy', float('nan')):.4f}) -> {folder}")
        return 0
    if not spec.get("dataset"):
        raise NasError(f"{folder}: trained from Python on a data set object; continue it with "
                       "nas.fit(genome, data, out=..., resume=True)")
    from nas.train.checkpointing import read_state  # deferred: torch (keeps `nas train --help` torch-free)
    from nas.train.datasets import load_dataset  # deferred: torch (as above)

    settings = TrainSettings.from_dict(spec["settings"])
    saved, _ = read_state(folder) if (folder / STATE_FILE).exists() else (None, None)  # once: train() takes it
    done_epochs = int(saved["epoch"]) if saved is not None else 0  # a damaged state.pt: train() says so
    source = {"dataset": spec["dataset"], "data_dir": spec.get("data_dir"),
              "val_fraction": spec.get("val_fraction", 0.1), "split_seed": spec.get("split_seed", 0),
              "train_limit": spec.get("train_limit"), "val_limit": spec.get("val_limit")}
    if not args.quiet:
        print(f"resuming {folder} after epoch {done_epochs} of {settings.epochs}", flush=True)
        print(f"loading {source['dataset']}", flush=True)
    data = load_dataset(source["dataset"], source["data_dir"], val_fraction=source["val_fraction"],
                        seed=source["split_seed"], train_limit=source["train_limit"], val_limit=source["val_limit"])
    transfer = spec.get("transfer") or {}
    # state.pt holds the weights; a fine-tuning reads its start again to rebuild its frozen parts and lr groups
    weights = spec.get("weights") if transfer or not (folder / STATE_FILE).exists() else None
    pace = TrainingPace.for_run(settings, len(data.train), len(data.val), done_epochs=done_epochs)
    with interruptible(folder), TrainDisplay(pace, enabled=not args.quiet) as display:  # as `nas train` shows it
        for line in data_lines(data, source["val_limit"]):
            display.print(line)
        result = train(Genome.from_dict(spec["genome"]), data, settings=spec["settings"], weights=weights,
                       out=folder, source=source, recipe=spec.get("recipe"), resume=True,
                       progress=display.epoch_done, on_batch=display.batch, pretrained=transfer.get("pretrained"),
                       freeze=transfer.get("freeze"), train_only=transfer.get("train_only"),
                       pretrained_lr_scale=transfer.get("pretrained_lr_scale", 1.0),
                       frozen_bn=transfer.get("frozen_bn", "eval"), resume_state=saved)
    print(f"test accuracy {result.test_accuracy:.4f} (val {result.val_accuracy:.4f}) -> {result.folder}")
    return 0


def _written(args: argparse.Namespace) -> list[str]:
    """The options and SOURCE written with --resume that it does not take."""
    if getattr(args, "argv", None) is None:
        return ["SOURCE"] if getattr(args, "source", None) else []
    names = sorted(given_options(args.argv, "train") - RESUME_FREE)
    return [("SOURCE" if name == "source" else "--" + name.replace("_", "-")) for name in names]


def train_seeds(args: argparse.Namespace, genome, settings, out: Path) -> int:
    """`--seeds`: the seeds as parallel Ray Tune trials; a line per seed and the mean and standard deviation."""
    from nas.train.seeds import train_seeds as run_seeds  # deferred: torch and Ray (keeps `nas train --help` fast)

    if args.weights:
        raise NasError("--seeds trains from scratch; --from fine-tunes one training (leave out one of them)")
    summary = run_seeds(genome, args.dataset, args.seeds, settings, out, data_dir=args.data_dir,
                        val_fraction=args.val_fraction, split_seed=args.seed, train_limit=args.train_limit,
                        cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                        verbose=not args.quiet, recipe=args.recipe, val_limit=args.val_limit)
    for row in summary["seeds"]:
        shown = f"test accuracy {row['test_accuracy']:.4f} (val {row['val_accuracy']:.4f})" if row["error"] is None \
            else f"failed: {row['error'].splitlines()[0] if row['error'] else ''}"
        print(f"seed {row['seed']}: {shown}")
    print(f"test accuracy {summary['test_mean']:.4f} +- {summary['test_std']:.4f} over {summary['n']} seeds "
          f"(val {summary['val_mean']:.4f} +- {summary['val_std']:.4f}) -> {out}")
    return 0 if summary["n"] == len(summary["seeds"]) else 1
