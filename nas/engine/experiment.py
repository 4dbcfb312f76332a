"""A Ray Tune experiment in a run folder: the one `RunConfig` every run uses, a new `Tuner` or a stopped one
restored (after `nas.engine.repair`), and its loop run under the interrupt handlers with the records kept.

    tuner = (restored_tuner(folder, trainable, param_space, retry_errored) if can_restore(folder)
             else new_tuner(folder, trainable, param_space, tune_config, recorder=RunRecorder()))
    results = fit(tuner, interrupts, folder)

The experiment lives in ``<folder>/tune``: one checkpoint kept per trial, failed trials failing alone
(retried from their last checkpoint up to `max_failures` times), the loggers of `nas.engine.loggers`, the
live view of `nas.engine.progress`.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ray import tune
from ray.tune import Callback

from nas.engine.interrupts import Interrupts
from nas.engine.loggers import tune_loggers
from nas.engine.progress import ProgressCallback
from nas.engine.ray_watch import ending_without_ray, no_records
from nas.engine.recording import TUNE_DIR, recording_into
from nas.engine.repair import restore_named_checkpoints
from nas.engine.stopping import RaiseStopFlag, stopping_trials


def tune_dir(folder: Path) -> str:
    """The experiment's folder, absolute (as Ray Tune wants it)."""
    return str((Path(folder) / TUNE_DIR).resolve())


def can_restore(folder: Path) -> bool:
    """Whether `folder` holds a Ray Tune experiment to continue: its Tuner saved and a snapshot of its state
    written. Tune saves the Tuner as it is made and writes the first snapshot once its loop runs: a run stopped
    in between has nothing to continue (Tune's restore of it would run one trial and end), so it starts again."""
    path = tune_dir(folder)
    if not tune.Tuner.can_restore(path):
        return False
    try:
        tune.ExperimentAnalysis(path)
    except ValueError:  # no snapshot (an unreadable one too: where trials were recorded, the resume is refused)
        return False
    return True


def run_config(folder: Path, *, strategy: str | None = None, recorder: Callback | None = None,
               max_failures: int = 0, callbacks: Sequence[Callback] = ()) -> tune.RunConfig:
    """The experiment ``<folder>/tune``: one checkpoint per trial, a failing trial fails alone (retried up to
    `max_failures` times), the loggers (TensorBoard's hparams name `strategy`), the run's `recorder` (trials.json
    kept current), the live view."""
    return tune.RunConfig(
        name=TUNE_DIR,
        storage_path=str(Path(folder).resolve()),
        failure_config=tune.FailureConfig(max_failures=max_failures, fail_fast=False),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        callbacks=[*tune_loggers(strategy), *([recorder] if recorder is not None else []), *callbacks,
                   ProgressCallback(), RaiseStopFlag()],  # RaiseStopFlag last: a restore pairs saved states by place
        verbose=0,
    )


def new_tuner(folder: Path, trainable, param_space: dict[str, Any], tune_config: tune.TuneConfig,
              **run: Any) -> tune.Tuner:
    """A new experiment in `folder` (`run`: `run_config`'s options)."""
    return tune.Tuner(trainable, param_space=param_space, tune_config=tune_config,
                      run_config=run_config(folder, **run))


def restored_tuner(folder: Path, trainable, param_space: dict[str, Any], retry_errored: bool = False,
                   verbose: bool = False) -> tune.Tuner:
    """The stopped experiment in `folder`, its unfinished trials given back their named checkpoints first
    (`restore_named_checkpoints`); they continue from there, failed ones start again with `retry_errored`."""
    path = tune_dir(folder)
    restore_named_checkpoints(path, verbose)
    return tune.Tuner.restore(path, trainable, resume_unfinished=True, restart_errored=retry_errored,
                              param_space=param_space)


def fit(tuner: tune.Tuner, interrupts: Interrupts, folder: Path | None = None, board: str | None = None,
        on_lost: Callable[[], None] = no_records, resume: str | None = None):
    """Run Tune's loop, SIGINT/SIGTERM stopping it cleanly (the trials of the run whose board is `board` at once:
    `nas.engine.stopping`), the run's records kept in `folder` (`recording_into`); an error writing them is
    raised once the loop has stopped. A signal that ended Ray's own processes too ends the process at once
    (`nas.engine.ray_watch`), after `on_lost()` has written the interrupted run's records, printing `resume`
    (the command that continues the run). Returns Tune's results."""
    with interrupts.tuning(), stopping_trials(interrupts, board), ending_without_ray(interrupts, on_lost, resume), \
            recording_into(folder, interrupts.stop_tuning) as recording:
        results = tuner.fit()
    if recording.fault is not None:
        raise recording.fault
    return results
