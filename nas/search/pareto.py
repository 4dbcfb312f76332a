"""Several objectives (optuna's NSGA-II): the trials no other trial beats on every objective (pareto.csv), and
a plot of all trials with that set (pareto.png); "best" stays the best validation accuracy (BEST_BY)."""
from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from nas.engine.records import TrialStatus, cell, replace_file
from nas.search.strategies.base import MINIMIZED

PARETO_CSV, PARETO_PLOT = "pareto.csv", "pareto.png"
BEST_BY = "val_accuracy"  # the objective that picks "best" (the leaderboard's order), also with several


def objectives_of(config: Mapping[str, Any]) -> tuple[list[str], list[str]] | None:
    """The (objectives, directions) of a multi-objective search's config; None for a single objective."""
    options = config.get("options") or {}
    names = list(options.get("objectives") or [])
    if len(names) < 2:
        return None
    directions = list(options.get("directions") or [])
    if len(directions) != len(names):  # the optuna strategy's defaults
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
        if record["status"] == TrialStatus.TERMINATED and record.get("duplicate_of") is None and all(
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
        writer.writerow([extra[c] if c in extra else cell(record.get(c)) for c in columns])
    replace_file(folder / PARETO_CSV, table.getvalue())
    # the second objective across (usually a cost: params, flops), the first up (usually accuracy)
    plot_pareto(records, front, objectives[1::-1], directions[1::-1], folder / PARETO_PLOT, title)
    return {"objectives": list(objectives), "directions": list(directions), "trials": [r["index"] + 1 for r in front],
            "file": PARETO_CSV, "plot": PARETO_PLOT}


def plot_pareto(records: Sequence[Mapping[str, Any]], front: Sequence[Mapping[str, Any]], axes_names: Sequence[str],
                directions: Sequence[str], path: Path, title: str = "") -> Path:
    import matplotlib  # pyplot on Agg, chosen when a plot is drawn: at import it would set the caller's backend

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # after the backend is chosen (see above)

    x_name, y_name = axes_names
    done = [r for r in records if r["status"] == TrialStatus.TERMINATED and r.get(x_name) is not None
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
