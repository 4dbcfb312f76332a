"""The report's figures (matplotlib's object API on the Agg canvas; no pyplot state is touched).

- `plot_tradeoff`: test accuracy (mean and standard deviation over seeds) against a cost (params or
  FLOPs, log scale), one colour per kind of model, the Pareto front drawn as a step line.
- `plot_search_curves`: the any-time curve of each search run, best validation accuracy so far
  against the number of trials, with every trial's own accuracy as a faint dot.
- `draw_cells`: a model's cells side by side (one representative concrete cell per cell kind,
  drawn by `nas.draw`).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nas.genome import Genome

KIND_STYLE = {  # kind -> (colour, marker, legend label)
    "searched": ("tab:red", "*", "searched"),
    "transplant": ("tab:purple", "D", "searched cell in a hand-designed skeleton"),
    "baseline": ("tab:blue", "o", "hand-designed"),
}


def _save(figure: Figure, path: Path, dpi: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    FigureCanvasAgg(figure)
    figure.savefig(path, dpi=dpi)
    return path


def plot_tradeoff(rows: Sequence[Mapping[str, Any]], cost: str, front: Sequence[str], path: Path,
                  xlabel: str, title: str) -> Path:
    """Mean test accuracy (%) with a one-standard-deviation bar against `cost` of every row that has both."""
    figure = Figure(figsize=(7.5, 5.0))
    axes = figure.add_subplot()
    shown = [r for r in rows if r.get(cost) and r["n"] > 0 and not math.isnan(r["test_mean"])]
    for kind, (colour, marker, label) in KIND_STYLE.items():
        points = [r for r in shown if r["kind"] == kind]
        if points:
            axes.errorbar([r[cost] for r in points], [100 * r["test_mean"] for r in points],
                          yerr=[100 * r["test_std"] for r in points], fmt=marker, color=colour, markersize=9,
                          capsize=3, linestyle="none", label=label, zorder=3)
    for r in shown:
        axes.annotate(r["model"], (r[cost], 100 * r["test_mean"]), textcoords="offset points", xytext=(6, 5),
                      fontsize=7.5, zorder=4)
    on_front = sorted((r for r in shown if r["model"] in front), key=lambda r: r[cost])
    if on_front:
        xs = [r[cost] for r in on_front]
        ys = [100 * r["test_mean"] for r in on_front]
        axes.step(xs, ys, where="post", color="black", linewidth=1.0, linestyle="--", zorder=2,
                  label="Pareto front (mean accuracy)")
        axes.scatter(xs, ys, s=230, facecolors="none", edgecolors="black", linewidths=1.0, zorder=2)
    axes.set_xscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("test accuracy (%), mean ± std over seeds")
    axes.set_title(title)
    axes.grid(alpha=0.3, which="both")
    axes.legend(loc="best", fontsize=8)
    figure.tight_layout()
    return _save(figure, path, dpi=110)


def plot_search_curves(runs: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], path: Path) -> Path:
    """Best validation accuracy so far against trials, per run (`runs`: (label, trial records))."""
    from nas.search.report import best_so_far_points, trial_points

    figure = Figure(figsize=(7.5, 4.5))
    axes = figure.add_subplot()
    colours = ["tab:red", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:cyan"]
    for i, (label, records) in enumerate(runs):
        colour = colours[i % len(colours)]
        done = [(k, 100 * v) for k, v in trial_points(records)]
        if done:
            axes.scatter(*zip(*done), s=12, color=colour, alpha=0.35)
        curve = [(k, 100 * v) for k, v in best_so_far_points(records)]
        if curve:
            axes.step(*zip(*curve), where="post", color=colour, linewidth=2, label=f"{label}: best so far")
    axes.set_xlabel("trials")
    axes.set_ylabel("validation accuracy (%)")
    axes.set_title("Any-time performance of the searches (dots: each trial)")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return _save(figure, path, dpi=110)


def representative_cells(genome: Genome, input_shape: tuple[int, int, int], num_classes: int, limit: int = 4):
    """One concrete cell per cell kind of the stages (the largest occurrence: e.g. a strided block with its
    shortcut, an MBConv with its expansion), as `nas.draw.CellGroup`s in network order."""
    from nas.draw import distinct_cells
    from nas.expand import expand

    channels, height, width = input_shape
    plan = expand(genome, num_classes=num_classes, in_channels=channels, input_size=(height, width))
    chosen: dict[str, Any] = {}
    for group in distinct_cells(genome, plan):
        if group.kind in ("stem", "head"):
            continue
        current = chosen.get(group.kind)
        if current is None or group.plan.graph.number_of_nodes() > current.plan.graph.number_of_nodes():
            chosen[group.kind] = group
    return list(chosen.values())[:limit]


def draw_cells(genome: Genome, input_shape: tuple[int, int, int], num_classes: int, path: Path,
               dpi: float = 80) -> Path:
    """The representative cells of `genome` side by side, each panel as `nas.draw` lays it out."""
    from nas.draw import cell_panel, panels_figure

    panels = [cell_panel(group) for group in representative_cells(genome, input_shape, num_classes)]
    width = sum(p.width for p in panels)
    height = max(p.height for p in panels)
    lefts = [sum(p.width for p in panels[:i]) for i in range(len(panels))]
    figure = panels_figure(panels, [(x, 0.0) for x in lefts], width, height)
    dpi = min(dpi, 30000 / max(width, height))
    return _save(figure, path, dpi=dpi)
