"""`nas compare RUN_DIR...`: retrain searched genomes and hand-designed baselines under one recipe and K seeds,
and write a report (Markdown and HTML) with a computed significance statement.

    nas compare results/runs/evolution results/runs/rl --dataset digits --seeds 3 --out results/compare-digits
    nas compare results/runs/evolution --skeleton resnet20        # also: searched cells in resnet20's skeleton
    nas compare --no-default-baselines --baselines resnet20 my_net.yaml --epochs 5
"""
from __future__ import annotations

import argparse
import json
import shlex
from datetime import datetime
from pathlib import Path

from nas.cli import given_options
from nas.cli.common import RECIPE_DEFAULTS, add_recipe, dataset_argument, dataset_help, recipe_from_args
from nas.cli.common import add_val_limit, table
from nas.compare.config import DEFAULT_BASELINES, DEFAULT_EPOCHS, CompareConfig, PlanError
from nas.engine.folder import check_claimable
from nas.engine.interrupts import Interrupted

DEFAULTS = CompareConfig(runs=["."], baselines=[])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", nargs="*", metavar="RUN_DIR", help="search run folders (from `nas search`)")
    models = parser.add_argument_group("models")
    models.add_argument("--baselines", nargs="+", default=[], metavar="NAME",
                        help="more baselines (names from `nas baselines`, or genome files), in addition to the "
                             f"defaults: {', '.join(DEFAULT_BASELINES)}")
    models.add_argument("--no-default-baselines", action="store_true", help="only the baselines named")
    models.add_argument("--skeleton", action="append", default=[], metavar="NAME",
                        help="also put each searched cell into this baseline's skeleton (stem, stage widths, "
                             "strides, repeats, head), parameters matched; repeatable")
    models.add_argument("--tolerance", type=float, default=DEFAULTS.tolerance, metavar="F",
                        help="transplants: parameter count within this fraction of the skeleton's (default 0.05)")

    data = parser.add_argument_group("data")
    data.add_argument("--dataset", type=dataset_argument, metavar="NAME",
                      help=dataset_help("the one the runs searched"))
    data.add_argument("--data-dir", metavar="DIR", help="where data files are (default: the runs', else ./data)")
    data.add_argument("--split-seed", type=int, metavar="S",
                      help="seed of the validation/test split (default: the runs' seed, so no search saw the test set)")
    data.add_argument("--val-fraction", type=float, metavar="F", help="validation share (default: the runs')")
    data.add_argument("--train-limit", type=int, metavar="N",
                      help="train every model on the same stratified subset of N training images (default: all)")
    add_val_limit(data)

    train = parser.add_argument_group("training (the same for every model)")
    train.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, metavar="E",
                       help="training epochs of every model and seed")
    train.add_argument("--seeds", type=int, default=DEFAULTS.seeds, metavar="K",
                       help=f"train every model with seeds 0..K-1 (default {DEFAULTS.seeds})")
    add_recipe(train)

    report = parser.add_argument_group("report")
    report.add_argument("--alpha", type=float, default=DEFAULTS.alpha, metavar="A",
                        help="significance level after Holm's adjustment (default 0.05)")
    report.add_argument("--latency-repeats", type=int, default=DEFAULTS.latency_repeats, metavar="N",
                        help="timed forward passes per model (batch of one); the median is reported")
    report.add_argument("--latency-threads", type=int, default=DEFAULTS.latency_threads, metavar="T",
                        help="CPU threads while measuring latency")

    ray = parser.add_argument_group("Ray")
    ray.add_argument("--cpus-per-trial", type=float, default=DEFAULTS.cpus_per_trial, metavar="C",
                     help="CPU cores reserved for each trial")
    ray.add_argument("--gpus-per-trial", type=float, default=DEFAULTS.gpus_per_trial, metavar="G",
                     help="GPUs per trial; fractions share a GPU, e.g. 0.25")
    ray.add_argument("--address", metavar="ADDR", help="connect to a Ray cluster (e.g. auto or HOST:6379)")

    out = parser.add_argument_group("output")
    out.add_argument("--out", metavar="DIR",
                     help="report folder (default results/compare-<dataset>-<timestamp>); rerun to resume")
    out.add_argument("--resume", metavar="DIR",
                     help="continue the comparison in DIR (its --out) with the settings in its compare.json "
                          "(the same as running its command again)")
    out.add_argument("--retry-errored", action="store_true", help="when resuming: run failed trials again")
    out.add_argument("--quiet", action="store_true", help="no progress and no result table")
    out.add_argument("--verbose", action="store_true", help="also show Ray's, Optuna's and matplotlib's own logs and warnings")


