"""`run_search`: one architecture search on Ray Tune, written to a run folder, resumable.

    outcome = run_search(SearchConfig(strategy="evolution", trials=16), "results/runs/evo")

The data set is loaded once in the driver and shared with every trial through Ray's object store
(`tune.with_parameters`). The strategy (plain Python, `nas.search.strategies.make_searcher`), over a
space from `nas.spaces.load_space` realized for the data set's input and classes, runs in Tune through
its adapter (`nas.search.tune_searcher`); each trial
is `nas.train.trainable.train_genome`. A failing trial fails alone (fail_fast=False), retried from its
last checkpoint up to `max_failures` times (default 0).

The run folder holds ``search.json`` (this config: what `--resume` reads back), ``tune/`` (Ray Tune's
experiment: trial state, checkpoints, searcher state), and the outputs of `nas.search.report`
(trials.csv/json, kept current while the search runs, best genome and weights, plot, summary).
`resume=True` continues a stopped search (killed at any point) with `Tuner.restore`: finished and
failed trials are kept as they are, unfinished ones continue from their last checkpoint, and the
searcher's state is restored from its last snapshot (after `nas.search.repair` has put back any
checkpoint that snapshot names but Ray Tune had already replaced with a newer one).

Nothing is written before the whole configuration is checked (config, data set, space, strategy
options); the run folder is then claimed and locked (`nas.search.folder`: new, empty or a run of
ours; one driver at a time). SIGINT/SIGTERM stop the search cleanly (`nas.search.interrupts`):
unfinished trials are recorded as INTERRUPTED and `resume=True` continues them.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import shutil
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune import Callback
from ray.tune.search import ConcurrencyLimiter, SearchGenerator, Searcher

from nas.evaluate import hooks as evaluator
from nas.plugins import check_installed
from nas.registry import loaded_plugins
from nas.search import report
from nas.search.config import SCHEDULERS, SearchConfig, SearchError, default_folder  # noqa: F401 (re-exported)
from nas.search.folder import check_claimable, check_not_in_use, own_folder
from nas.search.board import progress_board
from nas.search.interrupts import Interrupted, Interrupts
from nas.search.loggers import tune_loggers
from nas.search.progress import WIDTH, ProgressCallback, TrialsView, search_label, status
from nas.search.repair import restore_named_checkpoints
from nas.search.strategies import SpaceSearcher, make_searcher, strategy_class
from nas.search.tune_searcher import TuneSearcher, tune_searcher
from nas.search.verbosity import libraries_quiet, ray_init_options, ray_listener_muted
from nas.spaces import load_space
from nas.train.datasets import DatasetSplits, load_dataset
from nas.train.display import data_lines
from nas.train.trainable import tune_trainable
from nas.units import plural

METRIC, MODE = "val_accuracy", "max"
CONFIG_FILE = report.CONFIG_JSON
TUNE_DIR = "tune"

# Ray Tune knobs (environment; a value already set wins). Snapshots of the experiment state are
# forced at every trial checkpoint (CheckpointConfig.num_to_keep), so the warning about frequent
# snapshots is noise here; Tune's automatic loggers are replaced by the explicit ones of
# `nas.search.loggers` (JSON, CSV, TensorBoard); trials need not chdir into a per-trial working directory.
TUNE_ENVIRONMENT = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "TUNE_PRINT_ALL_TRIAL_ERRORS": "0",
    "RAY_CHDIR_TO_TRIAL_DIR": "0",
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_DISABLE_SIGINT_HANDLER": "1",  # SIGINT and SIGTERM both go through nas.search.interrupts
}


@contextlib.contextmanager
def tune_environment() -> Iterator[None]:
    """`TUNE_ENVIRONMENT` set (where not set already) for the length of a run, then put back as it was,
    so that a search leaves the process (a notebook, a test session) as it found it."""
    added = [name for name in TUNE_ENVIRONMENT if name not in os.environ]
    os.environ.update({name: TUNE_ENVIRONMENT[name] for name in added})
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def tune_session(address: str | None) -> Iterator[None]:
    """Ray Tune ready for a run: `tune_environment`, and Ray connected to `address` (or started
    locally, `ensure_ray`); a Ray started here is shut down at the end."""
    address = ray_address(address)
    with tune_environment():
        status(f"starting Ray ({'connecting to ' + address if address else 'local'})")
        try:
            started_here = ensure_ray(address)
        except SystemExit as stop:  # a signal met the handler ray.init installs while it starts: sys.exit(signum)
            if stop.code not in (signal.SIGTERM, signal.SIGINT):
                raise
            if ray.is_initialized():
                ray.shutdown()
            raise Interrupted(int(stop.code)) from None
        status("waiting for the first trial to start", until_running=True)
        try:
            yield
        finally:
            if started_here:
                status("stopping Ray")
                ray.shutdown()
            status(None)


@dataclass
class SearchOutcome:
    folder: Path
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    interrupted: int | None = None  # the signal that stopped the search (SIGINT, SIGTERM), if one did

    @property
    def best(self) -> dict[str, Any] | None:
        return self.summary.get("best")


# ----- the live record of trials -----
@dataclass
class Recording:
    """The run folder the search running in this process records into; `stop` ends Tune's loop cleanly (as
    a first Ctrl-C does); `fault`: the first error writing the records (a full disk), raised after the loop."""

    folder: Path
    stop: Callable[[], None]
    fault: Exception | None = None


_RECORDING: dict[str, Recording | None] = {"now": None}


@contextlib.contextmanager
def recording_into(folder: Path, stop: Callable[[], None]) -> Iterator[Recording]:
    """`RunRecorder`s (and a restored `RelocatableSearchGenerator`) in this process use `folder` within."""
    previous = _RECORDING["now"]
    _RECORDING["now"] = recording = Recording(folder, stop)
    try:
        yield recording
    finally:
        _RECORDING["now"] = previous


class RunRecorder(Callback):
    """Keeps trials.csv/json current in the run folder of the search running in this process
    (`recording_into`). Ray Tune saves its callbacks with the experiment, so the recorder holds no path of
    its own: a run folder copied or moved elsewhere and resumed writes into itself, never into the
    original (whose path a saved recorder of an older version still carries; it is ignored). A write that
    fails (a full disk) stops the search cleanly, its unfinished trials resumable, and is raised after it
    (Tune would only log an error raised here and go on with records no longer kept)."""

    def _write(self, trials, current=None, status: str | None = None) -> None:
        recording = _RECORDING["now"]
        if recording is None or recording.fault is not None:
            return
        try:
            records = [report.trial_record(i, trial, status if trial is current else None)
                       for i, trial in enumerate(trials)]
            report.write_trials(recording.folder, records)
        except Exception as error:  # noqa: BLE001 - raised again by run_search once Tune has stopped
            recording.fault = error
            recording.stop()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._write(trials, trial, "TERMINATED")  # Tune calls back before it sets the final status

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._write(trials, trial, "ERROR")

    def on_experiment_end(self, trials, **info) -> None:
        self._write(trials)


class RelocatableSearchGenerator(SearchGenerator):
    """Ray Tune's `SearchGenerator`, restored into the run folder being resumed.

    Tune saves the generator's state with the experiment it was given, whose storage names the run folder
    as it was then, and creates every new trial from it. Restoring a run folder that was copied or moved
    elsewhere, Tune re-points the trials it restores to the new place, not the generator: new trials wrote
    their checkpoints into the original folder. This generator re-points its experiment to the folder
    being run (`recording_into`) when its state is restored, as Tune does for the trials."""

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state({**state, "experiment": relocated(state["experiment"])})


def relocated(experiment):
    """`experiment` (a saved `ray.tune.Experiment`) with its storage re-pointed to the run folder being run."""
    recording, storage = _RECORDING["now"], experiment.spec.get("storage")
    if recording is None or storage is None:
        return experiment
    folder = recording.folder
    storage = copy.copy(storage)
    storage.storage_fs_path = folder.resolve().as_posix()
    storage.experiment_dir_name = TUNE_DIR
    experiment = copy.copy(experiment)
    experiment.spec = {**experiment.spec, "storage": storage}
    return experiment


def search_algorithm(searcher: SpaceSearcher | Searcher, concurrent: int | None) -> RelocatableSearchGenerator:
    """A strategy (in its adapter) or a Ray Tune searcher as Tune would wrap it (a `ConcurrencyLimiter` for
    `concurrent`, whose live set is saved with the searcher, inside a generator), the generator a
    `RelocatableSearchGenerator`."""
    searcher = tune_searcher(searcher)
    return RelocatableSearchGenerator(ConcurrencyLimiter(searcher, max_concurrent=concurrent) if concurrent
                                      else searcher)


def _trial_name(trial) -> str:
    """``trial_3_3cde63f1``: the trial's number (the screen's, trials.csv's; `report.proposal_index` + 1) and
    Tune's id; the trial's folder in ``tune/`` and so its run's name in TensorBoard."""
    number = report.proposal_index(trial, -1) + 1
    return f"trial_{number}_{trial.trial_id}" if number > 0 else f"trial_{trial.trial_id}"


