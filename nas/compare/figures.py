"""The report's figures (matplotlib's object API on the Agg canvas; no pyplot state is touched).

- `plot_tradeoff`: test accuracy (mean and standard deviation over seeds) against a cost (params or
  FLOPs, log scale), one colour per kind of model, the Pareto front drawn as a step line; the
  models' names are placed so that no two overlap (`place_labels`).
- `plot_search_curves`: the any-time curve of each search run, best validation accuracy so far
  against the number of trials, with every trial's own accuracy as a faint dot.
- `draw_cells`: a model's cells, one image each (one representative concrete cell per cell kind,
  drawn by `nas.draw`), so that each can be shown at full width.

Every mark of a plot has its entry in the legend (the error bars and the faint dots included).
"""
from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from nas.draw import cell_panel, distinct_cells, panels_figure
from nas.engine.ranking import best_so_far_points, trial_points
from nas.expand import expand
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


def _clear(box: tuple[float, float, float, float], taken: Sequence[tuple[float, float, float, float]],
           markers: Sequence[tuple[float, float]], radius: float) -> bool:
    """Does `box` (x0, y0, x1, y1, display pixels) keep clear of every taken box and every marker?"""
    x0, y0, x1, y1 = box
    if any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in taken):
        return False
    return not any(x0 - radius < mx < x1 + radius and y0 - radius < my < y1 + radius for mx, my in markers)


def place_labels(figure: Figure, axes, points: Sequence[tuple[float, float]], texts: Sequence[str],
                 fontsize: float = 7.5, tries: int = 80) -> list:
    """Annotate each point with its text so that no two labels overlap and no label covers a marker.

    Greedy, deterministic placement in display space: labels are placed from the top point down, each
    at the first free spot among positions right or left of its point, then further above or below in
    half-line steps (inside the axes where one is free); a label away from its point gets a leader line.
    """
    canvas = figure.canvas if isinstance(figure.canvas, FigureCanvasAgg) else FigureCanvasAgg(figure)
    figure.tight_layout()
    renderer = canvas.get_renderer()
    scale = figure.dpi / 72.0  # display pixels per point
    gap, radius = 4 * scale, 7 * scale  # a marker (markersize 9, and the front's circles) keeps this clear
    markers = [tuple(axes.transData.transform(point)) for point in points]
    frame = axes.get_window_extent(renderer)
    sizes = []
    for text in texts:
        probe = axes.text(0, 0, text, fontsize=fontsize)
        extent = probe.get_window_extent(renderer)
        sizes.append((extent.width, extent.height))
        probe.remove()
    taken: list[tuple[float, float, float, float]] = []
    offsets: dict[int, tuple[float, float]] = {}
    for i in sorted(range(len(points)), key=lambda i: (-markers[i][1], markers[i][0], i)):
        (mx, my), (w, h) = markers[i], sizes[i]
        candidates = []
        for k in range(tries):
            for dx in (gap, -gap - w):
                for dy in ((gap + k * h / 2, -gap - h - k * h / 2) if k else (gap / 2, -gap / 2 - h)):
                    candidates.append((mx + dx, my + dy))
        inside = [c for c in candidates if frame.x0 <= c[0] and c[0] + sizes[i][0] <= frame.x1
                  and frame.y0 <= c[1] and c[1] + h <= frame.y1]
        chosen = None
        for x0, y0 in inside + candidates:
            if _clear((x0, y0, x0 + w, y0 + h), taken, markers, radius):
                chosen = (x0, y0)
                break
        if chosen is None:  # nowhere free within reach: the last, farthest spot
            chosen = candidates[-1]
        taken.append((chosen[0], chosen[1], chosen[0] + w, chosen[1] + h))
        offsets[i] = ((chosen[0] - mx) / scale, (chosen[1] - my) / scale)
    notes = []
    for i, (point, text) in enumerate(zip(points, texts)):
        dx, dy = offsets[i]
        near = abs(dy) <= (gap / 2 + sizes[i][1]) / scale + 0.5
        notes.append(axes.annotate(text, point, textcoords="offset points", xytext=(dx, dy), fontsize=fontsize,
                                   ha="left", va="bottom", zorder=4, annotation_clip=False,
                                   arrowprops=None if near else {"arrowstyle": "-", "color": "0.55", "lw": 0.5,
                                                                 "shrinkA": 0, "shrinkB": 3}))
    return notes


