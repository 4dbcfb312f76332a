"""Typed trial records of a comparison and its record files (trials.json, trials.csv), without Ray.

    records = read_trials(folder)       # [CompareTrial, ...] in the order of the plan, then seed
    write_trials(folder, records)       # trials.json and trials.csv, each replaced atomically

`CompareTrial` is one trial of a comparison (one model trained with one seed) as trials.json holds it:
one flat object with the fields of `TRIAL_FIELDS`, in that order; its status is a
`nas.engine.records.TrialStatus` (TERMINATED, ERROR, or INTERRUPTED after a signal stopped it). Records
written by older versions (no ``cpu_s``/``gpu_s``) are migrated on read: missing fields take their
defaults, keys this version does not know are kept as they were (`CompareTrial.extra`).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from nas.engine.records import TRIALS_JSON, TrialStatus, write_records
from nas.errors import NasError

METRICS = ("test_accuracy", "val_accuracy", "train_loss", "epoch", "train_time", "cpu_s", "gpu_s", "params", "flops")
TRIAL_FIELDS = ("model", "seed", "status", "test_accuracy", "val_accuracy", "train_loss", "epoch", "train_time",
                "cpu_s", "gpu_s", "params", "flops", "trial_id", "error")  # trials.json's keys, trials.csv's columns


@dataclass
class CompareTrial:
    """One trial of a comparison (a line of trials.csv, an object of trials.json): a model and a seed."""

    model: str  # the model's label in the plan
    seed: int
    status: TrialStatus
    trial_id: str | None = None  # Ray Tune's
    test_accuracy: float | None = None  # after the last epoch
    val_accuracy: float | None = None
    train_loss: float | None = None
    epoch: int | None = None  # epochs trained
    train_time: float | None = None  # seconds
    cpu_s: float | None = None  # the trial's process time
    gpu_s: float | None = None
    params: int | None = None
    flops: int | None = None
    error: str = ""  # why it failed (status ERROR)
    extra: dict[str, Any] = field(default_factory=dict)  # keys of the record this version does not know

    @classmethod
    def from_metrics(cls, model: str, seed: int, status: TrialStatus, metrics: Mapping[str, Any],
                     trial_id: str | None = None, error: str = "") -> CompareTrial:
        """A trial from what it reported (`metrics`: Ray Tune's result, the names of `METRICS`)."""
        return cls(model=model, seed=seed, status=status, trial_id=trial_id, error=error,
                   **{name: metrics.get(name) for name in METRICS})

    @property
    def finished(self) -> bool:
        """It ran to its last epoch: its test accuracy counts."""
        return self.status == TrialStatus.TERMINATED

    @property
    def failed(self) -> bool:
        """It did not finish and was not stopped by a signal (a resume would not continue it)."""
        return self.status not in (TrialStatus.TERMINATED, TrialStatus.INTERRUPTED)

    def to_dict(self) -> dict[str, Any]:
        """trials.json's object (the keys of `TRIAL_FIELDS` in that order, then any kept unknown ones)."""
        record = {name: getattr(self, name) for name in TRIAL_FIELDS}
        record.update({k: v for k, v in self.extra.items() if k not in record})
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> CompareTrial:
        """A record of trials.json, of this version or an older one (see the module's docstring)."""
        known = {f.name for f in fields(cls)} - {"extra"}
        return cls(**{name: record.get(name) for name in known - {"model", "seed", "status", "error"}},
                   model=record["model"], seed=record["seed"], status=TrialStatus(record["status"]),
                   error=record.get("error") or "", extra={k: v for k, v in record.items() if k not in known})


class CompareRecordsError(NasError):
    """A comparison's trials.json cannot be read."""


def write_trials(folder: Path, records: Iterable[CompareTrial]) -> None:
    """A comparison's trials.json and trials.csv (in the order given), each replaced atomically."""
    rows = [record.to_dict() for record in records]
    write_records(folder, {"trials": rows}, rows, TRIAL_FIELDS)


def read_trials(folder: str | Path) -> list[CompareTrial]:
    """The trials of a comparison's trials.json as `CompareTrial`s; `CompareRecordsError` when it is missing or
    damaged."""
    path = Path(folder) / TRIALS_JSON
    if not path.is_file():
        raise CompareRecordsError(f"{path}: missing; not a comparison folder with trials")
    try:
        trials = json.loads(path.read_text())["trials"]
        if not isinstance(trials, list) or not all(isinstance(t, dict) for t in trials):
            raise TypeError("not a list of trials")
        return [CompareTrial.from_dict(t) for t in trials]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
        raise CompareRecordsError(f"{path}: damaged, not a comparison's trials ({type(error).__name__}: {error})"
                                  ) from None
