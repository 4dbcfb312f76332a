"""`nas bench build|rank`: a ground-truth table of trained architectures, and proxies ranked against it.

    nas bench build cells --dataset digits --archs 200 --epochs 12 --seed 0 --out bench/digits-cells
    nas bench rank bench/digits-cells                     # Kendall tau, Spearman rho of every proxy
    nas bench rank bench/digits-cells --supernet runs/spos --predictor 20 50   # and other evaluators
    nas bench reseed bench/digits-cells --archs 10 --seed 1   # seed noise: 10 of them trained again
    nas search --strategy evolution --space cells --evaluate table:bench/digits-cells

build trains a fixed, seeded sample of ARCHS architectures of SPACE from scratch with one recipe (a
search with the random strategy, one Ray Tune trial each) and writes DIR/table.json: genome,
fingerprint, validation accuracy after every epoch, test accuracy, params, FLOPs, cost, seed. The same
command again resumes an unfinished build, from its run folder or, without one, from table.json itself
(training the architectures of the sample it lacks). reseed trains the table's first N architectures again
with another seed (DIR/seed<S>.json) and reports the rank correlation between the seeds and the seed noise
against the spread across architectures. rank scores every architecture with every proxy at
initialisation (and, when asked, with a one-shot run's supernet, `--supernet RUN`, and with PNAS's predictor
fitted on N of the table, `--predictor N`) and correlates the scores with the table's accuracy
(scipy.stats), beside the published figures on NAS-Bench-201 CIFAR-10.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

from nas.cli.common import add_recipe, dataset_argument, dataset_help, recipe_from_args
from nas.engine.interrupts import Interrupted
from nas.engine.records import replace_file
from nas.errors import NasError
from nas.evaluate.bench import build_table, rank_table, table_so_far
from nas.evaluate.bench_listed import cost_line
from nas.evaluate.correlate import judge, write_report
from nas.evaluate.registry import PROXIES, builtin_names
from nas.evaluate.reseed import agreement_lines, reseed_file, reseed_table, table_folder
from nas.evaluate.spec import BUILTIN_PROXIES, check_predictor_size, check_run_folder
from nas.evaluate.table import Table
from nas.resources import space_names
from nas.search.config import SearchConfig

DEFAULT_PROXIES = ("synflow", "naswot", "jacob_cov", "snip", "grad_norm", "fisher", "params", "flops")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="bench_command", metavar="ACTION", required=True,
                                     help="build a table, retrain some of it with another seed, or rank proxies "
                                          "against one")
    build = commands.add_parser("build", help="train a seeded sample of a space into a table (resumable)",
                                formatter_class=parser.formatter_class)
    build.add_argument("space", metavar="SPACE", help=f"search space: {', '.join(space_names())} or a YAML file")
    build.add_argument("--dataset", default="digits", type=dataset_argument, metavar="NAME", help=dataset_help("digits"))
    build.add_argument("--data-dir", metavar="DIR", help="where data files are; default ./data")
    build.add_argument("--val-fraction", type=float, default=0.1, metavar="F", help="validation share (default 0.1)")
    build.add_argument("--train-limit", type=int, metavar="N", help="train on a stratified subset of N images")
    build.add_argument("--archs", type=int, required=True, metavar="N", help="architectures in the table")
    build.add_argument("--epochs", type=int, required=True, metavar="E", help="training epochs of each")
    build.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the sample and training (default 0)")
    add_recipe(build.add_argument_group("recipe"))
    build.add_argument("--out", required=True, metavar="DIR", help="the table's folder (new, empty, or one to resume)")
    build.add_argument("--concurrent", type=int, metavar="K", help="at most K trainings at once")
    build.add_argument("--cpus-per-trial", type=float, default=1.0, metavar="C", help="CPU cores per training (default 1)")
    build.add_argument("--gpus-per-trial", type=float, default=0.0, metavar="G", help="GPUs per training (default 0)")
    build.add_argument("--address", metavar="ADDR", help="connect to a Ray cluster")
    build.add_argument("--so-far", action="store_true",
                       help="train nothing: write DIR/table.json from the architectures trained so far by an "
                            "unfinished or running build of the same command (marked complete: false)")
    build.add_argument("--quiet", action="store_true", help="no progress")
    build.add_argument("--verbose", action="store_true", help="also show Ray's own logs")

    add_reseed(commands, parser.formatter_class)

    rank = commands.add_parser("rank", help="Kendall tau and Spearman rho of proxies against a table",
                               formatter_class=parser.formatter_class)
    rank.add_argument("table", metavar="TABLE", help="a table (its folder or table.json)")
    rank.add_argument("--proxies", nargs="*", default=list(DEFAULT_PROXIES), metavar="NAME",
                      help=f"proxies to rank (default: {' '.join(DEFAULT_PROXIES)}; built in: {', '.join(BUILTIN_PROXIES)}; "
                           "none after it: no proxy)")
    rank.add_argument("--supernet", nargs="+", default=[], metavar="RUN",
                      help="also rank by the accuracy with inherited weights of these one-shot runs' supernets "
                           "(nas search --strategy spos|rsws|darts|enas run folders; BN recalibrated)")
    rank.add_argument("--predictor", nargs="+", default=[], type=int, metavar="N",
                      help="also rank by PNAS's predictor fitted on N architectures of the table drawn with --seed "
                           "(judged on the others)")
    rank.add_argument("--against", choices=("val_accuracy", "test_accuracy"), default="val_accuracy",
                      help="the table's accuracy to correlate with (final epoch)")
    rank.add_argument("--batch-size", type=int, default=64, metavar="B", help="minibatch of each proxy (default 64)")
    rank.add_argument("--seed", type=int, default=0, metavar="S",
                      help="seed of initialisation and minibatch, of BN recalibration batches and of the "
                           "predictor's draw (default 0)")
    rank.add_argument("--data-dir", metavar="DIR", help="where the table's data set is; default ./data")
    rank.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                      help="bootstrap resamples of the architectures for 95%% intervals (default 1000; 0: none)")
    rank.add_argument("--report", metavar="DIR",
                      help="also write DIR/rank.md, rank.csv, rank.png and scores.csv (every architecture's scores)")
    rank.add_argument("--json", action="store_true", help="print the result as JSON")


def add_reseed(commands, formatter_class) -> None:
    reseed = commands.add_parser("reseed", help="train some of a table's architectures again with another seed; "
                                                "the rank correlation between the seeds (resumable)",
                                 formatter_class=formatter_class)
    reseed.add_argument("table", metavar="TABLE", help="a table's folder (the results go beside it: seed<S>.json)")
    reseed.add_argument("--archs", type=int, required=True, metavar="N",
                        help="the table's first N architectures (its sample's order)")
    reseed.add_argument("--seed", type=int, default=1, metavar="S", help="the other training seed (default 1)")
    reseed.add_argument("--data-dir", metavar="DIR", help="where the table's data set is; default ./data")
    reseed.add_argument("--concurrent", type=int, metavar="K", help="at most K trainings at once")
    reseed.add_argument("--cpus-per-trial", type=float, default=1.0, metavar="C", help="CPU cores per training (default 1)")
    reseed.add_argument("--gpus-per-trial", type=float, default=0.0, metavar="G", help="GPUs per training (default 0)")
    reseed.add_argument("--address", metavar="ADDR", help="connect to a Ray cluster")
    reseed.add_argument("--bootstrap", type=int, default=1000, metavar="N",
                        help="bootstrap resamples of the architectures for 95%% intervals (default 1000; 0: none)")
    reseed.add_argument("--json", action="store_true", help="print the agreement as JSON")
    reseed.add_argument("--quiet", action="store_true", help="no progress")
    reseed.add_argument("--verbose", action="store_true", help="also show Ray's own logs")


def run(args: argparse.Namespace) -> int:
    return {"build": build, "reseed": reseed, "rank": rank}[args.bench_command](args)


def reseed(args: argparse.Namespace) -> int:
    again = " ".join(["nas", *args.argv])
    say = (lambda line: print(line, file=sys.stderr)) if args.json else print
    try:
        second, outcome, complete = reseed_table(
            args.table, seed=args.seed, archs=args.archs, data_dir=args.data_dir, concurrent=args.concurrent,
            cpus_per_trial=args.cpus_per_trial, gpus_per_trial=args.gpus_per_trial, address=args.address,
            boots=args.bootstrap, verbose=not (args.quiet or args.json), library_logs=args.verbose, say=say)
    except Interrupted as stop:
        print(f"interrupted ({stop}); to continue: {again}", file=sys.stderr)
        return stop.exit_code
    out = reseed_file(table_folder(args.table), args.seed)
    if args.json:
        print(json.dumps({"file": str(out), "complete": complete, **second.meta["agreement"]}, indent=2))
    else:
        print(f"retrained: {second.describe()} -> {out}; {cost_line(second)}")
        for line in agreement_lines(second):
            print(line)
    if not complete:
        print(f"interrupted; the architectures retrained so far are kept in {out} (complete: false); to continue: "
              f"{again}", file=sys.stderr)
        return 128 + outcome.interrupted
    return 0


def build(args: argparse.Namespace) -> int:
    if args.archs < 1 or args.epochs < 1:
        raise NasError("--archs and --epochs must be positive integers")
    config = SearchConfig(strategy="random", space=args.space, dataset=args.dataset, data_dir=args.data_dir,
                          val_fraction=args.val_fraction, train_limit=args.train_limit, trials=args.archs,
                          concurrent=args.concurrent, cpus_per_trial=args.cpus_per_trial,
                          gpus_per_trial=args.gpus_per_trial, seed=args.seed,
                          train={"epochs": args.epochs, **recipe_from_args(args)})
    again = " ".join(["nas", *[a for a in args.argv if a != "--so-far"]])
    if args.so_far:
        table = table_so_far(config, Path(args.out))
        state = "the whole table" if table.meta["complete"] else f"to train the rest: {again}"
        print(f"table: {table.describe()} -> {Path(args.out) / 'table.json'}; {state}")
        return 0
    try:
        table, outcome = build_table(config, Path(args.out), address=args.address, verbose=not args.quiet,
                                     library_logs=args.verbose)
    except Interrupted as stop:
        print(f"interrupted ({stop}); to continue: {again}", file=sys.stderr)
        return stop.exit_code
    if table is None:
        print(f"interrupted; the architectures trained so far are kept and written to "
              f"{Path(args.out) / 'table.json'} (complete: false); to continue: {again}", flush=True)
        return 128 + outcome.interrupted

    accuracies = [e.final_val_accuracy for e in table.entries]
    print(f"table: {table.describe()} -> {Path(args.out) / 'table.json'}")
    if accuracies:
        print(f"final validation accuracy {min(accuracies):.4f} to {max(accuracies):.4f}; {cost_line(table)}")
    if len(table) < table.meta.get("requested", len(table)):
        print(f"{table.meta['requested'] - len(table)} of the {table.meta['requested']} trainings failed "
              f"(their reasons: {Path(args.out) / 'run' / 'trials.csv'})")
    return 0


def rank(args: argparse.Namespace) -> int:
    from nas.train.datasets import load_dataset  # deferred: torch (keeps `nas bench --help` torch-free)

    names = builtin_names()
    unknown = [name for name in args.proxies if name not in names and name not in PROXIES]
    if unknown:
        raise NasError(f"--proxies: unknown proxy {unknown[0]!r} (known: {', '.join(PROXIES.names())})")
    if not (args.proxies or args.supernet or args.predictor):
        raise NasError("nothing to rank: name proxies, --supernet runs or --predictor sizes")
    table = Table.load(args.table)
    for n in args.predictor:  # checked before minutes of scoring
        check_predictor_size(n, len(table))
    for run in args.supernet:
        check_run_folder(run, "--supernet")
    if args.against == "test_accuracy" and any(e.test_accuracy is None for e in table.entries):
        raise NasError(f"{args.table}: some architectures have no test accuracy; rank --against val_accuracy")
    data_spec = table.meta.get("data") or {}
    data = load_dataset(table.meta["dataset"], args.data_dir, val_fraction=data_spec.get("val_fraction", 0.1),
                        seed=data_spec.get("seed", 0), train_limit=data_spec.get("train_limit"))

    def progress(done: int, total: int, seconds: float) -> None:
        if not args.json and (done == total or done % max(1, total // 10) == 0):
            left = seconds / done * (total - done)
            print(f"scored {done}/{total} architectures ({seconds:.1f} s, ETA {left:.0f} s)", file=sys.stderr, flush=True)

    if args.bootstrap < 0:
        raise NasError(f"--bootstrap {args.bootstrap}: a number of resamples >= 0")
    rankings, scores = rank_table(table, args.proxies, data, against=args.against, seed=args.seed,
                                  batch_size=args.batch_size, progress=progress)
    if args.supernet or args.predictor:
        from nas.evaluate.table_scores import more_rankings  # deferred: torch (`nas bench --help` imports us)

        more, more_scores = more_rankings(table, table.space(), data, truth_of(table, args.against),
                                          supernets=args.supernet, predictors=args.predictor, seed=args.seed,
                                          progress=progress, say=lambda line: print(line, file=sys.stderr))
        rankings += more
        scores.update(more_scores)
    judged = judge_rankings(table, rankings, scores, args)
    if args.report:
        report(table, judged, scores, args)
    if args.json:
        extra = {j.evaluator: j.to_row() for j in judged}
        print(json.dumps({"table": str(args.table), "against": args.against, "archs": len(table),
                          "bootstrap": args.bootstrap,
                          "rankings": [{**r.to_dict(), "spearman_ci": [extra[r.proxy]["spearman_lo"],
                                                                        extra[r.proxy]["spearman_hi"]],
                                        "kendall_ci": [extra[r.proxy]["kendall_lo"], extra[r.proxy]["kendall_hi"]],
                                        "top10_hit": extra[r.proxy]["top10_hit"]} for r in rankings]}, indent=2))
        return 0
    from rich.console import Console  # deferred: rich (0.2 s to import; only this table uses it)
    from rich.table import Table as RichTable  # deferred: rich (as above)

    shown = RichTable(title=f"evaluators against {args.against} of {table.describe()}", title_justify="left")
    for column in ("evaluator", "Spearman rho", "95% CI", "Kendall tau", "top-10%", "archs", "s / arch",
                   "NB201 C10 rho*"):
        shown.add_column(column, justify="left" if column == "evaluator" else "right")

    def figure(value: float | None) -> str:
        return "-" if value is None or value != value else f"{value:.3f}"

    for r in sorted(rankings, key=lambda r: -r.spearman_rho if r.spearman_rho == r.spearman_rho else 2.0):
        j = next(j for j in judged if j.evaluator == r.proxy)
        shown.add_row(r.proxy, figure(r.spearman_rho), f"{figure(j.spearman_ci[0])}..{figure(j.spearman_ci[1])}",
                      figure(r.kendall_tau), figure(j.top_hit), str(r.scored),
                      f"{r.seconds / max(1, len(table)):.3f}", figure(r.anchor))
    console = Console()
    console.print(shown)
    console.print("* Spearman rho with test accuracy over all 15,625 NAS-Bench-201 cells on CIFAR-10 "
                  "(Abdelfattah et al. 2021); a proxy must beat params and flops to be worth its cost.")
    return 0


def truth_of(table, against: str) -> list[float]:
    return [e.final_val_accuracy if against == "val_accuracy" else e.test_accuracy for e in table.entries]


def judge_rankings(table, rankings, scores, args):
    return judge(scores, truth_of(table, args.against), boots=args.bootstrap, seed=args.seed,
                 seconds={r.proxy: r.seconds for r in rankings}, anchors={r.proxy: r.anchor for r in rankings})


def report(table, judged, scores, args) -> None:
    """--report DIR: rank.md, rank.csv, rank.png and scores.csv."""
    truth = truth_of(table, args.against)
    spread = f"{min(truth):.4f} to {max(truth):.4f}" if truth else "none"
    line = (f"Table: {table.describe()}; {args.against} (final epoch) from {spread}. Proxies on one minibatch of "
            f"{args.batch_size} training images at initialisation, seed {args.seed}.")
    if args.supernet:
        line += (" supernet:RUN: each architecture's path on the table's validation split with the inherited "
                 "weights of that one-shot run, BN statistics recalibrated (cells at the supernet's width and depth).")
    if args.predictor:
        line += (" predictor@N: PNAS's predictor fitted on N architectures of the table (drawn with the seed), "
                 "judged on the others only.")
    written = write_report(judged, args.report, title=f"Evaluators against {args.against}: {table.describe()}",
                           command=" ".join(["nas", *args.argv]), truth_line=line, boots=args.bootstrap)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["fingerprint", "genome_name", args.against, *scores])
    for i, entry in enumerate(table.entries):
        writer.writerow([entry.fingerprint, entry.genome.get("name", ""), truth[i],
                         *[repr(float(scores[name][i])) for name in scores]])
    replace_file(Path(args.report) / "scores.csv", buffer.getvalue())
    print(f"report: {', '.join(str(p) for p in written)}, {Path(args.report) / 'scores.csv'}", file=sys.stderr)
