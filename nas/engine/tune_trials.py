"""A Ray Tune trial read into a record: its status, metrics, error and failures, and its place in the order
the strategy proposed it (`search_trial`); the trials of an experiment's last snapshot after an interrupt
(`interrupted_records`)."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import cloudpickle  # Ray's own dependency (it wrote the trials' pickled errors)
from ray.tune import ExperimentAnalysis

from nas.engine.records import METRICS, SearchTrial, TrialStatus
from nas.train.failures import failure_reason

Record = TypeVar("Record")


def _error(trial) -> str:
    """Why `trial` failed, in one line. Tune writes the error next to the driver first (`error_file`,
    `pickled_error_file`) and copies it to the run's storage later, while `get_error` reads the storage:
    right after a failure (the live line, trials.json) only the driver's copy has it."""
    for read in (trial.get_pickled_error, trial.get_error, lambda: _driver_copy(trial)):
        try:
            error = read()
        except Exception:  # an error that cannot be unpickled here: fall back to the text
            continue
        if error:
            return failure_reason(error)
    return ""


def _driver_copy(trial) -> BaseException | str | None:
    """The trial's error as the driver wrote it (pickled if it could be, else as text); None if none."""
    pickled, text = getattr(trial, "pickled_error_file", None), getattr(trial, "error_file", None)
    if pickled and os.path.isfile(pickled):
        with open(pickled, "rb") as file:
            return cloudpickle.load(file)
    if text and os.path.isfile(text):
        return Path(text).read_text(errors="replace")
    return None


def failures_of(trial) -> tuple[int, str]:
    """(how many times the trial failed, the last reason), from the failure log Tune keeps for it
    (error.txt: "Failure # N (occurred at ...)" and the error, once per failure, a retried one too)."""
    paths = [Path(trial.path) / "error.txt" if getattr(trial, "path", None) else None,
             getattr(trial, "error_file", None)]
    for path in paths:
        if path and os.path.isfile(path):
            text = Path(path).read_text(errors="replace")
            count = sum(line.startswith("Failure # ") for line in text.splitlines())
            return count, failure_reason(text.split("Failure # ")[-1].split("\n", 1)[-1]) if count else ""
    return 0, ""


def proposal_index(trial, fallback: int) -> int:
    """The 0-based order in which the strategy proposed the trial. Tune's experiment tag starts with
    its trial counter ("3_..."), which survives a resume; Tune's own trial list is reordered then. A search's
    generator counts from 1; a one-shot search's single trial, made by Tune's basic generator, is "0": the
    first as well (0, not -1: "trial 1" on screen and in the records, as a search's first)."""
    head = str(getattr(trial, "experiment_tag", "") or "").split("_", 1)[0]
    return max(int(head) - 1, 0) if head.isdigit() else fallback


def trial_name(trial) -> str:
    """``trial_3_3cde63f1``: the trial's number (the screen's, trials.csv's; `proposal_index` + 1) and
    Tune's id; the trial's folder in ``tune/`` and so its run's name in TensorBoard."""
    number = proposal_index(trial, -1) + 1
    return f"trial_{number}_{trial.trial_id}" if number > 0 else f"trial_{trial.trial_id}"


def search_trial(index: int, trial, status: str | None = None) -> SearchTrial:
    """A Ray Tune trial of a search as its record; `status` overrides the trial's."""
    config = trial.config or {}
    result = trial.last_result or {}
    status = TrialStatus(status or trial.status)
    failures, last_failure = failures_of(trial)
    error = (_error(trial) or last_failure) if status == TrialStatus.ERROR else ""
    checkpoint = trial.checkpoint
    return SearchTrial(index=proposal_index(trial, index), trial_id=trial.trial_id, status=status,
                       fingerprint=config.get("fingerprint"), genome_name=(config.get("genome") or {}).get("name"),
                       sample=config.get("sample"),
                       metrics={name: result[name] for name in METRICS if result.get(name) is not None},
                       error=error, failures=failures, last_failure=last_failure,
                       checkpoint=checkpoint.path if checkpoint is not None else None, genome=config.get("genome"))


def trial_error(trial) -> str:
    """Why a failed trial failed, in one line (the live view's)."""
    return search_trial(0, trial, TrialStatus.ERROR).error or "unknown error"


def interrupted_records(tune_dir: str | Path, record: Callable[[int, Any, str | None], Record]) -> list[Record]:
    """After an interrupt: every trial of Ray Tune's last snapshot (taken as the loop stopped, before Tune stopped
    the running trials and called them TERMINATED) as `record(index, trial, status)`, the unfinished ones
    INTERRUPTED."""
    trials = ExperimentAnalysis(str(Path(tune_dir).resolve())).trials
    return [record(i, trial, None if TrialStatus(trial.status).finished else TrialStatus.INTERRUPTED)
            for i, trial in enumerate(trials)]
