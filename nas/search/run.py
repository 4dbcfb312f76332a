"""`run_search`: one architecture search on Ray Tune, written to a run folder, resumable.

    outcome = run_search(SearchConfig(strategy="evolution", trials=16), "results/runs/evo")

The data set is loaded once in the driver and shared with every trial through Ray's object store
(`tune.with_parameters`). The strategy (plain Python, `nas.search.strategies.make_searcher`), over a
space from `nas.spaces.load_space` realized for the data set's input and classes, runs in Tune through
its adapter (`nas.engine.searcher`); each trial is `nas.train.trainable.train_genome`. A failing trial
fails alone (fail_fast=False), retried from its last checkpoint up to `max_failures` times (default 0).
Ray itself is `nas.engine`'s: the session, the experiment, the records kept while it runs.

The run folder holds ``search.json`` (this config: what `--resume` reads back; `nas.search.run_folder`),
``tune/`` (Ray Tune's experiment: trial state, checkpoints, searcher state; `nas.engine.experiment`), and
the outputs of `nas.search.report` (trials.csv/json, kept current while the search runs, best genome and
weights, plot, summary).
`resume=True` continues a stopped search (killed at any point) with `Tuner.restore`: finished and
failed trials are kept as they are, unfinished ones continue from their last checkpoint, and the
searcher's state is restored from its last snapshot (after `nas.engine.repair` has put back any
checkpoint that snapshot names but Ray Tune had already replaced with a newer one).

Nothing is written before the whole configuration is checked (config, data set, space, strategy
options); the run folder is then claimed and locked (`nas.engine.folder`: new, empty or a run of
ours; one driver at a time). SIGINT/SIGTERM stop the search cleanly (`nas.engine.interrupts`):
unfinished trials are recorded as INTERRUPTED and `resume=True` continues them.
"""
from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune.search import Searcher

from nas.engine import experiment
from nas.engine.board import progress_board
from nas.engine.folder import check_claimable, check_not_in_use, own_folder
from nas.engine.interrupts import Interrupts
from nas.engine.progress import WIDTH, TrialsView, search_label
from nas.engine.recording import TUNE_DIR, RunRecorder, search_algorithm
from nas.engine.records import CONFIG_JSON, read_trials, write_trials
from nas.engine.searcher import TuneSearcher, tune_searcher
from nas.engine.session import tune_session
from nas.engine.tune_trials import interrupted_records, search_trial, trial_name
from nas.engine.verbosity import libraries_quiet, ray_listener_muted
from nas.evaluate import hooks as evaluator
from nas.registry import loaded_plugins
from nas.search import report
from nas.search.best import EarlyBest
from nas.engine.schedulers import SCHEDULERS, make_scheduler  # noqa: F401 (SCHEDULERS re-exported)
from nas.search.config import SearchConfig, SearchError, default_folder  # noqa: F401 (re-exported)
from nas.search.run_folder import begin, prepare_folder, read_config, resume_command, started  # noqa: F401 (re-exported)
from nas.search.strategies import SpaceSearcher, make_searcher, strategy_class
from nas.spaces import load_space
from nas.train.datasets import DatasetSplits, load_dataset
from nas.train.display import data_lines
from nas.train.trainable import tune_trainable
from nas.units import plural

# Names Ray Tune experiments saved before `nas.engine` pickled by this module's path (`Tuner.restore` of
# such a run looks them up here): the callback that kept trials.json, the generator, the trial names.
from nas.engine.recording import RelocatableSearchGenerator  # noqa: E402,F401
from nas.engine.tune_trials import trial_name as _trial_name  # noqa: E402,F401

METRIC, MODE = "val_accuracy", "max"
CONFIG_FILE = CONFIG_JSON


@dataclass
class SearchOutcome:
    folder: Path
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    interrupted: int | None = None  # the signal that stopped the search (SIGINT, SIGTERM), if one did

    @property
    def best(self) -> dict[str, Any] | None:
        return self.summary.get("best")


def check_strategy_and_space(config: SearchConfig) -> None:
    """The strategy's options (names, types, ranges) and the space file as written, without the data."""
    strategy_class(config.strategy).resolve_options(config.options)
    load_space(config.space)
    evaluator.check(config)


