"""Loggers written for every trial of a search or comparison in ``RUN/tune``: Ray Tune's ``result.json``
(every report) and ``progress.csv`` (the same as a table), and TensorBoard event files
(``events.out.tfevents.*``, through tensorboardX, which ``ray[tune]`` installs), so that

    tensorboard --logdir RUN/tune

shows every trial's curves. They are given explicitly (Tune's automatic loggers are switched off
with TUNE_DISABLE_AUTO_CALLBACK_LOGGERS, see `nas.search.run`), so the files do not depend on Ray's
version or on the environment (Ray 2.60 adds the same three itself unless that variable is set;
Ray 2.60 reads no RAY_AIR_DEFAULT_LOGGERS).

The TensorBoard logger is this module's `TrialBoard`: a trial's run (its folder, ``trial_<number>_<id>``
for a search: the number the screen and trials.csv give it) holds the trial's own figures against its
epoch (``nas/val_accuracy``, ``nas/train_loss``, ...; none of Tune's bookkeeping: ``done``,
``training_iteration``, ``time_*``, ...) and, when it ends, its hyperparameters (the sample's choices
and the strategy, under HPARAMS) with its last figures, for TensorBoard's HPARAMS tab.
"""
from __future__ import annotations

import math
from typing import Any

from ray.tune import Callback
from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback, LoggerCallback

# what Tune (and our trainable, for its clock stamps) adds to every result: not a trial's figures
BOOKKEEPING = frozenset({
    "done", "should_checkpoint", "training_iteration", "iterations_since_restore", "timestamp", "time_this_iter_s",
    "time_total_s", "time_since_restore", "pid", "reported_at", "started_at", "resumed_from", "date", "hostname",
    "node_ip", "node_id", "trial_id", "experiment_tag", "checkpoint_dir_name", "config", "episodes_total",
    "timesteps_total", "timesteps_since_restore",
})
HPARAM_TYPES = (str, bool, int, float)


def figures(result: dict[str, Any]) -> dict[str, float]:
    """The trial's own numbers in a result: finite ints and floats, Tune's bookkeeping left out."""
    return {key: float(value) for key, value in result.items()
            if key not in BOOKKEEPING and isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value)}


def hparams(trial, strategy: str | None) -> dict[str, Any]:
    """A trial's hyperparameters for TensorBoard: its sample's choices (a search's; a comparison's model and
    seed) and the strategy; values that are not plain scalars as text."""
    config = trial.config or {}
    chosen = dict(config.get("sample") or {})
    for key in ("model", "seed"):
        if key in config and not chosen:
            chosen[key] = config[key]
    chosen = {key: value if isinstance(value, HPARAM_TYPES) else str(value) for key, value in chosen.items()}
    if strategy:
        chosen["strategy"] = strategy
    return chosen


class TrialBoard(LoggerCallback):
    """TensorBoard event files in each trial's folder: its figures by epoch, then its hyperparameters."""

    def __init__(self, strategy: str | None = None):
        from tensorboardX import SummaryWriter  # ImportError: tensorboardX missing (ray[tune] installs it)

        self._writer_class = SummaryWriter
        self.strategy = strategy
        self._writers: dict[Any, Any] = {}
        self._last: dict[Any, dict[str, float]] = {}

    def __getstate__(self) -> dict[str, Any]:  # saved with the experiment: no open files
        return {**self.__dict__, "_writers": {}, "_last": {}}

    def _writer(self, trial):
        if trial not in self._writers:
            trial.init_local_path()
            self._writers[trial] = self._writer_class(trial.local_path, flush_secs=30)
        return self._writers[trial]

    def log_trial_start(self, trial) -> None:
        self._writer(trial)

    def log_trial_result(self, iteration: int, trial, result: dict) -> None:
        numbers = figures(result)
        step = result.get("epoch") if isinstance(result.get("epoch"), int) else result.get("training_iteration", 0)
        writer = self._writer(trial)
        for key, value in numbers.items():
            writer.add_scalar(f"nas/{key}", value, global_step=step)
        writer.flush()
        self._last[trial] = numbers

    def log_trial_end(self, trial, failed: bool = False) -> None:
        writer = self._writers.pop(trial, None)
        last = self._last.pop(trial, None)
        if writer is None:
            return
        if last and not failed:  # as SummaryWriter.add_hparams does, into this run (not a run of its own)
            from tensorboardX.summary import hparams as hparams_summary  # (optional, as SummaryWriter above)

            metrics = {f"hparams/{key}": value for key, value in last.items()}
            for summary in hparams_summary(hparams(trial, self.strategy), metrics):
                writer.file_writer.add_summary(summary)
            for key, value in metrics.items():
                writer.add_scalar(key, value)
        writer.close()


def tune_loggers(strategy: str | None = None) -> list[Callback]:
    """JSON, CSV and TensorBoard logger callbacks for a Tune `RunConfig`; `strategy`: a search's, for its
    trials' hyperparameters in TensorBoard."""
    loggers: list[Callback] = [JsonLoggerCallback(), CSVLoggerCallback()]
    try:
        loggers.append(TrialBoard(strategy))
    except ImportError:  # tensorboardX missing (ray[tune] installs it): no event files, the rest works
        pass
    return loggers