# ----- the run -----
def ray_address(address: str | None) -> str | None:
    """The cluster to connect to: `address` (--address), else Ray's own RAY_ADDRESS variable; None: start a
    Ray of our own (never join a cluster merely because `ray start` left its address in Ray's temp folder)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def ensure_ray(address: str | None) -> bool:
    """Connect to `address` (a cluster), or start a local Ray with this machine's CPUs; True if started here."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False, **ray_init_options())
    else:  # "local": a new instance, whatever other Ray clusters run on this machine
        ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                 **ray_init_options())
    return True


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


def _tuner(config: SearchConfig, folder: Path, data: DatasetSplits, searcher: SpaceSearcher | Searcher,
           verbose: bool, board: str | None = None) -> tune.Tuner:
    param_space = {"train": config.settings.to_dict()}
    tune_config = tune.TuneConfig(
        metric=evaluator.metric(config), mode=MODE,
        search_alg=search_algorithm(searcher, config.concurrent),
        scheduler=SCHEDULERS[config.scheduler](config) if config.scheduler else None,
        num_samples=config.trials,
        reuse_actors=config.reuse_actors,
        trial_name_creator=_trial_name,
        trial_dirname_creator=_trial_name,
    )
    run_config = tune.RunConfig(
        name=TUNE_DIR,
        storage_path=str(folder.resolve()),
        failure_config=tune.FailureConfig(max_failures=config.max_failures, fail_fast=False),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[*tune_loggers(config.strategy), RunRecorder(), ProgressCallback()],
        verbose=0,
    )
    return tune.Tuner(make_trainable(config, data, board), param_space=param_space, tune_config=tune_config,
                      run_config=run_config)


