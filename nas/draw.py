"""Drawing a genome: an overview of the network and every distinct cell as a top-to-bottom graph.

    >>> from nas import baselines
    >>> from nas.draw import draw
    >>> draw(baselines.get("resnet50"), "resnet50.png")  # or .svg

One figure holds an overview panel (input, stem, each stage with its cell kind, repeats, output
channels, stride and output shape, head, classifier) and then one panel per distinct cell structure:
cells that differ only in width (every channel count in the same proportion to the cell's input
channels) are drawn once, at their first occurrence, titled with every place and width they occur at. Nodes read like
``conv 3x3 /2 64`` (op, kernel, stride, output channels; other non-default parameters below) and
show their merge when they have several inputs; concat inputs are numbered in concat order.

Layout: nodes go in layers by longest path from the input (networkx's topological generations),
are ordered within layers by the barycentre of their neighbours, and long edges get lanes of their
own. Cells with many long edges (dense blocks) draw those as bus lanes at the side instead. The
figure is sized to its graphs, so big cells stay legible. Only matplotlib's object API is used
(no pyplot), so the caller's backend and state are left alone.

One file of about 500 lines: one job, one figure; the cell layout, the panels and their packing share the
measures of the text and boxes (FONT, LINE, PAD) and are only used together.
"""
from __future__ import annotations

import json
import math
import textwrap
import warnings
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import networkx as nx
from matplotlib import rc_context
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch
from matplotlib.path import Path as CurvePath
from matplotlib.textpath import TextPath

from nas import cellgraph
from nas.errors import GenomeError
from nas.expand import CellPlan, NetworkPlan, expand
from nas.genome import Genome
from nas.ops.registry import get_op
from nas.summary import summary
from nas.units import si

__all__ = ["FORMATS", "CellGroup", "CellLayout", "distinct_cells", "draw", "figure", "layout_cell", "node_lines",
           "op_text"]

FORMATS = (".png", ".svg")
FONT = 8.0  # points
LINE = 0.15  # inches per text line
PAD = 0.08  # inches of box padding
TITLE = 0.5  # inches above each panel's content for its title
MARGIN = 0.25
MERGE_SIGNS = {"add": "add (+)", "concat": "concat", "mean": "mean", "multiply": "multiply (x)"}
PALETTE = ("#cfe2f3", "#d9ead3", "#fff2cc", "#f4cccc", "#d9d2e9", "#fce5cd", "#d0e0e3", "#ead1dc", "#e6e6c8",
           "#c9daf8")


# ----- text -----
def _size_text(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return "x".join(str(v) for v in value)
    return f"{value}x{value}"


def _value_text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_value_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}: {_value_text(v)}" for k, v in value.items()) + "}"
    return str(value)


