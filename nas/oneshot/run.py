"""`nas search --strategy darts|pcdarts|spos|rsws`: a one-shot search as ONE Ray Tune trial.

A one-shot search is not one trial per candidate: the supernet is trained once. `run_search`
(`nas.search.run`) hands a strategy marked ``oneshot`` to `run_oneshot`, which uses the same run-folder
machinery as every search (the checked config written as ``search.json``, the claimed and locked folder,
the live progress view, Ctrl-C / SIGTERM handling, ``--resume``, ``trials.csv/json``, ``summary.json``,
``best_genome.yaml`` and ``best_weights.pt`` through `nas.search.report`) with a different Tune
experiment: no searcher, one sample, the function trainable `nas.oneshot.trainable.train_oneshot`,
which reports and checkpoints after every epoch (so ``--resume`` continues from the last epoch) with
the epoch's derived genome in its metrics. ``--trials`` is the number of paths SPOS and RSWS score
after the supernet is trained (DARTS reads its cell off the architecture weights and ignores it).

The trial's record (trials.json) carries the genome found (the last report's), not the supernet's,
so `best_genome.yaml` is that genome, ready for `nas train`; `best_weights.pt` holds its weights as
inherited from the supernet (none with partial channels), and its test accuracy with them is a
one-shot estimate, not a retrained result. `summary.json` gains ``oneshot``: the derived cell per
epoch with its parameter-free ops and skip connections, the epoch it last changed, and an early stop.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ray import tune

from nas.engine import experiment
from nas.engine.board import progress_board
from nas.engine.folder import check_claimable, check_not_in_use, own_folder
from nas.engine.interrupts import Interrupts
from nas.engine.progress import WIDTH, TrialsView, search_label
from nas.engine.recording import TUNE_DIR, RunRecorder
from nas.engine.records import CONFIG_JSON, SUMMARY_JSON, SearchTrial, read_trials, replace_file
from nas.engine.session import tune_session
from nas.engine.tune_trials import search_trial, trial_name
from nas.engine.verbosity import libraries_quiet, ray_listener_muted
from nas.oneshot.stage_supernet import check_stage_space
from nas.oneshot.supernet import OneShotError
from nas.oneshot.trainable import oneshot_trainable
from nas.registry import loaded_plugins
from nas.search import report
from nas.search.config import SearchConfig
from nas.search.run import SearchOutcome, record_interrupted
from nas.search.run_folder import begin, resume_command
from nas.search.strategies import strategy_class
from nas.spaces import load_space
from nas.spaces.cell_space import CellSpace
from nas.spaces.stages import StageSpace
from nas.train.datasets import load_dataset
from nas.units import plural

METRIC, MODE = "val_accuracy", "max"


def trial_record(index: int, trial, status: str | None = None) -> SearchTrial:
    """`search_trial`, with the genome the search found (its last report) in place of the trial's config."""
    record = search_trial(index, trial, status)
    result = trial.last_result or {}
    if result.get("genome"):
        record.genome, record.sample = result["genome"], result.get("sample")
        record.fingerprint, record.genome_name = result.get("fingerprint"), result["genome"].get("name")
    if result.get("final") and not result.get("weights_shared"):
        record.checkpoint = None  # partial channels: the genome has no weights of the supernet's
    return record


class OneShotRecorder(RunRecorder):
    """Keeps trials.csv/json current (`nas.engine.recording.RunRecorder`) after every epoch's report, the
    record carrying the genome found so far (`trial_record`)."""

    every_result = True

    def record(self, index: int, trial, status: str | None) -> SearchTrial:
        return trial_record(index, trial, status)


def check_space(config: SearchConfig) -> None:
    """The space has a supernet, and the strategy's options fit it (partial channels dividing the width)."""
    space = load_space(config.space)
    if isinstance(space, StageSpace):  # SPOS / RSWS, and a supernet derivable from the space (or one line why not)
        check_stage_space(space, config.strategy)
        strategy_class(config.strategy)(space, seed=config.seed, max_trials=config.trials, options=config.options)
        return
    if not isinstance(space, CellSpace):
        raise OneShotError(f"--strategy {config.strategy}: space {config.space!r} has no supernet (one-shot "
                           "search covers spaces of kind 'cells', e.g. --space cells)")
    strategy = strategy_class(config.strategy)(space, seed=config.seed, max_trials=config.trials,
                                               options=config.options)  # its own checks of the options
    options = strategy.options
    width, k = options.get("channels") or space.channels[0], options.get("partial_channels") or 1
    if width % k:
        raise OneShotError(f"--strategy {config.strategy}: partial_channels {k} must divide the cell width {width} "
                           "(--option channels=...)")


def changed_line(oneshot: dict[str, Any]) -> str:
    """One line: the epoch the derived cell last changed (DARTS's cells can stop changing long before the end)."""
    line = f"derived cell last changed at epoch {oneshot['derived_last_changed']} of {oneshot['epochs']}"
    return line + (f"; stopped early at {oneshot['stopped_early']}" if oneshot.get("stopped_early") else "")


