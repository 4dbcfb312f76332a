"""`run_compare`: retrain searched and hand-designed models under one recipe and K seeds, on Ray Tune.

    outcome = run_compare(CompareConfig(runs=["results/runs/evo", "results/runs/rl"]), "results/compare-digits")

Every model of the plan (`nas.compare.plan`) is trained once per seed by the search's own trainable
(`nas.train.trainable.train_genome`) with the same `TrainSettings` (only the seed differs), on the same
splits of the same data set, as one Ray Tune grid of trials (model x seed); each trial reports its test
accuracy after its last epoch. Data splits: on the data set the runs searched, the split seed and
validation share are the runs' own, so the test images are ones no search ever selected a genome on.

The output folder holds ``compare.json`` (the comparison: running the same command again resumes it;
a different comparison in the same folder is refused), ``tune/`` (Ray Tune's experiment, with the
final checkpoint of every trial; ignored by git), ``models.json`` and ``genomes/`` (the plan),
``trials.json``/``trials.csv`` (one record per trial) and the report (`nas.compare.report`).
"""
from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ray import tune

from nas.compare.aggregate import aggregate, comparison_cost, measure_latencies
from nas.compare.config import DEFAULT_EPOCHS, CompareConfig  # noqa: F401 (re-exported)
from nas.compare.data import DataChoice, choose_data
from nas.compare.latency import machine
from nas.compare.plan import Model, PlanError, SearchRun, plan_models, read_run
from nas.compare.records import CompareTrial, write_trials
from nas.compare.report import write_report
from nas.engine import experiment
from nas.engine.board import progress_board
from nas.engine.folder import LOCK_FILE, check_claimable, check_not_in_use, own_folder
from nas.engine.interrupts import Interrupts
from nas.engine.progress import ProgressCallback, TrialsView
from nas.engine.recording import TUNE_DIR
from nas.engine.records import TrialStatus, replace_file
from nas.engine.session import tune_session
from nas.engine.tune_trials import interrupted_records
from nas.engine.verbosity import libraries_quiet, ray_listener_muted
from nas.train.datasets import DatasetSplits, load_dataset
from nas.train.display import data_lines
from nas.train.failures import failure_reason
from nas.train.settings import TrainSettings
from nas.train.trainable import tune_trainable

CONFIG_FILE, MODELS_FILE, SUMMARY_FILE = "compare.json", "models.json", "summary.json"  # and latency.json (aggregate)
# and trials.json / trials.csv (nas.compare.records)
GENOMES_DIR = "genomes"


# ----- Ray Tune -----
class FromModel:
    """A `tune.sample_from` function: a per-model value looked up by the trial's ``model``."""

    def __init__(self, table: Mapping[str, Any]):
        self.table = dict(table)

    def __call__(self, config: Mapping[str, Any]) -> Any:
        return self.table[config["model"]]