def op_text(op: str, params: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The label of an op: ``("conv 3x3 /2 64", ["groups 32", "act=none"])``.

    The first line has the op name, an activation ``kind``, the kernel, a stride above 1 and the
    output channels; the rest lists the other parameters that differ from the op's defaults.
    """
    try:
        defaults = get_op(op).defaults
    except GenomeError:  # an op unknown to this process: show every parameter
        defaults = {}
    words, shown = [op], {"kind", "kernel", "stride", "out", "groups", "dilation"}
    if "kind" in params:
        words.append(str(params["kind"]))
    if params.get("kernel") is not None:
        words.append(_size_text(params["kernel"]))
    stride = params.get("stride")
    if stride is not None and stride != 1:
        words.append(f"/{stride}")
    if params.get("out") is not None:
        words.append(str(params["out"]))
    if isinstance(params.get("groups"), int) and params["groups"] > 1:
        words.append(f"g{params['groups']}")
    if isinstance(params.get("dilation"), int) and params["dilation"] > 1:
        words.append(f"dil{params['dilation']}")
    extras = []
    for key, value in params.items():
        if key in shown or (key in defaults and defaults[key] == value):
            continue
        extras.append(key if value is True else f"{key}={_value_text(value)}")
    return " ".join(words), extras


def _wrap(items: Sequence[str], width: int) -> list[str]:
    return textwrap.wrap(", ".join(items), width=width, break_on_hyphens=False) if items else []


def node_lines(graph: nx.DiGraph, name: str) -> list[str]:
    """The text of a node in a cell drawing: merge (if several inputs), op label, extra parameters."""
    attrs = graph.nodes[name]
    if cellgraph.is_input(graph, name):
        shape = attrs.get("out_shape")
        label = "input" if cellgraph.input_nodes(graph) == (cellgraph.INPUT,) else f"input {name}"
        return [label] + (["x".join(str(s) for s in shape)] if shape else [])
    main, extras = op_text(attrs["op"], attrs.get("params", {}))
    lines = []
    if graph.in_degree(name) > 1:
        merge = MERGE_SIGNS.get(attrs.get("merge", "add"), attrs.get("merge", "add"))
        lines.append(f"{merge} of {graph.in_degree(name)}")
    lines.append(main + ("  [output]" if name == cellgraph.OUTPUT else ""))
    for field_name in ("drop_path", "global_drop"):
        if attrs.get(field_name):
            extras.append(f"{field_name}={attrs[field_name]:g}")
    lines += _wrap(extras, max(22, len(main)))
    return lines


@lru_cache(maxsize=4096)
def text_width(text: str, size: float = FONT, bold: bool = False) -> float:
    """Width of `text` in inches at font `size`, measured on the glyph outlines."""
    if not text:
        return 0.0
    font = FontProperties(weight="bold" if bold else "normal")
    extents = TextPath((0, 0), text, size=size, prop=font).get_extents()
    return max(extents.x1, 0.0) / 72.0 * 1.04


def _colour(op: str) -> str:
    return PALETTE[zlib.crc32(op.encode()) % len(PALETTE)]


# ----- which cells to draw -----
@dataclass
class CellGroup:
    """One distinct concrete cell and everywhere it occurs."""

    kind: str  # template or explicit cell name ("stem", "head" for those)
    plan: CellPlan  # the first occurrence (the one drawn)
    places: list[str] = field(default_factory=list)  # "stage2.1", ...
    widths: list[int] = field(default_factory=list)  # input channels of each occurrence

    def title(self) -> str:
        ins = " + ".join(_shape(shape) for shape in self.plan.in_shapes or (self.plan.in_shape,))
        shapes = f"{ins} -> {_shape(self.plan.out_shape)}"
        others = sorted(set(self.widths) - {self.widths[0]}) if self.widths else []
        also = f"; also at {', '.join(map(str, others))} input channels" if others else ""
        return f"{self.kind}  ({_places_text(self.places)})   {shapes}{also}"


def _shape(shape: Sequence[int]) -> str:
    return "x".join(str(s) for s in shape)


def _places_text(places: list[str]) -> str:
    """``["stage2.2", "stage2.3", "stage2.4"]`` -> ``"stage2.2-4"``."""
    runs: list[tuple[str, int, int]] = []
    for place in places:
        stage, _, index = place.partition(".")
        if index and runs and runs[-1][0] == stage and runs[-1][2] + 1 == int(index):
            runs[-1] = (stage, runs[-1][1], int(index))
        else:
            runs.append((stage, int(index) if index else 0, int(index) if index else 0))
    texts = []
    for stage, first, last in runs:
        if not first:
            texts.append(stage)
        else:
            texts.append(f"{stage}.{first}" + (f"-{last}" if last > first else ""))
    return ", ".join(texts)


WIDTH_PARAMS = ("out", "groups", "squeeze", "channels")  # op parameters that count channels


def structure_key(cell_plan: CellPlan) -> str:
    """A hash of the cell's structure regardless of its width: like `nas.cellgraph.fingerprint`, with every
    channel count (`WIDTH_PARAMS`) written as its ratio to the cell's input channels."""
    c_in = cell_plan.in_shape[0] if cell_plan.in_shape else 1
    relative = nx.DiGraph()
    for name, attrs in cell_plan.graph.nodes(data=True):
        label = cellgraph.INPUT
        if "op" in attrs:
            spec = cellgraph.node_spec(attrs)
            for key in WIDTH_PARAMS:
                value = spec.get(key)
                if isinstance(value, int) and not isinstance(value, bool) and value > 1:
                    spec[key] = f"{value / c_in:.6g} x in"
            label = json.dumps(spec, sort_keys=True, default=str)
        relative.add_node(name, label=label + ("#out" if name == cellgraph.OUTPUT else ""))
    relative.add_edges_from(cell_plan.graph.edges)
    with warnings.catch_warnings():  # networkx >= 3.5 warns that directed hashes changed in 3.5
        warnings.simplefilter("ignore", UserWarning)
        return nx.weisfeiler_lehman_graph_hash(relative, node_attr="label", iterations=max(3, len(relative)))


def distinct_cells(genome: Genome, plan: NetworkPlan) -> list[CellGroup]:
    """The stem, every distinct stage cell and the head, in network order: cells of the same structure
    (`structure_key`: equal but for their width) form one group."""
    groups: dict[str, CellGroup] = {}
    entries: list[tuple[str, str, CellPlan]] = [("stem", "stem", plan.stem)]
    for s, stage in enumerate(plan.stages):
        entries += [(genome.stages[s].cell, f"stage{s + 1}.{r + 1}", c) for r, c in enumerate(stage)]
    entries.append(("head", "head", plan.head))
    for kind, place, cell_plan in entries:
        key = structure_key(cell_plan)
        group = groups.setdefault(key, CellGroup(kind, cell_plan))
        if kind not in group.kind.split(" / "):
            group.kind += f" / {kind}"
        group.places.append(place)
        group.widths.append(cell_plan.in_shape[0] if cell_plan.in_shape else 0)
    return list(groups.values())


# ----- layout -----
@dataclass
class CellLayout:
    """Grid positions (column, layer) of a cell's nodes and the route of each edge."""

    position: dict[str, tuple[float, int]]
    routes: dict[tuple[str, str], list[tuple[float, int]]]  # edge -> grid points from source to target
    bus: list[tuple[str, str]]  # long edges drawn as side lanes instead of routes
    layers: int
    columns: tuple[float, float]  # leftmost and rightmost column


def layout_cell(graph: nx.DiGraph, max_dummies: int | None = None) -> CellLayout:
    """Layered layout: layers by longest path from the input, lanes for long edges, barycentre ordering."""
    layer = {n: i for i, generation in enumerate(nx.topological_generations(graph)) for n in generation}
    long_edges = [(u, v) for u, v in graph.edges if layer[v] - layer[u] > 1]
    dummies = sum(layer[v] - layer[u] - 1 for u, v in long_edges)
    limit = max_dummies if max_dummies is not None else 2 * len(graph) + 4
    lanes = dummies <= limit
    work = nx.DiGraph()
    work.add_nodes_from(graph)
    chains: dict[tuple[str, str], list[Any]] = {}
    for u, v in graph.edges:
        if layer[v] - layer[u] > 1 and lanes:
            chain = [("~", u, v, k) for k in range(layer[u] + 1, layer[v])]
            for k, dummy in zip(range(layer[u] + 1, layer[v]), chain):
                layer[dummy] = k
            nx.add_path(work, [u, *chain, v])
            chains[(u, v)] = chain
        elif layer[v] - layer[u] == 1:
            work.add_edge(u, v)
    depth = max(layer.values()) + 1
    rank = {n: i for i, n in enumerate(graph)}  # insertion order (a lane: its source's) breaks ties
    rows: list[list[Any]] = [[] for _ in range(depth)]
    for n in work:
        rows[layer[n]].append(n)
    for row in rows:
        row.sort(key=lambda n: rank[n[1]] if isinstance(n, tuple) else rank[n])
    order = {n: i for row in rows for i, n in enumerate(row)}

    def sweep(indices: Iterable[int], neighbours: Any) -> None:
        for k in indices:
            def barycentre(n: Any) -> float:
                near = [order[m] for m in neighbours(n)]
                return sum(near) / len(near) if near else order[n]
            rows[k].sort(key=barycentre)
            order.update({n: i for i, n in enumerate(rows[k])})

    for _ in range(4):
        sweep(range(1, depth), work.predecessors)
        sweep(range(depth - 2, -1, -1), work.successors)
    column = _columns(work, rows)
    position = {n: (column[n], layer[n]) for n in graph}
    routes, bus = {}, []
    for u, v in graph.edges:
        if (u, v) in chains:
            routes[(u, v)] = [position[u]] + [(column[d], layer[d]) for d in chains[(u, v)]] + [position[v]]
        elif layer[v] - layer[u] == 1:
            routes[(u, v)] = [position[u], position[v]]
        else:
            bus.append((u, v))
    return CellLayout(position, routes, bus, depth, (min(column.values()), max(column.values())))


def _columns(work: nx.DiGraph, rows: list[list[Any]]) -> dict[Any, float]:
    """Column of each node: near the mean of its neighbours' columns, keeping the row order one apart."""
    column = {n: i - (len(row) - 1) / 2 for row in rows for i, n in enumerate(row)}
    passes = [(range(1, len(rows)), (work.predecessors,)), (range(len(rows) - 2, -1, -1), (work.successors,))] * 2
    passes += [(range(len(rows)), (work.predecessors, work.successors))] * 2
    for indices, sides in passes:
        for k in indices:
            desired = []
            for n in rows[k]:
                near = [column[m] for side in sides for m in side(n)]
                desired.append(sum(near) / len(near) if near else column[n])
            column.update(zip(rows[k], _spread(desired)))
    return column


def _spread(desired: list[float], gap: float = 1.0) -> list[float]:
    """Positions closest (least squares) to `desired`, in the same order, at least `gap` apart."""
    blocks: list[list[float]] = []  # pool-adjacent-violators over desired[i] - i * gap: [sum, count]
    for i, value in enumerate(desired):
        blocks.append([value - i * gap, 1])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    fitted = [total / count for total, count in blocks for _ in range(int(count))]
    return [value + i * gap for i, value in enumerate(fitted)]


# ----- panels -----
@dataclass
class Panel:
    title: str
    width: float
    height: float
    draw: Any  # function(ax) drawing inside (0, 0)-(width, height) inches, y downwards


def _box(ax: Any, x: float, y: float, w: float, h: float, colour: str, edge: str = "#444444", lw: float = 0.8) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.05",
                                facecolor=colour, edgecolor=edge, linewidth=lw, zorder=3))


