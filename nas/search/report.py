"""A search's run folder: the record of every trial, the best genome and its weights, a plot, a summary.

Files (all in the run folder):
  search.json               the search's configuration (written by nas.search.run; what --resume reads)
  trials.json / trials.csv  every trial in the order the strategy proposed it: sample, fingerprint,
                            metrics, status, failure reason, node; rewritten whenever a trial ends
  best_genome.yaml          the best trial's genome (what `nas build` reads), for the data set's input
  best_weights.pt           its trained weights (a state_dict of `nas.build(genome)`)
  best_so_far.png           best validation accuracy so far against trial index
  summary.json              counts, best trial with its test accuracy, timings, duplicates avoided, and
                            "interrupted" (the signal's name when SIGINT/SIGTERM stopped the search, else null)
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.errors import NasError
from nas.train.failures import failure_reason
from nas.units import si

FINISHED = ("TERMINATED", "ERROR")
INTERRUPTED = "INTERRUPTED"  # running or waiting when SIGINT/SIGTERM stopped the search; --resume continues it
CONFIG_JSON, TRIALS_JSON, TRIALS_CSV, SUMMARY_JSON = "search.json", "trials.json", "trials.csv", "summary.json"
BEST_GENOME, BEST_WEIGHTS, BEST_PLOT = "best_genome.yaml", "best_weights.pt", "best_so_far.png"
METRICS = ("val_accuracy", "train_loss", "params", "flops", "epoch", "epoch_time", "build_time", "train_time",
           "resumed_from", "started_at", "reported_at", "node_ip", "node_id", "device", "precision", "pid")
CSV_COLUMNS = ("index", "trial_id", "status", "fingerprint", "genome_name", "duplicate_of", *METRICS, "error", "sample")


# ----- one trial -----
def _error(trial) -> str:
    for read in (trial.get_pickled_error, trial.get_error):
        try:
            error = read()
        except Exception:  # an error that cannot be unpickled here: fall back to the text
            continue
        if error:
            return failure_reason(error)
    return ""


def _checkpoint_path(trial) -> str | None:
    checkpoint = trial.checkpoint
    return checkpoint.path if checkpoint is not None else None


def proposal_index(trial, fallback: int) -> int:
    """The 0-based order in which the strategy proposed the trial. Tune's experiment tag starts with
    its trial counter ("3_..."), which survives a resume; Tune's own trial list is reordered then."""
    head = str(getattr(trial, "experiment_tag", "") or "").split("_", 1)[0]
    return int(head) - 1 if head.isdigit() else fallback


def trial_record(index: int, trial, status: str | None = None) -> dict[str, Any]:
    """A Ray Tune trial as plain data (what trials.json holds); `status` overrides the trial's."""
    index = proposal_index(trial, index)
    config = trial.config or {}
    result = trial.last_result or {}
    status = status or trial.status
    record: dict[str, Any] = {
        "index": index,
        "trial_id": trial.trial_id,
        "status": status,
        "fingerprint": config.get("fingerprint"),
        "genome_name": (config.get("genome") or {}).get("name"),
        "sample": config.get("sample"),
    }
    record.update({name: result.get(name) for name in METRICS})
    record["error"] = _error(trial) if status == "ERROR" else ""
    record["checkpoint"] = _checkpoint_path(trial)
    record["genome"] = config.get("genome")
    return record


def mark_duplicates(records: Sequence[dict[str, Any]]) -> int:
    """Set each record's `duplicate_of` (index of the first trial of the same genome); return how many."""
    first: dict[str, int] = {}
    count = 0
    for record in records:
        fingerprint = record.get("fingerprint")
        record["duplicate_of"] = first.get(fingerprint) if fingerprint else None
        if record["duplicate_of"] is not None:
            count += 1
        elif fingerprint:
            first[fingerprint] = record["index"]
    return count


