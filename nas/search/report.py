"""A search's run folder: the record of every trial, the best genome and its weights, a plot, a summary.

Files (all in the run folder):
  search.json               the search's configuration (written by nas.search.run; what --resume reads)
  trials.json / trials.csv  every trial in the order the strategy proposed it: its number (`trial`, from 1:
                            the screen's, the leaderboard's, Optuna's user attribute "trial", the
                            TensorBoard run's trial_<number>_<id>; trials.json also keeps the 0-based
                            `index`), sample, fingerprint,
                            metrics, status, failure reason, node; rewritten whenever a trial ends
  best_genome.yaml          the best trial's genome (what `nas build` reads), for the data set's input
  best_weights.pt           its trained weights (a state_dict of `nas.build(genome)`)
  best_input.json           what they must be fed: input shape, pixel scale, mean/std, class names
                            (nas.train.contract; `nas export` reads it)
  best_so_far.png           best validation accuracy so far against trial index and against search cost
  summary.json              counts, best trial with its test accuracy, timings (seconds: data, Ray's start
                            and stop, search, best_test, plots, finish), duplicates avoided, the
                            search's cost (CPU and GPU seconds in all, and up to the best trial), and
                            "interrupted" (the signal's name when SIGINT/SIGTERM stopped the search, else null)
  pareto.csv / pareto.png   several objectives (optuna's NSGA-II): the trials no other trial beats on
                            every objective, and a plot of all trials with that set; "best" stays the
                            best validation accuracy (summary.json's "best_by")

Cost: every trial reports cpu_s (CPU seconds of its process) and gpu_s (wall seconds x the GPU
fraction it holds), carried over resumes. A run's cost unit is GPU seconds when any trial ran on a
GPU, else CPU seconds; cumulative costs add the trials in the order the strategy proposed them (all
of them, failed and unfinished ones too), so "the cost to reach the best result" is what the trials
up to and including the best one cost, whatever ran concurrently.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.errors import NasError
from nas.train.failures import failure_reason
from nas.units import si

FINISHED = ("TERMINATED", "ERROR")
INTERRUPTED = "INTERRUPTED"  # running or waiting when SIGINT/SIGTERM stopped the search; --resume continues it
CONFIG_JSON, TRIALS_JSON, TRIALS_CSV, SUMMARY_JSON = "search.json", "trials.json", "trials.csv", "summary.json"
BEST_GENOME, BEST_WEIGHTS, BEST_PLOT = "best_genome.yaml", "best_weights.pt", "best_so_far.png"
BEST_INPUT = "best_input.json"  # the best weights' input contract (nas.train.contract)
PARETO_CSV, PARETO_PLOT = "pareto.csv", "pareto.png"
BEST_BY = "val_accuracy"  # the objective that picks "best" (the leaderboard's order), also with several
METRICS = ("val_accuracy", "train_loss", "params", "flops", "epoch", "epoch_time", "build_time", "train_time",
           "resumed_from", "started_at", "reported_at", "node_ip", "node_id", "device", "precision", "pid",
           "cpu_s", "gpu_s", "augment", "evaluator", "score")
CSV_COLUMNS = ("trial", "trial_id", "status", "fingerprint", "genome_name", "duplicate_of", *METRICS, "error", "failures",
               "sample")


# ----- one trial -----
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
        import cloudpickle  # Ray's own dependency, which wrote the file

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
        "trial": index + 1,  # the trial's number everywhere: the screen, the leaderboard, Optuna, TensorBoard
        "index": index,  # (0-based, as records before "trial" had it)
        "trial_id": trial.trial_id,
        "status": status,
        "fingerprint": config.get("fingerprint"),
        "genome_name": (config.get("genome") or {}).get("name"),
        "sample": config.get("sample"),
    }
    record.update({name: result.get(name) for name in METRICS})
    record["error"] = _error(trial) if status == "ERROR" else ""
    record["failures"], record["last_failure"] = failures_of(trial)
    if status == "ERROR" and not record["error"]:
        record["error"] = record["last_failure"]
    record["checkpoint"] = _checkpoint_path(trial)
    record["genome"] = config.get("genome")
    return record


def mark_duplicates(records: Sequence[dict[str, Any]]) -> int:
    """Set each record's `duplicate_of` (the number of the first trial of the same genome); return how many."""
    first: dict[str, int] = {}
    count = 0
    for record in records:
        fingerprint = record.get("fingerprint")
        record["duplicate_of"] = first.get(fingerprint) if fingerprint else None
        if record["duplicate_of"] is not None:
            count += 1
        elif fingerprint:
            first[fingerprint] = record["index"] + 1
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