def _lines(ax: Any, x: float, y: float, lines: list[str], first_bold: bool = False, colour: str = "#111111") -> None:
    top = y - (len(lines) - 1) * LINE / 2
    for i, text in enumerate(lines):
        ax.text(x, top + i * LINE, text, ha="center", va="center", fontsize=FONT, color=colour, zorder=4,
                fontweight="bold" if first_bold and i == 0 else "normal")


def _arrow(ax: Any, points: list[tuple[float, float]], colour: str = "#555555") -> None:
    codes = [CurvePath.MOVETO] + [CurvePath.LINETO] * (len(points) - 1)
    ax.add_patch(FancyArrowPatch(path=CurvePath(points, codes), arrowstyle="-|>", mutation_scale=9,
                                 color=colour, linewidth=0.9, shrinkA=0, shrinkB=0, zorder=2))


def cell_panel(group: CellGroup) -> Panel:
    graph = group.plan.graph
    layout = layout_cell(graph)
    texts = {n: node_lines(graph, n) for n in graph}
    box_w = max(max(text_width(t) for t in lines) for lines in texts.values()) + 2 * PAD + 0.1
    box_h = max(len(lines) for lines in texts.values()) * LINE + 2 * PAD
    col_pitch, row_pitch = box_w + 0.3, box_h + 0.45
    left, right = layout.columns
    sources = sorted({u for u, _ in layout.bus}, key=lambda n: layout.position[n][1])
    lane_gap = 0.14
    content_w = (right - left) * col_pitch + box_w
    width = max(content_w + len(sources) * lane_gap + 2 * MARGIN + (0.2 if sources else 0),
                text_width(group.title(), FONT + 1, bold=True) + 2 * MARGIN)
    height = TITLE + (layout.layers - 1) * row_pitch + box_h + 2 * MARGIN
    x0 = (width - content_w - len(sources) * lane_gap) / 2 + box_w / 2

    def at(point: tuple[float, float]) -> tuple[float, float]:
        col, row = point
        return x0 + (col - left) * col_pitch, TITLE + MARGIN + box_h / 2 + row * row_pitch

    def draw(ax: Any) -> None:
        for (u, v), route in layout.routes.items():
            points = [at(p) for p in route]
            points[0] = (points[0][0], points[0][1] + box_h / 2)
            points[-1] = (points[-1][0], points[-1][1] - box_h / 2)
            _arrow(ax, points)
        _draw_bus(ax, layout, sources, at, box_w, box_h, x0 + (right - left) * col_pitch + box_w / 2, lane_gap)
        for n in graph:
            x, y = at(layout.position[n])
            if cellgraph.is_input(graph, n):
                _box(ax, x, y, box_w, box_h, "#eeeeee")
            else:
                heavy = n == cellgraph.OUTPUT
                _box(ax, x, y, box_w, box_h, _colour(graph.nodes[n]["op"]), lw=1.6 if heavy else 0.8)
            _lines(ax, x, y, texts[n])
        _number_concat_inputs(ax, graph, layout, at, box_h)

    return Panel(group.title(), width, height, draw)