class Recipe:
    """A `tune.sample_from` function: the training settings with the trial's ``seed``."""

    def __init__(self, config: CompareConfig):
        self.train = dict(config.train)

    def __call__(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return TrainSettings.from_dict({**self.train, "seed": config["seed"], "test_at_end": True}).to_dict()


def param_space(config: CompareConfig, models: Sequence[Model]) -> dict[str, Any]:
    return {
        "model": tune.grid_search([m.label for m in models]),
        "seed": tune.grid_search(list(range(config.seeds))),
        "genome": tune.sample_from(FromModel({m.label: m.genome.to_dict() for m in models})),
        "fingerprint": tune.sample_from(FromModel({m.label: m.genome.fingerprint() for m in models})),
        "train": tune.sample_from(Recipe(config)),
    }


def trial_name(trial) -> str:
    return f"{trial.config['model']}-seed{trial.config['seed']}"


Progress = ProgressCallback  # the name comparisons before nas.search.progress pickled (their Tuner.restore)


def make_trainable(config: CompareConfig, data: DatasetSplits, board: str | None = None):
    return tune_trainable(data, {"cpu": config.cpus_per_trial, "gpu": config.gpus_per_trial}, board=board)


def make_tuner(config: CompareConfig, models: Sequence[Model], data: DatasetSplits, folder: Path,
               retry_errored: bool = False, verbose: bool = True, board: str | None = None) -> tune.Tuner:
    trainable = make_trainable(config, data, board)
    space = param_space(config, models)
    if experiment.can_restore(folder):
        return experiment.restored_tuner(folder, trainable, space, retry_errored, verbose)
    return experiment.new_tuner(folder, trainable, space,
                                tune.TuneConfig(num_samples=1, reuse_actors=True, trial_name_creator=trial_name,
                                                trial_dirname_creator=trial_name))


def trial_records(results) -> list[CompareTrial]:
    """Ray Tune's results as comparison records (one per trial, in the results' order)."""
    records = []
    for result in results:
        metrics = result.metrics or {}
        config = result.config or {}
        failed = result.error is not None
        record = CompareTrial.from_metrics(config.get("model"), config.get("seed"),
                                           TrialStatus.ERROR if failed else TrialStatus.TERMINATED, metrics,
                                           trial_id=metrics.get("trial_id"),
                                           error=failure_reason(result.error) if failed else "")
        if record.finished and record.test_accuracy is None:
            record.status, record.error = TrialStatus.ERROR, "finished without a test accuracy"
        records.append(record)
    return records


# ----- the run -----
@dataclass
class CompareOutcome:
    folder: Path
    models: list[Model]
    records: list[CompareTrial]
    rows: list[dict[str, Any]]
    report: Path


GITIGNORE = (f"# Ray Tune's experiment: trial state and checkpoints (large)\n{TUNE_DIR}/\n"
             f"# the lock a running comparison holds (nas.engine.folder)\n{LOCK_FILE}\n")


def check_folder(folder: Path, config: CompareConfig) -> bool:
    """True when `folder` holds this comparison already (a rerun resumes it); a different one is refused.
    Reads only: nothing is written before the whole comparison is known to be valid."""
    saved = folder / CONFIG_FILE
    if not saved.is_file():
        return False
    try:
        previous = json.loads(saved.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise PlanError(f"{saved}: damaged, not valid JSON ({error}); choose another --out") from None
    spec = json.loads(json.dumps(config.to_dict()))
    if isinstance(previous, dict):  # fields added since that comparison started take their defaults
        previous = {**json.loads(json.dumps(CompareConfig().to_dict())), **previous}
    if previous != spec:
        changed = sorted(k for k in set(previous) | set(spec) if not isinstance(previous, dict)
                         or previous.get(k) != spec.get(k))
        raise PlanError(f"{folder} holds a different comparison (differs in {', '.join(changed)}); "
                        "choose another --out")
    return True


def write_new(path: Path, text: str) -> bool:
    """Write `path` only if it does not exist (never replace a file of the user's); True if written."""
    try:
        with open(path, "x") as file:
            file.write(text)
        return True
    except FileExistsError:
        return False


def start_folder(folder: Path, config: CompareConfig) -> None:
    """Under the folder's lock, a new comparison: compare.json, and a .gitignore for tune/ unless one is there."""
    replace_file(folder / CONFIG_FILE, json.dumps(json.loads(json.dumps(config.to_dict())), indent=2) + "\n")
    write_new(folder / ".gitignore", GITIGNORE)


def write_plan(folder: Path, models: Sequence[Model]) -> None:
    (folder / GENOMES_DIR).mkdir(exist_ok=True)
    for model in models:
        model.genome.save(folder / GENOMES_DIR / f"{model.label}.yaml")
    (folder / MODELS_FILE).write_text(json.dumps([m.to_dict() for m in models], indent=2) + "\n")


def snapshot_record(index: int, trial, status: str | None) -> CompareTrial:
    """A trial of Ray Tune's last snapshot as a comparison's record (`status` overriding the trial's)."""
    result, config = trial.last_result or {}, trial.config or {}
    return CompareTrial.from_metrics(config.get("model"), config.get("seed"), TrialStatus(status or trial.status),
                                     result, trial_id=trial.trial_id)


def in_plan_order(records: list[CompareTrial], models: Sequence[Model]) -> list[CompareTrial]:
    """`records` sorted in place by the plan's order of their models, then seed; returned."""
    order = {m.label: i for i, m in enumerate(models)}
    records.sort(key=lambda r: (order.get(r.model, len(order)), r.seed))
    return records


def stopped_records(folder: Path, models: Sequence[Model]) -> list[CompareTrial]:
    """After an interrupt: one record per trial of Ray Tune's last snapshot, unfinished ones INTERRUPTED."""
    return in_plan_order(interrupted_records(folder / TUNE_DIR, snapshot_record), models)


class CompareInterrupted(PlanError):
    """SIGINT/SIGTERM stopped the comparison; running the same command again resumes it."""

    def __init__(self, signum: int, folder: Path):
        super().__init__(f"interrupted; {folder}: unfinished trials are recorded as INTERRUPTED")
        self.signum, self.folder = signum, folder


def run_compare(config: CompareConfig, folder: str | Path, *, address: str | None = None,
                retry_errored: bool = False, verbose: bool = True, command: str | None = None,
                library_logs: bool = False) -> CompareOutcome:
    """Plan, train (or resume), measure and report a comparison in `folder`; `verbose`: progress
    (`nas.engine.progress`), `library_logs`: Ray's and the other libraries' own output too.

    The runs, data set and models are read and checked before the folder is touched; the folder is then
    claimed (new, empty, or this comparison's: `nas.engine.folder`) and locked while the comparison runs.
    SIGINT/SIGTERM stop it cleanly (`CompareInterrupted`, after recording the trials); rerunning resumes."""
    started = time.perf_counter()
    folder = Path(folder)
    resumed = check_folder(folder, config)
    check_claimable(folder, CONFIG_FILE, "comparison")  # a wrong --out, before the data is loaded
    check_not_in_use(folder, "comparison")  # and a folder another driver runs in
    runs = [read_run(path) for path in config.runs]
    choice = choose_data(config, runs)
    if verbose:
        print(f"loading {choice.dataset}", flush=True)
    data = load_dataset(choice.dataset, choice.data_dir, val_fraction=choice.val_fraction, seed=choice.split_seed,
                        train_limit=config.train_limit, val_limit=config.val_limit)
    choice.check_test_split(data)
    models = plan_models(runs, config.baselines, config.skeletons, data.input_shape, data.num_classes,
                         tolerance=config.tolerance)
    with Interrupts() as interrupts, own_folder(folder, CONFIG_FILE, "comparison") as existing:
        if existing:
            resumed = check_folder(folder, config)
        else:
            start_folder(folder, config)
        write_plan(folder, models)
        if verbose:
            for line in data_lines(data, config.val_limit):
                print(line, flush=True)
            print(f"{len(models)} models x {config.seeds} seeds, "
                  f"{config.recipe(0).epochs} epochs each -> {folder}" + (" (resuming)" if resumed else ""),
                  flush=True)
        view = TrialsView(len(models) * config.seeds, label=trial_name, enabled=verbose,
                          metrics=(("test_accuracy", "test"), ("val_accuracy", "val")), best=None)
        with libraries_quiet(not library_logs), view, ray_listener_muted(not library_logs), tune_session(address), \
                progress_board(view) as board:  # trials' in-epoch progress (nas.engine.board)
            interrupts.arm()
            clock = time.perf_counter()
            tuner = make_tuner(config, models, data, folder, retry_errored, verbose, board)
            results = experiment.fit(tuner, interrupts, board=board, resume=command,
                                     on_lost=lambda: write_trials(folder, stopped_records(folder, models)))
            training_s = time.perf_counter() - clock
            stopped = interrupts.signal
            records = stopped_records(folder, models) if stopped is not None else trial_records(results)
        if stopped is None:
            return finish_compare(folder, config, models, runs, data, choice, records, training_s, started, command,
                                  verbose)
        write_trials(folder, records)
        if any(r.finished for r in records):  # a partial report of the finished trials
            finish_compare(folder, config, models, runs, data, choice, records, training_s, started, command,
                           verbose, interrupted=signal.Signals(stopped).name)
        raise CompareInterrupted(stopped, folder)


def finish_compare(folder: Path, config: CompareConfig, models: Sequence[Model], runs: Sequence[SearchRun],
                   data: DatasetSplits, choice: DataChoice, records: list[CompareTrial], training_s: float,
                   started: float, command: str | None, verbose: bool,
                   interrupted: str | None = None) -> CompareOutcome:
    """Trials, latency, aggregates, summary and report of a comparison whose trials all ended (or, with
    `interrupted`, the signal's name: of the trials that finished before it, marked as partial)."""
    write_trials(folder, in_plan_order(records, models))

    clock = time.perf_counter()
    latencies = measure_latencies(folder, models, data, config)
    latency_s = time.perf_counter() - clock
    rows = aggregate(models, records, latencies)
    session = {"training_s": round(training_s, 1), "latency_s": round(latency_s, 1),
               "total_s": round(time.perf_counter() - started, 1)}
    previous = json.loads((folder / SUMMARY_FILE).read_text()) if (folder / SUMMARY_FILE).is_file() else {}
    summary = {
        "command": command, "data": data.describe(), "data_choice": asdict(choice),
        "input_shape": list(data.input_shape), "num_classes": data.num_classes,
        "recipe": {k: v for k, v in config.recipe(0).to_dict().items() if k != "seed"},
        "seeds": list(range(config.seeds)), "machine": machine(), "cpus": os.cpu_count(),
        "latency": {"batch_size": 1, "threads": config.latency_threads, "repeats": config.latency_repeats},
        "sessions": previous.get("sessions", []) + [session],  # one per run of the command (resumes add one)
        "cost": comparison_cost(runs, records),
        "interrupted": interrupted,  # a signal's name: a partial report; running the command again finishes it
        "models": rows,
    }
    (folder / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    report = write_report(folder, config, models, runs, records, rows, summary)
    if verbose:
        print(f"report: {report}", flush=True)
    return CompareOutcome(folder, list(models), records, rows, report)