def _param_space(config: SearchConfig) -> dict[str, Any]:
    options = strategy_class(config.strategy).resolve_options(config.options)
    return {"train": config.settings.to_dict(),
            "oneshot": {"strategy": config.strategy, "options": options, "seed": config.seed, "paths": config.trials}}


def _tuner(config: SearchConfig, folder: Path, trainable) -> tune.Tuner:
    tune_config = tune.TuneConfig(metric=METRIC, mode=MODE, num_samples=1, trial_name_creator=trial_name,
                                  trial_dirname_creator=trial_name)
    return experiment.new_tuner(folder, trainable, _param_space(config), tune_config, strategy=config.strategy,
                                recorder=OneShotRecorder(), max_failures=config.max_failures)


def oneshot_summary(folder: Path) -> dict[str, Any]:
    """What summary.json says of the one-shot search (from the trial's last report)."""
    records = read_trials(folder)
    tune_dir = folder / TUNE_DIR
    results = sorted(tune_dir.glob("trial_*/result.json"))
    last: dict[str, Any] = {}
    if results:
        lines = [line for line in results[0].read_text().splitlines() if line.strip()]
        last = json.loads(lines[-1]) if lines else {}
    history = [{k: v for k, v in h.items() if k != "path"} | {"cell": h.get("path")} for h in last.get("history", [])]
    return {"final": bool(last.get("final")), "epochs": last.get("epoch"),
            "best_weights": "inherited from the supernet, BN recalibrated (test accuracy is a one-shot estimate; "
                            "retrain best_genome.yaml for a real one)" if last.get("weights_shared") else None,
            "derived_last_changed": last.get("derived_last_changed"), "stopped_early": last.get("stopped_early"),
            "paths_scored": last.get("paths_scored"), "paths_over_budget": last.get("paths_over_budget"),
            "weights_shared": last.get("weights_shared"),
            "history": history, "trials": len(records)}


def run_oneshot(config: SearchConfig, folder: Path, *, address: str | None, resume: bool, retry_errored: bool,
                verbose: bool, library_logs: bool):
    """`nas.search.run.run_search` for a one-shot strategy (see the module's docstring)."""
    if not resume:
        check_claimable(folder, CONFIG_JSON, "search")
    check_not_in_use(folder, "search")
    check_space(config)
    timings: dict[str, float] = {}
    view = TrialsView(1, label=search_label, enabled=verbose)
    quiet = not library_logs
    with Interrupts() as interrupts, libraries_quiet(quiet), view, ray_listener_muted(quiet):
        view.announce(f"loading {config.dataset}")
        clock = time.perf_counter()
        data = load_dataset(config.dataset, config.data_dir, val_fraction=config.val_fraction, seed=config.seed,
                            train_limit=config.train_limit)
        timings["data_s"] = time.perf_counter() - clock
        space = load_space(config.space, input_channels=data.channels, input_size=data.size,
                           num_classes=data.num_classes)
        if not resume:
            config.plugins = loaded_plugins()
        with own_folder(folder, CONFIG_JSON, "search") as existing:
            restore = begin(folder, config, resume, existing)
            view.announce(data.describe())
            plan = (f"{config.strategy} (one-shot) over {config.space}: one supernet, "
                    f"{plural(config.settings.epochs, 'epoch')}")
            where = f"-> {folder}" + (" (resuming)" if restore else "")
            for line in ([f"{plan} {where}"] if len(plan) + len(where) < WIDTH else [plan, where]):
                view.announce(line)
            clock = time.perf_counter()
            with tune_session(address), progress_board(view) as board:  # board: the trial's in-epoch progress
                interrupts.arm()
                timings["ray_start_s"] = time.perf_counter() - clock
                clock = time.perf_counter()
                trainable = oneshot_trainable(data, space, config.resources(), board)
                if restore:
                    tuner = experiment.restored_tuner(folder, trainable, _param_space(config), retry_errored, verbose)
                else:
                    tuner = _tuner(config, folder, trainable)
                experiment.fit(tuner, interrupts, folder, board, resume=resume_command(folder),
                               on_lost=lambda: record_interrupted(folder, trial_record))
                timings["search_s"] = time.perf_counter() - clock
                if interrupts.signal is not None:  # the unfinished trial recorded INTERRUPTED
                    record_interrupted(folder, trial_record)
            summary = report.finish(folder, config.to_dict(), data, None, timings, interrupted=interrupts.signal,
                                    resumed=restore)
            summary["oneshot"] = oneshot = oneshot_summary(folder)
            if oneshot["final"]:
                view.announce(changed_line(oneshot))
            replace_file(folder / SUMMARY_JSON, json.dumps(summary, indent=2, default=str) + "\n")
            records = read_trials(folder)
    return SearchOutcome(folder, records, summary, interrupts.signal)