def _draw_bus(ax: Any, layout: CellLayout, sources: list[str], at: Any, box_w: float, box_h: float,
              content_right: float, gap: float) -> None:
    """Long edges as vertical lanes right of the nodes: each source owns a lane; dots mark its readers."""
    for k, source in enumerate(sources):
        lane = content_right + 0.2 + k * gap
        sx, sy = at(layout.position[source])
        targets = [v for u, v in layout.bus if u == source]
        ends = [at(layout.position[v]) for v in targets]
        bottom = max(y for _, y in ends) - box_h / 4
        ax.plot([sx + box_w / 2, lane, lane], [sy + box_h / 4, sy + box_h / 4, bottom], color="#7f7f7f",
                linewidth=0.8, zorder=1)
        for _, y in ends:
            ax.add_patch(Circle((lane, y - box_h / 4), 0.025, color="#555555", zorder=2))
    readers = sorted({v for _, v in layout.bus})
    for target in readers:
        tx, ty = at(layout.position[target])
        far = max(content_right + 0.2 + sources.index(u) * gap for u, v in layout.bus if v == target)
        _arrow(ax, [(far, ty - box_h / 4), (tx + box_w / 2, ty - box_h / 4)], colour="#7f7f7f")


def _number_concat_inputs(ax: Any, graph: nx.DiGraph, layout: CellLayout, at: Any, box_h: float) -> None:
    """Small numbers on a concat node's incoming edges, in concat order (bus edges are in lane order)."""
    for n in graph:
        if cellgraph.is_input(graph, n) or graph.nodes[n].get("merge") != "concat" or graph.in_degree(n) < 2:
            continue
        for i, source in enumerate(graph.predecessors(n), start=1):
            route = layout.routes.get((source, n))
            if route is None:
                continue
            (x1, y1), (x2, y2) = at(route[-2]), at(route[-1])
            y2 -= box_h / 2
            fraction = min(0.35, 0.25 / max(abs(y2 - y1), 1e-6))
            x, y = x2 + (x1 - x2) * fraction, y2 + (y1 - y2) * fraction
            ax.text(x + 0.05, y, str(i), fontsize=FONT - 1.5, color="#aa0000", ha="left", va="center", zorder=5)