def config_from_args(args: argparse.Namespace) -> CompareConfig:
    baselines = [] if args.no_default_baselines else list(DEFAULT_BASELINES)
    baselines += [b for b in args.baselines if b not in baselines]
    train = {"epochs": args.epochs, **recipe_from_args(args)}
    return CompareConfig(runs=[str(Path(r)) for r in args.runs], baselines=baselines, skeletons=list(args.skeleton),
                         dataset=args.dataset, data_dir=args.data_dir, split_seed=args.split_seed,
                         val_fraction=args.val_fraction, train_limit=args.train_limit, val_limit=args.val_limit,
                         seeds=args.seeds, train=train,
                         cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial,
                         tolerance=args.tolerance, latency_repeats=args.latency_repeats,
                         latency_threads=args.latency_threads, alpha=args.alpha)


def command_line(config: CompareConfig, folder: Path) -> str:
    """The `nas compare` command that makes (and resumes) this comparison."""
    parts = ["nas", "compare", *config.runs]
    extra = [b for b in config.baselines if b not in DEFAULT_BASELINES]
    if any(b not in config.baselines for b in DEFAULT_BASELINES):
        parts.append("--no-default-baselines")
        extra = list(config.baselines)
    if extra:
        parts += ["--baselines", *extra]
    for skeleton in config.skeletons:
        parts += ["--skeleton", skeleton]
    options = {"--dataset": config.dataset, "--data-dir": config.data_dir, "--split-seed": config.split_seed,
               "--val-fraction": config.val_fraction, "--train-limit": config.train_limit,
               "--val-limit": config.val_limit,
               "--epochs": config.train.get("epochs"), "--seeds": config.seeds}
    parts += [str(v) for k, value in options.items() if value is not None for v in (k, value)]
    for key, default in RECIPE_DEFAULTS.items():
        if config.train.get(key, default) != default:
            parts += [f"--{key.replace('_', '-')}", str(config.train[key])]
    parts += ["--out", str(folder)]
    return shlex.join(parts)


RESUME_FREE = frozenset({"resume", "retry_errored", "quiet", "verbose", "address"})  # options --resume takes
CONFIG_FILE = "compare.json"  # nas.compare.run.CONFIG_FILE (that module imports Ray: not before the checks)


def resumed_config(args: argparse.Namespace) -> CompareConfig:
    """`--resume DIR`: the comparison saved in DIR/compare.json; an option that would change it is refused."""
    folder = Path(args.resume)
    if getattr(args, "argv", None) is not None:
        written = sorted(given_options(args.argv, "compare") - RESUME_FREE)
    else:
        written = ["runs"] if args.runs else []
    if written:
        names = ["RUN_DIR" if name == "runs" else "--" + name.replace("_", "-") for name in written]
        raise PlanError(f"--resume continues the comparison with the settings in {folder / CONFIG_FILE}; leave out "
                        f"{', '.join(names)}")
    saved = folder / CONFIG_FILE
    if not saved.is_file():
        raise PlanError(f"{folder}: no comparison to resume (no {CONFIG_FILE}; start one with `nas compare ... --out "
                        f"{folder}`)")
    try:
        spec = json.loads(saved.read_text())
        return CompareConfig(**spec)
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as error:
        raise PlanError(f"{saved}: not a comparison's settings ({' '.join(str(error).split())[:120]})") from None


def run(args: argparse.Namespace) -> int:
    from nas.cli.checks import check_data, check_genome_source, check_run_folders  # deferred: numpy (fast --help)

    if args.resume:
        args.out = args.resume
    config = resumed_config(args) if args.resume else config_from_args(args)
    check_run_folders(config.runs)
    for source in config.baselines:
        check_genome_source(source)
    for source in config.skeletons:
        check_genome_source(source)
    check_data(config.dataset, config.data_dir)
    folder = Path(args.out) if args.out else Path("results") / (
        f"compare-{(args.dataset or 'runs').split(':')[0]}-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    check_claimable(folder, CONFIG_FILE, "comparison")  # a wrong --out: said before torch, Ray and the data load
    from nas.compare.run import CompareInterrupted, run_compare  # torch and Ray: after the checks above

    try:
        outcome = run_compare(config, folder, address=args.address, retry_errored=args.retry_errored,
                              verbose=not args.quiet, command=command_line(config, folder), library_logs=args.verbose)
    except (CompareInterrupted, Interrupted) as stop:  # while training, or before (Ray starting)
        print(f"{'interrupted' if isinstance(stop, Interrupted) else stop}; to continue, run the same command "
              "again:", flush=True)
        print(command_line(config, folder), flush=True)
        return 128 + stop.signum
    if not args.quiet:
        from nas.compare.report import MAIN_HEADERS, count, percent  # deferred: torch, scipy (keeps --help fast)

        rows = [(r["model"], r["kind"], percent(r["test_mean"], r["test_std"]), str(r["n"]), count(r["params"]))
                for r in outcome.rows]
        print(table([MAIN_HEADERS[0], MAIN_HEADERS[1], MAIN_HEADERS[2], MAIN_HEADERS[3], MAIN_HEADERS[5]], rows,
                    right=(2, 3, 4)))
    print(f"report: {outcome.report} and {outcome.report.with_suffix('.html')}")
    return 0
