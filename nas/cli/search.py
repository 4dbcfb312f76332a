"""`nas search --strategy S`: an architecture search on Ray Tune, written to a run folder.

    nas search --strategy evolution                       # digits, macro space, 16 trials x 3 epochs
    nas search --strategy optuna --objectives val_accuracy params --trials 40
    nas search --strategy rl --dataset cifar10 --data-dir data --gpus-per-trial 0.25 --address auto
    nas search --resume --out results/runs/evolution-20250101-120000

One file of about 400 lines: one job, the `nas search` command (its arguments, their check against the run
being resumed, the run, its closing lines and exit codes), read top to bottom as the command runs.
"""
from __future__ import annotations

import argparse
import errno
import json
import signal as signals
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from nas.cli import given_options
from nas.cli.common import RECIPE_DEFAULTS, add_recipe, add_val_limit, dataset_argument, dataset_help, recipe_from_args
from nas.cli.failure import EXIT_CODE as FAILURE_EXIT_CODE
from nas.cli.failure import internal_error_line
from nas.engine.folder import describe_os_error
from nas.errors import NasError
from nas.evaluate.hooks import summary_lines
from nas.evaluate.spec import BUILTIN_PROXIES
from nas.resources import space_names
from nas.engine.schedulers import SCHEDULERS
from nas.search.config import SearchConfig, SearchError, default_folder
from nas.search.leaderboard import LEADERBOARD_COLUMNS, leaderboard
from nas.search.strategies import STRATEGIES, strategy_class
from nas.search.strategies.optuna_search import open_storage
from nas.train.settings import TrainSettings
from nas.units import si

DEFAULTS = SearchConfig(strategy="random")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    search = parser.add_argument_group("search")
    search.add_argument("--strategy", choices=list(STRATEGIES), metavar="NAME",
                        help=f"search strategy: {', '.join(STRATEGIES)} (required unless --resume)")
    search.add_argument("--space", default=DEFAULTS.space, metavar="FILE|NAME",
                        help=f"search space: {', '.join(space_names())} or a YAML file (default {DEFAULTS.space})")
    search.add_argument("--trials", type=int, default=DEFAULTS.trials, metavar="N",
                        help=f"architectures to train (default {DEFAULTS.trials})")
    search.add_argument("--seed", type=int, default=DEFAULTS.seed, metavar="S", help="seed of the strategy and training")
    search.add_argument("--objectives", nargs="+", metavar="METRIC",
                        help="optuna: objectives, e.g. val_accuracy params (two or more use NSGA-II)")
    search.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a strategy option (YAML value), e.g. population=8, phis=2, base=resnet20; repeatable")
    search.add_argument("--help-options", action="store_true",
                        help="list the options of --strategy (all strategies without it): name, type, default, meaning")
    search.add_argument("--storage", metavar="URL",
                        help="optuna: keep the study in this Optuna storage, e.g. sqlite:///study.db (named after "
                             "the run folder; optuna-dashboard opens it)")
    search.add_argument("--scheduler", choices=list(SCHEDULERS), help="stop weak trials early (ASHA over epochs)")
    search.add_argument("--evaluate", default=DEFAULTS.evaluate, metavar="HOW",
                        help="how a candidate is scored: train, proxy:NAME (a zero-cost proxy at initialisation: "
                             f"{', '.join(BUILTIN_PROXIES)}; the best is trained from scratch at the end), "
                             "table:PATH (a table of nas bench build) or supernet:RUN (the accuracy of its path "
                             "with the weights of a one-shot run's supernet; the best is trained from scratch)")
    search.add_argument("--warmup-proxy", metavar="NAME",
                        help="with --warmup N: score N random candidates with this proxy first; the best take the "
                             "place of the strategy's random proposals (evolution's initial population, pnas's warm-up)")
    search.add_argument("--warmup", type=int, default=DEFAULTS.warmup, metavar="N",
                        help="candidates scored for --warmup-proxy")

    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default=DEFAULTS.dataset, type=dataset_argument, metavar="NAME",
                      help=dataset_help(DEFAULTS.dataset))
    data.add_argument("--data-dir", metavar="DIR", help="where data files are (downloaded if missing); default ./data")
    data.add_argument("--val-fraction", type=float, default=DEFAULTS.val_fraction, metavar="F",
                      help="share of the training data held out for validation")
    data.add_argument("--train-limit", type=int, metavar="N", help="train on a stratified subset of N images")
    add_val_limit(data)

    train = parser.add_argument_group("training (per trial)")
    train.add_argument("--epochs", type=int, default=TrainSettings.epochs, metavar="E", help="training epochs per trial")
    add_recipe(train)
    train.add_argument("--max-params", type=int, default=TrainSettings.max_params, metavar="N",
                       help="fail trials whose genome has more parameters (checked before allocating)")
    train.add_argument("--max-flops", type=int, metavar="N",
                       help="fail trials with more FLOPs per image (2 FLOPs per multiply-add: MACs x 2)")
    train.add_argument("--checkpoint-every", type=int, default=TrainSettings.checkpoint_every, metavar="E",
                       help="epochs between trial checkpoints (0: only after the last epoch)")

    ray = parser.add_argument_group("Ray")
    ray.add_argument("--concurrent", type=int, metavar="K", help="at most K trials at once (default: what fits)")
    ray.add_argument("--cpus-per-trial", type=float, default=DEFAULTS.cpus_per_trial, metavar="C",
                     help="CPU cores reserved for each trial")
    ray.add_argument("--gpus-per-trial", type=float, default=DEFAULTS.gpus_per_trial, metavar="G",
                     help="GPUs per trial; fractions share a GPU, e.g. 0.25")
    ray.add_argument("--address", metavar="ADDR", help="connect to a Ray cluster (e.g. auto or HOST:6379)")
    ray.add_argument("--max-failures", type=int, default=DEFAULTS.max_failures, metavar="N",
                     help="retry a failed trial up to N times from its last checkpoint (a worker or node lost, "
                          "a full disk); every failure, a NaN loss included, is retried")

    run = parser.add_argument_group("run folder")
    run.add_argument("--out", metavar="DIR", help="run folder (default results/runs/<strategy>-<timestamp>)")
    run.add_argument("--resume", action="store_true", help="continue the stopped search in --out")
    run.add_argument("--retry-errored", action="store_true", help="with --resume: run failed trials again")
    run.add_argument("--quiet", action="store_true", help="no progress and no leaderboard")
    run.add_argument("--verbose", action="store_true", help="also show Ray's, Optuna's and matplotlib's own logs and warnings")


