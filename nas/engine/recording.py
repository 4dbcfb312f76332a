"""trials.json kept current while Ray Tune runs, in the run folder being run (also after a copy or a move).

Ray Tune saves its callbacks and its search generator with the experiment, so neither holds a path of its
own: both read the run folder of the run going on in this process (`recording_into`). A run folder copied
or moved elsewhere and resumed writes into itself, never into the original.
"""
from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.search import ConcurrencyLimiter, SearchGenerator, Searcher

from nas.engine.records import SearchTrial, TrialStatus, write_trials
from nas.engine.searcher import tune_searcher
from nas.engine.tune_trials import search_trial

TUNE_DIR = "tune"  # Ray Tune's experiment in a run folder


@dataclass
class Recording:
    """The run folder the run going on in this process records into; `stop` ends Tune's loop cleanly (as
    a first Ctrl-C does); `fault`: the first error writing the records (a full disk), raised after the loop."""

    folder: Path | None
    stop: Callable[[], None]
    fault: Exception | None = None


_RECORDING: dict[str, Recording | None] = {"now": None}


@contextlib.contextmanager
def recording_into(folder: Path | None, stop: Callable[[], None]) -> Iterator[Recording]:
    """`RunRecorder`s (and a restored `RelocatableSearchGenerator`) in this process use `folder` within."""
    previous = _RECORDING["now"]
    _RECORDING["now"] = recording = Recording(folder, stop)
    try:
        yield recording
    finally:
        _RECORDING["now"] = previous


class RunRecorder(Callback):
    """Keeps trials.csv/json current in the run folder being recorded (`recording_into`), each trial read by
    `record` (a search's: `search_trial`), rewritten whenever a trial ends (and, with `every_result`, on each
    of its reports). A write that fails (a full disk) stops the run cleanly, its unfinished trials resumable,
    and is raised after it (Tune would only log an error raised here and go on with records no longer kept)."""

    every_result = False

    def record(self, index: int, trial, status: str | None) -> SearchTrial:
        return search_trial(index, trial, status)

    def _write(self, trials, current=None, status: str | None = None) -> None:
        recording = _RECORDING["now"]
        if recording is None or recording.folder is None or recording.fault is not None:
            return
        try:
            write_trials(recording.folder, [self.record(i, trial, status if trial is current else None)
                                            for i, trial in enumerate(trials)])
        except Exception as error:  # noqa: BLE001 - raised again once Tune has stopped
            recording.fault = error
            recording.stop()

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if self.every_result:
            self._write(trials)

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        self._write(trials, trial, TrialStatus.TERMINATED)  # Tune calls back before it sets the final status

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._write(trials, trial, TrialStatus.ERROR)

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
    if recording is None or recording.folder is None or storage is None:
        return experiment
    storage = copy.copy(storage)
    storage.storage_fs_path = recording.folder.resolve().as_posix()
    storage.experiment_dir_name = TUNE_DIR
    experiment = copy.copy(experiment)
    experiment.spec = {**experiment.spec, "storage": storage}
    return experiment


def search_algorithm(searcher, concurrent: int | None) -> RelocatableSearchGenerator:
    """A strategy (in its adapter) or a Ray Tune searcher as Tune would wrap it (a `ConcurrencyLimiter` for
    `concurrent`, whose live set is saved with the searcher, inside a generator), the generator a
    `RelocatableSearchGenerator`."""
    searcher: Searcher = tune_searcher(searcher)
    return RelocatableSearchGenerator(ConcurrencyLimiter(searcher, max_concurrent=concurrent) if concurrent
                                      else searcher)