def counts(records: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    statuses = [r["status"] for r in records]
    return {
        "trials": len(records),
        "completed": statuses.count("TERMINATED"),
        "failed": statuses.count("ERROR"),
        "interrupted": statuses.count(INTERRUPTED),
        "unfinished": sum(s not in FINISHED for s in statuses),
        "duplicate_trials": sum(r.get("duplicate_of") is not None for r in records),
    }


# ----- files -----
class RecordsError(NasError):
    """A run's trials.json cannot be read."""


def replace_file(path: Path, text: str) -> None:
    """Write atomically: readers (a progress poller) never see half a file, and a full disk leaves the old one."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def write_trials(folder: Path, records: list[dict[str, Any]], extra: Mapping[str, Any] | None = None) -> None:
    records.sort(key=lambda r: r["index"])
    mark_duplicates(records)
    payload = {"counts": counts(records), **(extra or {}), "trials": records}
    write_records(folder, payload, records, CSV_COLUMNS)


def write_records(folder: Path, payload: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                  columns: Sequence[str]) -> None:
    """trials.json (`payload`) and trials.csv (`records`, one column per name in `columns`), each
    replaced atomically."""
    replace_file(folder / TRIALS_JSON, json.dumps(payload, indent=1, default=str) + "\n")
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(columns)
    for record in records:
        writer.writerow([_cell(record.get(column)) for column in columns])
    replace_file(folder / TRIALS_CSV, table.getvalue())


def read_trials(folder: str | Path) -> list[dict[str, Any]]:
    """The trial records of trials.json ([] when there is none); `RecordsError` when it is damaged."""
    path = Path(folder) / TRIALS_JSON
    if not path.is_file():
        return []
    try:
        trials = json.loads(path.read_text())["trials"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as error:
        raise RecordsError(f"{path}: damaged, not a record of trials ({type(error).__name__}: {error})") from None
    if not isinstance(trials, list) or not all(isinstance(t, dict) for t in trials):
        raise RecordsError(f"{path}: damaged, not a record of trials")
    return trials


# ----- ranking -----
def _accuracy(record: Mapping[str, Any]) -> float | None:
    value = record.get("val_accuracy")
    return value if isinstance(value, (int, float)) and math.isfinite(value) else None


def ranked(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Completed trials, best first: validation accuracy, then fewer parameters, then earlier."""
    done = [r for r in records if r["status"] == "TERMINATED" and _accuracy(r) is not None]
    return sorted(done, key=lambda r: (-_accuracy(r), r.get("params") or 0, r["index"]))


def best_so_far(records: Sequence[Mapping[str, Any]]) -> list[float | None]:
    best: float | None = None
    curve = []
    for record in sorted(records, key=lambda r: r["index"]):
        accuracy = _accuracy(record) if record["status"] == "TERMINATED" else None
        if accuracy is not None and (best is None or accuracy > best):
            best = accuracy
        curve.append(best)
    return curve


def trial_points(records: Sequence[Mapping[str, Any]]) -> list[tuple[int, float]]:
    """(trial number from 1, validation accuracy) of every completed trial that has one, in trial order."""
    return [(r["index"] + 1, _accuracy(r)) for r in sorted(records, key=lambda r: r["index"])
            if r["status"] == "TERMINATED" and _accuracy(r) is not None]


def best_so_far_points(records: Sequence[Mapping[str, Any]]) -> list[tuple[int, float]]:
    """(trial number from 1, best validation accuracy up to it) from the first completed trial on."""
    return [(i + 1, v) for i, v in enumerate(best_so_far(records)) if v is not None]


def plot_best_so_far(records: Sequence[Mapping[str, Any]], path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    done, curve = trial_points(records), best_so_far_points(records)
    failed = [r["index"] + 1 for r in records if r["status"] == "ERROR"]
    if done:
        axes.scatter(*zip(*done), s=14, color="tab:gray", alpha=0.6, label="trial")
    if curve:
        axes.step(*zip(*curve), where="post", color="tab:blue", linewidth=2, label="best so far")
    if failed:
        axes.scatter(failed, [0.0] * len(failed), marker="x", color="tab:red", label="failed")
    return save_accuracy_plot(figure, axes, path, "trial", "validation accuracy", title)


def save_accuracy_plot(figure, axes, path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    """Label, grid and legend (lower right, where accuracy curves leave room) an accuracy plot; save and close it."""
    from matplotlib import pyplot as plt

    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


# ----- text -----
def progress_line(record: Mapping[str, Any], done: int, total: int) -> str:
    width = len(str(total))
    head = f"[{done:>{width}}/{total}] trial {record['index'] + 1:>{width}} {record['trial_id']}"
    if record["status"] == "ERROR":
        return f"{head}  FAILED  {record.get('error') or 'unknown error'}"
    accuracy = _accuracy(record)
    return (f"{head}  val {accuracy if accuracy is None else f'{accuracy:.4f}'}  params {si(record.get('params'))}"
            f"  FLOPs {si(record.get('flops'))}  {record.get('epoch')} ep  {record.get('train_time') or 0:.1f}s"
            f"  {(record.get('fingerprint') or '')[:10]}")


LEADERBOARD_COLUMNS = ("rank", "trial", "val acc", "params", "FLOPs", "epochs", "time (s)", "fingerprint", "node")


def leaderboard(records: Sequence[dict[str, Any]], top: int = 10) -> list[tuple[str, ...]]:
    rows = []
    for rank, record in enumerate(ranked(records)[:top], start=1):
        rows.append((str(rank), str(record["index"] + 1), f"{record['val_accuracy']:.4f}", si(record.get("params")),
                     si(record.get("flops")), str(record.get("epoch")), f"{record.get('train_time') or 0:.1f}",
                     (record.get("fingerprint") or "")[:12], str(record.get("node_ip") or "")))
    return rows


# ----- the end of a search -----
def signal_name(signum: int | None) -> str | None:
    import signal

    return signal.Signals(signum).name if signum is not None else None



def test_accuracy(genome_spec: Mapping[str, Any], weights: Mapping[str, Any], data) -> float:
    """Accuracy of the genome with `weights` on the data set's test split (on this machine's CPU)."""
    import torch

    from nas.compiler import build
    from nas.genome import Genome
    from nas.train.loop import Precision, evaluate
    from nas.train.settings import TrainSettings

    model = build(Genome.from_dict(genome_spec), num_classes=data.num_classes, in_channels=data.channels,
                  input_size=data.size)
    model.load_state_dict(weights)
    return evaluate(model, data, data.test, Precision.choose("off", torch.device("cpu")),
                    TrainSettings.eval_batch_size)


def write_best(folder: Path, best: dict[str, Any], data) -> dict[str, Any]:
    """Best genome (YAML), its weights and its test accuracy; returns what was written."""
    import torch

    from nas.genome import Genome
    from nas.train.checkpointing import load_weights

    written: dict[str, Any] = {}
    genome = Genome.from_dict(best["genome"])
    genome.save(folder / BEST_GENOME)
    written["genome_file"] = BEST_GENOME
    if best.get("checkpoint") and Path(best["checkpoint"]).is_dir():
        weights = load_weights(best["checkpoint"])
        torch.save(weights, folder / BEST_WEIGHTS)
        written["weights_file"] = BEST_WEIGHTS
        written["test_accuracy"] = test_accuracy(best["genome"], weights, data)
    return written


def finish(folder: Path, config: Mapping[str, Any], data, searcher, timings: Mapping[str, float],
           interrupted: int | None = None) -> dict[str, Any]:
    """Write the final trial record, the best genome, weights and plot, and summary.json; return the summary.
    `interrupted`: the signal that stopped the search (its unfinished trials are already recorded INTERRUPTED)."""
    records = read_trials(folder)
    extra = {}
    if searcher is not None:
        extra = {"duplicates_avoided": getattr(searcher, "duplicates_avoided", None),
                 "invalid_proposals": getattr(searcher, "invalid_proposals", None)}
    write_trials(folder, records, extra)
    summary: dict[str, Any] = {"config": dict(config), "data": data.describe(), "counts": counts(records), **extra,
                               "interrupted": signal_name(interrupted),
                               "timings": {k: round(v, 3) for k, v in timings.items()}}
    order = ranked(records)
    if order:
        best = dict(order[0])
        best.update(write_best(folder, best, data))
        summary["best"] = {k: v for k, v in best.items() if k != "genome"}
    plot_best_so_far(records, folder / BEST_PLOT, title=f"{config.get('strategy')} on {config.get('dataset')}")
    replace_file(folder / SUMMARY_JSON, json.dumps(summary, indent=2, default=str) + "\n")
    return summary
