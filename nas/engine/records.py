"""Typed trial records and the run folder's record files (trials.json, trials.csv), without Ray.

    records = read_records(folder)          # [SearchTrial, ...] in the order the strategy proposed them
    best = ranked(records)[0]               # (nas.engine.ranking)
    write_trials(folder, records, extra)    # trials.json and trials.csv, each replaced atomically

`TrialStatus` is the one set of statuses: Ray Tune's own (PENDING, RUNNING, PAUSED, TERMINATED, ERROR) and
INTERRUPTED (running or waiting when SIGINT/SIGTERM stopped the run; resuming continues it). It is a string
enum, so records on disk keep the plain names and compare equal to them.

`SearchTrial` is one trial of a search as trials.json holds it (one flat object per trial: its number
``trial`` from 1 and 0-based ``index``, id, status, genome, the metrics of `METRICS`, failures). Records
written by older versions (no ``trial``, fewer metrics) are migrated on read: missing fields take their
defaults, keys this version does not know are kept as they were (`SearchTrial.extra`).
"""
from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from nas.errors import NasError


class TrialStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    TERMINATED = "TERMINATED"  # finished (completed)
    ERROR = "ERROR"  # failed (after its retries)
    INTERRUPTED = "INTERRUPTED"  # running or waiting when SIGINT/SIGTERM stopped the run; resuming continues it

    @property
    def finished(self) -> bool:
        return self in FINISHED


FINISHED = frozenset({TrialStatus.TERMINATED, TrialStatus.ERROR})
UNFINISHED = frozenset({TrialStatus.PENDING, TrialStatus.RUNNING, TrialStatus.PAUSED})  # what a resume continues

CONFIG_JSON, TRIALS_JSON, TRIALS_CSV, SUMMARY_JSON = "search.json", "trials.json", "trials.csv", "summary.json"
BEST_GENOME, BEST_WEIGHTS = "best_genome.yaml", "best_weights.pt"  # the best trial's genome and weights
BEST_INPUT = "best_input.json"  # the best weights' input contract (nas.train.contract)
METRICS = ("val_accuracy", "train_loss", "params", "flops", "epoch", "epoch_time", "build_time", "train_time",
           "resumed_from", "started_at", "reported_at", "node_ip", "node_id", "device", "precision", "pid",
           "cpu_s", "gpu_s", "augment", "evaluator", "score")
CSV_COLUMNS = ("trial", "trial_id", "status", "fingerprint", "genome_name", "duplicate_of", *METRICS, "error", "failures",
               "sample")


@dataclass
class SearchTrial:
    """One trial of a search (a line of trials.csv, an object of trials.json)."""

    index: int  # 0-based, in the order the strategy proposed it
    trial_id: str
    status: TrialStatus
    fingerprint: str | None = None
    genome_name: str | None = None
    sample: Any = None
    metrics: dict[str, Any] = field(default_factory=dict)  # by name, those of METRICS the trial reported
    error: str = ""  # why it failed (status ERROR)
    failures: int = 0  # how many times it failed, a retried failure too
    last_failure: str = ""
    checkpoint: str | None = None  # its kept checkpoint's folder
    genome: dict[str, Any] | None = None
    duplicate_of: int | None = None  # the number of the first trial of the same genome
    extra: dict[str, Any] = field(default_factory=dict)  # keys of the record this version does not know

    @property
    def trial(self) -> int:
        """The trial's number everywhere (from 1): the screen, the leaderboard, Optuna, TensorBoard."""
        return self.index + 1

    @property
    def finished(self) -> bool:
        return self.status.finished

    def to_dict(self) -> dict[str, Any]:
        """trials.json's object (its keys in the order they have always had)."""
        record: dict[str, Any] = {"trial": self.trial, "index": self.index, "trial_id": self.trial_id,
                                  "status": self.status, "fingerprint": self.fingerprint,
                                  "genome_name": self.genome_name, "sample": self.sample}
        record.update({name: self.metrics.get(name) for name in METRICS})
        record.update(error=self.error, failures=self.failures, last_failure=self.last_failure,
                      checkpoint=self.checkpoint, genome=self.genome, duplicate_of=self.duplicate_of)
        record.update({k: v for k, v in self.extra.items() if k not in record})
        return record

    @classmethod
    def from_dict(cls, record: Mapping[str, Any]) -> SearchTrial:
        """A record of trials.json, of this version or an older one (see the module's docstring)."""
        index = record["index"] if "index" in record else int(record["trial"]) - 1
        known = {"trial", "index", "trial_id", "status", "fingerprint", "genome_name", "sample", *METRICS, "error",
                 "failures", "last_failure", "checkpoint", "genome", "duplicate_of"}
        return cls(index=int(index), trial_id=str(record.get("trial_id") or ""),
                   status=TrialStatus(record["status"]), fingerprint=record.get("fingerprint"),
                   genome_name=record.get("genome_name"), sample=record.get("sample"),
                   metrics={name: record[name] for name in METRICS if record.get(name) is not None},
                   error=record.get("error") or "", failures=int(record.get("failures") or 0),
                   last_failure=record.get("last_failure") or "", checkpoint=record.get("checkpoint"),
                   genome=record.get("genome"), duplicate_of=record.get("duplicate_of"),
                   extra={k: v for k, v in record.items() if k not in known})