def parse_options(items: list[str]) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise NasError(f"--option: expected KEY=VALUE, got {item!r}")
        try:
            options[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise NasError(f"--option {key}: not a YAML value: {value!r}") from None
    return options


def options_text(strategy: str | None) -> str:
    """The options of `strategy` (every strategy when None) as the strategy classes declare them."""
    blocks = []
    for name in [strategy] if strategy else list(STRATEGIES):
        cls = strategy_class(name)
        declared, described = getattr(cls, "OPTIONS", {}), getattr(cls, "OPTION_HELP", {})
        lines = [f"{name}: --option KEY=VALUE (a YAML value)" if declared else f"{name}: no options"]
        for key, default in declared.items():
            kind, meaning = described.get(key, (type(default).__name__ if default is not None else "any", ""))
            shown = "none" if default is None else yaml.safe_dump(default, default_flow_style=True).strip()
            if shown.endswith("\n..."):
                shown = shown[:-4].strip()
            lines.append(f"  {key} ({kind}, default {shown})")
            if meaning:
                lines += textwrap.wrap(meaning, width=76, initial_indent="      ", subsequent_indent="      ")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def refuse_existing_study(url: str, name: str) -> None:
    """A new search starts a new study: one of the same name in the storage would mix two runs' trials."""
    import optuna  # deferred: optuna (a second to import; only a run with --storage needs it)

    if name in optuna.study.get_all_study_names(open_storage(url)):
        raise NasError(f"--storage {url} already holds a study named {name!r} (studies are named after the run "
                       "folder): choose another --out, resume that run, or delete the study")


def config_from_args(args: argparse.Namespace, folder: Path | None = None) -> SearchConfig:
    options = parse_options(args.option)
    if args.storage:
        if args.strategy != "optuna":
            raise NasError("--storage: only the optuna strategy keeps a study in a storage")
        options.setdefault("storage", args.storage)
        if folder is not None:
            options.setdefault("study_name", folder.name)
    if args.objectives:
        if args.strategy != "optuna":
            raise NasError("--objectives: only the optuna strategy optimises several objectives")
        options.setdefault("objectives", list(args.objectives))
        if len(args.objectives) > 1:
            options.setdefault("sampler", "nsga2")
    train = {"epochs": args.epochs, **recipe_from_args(args), "max_params": args.max_params,
             "max_flops": args.max_flops, "checkpoint_every": args.checkpoint_every}
    return SearchConfig(strategy=args.strategy, space=args.space, dataset=args.dataset, data_dir=args.data_dir,
                        val_fraction=args.val_fraction, train_limit=args.train_limit, val_limit=args.val_limit,
                        trials=args.trials,
                        concurrent=args.concurrent, max_failures=args.max_failures, cpus_per_trial=args.cpus_per_trial,
                        gpus_per_trial=args.gpus_per_trial, scheduler=args.scheduler, seed=args.seed,
                        options=options, train=train, evaluate=args.evaluate, warmup_proxy=args.warmup_proxy,
                        warmup=args.warmup)


def print_leaderboard(records: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    from rich.console import Console  # deferred: rich (0.2 s to import; only the closing table uses it)
    from rich.measure import Measurement  # deferred: rich (as above)
    from rich.table import Table  # deferred: rich (as above)

    console = Console()
    evaluator = summary.get("evaluator") or "train"
    scored_by = f"proxy score: {evaluator[len('proxy:'):]}" if evaluator.startswith("proxy:") else "validation accuracy"
    rows = leaderboard(records)

    def table_of(dropped: tuple[str, ...]) -> Table:
        table = Table(title=f"leaderboard ({scored_by})", title_justify="left")
        kept = [i for i, column in enumerate(LEADERBOARD_COLUMNS) if column not in dropped]
        for i in kept:
            column = LEADERBOARD_COLUMNS[i]
            column = "score" if column == "val acc" and evaluator.startswith(("proxy:", "supernet:")) else column
            table.add_column(column, justify="left" if column in ("fingerprint", "node") else "right")
        for row in rows:
            table.add_row(*(row[i] for i in kept))
        return table

    # what cannot fit the terminal is left out whole (node first, then the fingerprint), never cut to "finger…"
    for dropped in ((), ("node",), ("node", "fingerprint")):
        table = table_of(dropped)
        natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
        if natural <= console.width:
            break
    if rows:  # (no completed trial: no empty table)
        console.print(table)
    counts = summary["counts"]
    line = f"{counts['completed']} completed, {counts['failed']} failed"
    if counts.get("interrupted"):
        line += f", {counts['interrupted']} interrupted (not ranked)"
    if summary.get("duplicates_avoided") is not None:
        line += f", {summary['duplicates_avoided']} duplicate proposals answered from earlier trials"
    console.print(line)
    for failure in summary.get("failures") or []:
        retried = f"failed {failure['failures']}x, retried, finished" if failure["status"] != "ERROR" else "failed"
        console.print(f"  trial {failure['trial']} {retried}: {failure['error'] or 'no reason recorded'}",
                      overflow="ellipsis", no_wrap=True)
    best = summary.get("best")
    closing = summary_lines(summary)  # a proxy-, table- or supernet-scored search (nas.evaluate)
    for text in closing or []:
        console.print(text, overflow="fold")
    if best and closing is None:
        test = best.get("test_accuracy")
        console.print(f"best: trial {best['index'] + 1}, val {best['val_accuracy']:.4f}"
                      + (f", test {test:.4f}" if test is not None else "")
                      + f" -> {best.get('genome_file')}"
                      + (f", {best['weights_file']}" if best.get("weights_file") else "")
                      + (f" (no weights: {best['weights_missing']})" if best.get("weights_missing") else ""))
    pareto = summary.get("pareto")
    if pareto:
        console.print(f"best is by {summary.get('best_by', 'val_accuracy')}; Pareto set over "
                      f"{', '.join(pareto['objectives'])}: trials {', '.join(map(str, pareto['trials']))} "
                      f"-> {pareto['file']}, {pareto['plot']}")


# On --resume the saved search.json is the run: flags that define it must agree with it. Only these may
# differ (how to run, not what): the cluster, output, display and logging, and --retry-errored.
RESUME_FREE = ("resume", "out", "address", "quiet", "verbose", "help_options", "retry_errored")


def resume_conflicts(args: argparse.Namespace, saved: SearchConfig, folder: Path | None = None) -> list[str]:
    """The flags given with --resume that contradict the saved run. A flag not written is not compared
    (the saved value stands), one written with the run's value is accepted, and one written with its
    default is compared like any other (`--epochs 3` on a run of 5 epochs is refused). Raising --trials is
    refused like any other change: a resumed search is the same search (start a new one for more)."""
    probe = argparse.ArgumentParser(add_help=False)
    add_arguments(probe)
    defaults = vars(probe.parse_args([]))
    if getattr(args, "argv", None) is not None:  # from nas.cli.main: the flags on the command line
        written = given_options(args.argv, "search")
    else:  # a Namespace made in Python: the flags that differ from their defaults
        written = {name for name, value in vars(args).items() if name in defaults and value != defaults[name]}
    given = sorted(name for name in written if name in defaults and name not in RESUME_FREE)
    if "recipe" in given:  # a recipe stands for every training option it sets: each is compared
        given = sorted({*given, "epochs", *RECIPE_DEFAULTS} - {"recipe"})
    if not given:
        return []
    asked = config_from_args(argparse.Namespace(**{**vars(args), "strategy": args.strategy or saved.strategy}), folder)
    flags = {action.dest: action.option_strings[-1] for action in probe._actions if action.option_strings}
    mine, theirs = asked.settings.to_dict(), saved.settings.to_dict()  # the training recipe, defaults filled in
    conflicts = []
    for name in given:
        field_name = "options" if name in ("option", "objectives") else name
        if name == "storage":  # kept among the strategy's options (with the study's name)
            now, then = args.storage, saved.options.get("storage")
        elif name in mine:
            now, then = mine[name], theirs[name]
        elif field_name in asked.to_dict():
            now, then = getattr(asked, field_name), getattr(saved, field_name)
        else:
            continue  # not part of the run's definition (display, logging)
        if now != then:
            conflicts.append(f"{flags.get(name, name)} {_shown(now)} (the run has {_shown(then)})")
    return conflicts


def _shown(value: Any) -> str:
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def check_resume(args: argparse.Namespace, folder: Path) -> None:
    if not folder.is_dir():
        raise SearchError(f"{folder}: no such run folder to resume")
    from nas.search.config import read_config  # no torch, no Ray: a damaged search.json is told at once
    conflicts = resume_conflicts(args, read_config(folder), folder)
    if conflicts:
        raise SearchError(f"--resume continues the search saved in {folder / 'search.json'} as it was; these flags "
                          f"contradict it: {'; '.join(conflicts)} (drop them, or start a new search with --out)")


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def os_error_in(error: BaseException) -> OSError | None:
    """The OSError that caused `error`, however deep Ray Tune wrapped it; None if none did."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, OSError):
            return error
        error = error.__cause__ or error.__context__
    return None


def failed(folder: Path, argv: list[str], error: Exception) -> int:
    """A search stopped by something other than bad input or a signal: one line on stderr (a full disk says
    which file and how much room a trial takes; anything else is an internal error with its log file), then
    the command that continues the run, when its folder holds one."""
    from nas.search.report import trial_footprint  # deferred: torch (keeps `nas search --help` torch-free)
    from nas.search.run import resume_command  # deferred: torch and Ray (as above)

    cause = os_error_in(error)
    if cause is not None and (cause.errno in DISK_FULL or cause.filename):
        size = trial_footprint(folder) if cause.errno in DISK_FULL else None
        print(f"nas search: error: {describe_os_error(cause, cause.filename or folder)}"
              + (f" (a trial takes about {si(size)}B in the run folder)" if size else ""), file=sys.stderr)
        code = 2
    else:
        print(internal_error_line("search", argv, error), file=sys.stderr)
        code = FAILURE_EXIT_CODE
    if (folder / "search.json").is_file():
        print(f"the run folder {folder} keeps what was done; to continue:", file=sys.stderr)
        print(resume_command(folder), flush=True)
    return code


def starting_line(args: argparse.Namespace, out=None) -> None:
    """On a terminal, the first line of a search at once: the imports of torch and Ray that come next take
    seconds (a pipe or a file gets its first line from the search itself, "loading DATASET")."""
    out = out or sys.stdout
    if not args.quiet and out.isatty():
        print("nas search: starting (loading torch and Ray)", file=out, flush=True)


def interrupted_line(folder: Path | None, stop: BaseException) -> int:
    """A search stopped by a signal before Ray Tune could stop it cleanly (during start-up, a second signal,
    or at the end): what the run folder keeps and the command that continues it; the exit code. Further
    Ctrl-Cs are ignored while this is printed (one more must not cut the command short)."""
    try:
        previous = signals.signal(signals.SIGINT, signals.SIG_IGN)
    except ValueError:  # not the main thread: nothing to ignore
        previous = None
    try:
        reason = str(stop) or "SIGINT"
        if folder is not None and (folder / "search.json").is_file():
            print(f"interrupted ({reason}); the run folder {folder} keeps {kept(folder)}; to continue:",
                  file=sys.stderr, flush=True)
            from nas.search.run import resume_command  # deferred: torch and Ray (keeps `nas search --help` fast)

            print(resume_command(folder), flush=True)
        else:
            print(f"interrupted ({reason}) before anything was written; run the command again", file=sys.stderr)
    finally:
        if previous is not None:
            signals.signal(signals.SIGINT, previous)
    return int(getattr(stop, "exit_code", 130))


def kept(folder: Path) -> str:
    """What a stopped run folder holds, in words: "3 finished trials (trials.json)", or "its configuration"."""
    try:
        trials = json.loads((folder / "trials.json").read_text())["trials"]
        done = sum(t.get("status") in ("TERMINATED", "ERROR") for t in trials)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return "its configuration (search.json)"
    return f"{done} finished trial{'s' if done != 1 else ''} of {len(trials)} (trials.json)"


def run(args: argparse.Namespace) -> int:
    if args.help_options:
        print(options_text(args.strategy))
        return 0
    where: dict[str, Path] = {}
    try:
        return search(args, where)
    except KeyboardInterrupt as stop:  # start-up, a second signal, the end: whatever was running, say how to go on
        return interrupted_line(where.get("folder"), stop)


def search(args: argparse.Namespace, where: dict[str, Path]) -> int:
    """`run` without the help: `where["folder"]` is the run folder as soon as it is known."""
    from nas.cli.checks import check_data, check_space  # deferred: numpy (keeps `nas search --help` fast)

    if args.resume and not args.out:
        raise SearchError("--resume needs --out (the run folder of the search to continue)")
    if not args.resume and not args.strategy:
        raise SearchError(f"--strategy is required ({', '.join(STRATEGIES)})")
    if args.out:
        where["folder"] = Path(args.out)

    check_data(None, args.data_dir)
    if args.resume:
        check_resume(args, Path(args.out))
        config = None
    folder = where["folder"] = Path(args.out) if args.out else default_folder(args.strategy)
    if not args.resume:
        config = config_from_args(args, folder)
        strategy_class(config.strategy).resolve_options(config.options)  # a mistyped --option: one line, at once
        check_space(config.space)
        if config.options.get("storage"):
            refuse_existing_study(config.options["storage"], config.options["study_name"])
    starting_line(args)
    from nas.search.run import resume_command, run_search  # torch and Ray: after the checks above
    try:
        outcome = run_search(config, folder, address=args.address, resume=args.resume,
                             retry_errored=args.retry_errored, verbose=not args.quiet, library_logs=args.verbose)
    except NasError:
        raise
    except Exception as error:  # noqa: BLE001 - a full disk, a fault of ours: one line, and how to go on
        return failed(folder, args.argv, error)
    if not args.quiet:
        print_leaderboard(outcome.records, outcome.summary)
    if outcome.interrupted is not None:
        print(f"interrupted ({outcome.summary['interrupted']}); unfinished trials are recorded as INTERRUPTED. "
              f"run folder: {folder}; to continue:", flush=True)
        print(resume_command(folder), flush=True)
        return 128 + outcome.interrupted
    print(f"run folder: {folder}")
    return 0
