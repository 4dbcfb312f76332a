"""best_so_far.png: a search's validation accuracy against the trial number and against its cost; and the
style every accuracy plot shares (the comparison's figures too)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from pathlib import Path

from nas.engine.ranking import best_so_far_points, trial_points
from nas.engine.records import TrialStatus
from nas.search.cost import COST_UNITS, cost_key, cost_points


def plot_best_so_far(records: Sequence[Mapping[str, Any]], path: Path, title: str = "") -> Path:
    """Two panels: validation accuracy against the trial number, and against the search's cost."""
    import matplotlib  # pyplot on Agg, chosen when a plot is drawn: at import it would set the caller's backend

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # after the backend is chosen (see above)

    figure, (by_trial, by_cost) = plt.subplots(1, 2, figsize=(11.0, 4.0), dpi=120, sharey=True)
    done, curve = trial_points(records), best_so_far_points(records)
    failed = [r["index"] + 1 for r in records if r["status"] == TrialStatus.ERROR]
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
    from matplotlib import pyplot as plt  # (see plot_best_so_far)

    style_accuracy_axes(axes, xlabel, ylabel, title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