def _stage_lines(genome: Genome, plan: NetworkPlan, index: int) -> list[str]:
    stage = genome.stages[index]
    shape = plan.stages[index][-1].out_shape
    out = stage.out if stage.out is not None else shape[0]
    explicit = " (cell graph)" if stage.cell in genome.cells else ""
    head = f"stage{index + 1}: {stage.cell}{explicit} x{stage.repeats}   out {out}   stride {stage.stride}"
    if stage.reads != (1,):
        ports = cellgraph.input_nodes(plan.stages[index][0].graph)
        head += "   reads " + ", ".join(f"{port}<-{k}" for port, k in zip(ports, stage.reads))
    lines = [head, f"-> {_shape(shape)}"]
    params = []
    for key, value in stage.params.items():
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, Mapping) and "op" in v for v in value):
            value = " -> ".join(op_text(v["op"], {k: w for k, w in v.items() if k != "op"})[0] for v in value)
            params.append(f"{key}: {value}")
        else:
            params.append(f"{key}={_value_text(value)}")
    return lines[:1] + _wrap(params, 60)[:3] + lines[1:]


def _chain_lines(label: str, plan: CellPlan) -> list[str]:
    graph = plan.graph
    ops = [op_text(graph.nodes[n]["op"], graph.nodes[n]["params"])[0] for n in cellgraph.topological_order(graph)
           if not cellgraph.is_input(graph, n)]
    text = " -> ".join(ops) if cellgraph.is_chain(graph) else f"graph of {len(ops)} nodes"
    return textwrap.wrap(f"{label}: {text}", width=60) + [f"-> {_shape(plan.out_shape)}"]