def failure_list(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The trials that failed at least once (retried or not): trial number, status, failures and the reason."""
    return [{"trial": r["index"] + 1, "trial_id": r["trial_id"], "status": r["status"],
             "failures": max(int(r.get("failures") or 0), r["status"] == "ERROR"),
             "error": r.get("error") or r.get("last_failure") or ""}
            for r in sorted(records, key=lambda r: r["index"]) if r["status"] == "ERROR" or r.get("failures")]


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


def trial_footprint(folder: str | Path) -> int | None:
    """Bytes the largest trial takes in the run folder (its kept checkpoint, results and logs); None
    before any trial wrote there."""
    sizes = [sum(f.stat().st_size for f in trial.rglob("*") if f.is_file())
             for trial in (Path(folder) / "tune").glob("trial_*") if trial.is_dir()]
    return max(sizes) if sizes and max(sizes) > 0 else None


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return value


def write_trials(folder: Path, records: list[dict[str, Any]], extra: Mapping[str, Any] | None = None) -> None:
    records.sort(key=lambda r: r["index"])
    for record in records:  # (records of an older version have no "trial")
        record.setdefault("trial", record["index"] + 1)
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
    """The trial's validation accuracy; for a proxy-scored trial (nas.evaluate), which has none, its score."""
    value = record.get("val_accuracy")
    if value is None:
        value = record.get("score")
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


# ----- cost -----
COST_UNITS = {"cpu_s": "CPU seconds", "gpu_s": "GPU seconds"}


def cost_key(records: Sequence[Mapping[str, Any]]) -> str:
    """The run's cost metric: gpu_s when any trial spent GPU time, else cpu_s."""
    return "gpu_s" if any((r.get("gpu_s") or 0) > 0 for r in records) else "cpu_s"


def _cost(record: Mapping[str, Any], key: str) -> float:
    value = record.get(key)
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else 0.0


def cumulative_costs(records: Sequence[Mapping[str, Any]], key: str | None = None) -> list[float]:
    """Cost of the trials up to and including each one, in proposal order (one value per trial)."""
    key = key or cost_key(records)
    total, out = 0.0, []
    for record in sorted(records, key=lambda r: r["index"]):
        total += _cost(record, key)
        out.append(total)
    return out


def cost_points(records: Sequence[Mapping[str, Any]], key: str | None = None
                ) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(cumulative cost, validation accuracy) of every completed trial, and (cumulative cost, best
    validation accuracy so far) from the first completed trial on: the any-time curve against cost."""
    key = key or cost_key(records)
    order = sorted(records, key=lambda r: r["index"])
    costs, curve = cumulative_costs(order, key), best_so_far(order)
    done = [(c, _accuracy(r)) for c, r in zip(costs, order) if r["status"] == "TERMINATED" and _accuracy(r) is not None]
    return done, [(c, v) for c, v in zip(costs, curve) if v is not None]


def cost_summary(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """CPU and GPU seconds of all trials, the unit the run is measured in, and what the trials up to
    the best one cost (None without a completed trial)."""
    key = cost_key(records)
    order = sorted(records, key=lambda r: r["index"])
    summary: dict[str, Any] = {"unit": COST_UNITS[key], "metric": key,
                               "cpu_s": round(sum(_cost(r, "cpu_s") for r in records), 3),
                               "gpu_s": round(sum(_cost(r, "gpu_s") for r in records), 3),
                               "to_best_s": None, "best_trial": None}
    best = ranked(list(records))
    if best:
        position = next(i for i, r in enumerate(order) if r["index"] == best[0]["index"])
        summary["to_best_s"] = round(cumulative_costs(order, key)[position], 3)
        summary["best_trial"] = best[0]["index"] + 1
    return summary


def plot_best_so_far(records: Sequence[Mapping[str, Any]], path: Path, title: str = "") -> Path:
    """Two panels: validation accuracy against the trial number, and against the search's cost."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (by_trial, by_cost) = plt.subplots(1, 2, figsize=(11.0, 4.0), dpi=120, sharey=True)
    done, curve = trial_points(records), best_so_far_points(records)
    failed = [r["index"] + 1 for r in records if r["status"] == "ERROR"]
    if done:
        by_trial.scatter(*zip(*done), s=14, color="tab:gray", alpha=0.6, label="trial")
    if curve:
        by_trial.step(*zip(*curve), where="post", color="tab:blue", linewidth=2, label="best so far")
    if failed:
        by_trial.scatter(failed, [0.0] * len(failed), marker="x", color="tab:red", label="failed")
    key = cost_key(records)
    cost_done, cost_curve = cost_points(records, key)
    if cost_done:
        by_cost.scatter(*zip(*cost_done), s=14, color="tab:gray", alpha=0.6, label="trial")
    if cost_curve:
        by_cost.step(*zip(*cost_curve), where="post", color="tab:blue", linewidth=2, label="best so far")
    by_cost.set_xlim(left=0)
    style_accuracy_axes(by_cost, f"search cost ({COST_UNITS[key]}, trials in proposal order)", "", "")
    scored = any(r.get("val_accuracy") is None and r.get("score") is not None for r in records)  # by a proxy
    return save_accuracy_plot(figure, by_trial, path, "trial", "proxy score" if scored else "validation accuracy", title)


def style_accuracy_axes(axes, xlabel: str, ylabel: str, title: str) -> None:
    """Label, grid and legend (lower right, where accuracy curves leave room) one accuracy panel."""
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(loc="lower right")


def save_accuracy_plot(figure, axes, path: Path, xlabel: str, ylabel: str, title: str) -> Path:
    """Style `axes` as an accuracy plot (style_accuracy_axes); save and close the figure."""
    from matplotlib import pyplot as plt

    style_accuracy_axes(axes, xlabel, ylabel, title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


# ----- text -----
LEADERBOARD_COLUMNS = ("rank", "trial", "val acc", "params", "FLOPs", "epochs", "time (s)", "fingerprint", "node")


def leaderboard(records: Sequence[dict[str, Any]], top: int = 10) -> list[tuple[str, ...]]:
    rows = []
    for rank, record in enumerate(ranked(records)[:top], start=1):
        value = _accuracy(record)
        shown = f"{value:.4f}" if record.get("val_accuracy") is not None else f"{value:.4g}"  # a proxy's score
        rows.append((str(rank), str(record["index"] + 1), shown, si(record.get("params")),
                     si(record.get("flops")), str(record.get("epoch")), f"{record.get('train_time') or 0:.1f}",
                     (record.get("fingerprint") or "")[:12], str(record.get("node_ip") or "")))
    return rows


# ----- several objectives -----
def objectives_of(config: Mapping[str, Any]) -> tuple[list[str], list[str]] | None:
    """The (objectives, directions) of a multi-objective search's config; None for a single objective."""
    options = config.get("options") or {}
    names = list(options.get("objectives") or [])
    if len(names) < 2:
        return None
    directions = list(options.get("directions") or [])
    if len(directions) != len(names):  # the optuna strategy's defaults
        from nas.search.strategies.base import MINIMIZED

        directions = ["min" if name in MINIMIZED and name != BEST_BY else "max" for name in names]
    return names, directions


def pareto_set(records: Sequence[Mapping[str, Any]], objectives: Sequence[str],
               directions: Sequence[str]) -> list[Mapping[str, Any]]:
    """Completed trials (first of each genome) that no other is at least as good as on every objective
    and better on one; ordered by the first objective, best first."""
    signs = [1.0 if d == "max" else -1.0 for d in directions]
    points = []
    for record in records:
        values = [record.get(name) for name in objectives]
        if record["status"] == "TERMINATED" and record.get("duplicate_of") is None and all(
                isinstance(v, (int, float)) and math.isfinite(v) for v in values):
            points.append((record, [sign * v for sign, v in zip(signs, values)]))

    def dominates(a: list[float], b: list[float]) -> bool:
        return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))

    front = [(r, p) for r, p in points if not any(dominates(q, p) for _, q in points)]
    return [r for r, p in sorted(front, key=lambda rp: (-rp[1][0], rp[0]["index"]))]


