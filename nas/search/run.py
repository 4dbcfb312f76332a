"""`run_search`: one architecture search on Ray Tune, written to a run folder, resumable.

    outcome = run_search(SearchConfig(strategy="evolution", trials=16), "results/runs/evo")

The data set is loaded once in the driver and shared with every trial through Ray's object store
(`tune.with_parameters`). The strategy is a `Searcher` from `nas.search.strategies.make_searcher`
over a space from `nas.spaces.load_space`, realized for the data set's input and classes; each trial
is `nas.train.trainable.train_genome`. A failing trial fails alone (max_failures=0, fail_fast=False).

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
import math
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

import ray
from ray import tune
from ray.tune import Callback
from ray.tune.logger import JsonLoggerCallback
from ray.tune.schedulers import AsyncHyperBandScheduler
from ray.tune.search import Searcher

from nas.errors import NasError
from nas.search import report
from nas.search.folder import own_folder
from nas.search.interrupts import Interrupts
from nas.search.repair import restore_named_checkpoints
from nas.search.strategies import STRATEGIES, make_searcher
from nas.spaces import load_space
from nas.train.datasets import DatasetSplits, load_dataset
from nas.train.settings import TrainSettings
from nas.train.trainable import tune_trainable

METRIC, MODE = "val_accuracy", "max"
CONFIG_FILE = report.CONFIG_JSON
TUNE_DIR = "tune"

# Ray Tune knobs (environment; a value already set wins). Snapshots of the experiment state are
# forced at every trial checkpoint (CheckpointConfig.num_to_keep), so the warning about frequent
# snapshots is noise here; per-trial JSON/CSV/TensorBoard loggers duplicate trials.json and cost a
# file write per result; trials need not chdir into a per-trial working directory.
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
    with tune_environment():
        started_here = ensure_ray(address)
        try:
            yield
        finally:
            if started_here:
                ray.shutdown()


class SearchError(NasError):
    """A search cannot start or resume (bad options, an existing run folder, a missing one)."""


def _scheduler_asha(config: "SearchConfig"):
    return AsyncHyperBandScheduler(time_attr="epoch", max_t=config.train.get("epochs", TrainSettings.epochs),
                                   grace_period=1, reduction_factor=2)


SCHEDULERS: dict[str, Callable[["SearchConfig"], Any]] = {"asha": _scheduler_asha}


@dataclass
class SearchConfig:
    """Everything that defines a search (saved as search.json in the run folder)."""

    strategy: str
    space: str = "macro"
    dataset: str = "digits"
    data_dir: str | None = None
    val_fraction: float = 0.1
    train_limit: int | None = None
    trials: int = 16
    concurrent: int | None = None  # None: as many as the resources allow
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    scheduler: str | None = None
    seed: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # strategy options
    train: dict[str, Any] = field(default_factory=dict)  # TrainSettings fields (others: defaults)
    reuse_actors: bool = True

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise SearchError(f"unknown strategy {self.strategy!r} (known: {', '.join(STRATEGIES)})")
        if not isinstance(self.trials, int) or self.trials < 1:
            raise SearchError(f"trials must be a positive integer, got {self.trials!r}")
        if self.concurrent is not None and self.concurrent < 1:
            raise SearchError(f"concurrent must be a positive integer, got {self.concurrent}")
        if not (_finite(self.cpus_per_trial) and self.cpus_per_trial > 0 and _finite(self.gpus_per_trial)
                and self.gpus_per_trial >= 0):
            raise SearchError(f"cpus per trial must be > 0 and GPUs per trial >= 0, got {self.cpus_per_trial!r} "
                              f"and {self.gpus_per_trial!r}")
        if not (_finite(self.val_fraction) and 0 < self.val_fraction < 1):
            raise SearchError(f"val_fraction must be in (0, 1), got {self.val_fraction!r}")
        if self.train_limit is not None and (not isinstance(self.train_limit, int) or self.train_limit < 1):
            raise SearchError(f"train_limit must be a positive integer, got {self.train_limit!r}")
        if self.scheduler is not None and self.scheduler not in SCHEDULERS:
            raise SearchError(f"unknown scheduler {self.scheduler!r} (known: {', '.join(SCHEDULERS)})")
        self.settings = TrainSettings.from_dict({"seed": self.seed, **self.train})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @staticmethod
    def from_dict(spec: Mapping[str, Any]) -> "SearchConfig":
        known = {f.name for f in fields(SearchConfig)}
        try:
            return SearchConfig(**{k: v for k, v in spec.items() if k in known})
        except TypeError as error:  # a required field missing
            raise SearchError(f"not a search configuration: {error}") from None

    def resources(self) -> dict[str, float]:
        return {"cpu": self.cpus_per_trial, "gpu": self.gpus_per_trial}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass
class SearchOutcome:
    folder: Path
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    interrupted: int | None = None  # the signal that stopped the search (SIGINT, SIGTERM), if one did

    @property
    def best(self) -> dict[str, Any] | None:
        return self.summary.get("best")


# ----- progress and the live record of trials -----
class RunRecorder(Callback):
    """Keeps trials.csv/json current and prints one line per finished trial (driver side)."""

    def __init__(self, folder: str, total: int, verbose: bool = True):
        self.folder = folder
        self.total = total
        self.verbose = verbose

    def _write(self, trials, current=None, status: str | None = None) -> list[dict[str, Any]]:
        records = [report.trial_record(i, trial, status if trial is current else None)
                   for i, trial in enumerate(trials)]
        report.write_trials(Path(self.folder), records)
        return records

    def _finished(self, trials, trial, status: str) -> None:
        # Tune calls back before it sets the trial's final status: pass it on
        records = self._write(trials, trial, status)
        if self.verbose:
            done = sum(r["status"] in report.FINISHED for r in records)
            record = next(r for r in records if r["trial_id"] == trial.trial_id)
            print(report.progress_line(record, done, self.total), flush=True)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._finished(trials, trial, "TERMINATED")

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._finished(trials, trial, "ERROR")

    def on_experiment_end(self, trials, **info) -> None:
        self._write(trials)


def _trial_name(trial) -> str:
    return f"trial_{trial.trial_id}"


# ----- the run -----
def default_folder(strategy: str, root: str | Path = "results/runs") -> Path:
    return Path(root) / f"{strategy}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def ensure_ray(address: str | None) -> bool:
    """Connect to `address` (a cluster), or start a local Ray with this machine's CPUs; True if started here."""
    if ray.is_initialized():
        return False
    if address:
        ray.init(address=address, log_to_driver=False)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    return True