def _restored_tuner(config: SearchConfig, folder: Path, data: DatasetSplits, retry_errored: bool,
                    verbose: bool, board: str | None = None) -> tune.Tuner:
    path = str((folder / TUNE_DIR).resolve())
    restore_named_checkpoints(path, verbose)
    return tune.Tuner.restore(path, make_trainable(config, data, board), resume_unfinished=True,
                              restart_errored=retry_errored, param_space={"train": config.settings.to_dict()})


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


# ----- the run folder -----
def read_config(folder: Path) -> SearchConfig:
    """The saved config of the run in `folder` (search.json), or one line saying why there is none (or which
    of the plug-ins it used is not installed here)."""
    saved = folder / CONFIG_FILE
    if not saved.is_file():
        raise SearchError(f"{folder}: nothing to resume (no {CONFIG_FILE}); start the search without --resume")
    try:
        spec = json.loads(saved.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SearchError(f"{saved}: damaged, not valid JSON ({error}); the run cannot be resumed") from None
    if not isinstance(spec, dict):
        raise SearchError(f"{saved}: damaged, not a search configuration")
    check_installed(spec.get("plugins", []), str(saved))
    return SearchConfig.from_dict(spec)


def started(folder: Path) -> bool:
    """Did the search in `folder` get going (a Ray Tune experiment to restore, or recorded trials)?"""
    return tune.Tuner.can_restore(str((folder / TUNE_DIR).resolve())) or (folder / report.TRIALS_JSON).exists()


def check_records(folder: Path) -> None:
    """A damaged trials.json stops a resume with one line (instead of being read half-way later)."""
    try:
        report.read_trials(folder)
    except report.RecordsError as error:
        raise SearchError(f"{error}; remove it to rebuild it from Ray Tune's experiment state") from None


def begin(folder: Path, config: SearchConfig, resume: bool, existing: bool) -> bool:
    """Under the folder's lock: write search.json for a new search; True when Ray Tune's experiment is to be
    restored. A folder whose search never got going (its start failed or was interrupted) starts again."""
    if resume and started(folder):
        check_records(folder)
        if not tune.Tuner.can_restore(str((folder / TUNE_DIR).resolve())):
            raise SearchError(f"{folder}: no Ray Tune experiment to resume in {folder / TUNE_DIR}")
        return True
    if existing and not resume and started(folder):
        raise SearchError(f"{folder} already holds a search; resume it with --resume or choose another --out")
    shutil.rmtree(folder / TUNE_DIR, ignore_errors=True)  # ours: what a failed start left
    report.replace_file(folder / CONFIG_FILE, json.dumps(config.to_dict(), indent=2) + "\n")
    return False


def prepare_folder(folder: Path, config: SearchConfig | None, resume: bool) -> SearchConfig:
    """The run's config, checked before anything is written: `config`, or for `resume` the saved one."""
    if resume:
        if not folder.is_dir():
            raise SearchError(f"{folder}: no such run folder to resume")
        return read_config(folder)
    if config is None:
        raise SearchError("a new search needs a SearchConfig")
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


def record_interrupted(folder: Path) -> None:
    """After an interrupt: trials.json from Ray Tune's last snapshot (taken as the loop stopped, before Tune
    stopped the running trials and called them TERMINATED), its unfinished trials recorded as INTERRUPTED."""
    from ray.tune import ExperimentAnalysis

    trials = ExperimentAnalysis(str((folder / TUNE_DIR).resolve())).trials
    report.write_trials(folder, [report.trial_record(i, trial, None if trial.status in report.FINISHED
                                                     else report.INTERRUPTED) for i, trial in enumerate(trials)])


def resume_command(folder: Path) -> str:
    """The command that continues the search in `folder`."""
    import shlex

    return shlex.join(["nas", "search", "--resume", "--out", str(folder)])


def run_search(config: SearchConfig | None, folder: str | Path, *, address: str | None = None, resume: bool = False,
               retry_errored: bool = False, verbose: bool = True, searcher: SpaceSearcher | Searcher | None = None,
               library_logs: bool = False) -> SearchOutcome:
    """Run (or with `resume`, continue) a search; write and return its outcome.

    Everything is checked (the config, the space, the strategy's options, the data set) before the run
    folder is touched; the folder is then claimed (`nas.search.folder`: new, empty or a run of ours) and
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
        from nas.oneshot.run import run_oneshot

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
    view = TrialsView(config.trials, label=search_label, enabled=verbose, **evaluator.view_options(config))  # live progress (nas.search.progress)
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
                    tuner = _restored_tuner(config, folder, data, retry_errored, verbose, board)
                else:
                    tuner = _tuner(config, folder, data, searcher, verbose, board)
                with interrupts.tuning(), recording_into(folder, interrupts.stop_tuning) as recording:
                    tuner.fit()
                if recording.fault is not None:
                    raise recording.fault
                timings["search_s"] = time.perf_counter() - clock
                if interrupts.signal is not None:
                    record_interrupted(folder)
                clock = time.perf_counter()
            timings["ray_stop_s"] = time.perf_counter() - clock
            summary = report.finish(folder, config.to_dict(), data, saved_strategy(searcher, folder), timings,
                                    interrupted=interrupts.signal, say=view.status)
            summary = evaluator.finish(folder, config, data, summary, interrupts.signal)
            view.status(None)
            records = report.read_trials(folder)
    return SearchOutcome(folder, records, summary, interrupts.signal)