def overview_panel(genome: Genome, plan: NetworkPlan, params: int, flops: int) -> Panel:
    items = [["input", _shape(plan.input_shape)], _chain_lines("stem", plan.stem)]
    items += [_stage_lines(genome, plan, i) for i in range(len(genome.stages))]
    items += [_chain_lines("head", plan.head), [f"classifier: linear {plan.num_classes}" if plan.classifier == "linear"
                                               else "classifier: none (the head's)", f"-> {plan.num_classes}"]]
    kinds = ["", "stem", *(stage.cell for stage in genome.stages), "head", ""]
    title = f"{genome.name}: {si(params)} params, {si(flops, 'FLOPs')}"
    box_w = max(text_width(t, bold=True) for lines in items for t in lines) + 2 * PAD + 0.2
    heights = [len(lines) * LINE + 2 * PAD for lines in items]
    gap = 0.3
    width = max(box_w, text_width(title, FONT + 1, bold=True)) + 2 * MARGIN
    height = TITLE + sum(heights) + gap * (len(items) - 1) + 2 * MARGIN

    def draw(ax: Any) -> None:
        y, x = TITLE + MARGIN, width / 2
        for i, (lines, h) in enumerate(zip(items, heights)):
            colour = _colour(kinds[i]) if kinds[i] else "#eeeeee"
            _box(ax, x, y + h / 2, box_w, h, colour)
            _lines(ax, x, y + h / 2, lines, first_bold=True)
            if i + 1 < len(items):
                _arrow(ax, [(x, y + h), (x, y + h + gap)])
            y += h + gap

    return Panel(title, width, height, draw)


# ----- the figure -----
def _pack(panels: list[Panel], max_width: float, step: float = 0.05) -> tuple[list[tuple[float, float]], float, float]:
    """Skyline packing, in order: each panel goes where its top is highest (then leftmost) within `max_width`."""
    slots = int(math.ceil(max_width / step))
    skyline = [0.0] * slots
    origins, width = [], 0.0
    for panel in panels:
        span = min(slots, int(math.ceil(panel.width / step - 1e-9)))
        best = min(range(slots - span + 1), key=lambda i: (round(max(skyline[i:i + span]), 6), i))
        top = max(skyline[best:best + span])
        skyline[best:best + span] = [top + panel.height] * span
        origins.append((best * step, top))
        width = max(width, best * step + panel.width)
    return origins, width, max(skyline)


def figure(genome: Genome, in_channels: int | None = None, input_size: int | tuple[int, int] | None = None) -> Figure:
    """The drawing of `genome` as a matplotlib Figure (not saved)."""
    plan = expand(genome, in_channels=in_channels, input_size=input_size)
    cost = summary(genome, in_channels=in_channels, input_size=input_size)
    panels = [overview_panel(genome, plan, cost.params, cost.flops)]
    panels += [cell_panel(group) for group in distinct_cells(genome, plan)]
    max_width = max(16.0, max(p.width for p in panels))
    return panels_figure(panels, *_pack(panels, max_width))


def panels_figure(panels: list, origins: list[tuple[float, float]], width: float, height: float) -> Figure:
    """A `width` x `height` inch Figure with each panel framed, titled and drawn with its top-left
    corner at its origin (inches from the figure's top-left corner)."""
    fig = Figure(figsize=(width, height))
    for panel, (x, y) in zip(panels, origins):
        ax = fig.add_axes((x / width, 1 - (y + panel.height) / height, panel.width / width, panel.height / height))
        ax.set_xlim(0, panel.width)
        ax.set_ylim(panel.height, 0)
        ax.axis("off")
        ax.add_patch(FancyBboxPatch((0.06, 0.06), panel.width - 0.12, panel.height - 0.12, boxstyle="round,pad=0",
                                    facecolor="none", edgecolor="#cccccc", linewidth=0.6))
        ax.text(MARGIN, 0.32, panel.title, fontsize=FONT + 1, fontweight="bold", va="center", ha="left")
        panel.draw(ax)
    return fig


def draw(genome: Genome, path: str | Path, in_channels: int | None = None,
         input_size: int | tuple[int, int] | None = None, dpi: float = 110) -> Path:
    """Draw `genome` to `path` (.png or .svg); returns the path."""
    path = Path(path)
    if path.suffix.lower() not in FORMATS:
        raise ValueError(f"cannot draw to {path}: the suffix must be one of {', '.join(FORMATS)}")
    fig = figure(genome, in_channels=in_channels, input_size=input_size)
    width, height = fig.get_size_inches()
    dpi = min(dpi, 30000 / max(width, height))  # Agg's limit is 2**16 pixels a side
    path.parent.mkdir(parents=True, exist_ok=True)
    with rc_context({"svg.fonttype": "none"}):  # SVG text stays text: selectable and searchable
        fig.savefig(path, dpi=dpi)
    return path