def make_strategy(config: SearchConfig, data: DatasetSplits) -> SpaceSearcher:
    space = load_space(config.space, input_channels=data.channels, input_size=data.size,
                       num_classes=data.num_classes)
    try:
        return make_searcher(config.strategy, space, seed=config.seed, metric=evaluator.metric(config), mode=MODE,
                             max_trials=config.trials, options=config.options)
    except (ValueError, TypeError, RuntimeError, ArithmeticError) as error:  # an option its checks let through
        raise SearchError(f"strategy {config.strategy!r} cannot start with options {config.options}: "
                          f"{type(error).__name__}: {error}".splitlines()[0]) from None


def make_trainable(config: SearchConfig, data: DatasetSplits, board: str | None = None):
    return evaluator.trainable(config, data) or tune_trainable(data, config.resources(), board=board)


def param_space(config: SearchConfig) -> dict[str, Any]:
    return {"train": config.settings.to_dict()}


def _tuner(config: SearchConfig, folder: Path, data: DatasetSplits, searcher: SpaceSearcher | Searcher,
           board: str | None = None) -> tune.Tuner:
    tune_config = tune.TuneConfig(
        metric=evaluator.metric(config), mode=MODE,
        search_alg=search_algorithm(searcher, config.concurrent),
        scheduler=make_scheduler(config.scheduler, epochs=config.settings.epochs) if config.scheduler else None,
        num_samples=config.trials,
        reuse_actors=config.reuse_actors,
        trial_name_creator=trial_name,
        trial_dirname_creator=trial_name,
    )
    return experiment.new_tuner(folder, make_trainable(config, data, board), param_space(config), tune_config,
                                strategy=config.strategy, recorder=RunRecorder(), max_failures=config.max_failures)


def searcher_name(searcher: SpaceSearcher | Searcher) -> str:
    """What the records call a searcher given from Python: its `name` (a strategy's), else its class's name."""
    name = getattr(searcher, "name", None)
    return name if isinstance(name, str) and name and name != "base" else type(searcher).__name__


def with_searcher(config: SearchConfig, searcher: SpaceSearcher | Searcher) -> SearchConfig:
    """`config` for a run of `searcher` (given from Python): the records carry the searcher's own name."""
    config = copy.copy(config)
    config.strategy = searcher_name(searcher)
    config.searcher = f"{type(searcher).__module__}:{type(searcher).__qualname__}"
    return config


def saved_strategy(template: Searcher, folder: Path) -> Searcher | None:
    """The strategy as Tune last saved it (for its counters, e.g. duplicates avoided): `template`'s
    class with the saved state; None if there is none."""
    searcher = tune_searcher(copy.deepcopy(template))
    try:
        searcher.restore_from_dir(str(folder / TUNE_DIR))
    except (RuntimeError, OSError):
        return None
    return searcher.strategy if isinstance(searcher, TuneSearcher) else searcher


def record_interrupted(folder: Path, record: Callable[[int, Any, str | None], Any] = search_trial) -> None:
    """After an interrupt: trials.json from Ray Tune's last snapshot, its unfinished trials INTERRUPTED (each trial
    read by `record`: a search's, or a one-shot run's)."""
    write_trials(folder, interrupted_records(folder / TUNE_DIR, record))