# ----- what the records say together -----
def mark_duplicates(records: Sequence[SearchTrial]) -> int:
    """Set each record's `duplicate_of` (the number of the first trial of the same genome); return how many."""
    first: dict[str, int] = {}
    count = 0
    for record in records:
        record.duplicate_of = first.get(record.fingerprint) if record.fingerprint else None
        if record.duplicate_of is not None:
            count += 1
        elif record.fingerprint:
            first[record.fingerprint] = record.trial
    return count


def counts(records: Sequence[SearchTrial]) -> dict[str, int]:
    statuses = [r.status for r in records]
    return {
        "trials": len(records),
        "completed": statuses.count(TrialStatus.TERMINATED),
        "failed": statuses.count(TrialStatus.ERROR),
        "interrupted": statuses.count(TrialStatus.INTERRUPTED),
        "unfinished": sum(s not in FINISHED for s in statuses),
        "duplicate_trials": sum(r.duplicate_of is not None for r in records),
    }


def failure_list(records: Sequence[SearchTrial]) -> list[dict[str, Any]]:
    """The trials that failed at least once (retried or not): trial number, status, failures and the reason."""
    return [{"trial": r.trial, "trial_id": r.trial_id, "status": r.status,
             "failures": max(r.failures, r.status == TrialStatus.ERROR), "error": r.error or r.last_failure}
            for r in sorted(records, key=lambda r: r.index) if r.status == TrialStatus.ERROR or r.failures]


# ----- files -----
class RecordsError(NasError):
    """A run's trials.json cannot be read."""


def replace_file(path: Path, text: str) -> None:
    """Write atomically: readers (a progress poller) never see half a file, and a full disk leaves the old one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    except OSError as error:  # named after the file meant (not the temporary one): "trials.json: No space left"
        temporary.unlink(missing_ok=True)
        raise OSError(error.errno, error.strerror or str(error), str(path)) from error
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def cell(value: Any) -> Any:
    """A value as a CSV cell: None empty, lists and mappings as JSON."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def write_records(folder: Path, payload: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                  columns: Sequence[str]) -> None:
    """trials.json (`payload`) and trials.csv (`records`, one column per name in `columns`), each
    replaced atomically (a search's trials, a comparison's)."""
    replace_file(folder / TRIALS_JSON, json.dumps(payload, indent=1, default=str) + "\n")
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(columns)
    for record in records:
        writer.writerow([cell(record.get(column)) for column in columns])
    replace_file(folder / TRIALS_CSV, table.getvalue())


def write_trials(folder: Path, records: Iterable[SearchTrial | Mapping[str, Any]],
                 extra: Mapping[str, Any] | None = None) -> list[SearchTrial]:
    """A search's trials.json and trials.csv (in proposal order, duplicates marked); returns the records."""
    trials = sorted((r if isinstance(r, SearchTrial) else SearchTrial.from_dict(r) for r in records),
                    key=lambda r: r.index)
    mark_duplicates(trials)
    rows = [t.to_dict() for t in trials]
    write_records(folder, {"counts": counts(trials), **(extra or {}), "trials": rows}, rows, CSV_COLUMNS)
    return trials


def read_records(folder: str | Path) -> list[SearchTrial]:
    """The trials of trials.json as `SearchTrial`s ([] when there is none); `RecordsError` when it is damaged."""
    path = Path(folder) / TRIALS_JSON
    if not path.is_file():
        return []
    try:
        trials = json.loads(path.read_text())["trials"]
        if not isinstance(trials, list) or not all(isinstance(t, dict) for t in trials):
            raise TypeError("not a list of trials")
        return [SearchTrial.from_dict(t) for t in trials]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as error:
        raise RecordsError(f"{path}: damaged, not a record of trials ({type(error).__name__}: {error})") from None


def read_trials(folder: str | Path) -> list[dict[str, Any]]:
    """The trials of trials.json as plain records (`read_records`, migrated to this version's fields)."""
    return [record.to_dict() for record in read_records(folder)]