def tradeoff_figure(rows: Sequence[Mapping[str, Any]], cost: str, front: Sequence[str], xlabel: str,
                    title: str) -> Figure:
    """Mean test accuracy (%) with a one-standard-deviation bar against `cost` of every row that has both."""
    figure = Figure(figsize=(7.5, 5.0))
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    shown = [r for r in rows if r.get(cost) and r["n"] > 0 and not math.isnan(r["test_mean"])]
    for kind, (colour, marker, label) in KIND_STYLE.items():
        points = [r for r in shown if r["kind"] == kind]
        if points:
            axes.errorbar([r[cost] for r in points], [100 * r["test_mean"] for r in points],
                          yerr=[100 * r["test_std"] for r in points], fmt=marker, color=colour, markersize=9,
                          capsize=3, linestyle="none", label=f"{label} (bar: ± 1 std over seeds)", zorder=3)
    on_front = sorted((r for r in shown if r["model"] in front), key=lambda r: r[cost])
    if on_front:
        xs = [r[cost] for r in on_front]
        ys = [100 * r["test_mean"] for r in on_front]
        axes.step(xs, ys, where="post", color="black", linewidth=1.0, linestyle="--", zorder=2,
                  label="Pareto front (mean accuracy)")
        axes.scatter(xs, ys, s=230, facecolors="none", edgecolors="black", linewidths=1.0, zorder=2,
                     label="on the Pareto front (circled)")
    axes.set_xscale("log")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("test accuracy (%), mean ± std over seeds")
    axes.set_title(title)
    axes.grid(alpha=0.3, which="both")
    axes.legend(loc="best", fontsize=8)
    place_labels(figure, axes, [(r[cost], 100 * r["test_mean"]) for r in shown], [r["model"] for r in shown])
    return figure


def plot_tradeoff(rows: Sequence[Mapping[str, Any]], cost: str, front: Sequence[str], path: Path,
                  xlabel: str, title: str) -> Path:
    """`tradeoff_figure` saved as `path`."""
    return _save(tradeoff_figure(rows, cost, front, xlabel, title), path, dpi=110)


def search_curves_figure(runs: Sequence[tuple[str, Sequence[Mapping[str, Any]]]]) -> Figure:
    """Best validation accuracy so far against trials, per run (`runs`: (label, trial records))."""
    figure = Figure(figsize=(7.5, 4.5))
    axes = figure.add_subplot()
    colours = ["tab:red", "tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:cyan"]
    for i, (label, records) in enumerate(runs):
        colour = colours[i % len(colours)]
        done = [(k, 100 * v) for k, v in trial_points(records)]
        if done:
            axes.scatter(*zip(*done), s=12, color=colour, alpha=0.35, label=f"{label}: each trial (faint dots)")
        curve = [(k, 100 * v) for k, v in best_so_far_points(records)]
        if curve:
            axes.step(*zip(*curve), where="post", color=colour, linewidth=2, label=f"{label}: best so far")
    axes.set_xlabel("trials")
    axes.set_ylabel("validation accuracy (%)")
    axes.set_title("Any-time performance of the searches (dots: each trial)")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    return figure


def plot_search_curves(runs: Sequence[tuple[str, Sequence[Mapping[str, Any]]]], path: Path) -> Path:
    """`search_curves_figure` saved as `path`."""
    return _save(search_curves_figure(runs), path, dpi=110)


def representative_cells(genome: Genome, input_shape: tuple[int, int, int], num_classes: int, limit: int = 4):
    """One concrete cell per cell kind of the stages (the largest occurrence: e.g. a strided block with its
    shortcut, an MBConv with its expansion), as `nas.draw.CellGroup`s in network order."""
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


def draw_cells(genome: Genome, input_shape: tuple[int, int, int], num_classes: int, folder: Path, stem: str,
               dpi: float = 130) -> list[tuple[str, Path]]:
    """Each representative cell of `genome` as its own image ``folder/stem-K.png``, as `nas.draw` lays it
    out; returns (title, path) per cell in network order."""
    drawn = []
    for k, group in enumerate(representative_cells(genome, input_shape, num_classes), start=1):
        panel = cell_panel(group)
        figure = panels_figure([panel], [(0.0, 0.0)], panel.width, panel.height)
        path = _save(figure, folder / f"{stem}-{k}.png", dpi=min(dpi, 30000 / max(panel.width, panel.height)))
        drawn.append((group.title(), path))
    return drawn