def run_search(config: SearchConfig | None, folder: str | Path, *, address: str | None = None, resume: bool = False,
               retry_errored: bool = False, verbose: bool = True, searcher: SpaceSearcher | Searcher | None = None,
               library_logs: bool = False) -> SearchOutcome:
    """Run (or with `resume`, continue) a search; write and return its outcome.

    Everything is checked (the config, the space, the strategy's options, the data set) before the run
    folder is touched; the folder is then claimed (`nas.engine.folder`: new, empty or a run of ours) and
    locked for the length of the run. SIGINT or SIGTERM stop the search cleanly: the unfinished trials are
    recorded as INTERRUPTED, the summary says so, and the outcome's `interrupted` is the signal;
    `resume=True` continues it. A signal before any trial started raises `Interrupted`.

    `retry_errored` (with `resume`): failed trials start again from scratch instead of staying failed.
    `searcher`: a Ray Tune searcher to use instead of `config.strategy`'s (its suggestions must carry
    "genome" and may override "train" settings); a resumed search restores it from its saved state.
    """
    folder = Path(folder)
    if searcher is not None and config is not None:
        config = with_searcher(config, searcher)
    config = prepare_folder(folder, config, resume)
    if searcher is None and config.searcher is None and getattr(strategy_class(config.strategy), "oneshot", False):
        from nas.oneshot.run import run_oneshot  # a cycle: it returns this module's SearchOutcome

        return run_oneshot(config, folder, address=address, resume=resume, retry_errored=retry_errored,
                           verbose=verbose, library_logs=library_logs)
    if resume and config.searcher is not None and searcher is None:
        raise SearchError(f"{folder}: this search ran the searcher {config.searcher} given from Python; resume it "
                          "from Python with the same searcher: nas.run_search(None, folder, resume=True, searcher=...)")
    if not resume:
        check_claimable(folder, CONFIG_FILE, "search")  # a wrong --out is said before the data is loaded
    check_not_in_use(folder, "search")  # and a folder another driver runs in
    if searcher is None:
        check_strategy_and_space(config)  # a mistyped option or space file is said before the data is loaded
    timings: dict[str, float] = {}
    # the data, then the space fitted to it and the strategy: bad input is reported at once (not after Ray
    # has started) and leaves no run folder
    view = TrialsView(config.trials, label=search_label, enabled=verbose, **evaluator.view_options(config))  # live progress (nas.engine.progress)
    quiet = not library_logs
    with Interrupts() as interrupts, libraries_quiet(quiet), view, ray_listener_muted(quiet):
        view.announce(f"loading {config.dataset}")
        clock = time.perf_counter()
        data = load_dataset(config.dataset, config.data_dir, val_fraction=config.val_fraction, seed=config.seed,
                            train_limit=config.train_limit, val_limit=config.val_limit)
        timings["data_s"] = time.perf_counter() - clock
        searcher = searcher if searcher is not None else make_strategy(config, data)  # checks space and options
        evaluator.warm_start(config, data, searcher, resume and started(folder))
        if not resume:
            config.plugins = loaded_plugins()  # the strategy's, the space kind's, ops...: --resume checks them
        with own_folder(folder, CONFIG_FILE, "search") as existing:
            restore = begin(folder, config, resume, existing)
            for line in data_lines(data, config.val_limit):  # the data set, and what cut its validation split
                view.announce(line)
            subject = searcher.subject(config.space) if isinstance(searcher, SpaceSearcher) else f"over {config.space}"
            plan = (f"{config.strategy} {subject}: {plural(config.trials, 'trial')} of "
                    f"{plural(config.settings.epochs, 'epoch')}")
            where = f"-> {folder}" + (" (resuming)" if restore else "")
            for line in ([f"{plan} {where}"] if len(plan) + len(where) < WIDTH else [plan, where]):  # fits 80 columns
                view.announce(line)
            clock = time.perf_counter()
            with tune_session(address), progress_board(view) as board:  # board: trials' in-epoch progress
                interrupts.arm()  # again: ray.init installs its own SIGTERM handler
                timings["ray_start_s"] = time.perf_counter() - clock
                clock = time.perf_counter()
                if restore:
                    tuner = experiment.restored_tuner(folder, make_trainable(config, data, board), param_space(config),
                                                      retry_errored, verbose)
                else:
                    tuner = _tuner(config, folder, data, searcher, board)
                experiment.fit(tuner, interrupts, folder, board, on_lost=lambda: record_interrupted(folder),
                               resume=resume_command(folder))
                timings["search_s"] = time.perf_counter() - clock
                if interrupts.signal is not None:
                    record_interrupted(folder)
                early = EarlyBest(folder, data)  # the best network's test runs while Ray stops
                clock = time.perf_counter()
            timings["ray_stop_s"] = time.perf_counter() - clock
            summary = report.finish(folder, config.to_dict(), data, saved_strategy(searcher, folder), timings,
                                    interrupted=interrupts.signal, say=view.status, early=early, resumed=restore)
            summary = evaluator.finish(folder, config, data, summary, interrupts.signal)
            view.status(None)
            records = read_trials(folder)
    return SearchOutcome(folder, records, summary, interrupts.signal)