def make_strategy(config: SearchConfig, data: DatasetSplits) -> Searcher:
    space = load_space(config.space, input_channels=data.channels, input_size=data.size,
                       num_classes=data.num_classes)
    try:
        return make_searcher(config.strategy, space, seed=config.seed, metric=METRIC, mode=MODE,
                             max_trials=config.trials, options=config.options)
    except (ValueError, TypeError, RuntimeError, ArithmeticError) as error:  # an option its checks let through
        raise SearchError(f"strategy {config.strategy!r} cannot start with options {config.options}: "
                          f"{type(error).__name__}: {error}".splitlines()[0]) from None


def make_trainable(config: SearchConfig, data: DatasetSplits):
    return tune_trainable(data, config.resources())


def _tuner(config: SearchConfig, folder: Path, data: DatasetSplits, searcher: Searcher, verbose: bool) -> tune.Tuner:
    param_space = {"train": config.settings.to_dict()}
    tune_config = tune.TuneConfig(
        metric=METRIC, mode=MODE,
        search_alg=searcher,
        scheduler=SCHEDULERS[config.scheduler](config) if config.scheduler else None,
        num_samples=config.trials,
        max_concurrent_trials=config.concurrent,  # Tune's ConcurrencyLimiter (its live set is saved with the searcher)
        reuse_actors=config.reuse_actors,
        trial_name_creator=_trial_name,
        trial_dirname_creator=_trial_name,
    )
    run_config = tune.RunConfig(
        name=TUNE_DIR,
        storage_path=str(folder.resolve()),
        failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[JsonLoggerCallback(), RunRecorder(str(folder.resolve()), config.trials, verbose)],
        verbose=0,
    )
    return tune.Tuner(make_trainable(config, data), param_space=param_space, tune_config=tune_config,
                      run_config=run_config)


def _restored_tuner(config: SearchConfig, folder: Path, data: DatasetSplits, retry_errored: bool,
                    verbose: bool) -> tune.Tuner:
    path = str((folder / TUNE_DIR).resolve())
    restore_named_checkpoints(path, verbose)
    return tune.Tuner.restore(path, make_trainable(config, data), resume_unfinished=True,
                              restart_errored=retry_errored, param_space={"train": config.settings.to_dict()})


# ----- the run folder -----
def read_config(folder: Path) -> SearchConfig:
    """The saved config of the run in `folder` (search.json), or one line saying why there is none."""
    saved = folder / CONFIG_FILE
    if not saved.is_file():
        raise SearchError(f"{folder}: nothing to resume (no {CONFIG_FILE}); start the search without --resume")
    try:
        spec = json.loads(saved.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SearchError(f"{saved}: damaged, not valid JSON ({error}); the run cannot be resumed") from None
    if not isinstance(spec, dict):
        raise SearchError(f"{saved}: damaged, not a search configuration")
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
    searcher = copy.deepcopy(template)
    try:
        searcher.restore_from_dir(str(folder / TUNE_DIR))
    except (RuntimeError, OSError):
        return None
    return searcher


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
               retry_errored: bool = False, verbose: bool = True, searcher: Searcher | None = None) -> SearchOutcome:
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
    config = prepare_folder(folder, config, resume)
    timings: dict[str, float] = {}
    with Interrupts() as interrupts:
        clock = time.perf_counter()
        data = load_dataset(config.dataset, config.data_dir, val_fraction=config.val_fraction, seed=config.seed,
                            train_limit=config.train_limit)
        timings["data_s"] = time.perf_counter() - clock
        searcher = searcher if searcher is not None else make_strategy(config, data)  # checks space and options
        with own_folder(folder, CONFIG_FILE, "search") as existing:
            restore = begin(folder, config, resume, existing)
            if verbose:
                print(f"{data.describe()}; {config.strategy} over {config.space}, {config.trials} trials of "
                      f"{config.settings.epochs} epochs -> {folder}" + (" (resuming)" if restore else ""), flush=True)
            clock = time.perf_counter()
            with tune_session(address):
                interrupts.arm()  # again: ray.init installs its own SIGTERM handler
                timings["ray_start_s"] = time.perf_counter() - clock
                clock = time.perf_counter()
                if restore:
                    tuner = _restored_tuner(config, folder, data, retry_errored, verbose)
                else:
                    tuner = _tuner(config, folder, data, searcher, verbose)
                with interrupts.tuning():
                    tuner.fit()
                timings["search_s"] = time.perf_counter() - clock
                if interrupts.signal is not None:
                    record_interrupted(folder)
            summary = report.finish(folder, config.to_dict(), data, saved_strategy(searcher, folder), timings,
                                    interrupted=interrupts.signal)
            records = report.read_trials(folder)
    return SearchOutcome(folder, records, summary, interrupts.signal)