def write_pareto(folder: Path, records: Sequence[Mapping[str, Any]], objectives: Sequence[str],
                 directions: Sequence[str], title: str = "") -> dict[str, Any]:
    """pareto.csv (the Pareto set) and pareto.png (every completed trial on the first two objectives,
    the set highlighted); returns what summary.json says about it."""
    front = pareto_set(records, objectives, directions)
    columns = ["trial", *objectives, *[m for m in ("val_accuracy", "params", "flops") if m not in objectives],
               "macs", "fingerprint", "genome_name"]  # macs: multiply-adds, flops / 2 (torch counts 2 per one)
    table = io.StringIO()
    writer = csv.writer(table)
    writer.writerow(columns)
    for record in front:
        flops = record.get("flops")
        extra = {"trial": record["index"] + 1, "macs": flops // 2 if isinstance(flops, int) else ""}
        writer.writerow([extra[c] if c in extra else _cell(record.get(c)) for c in columns])
    replace_file(folder / PARETO_CSV, table.getvalue())
    # the second objective across (usually a cost: params, flops), the first up (usually accuracy)
    plot_pareto(records, front, objectives[1::-1], directions[1::-1], folder / PARETO_PLOT, title)
    return {"objectives": list(objectives), "directions": list(directions), "trials": [r["index"] + 1 for r in front],
            "file": PARETO_CSV, "plot": PARETO_PLOT}


def plot_pareto(records: Sequence[Mapping[str, Any]], front: Sequence[Mapping[str, Any]], axes_names: Sequence[str],
                directions: Sequence[str], path: Path, title: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    x_name, y_name = axes_names
    done = [r for r in records if r["status"] == "TERMINATED" and r.get(x_name) is not None
            and r.get(y_name) is not None]
    figure, axes = plt.subplots(figsize=(6.4, 4.0), dpi=120)
    if done:
        axes.scatter([r[x_name] for r in done], [r[y_name] for r in done], s=14, color="tab:gray", alpha=0.6,
                     label="trial")
    if front:
        ordered = sorted(front, key=lambda r: r[x_name])
        axes.plot([r[x_name] for r in ordered], [r[y_name] for r in ordered], "o-", color="tab:blue", markersize=5,
                  label=f"Pareto set ({len(front)})")
        for record in ordered:
            axes.annotate(str(record["index"] + 1), (record[x_name], record[y_name]), textcoords="offset points",
                          xytext=(4, 4), fontsize=7)
    if x_name in ("params", "flops") and done and min(r[x_name] for r in done) > 0:
        axes.set_xscale("log")
    arrow = {"max": "higher is better", "min": "lower is better"}
    axes.set_xlabel(f"{x_name} ({arrow[directions[0]]})")
    axes.set_ylabel(f"{y_name} ({arrow[directions[1]]})")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="best")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


# ----- the end of a search -----
def signal_name(signum: int | None) -> str | None:
    import signal

    return signal.Signals(signum).name if signum is not None else None


def test_accuracy(genome_spec: Mapping[str, Any], weights: Mapping[str, Any], data) -> float:
    """Accuracy of the genome with `weights` on the data set's test split (on this machine's CPU)."""
    import torch

    from nas.compiler import build
    from nas.genome import Genome
    from nas.train.inference import accuracy
    from nas.train.settings import TrainSettings
    from nas.train.speed import resolve_channels_last

    model = build(Genome.from_dict(genome_spec), num_classes=data.num_classes, in_channels=data.channels,
                  input_size=data.size)
    model.load_state_dict(weights)
    cpu = torch.device("cpu")
    channels_last = resolve_channels_last(None, cpu)  # the loop's measured default (channels-last on CPUs)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    return accuracy(model, data, data.test, TrainSettings.eval_batch_size, channels_last)  # BNs folded, no autograd


def write_best(folder: Path, best: dict[str, Any], data) -> dict[str, Any]:
    """Best genome (YAML), its weights and its test accuracy; returns what was written."""
    import torch

    from nas.genome import Genome
    from nas.train.checkpointing import STATE_FILE, read_state

    written: dict[str, Any] = {}
    genome = Genome.from_dict(best["genome"])
    genome.save(folder / BEST_GENOME)
    written["genome_file"] = BEST_GENOME
    checkpoint = best.get("checkpoint")
    if not (checkpoint and Path(checkpoint).is_dir()):
        return written
    state, damage = read_state(checkpoint)
    if damage:
        written["weights_missing"] = f"{Path(checkpoint) / STATE_FILE}: {damage}"
    else:
        weights = state.get("evaluated", state["model"])  # the moving average, where kept
        torch.save(weights, folder / BEST_WEIGHTS)
        written["weights_file"] = BEST_WEIGHTS
        from nas.train.contract import input_contract, to_json

        replace_file(folder / BEST_INPUT, to_json(input_contract(data)))
        written["input_file"] = BEST_INPUT
        written["test_accuracy"] = test_accuracy(best["genome"], weights, data)
    return written


def augment_policy(config: Mapping[str, Any], data) -> str:
    """The augmentation the run's trials applied (``auto`` resolved for the data set), e.g. crop=3,flip."""
    from nas.train.loop import augmentation
    from nas.train.settings import TrainSettings

    return augmentation(TrainSettings.from_dict(config.get("train")), data).describe()


def finish(folder: Path, config: Mapping[str, Any], data, searcher, timings: Mapping[str, float],
           interrupted: int | None = None, say: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Write the final trial record, the best genome, weights and plot, and summary.json; return the summary.
    `interrupted`: the signal that stopped the search (its unfinished trials are already recorded INTERRUPTED).
    `say(text)` is told each step that takes a while (testing the best network, writing the plots)."""
    say = say or (lambda text: None)
    started = clock = time.perf_counter()
    timings = dict(timings)
    records = read_trials(folder)
    extra = {}
    if searcher is not None:
        extra = {"duplicates_avoided": getattr(searcher, "duplicates_avoided", None),
                 "invalid_proposals": getattr(searcher, "invalid_proposals", None)}
    write_trials(folder, records, extra)
    summary: dict[str, Any] = {"config": dict(config), "data": data.describe(), "augment": augment_policy(config, data),
                               "counts": counts(records), **extra, "interrupted": signal_name(interrupted),
                               "timings": {k: round(v, 3) for k, v in timings.items()}, "cost": cost_summary(records)}
    summary["failures"] = failure_list(records)
    order = ranked(records)
    if order:
        best = dict(order[0])
        say(f"testing the best network (trial {best['index'] + 1}) on {len(data.test):,} test images")
        clock = time.perf_counter()
        best.update(write_best(folder, best, data))
        summary["best"] = {k: v for k, v in best.items() if k != "genome"}
        timings["best_test_s"] = time.perf_counter() - clock
    say("writing plots")
    clock = time.perf_counter()
    plot_best_so_far(records, folder / BEST_PLOT, title=f"{config.get('strategy')} on {config.get('dataset')}")
    summary["best_by"] = BEST_BY
    several = objectives_of(config)
    if several:
        summary["pareto"] = write_pareto(folder, records, *several,
                                         title=f"{config.get('strategy')} on {config.get('dataset')}")
    timings["plots_s"] = time.perf_counter() - clock
    timings["finish_s"] = time.perf_counter() - started
    summary["timings"] = {k: round(v, 3) for k, v in timings.items()}
    replace_file(folder / SUMMARY_JSON, json.dumps(summary, indent=2, default=str) + "\n")
    return summary
