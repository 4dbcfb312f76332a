"""Cell transplant: a searched network's cells inside a hand-designed network's skeleton.

    result = transplant(searched, baselines.get("resnet20"))   # params matched to resnet20's
    result.genome, result.params_ratio

The skeleton keeps its stem, its head, and for each of its stages the stride, the number of cells
(repeats) and the output channels; only the cells change. So a comparison of the result with the
skeleton isolates the cell from the macro-architecture.

Both networks are read as a list of *units*. A unit is one stage, or a stage that only sets width
and resolution for the next one (a template that must not repeat, such as DenseNet's transition,
followed by a stage whose template decides its own channels) together with that next stage.

What replaces a skeleton unit (width W, stride s, r cells):
  - a searched network with explicit cells (the micro space: ``cells: {normal, reduce}``): the
    reduction cell (the explicit cell of the searched network's strided stages) as the unit's
    first cell when s > 1, then normal cells, r cells in all, all with W output channels;
  - a searched network whose cells read the two previous cells (the DARTS form of `nas.darts`, which the
    micro space realizes): its normal and reduction cells rebuilt at width W / k (k: the blocks a normal
    cell concatenates), a reduction cell first where s = 2, each cell reading the two previous outputs;
  - a searched network of template stages (the macro and mobile spaces): the searched unit at the
    same relative depth (skeleton unit k of n takes searched unit floor((k + 1/2) m / n) of m), with
    its template and parameters, W output channels, stride s and r repeats. A template that decides
    its own channels gets its width parameters scaled by W over the searched unit's width.

"Matched parameter count": the unit widths are multiplied by a common factor w (each rounded with
`nas.scale_genome.round_channels` to a multiple of `divisor`), and w is searched until the transplanted
network's parameter count is within a quarter of `tolerance` of the skeleton's, or as close as the
integer channel counts allow (a secant search in log-log space, bracketed; a handful of widths); the
achieved ratio is reported either way.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nas import darts
from nas.templates.registry import TEMPLATES
from nas.errors import GenomeError
from nas.expand import expand
from nas.genome import Genome, Stage
from nas.scale_genome import round_channels
from nas.summary import count_params as count_module_params
from nas.summary import meta_network

__all__ = ["Transplant", "Unit", "count_params", "transplant", "transplant_at", "units"]


@dataclass(frozen=True)
class Unit:
    """One or two consecutive stages of a genome acting as one stage (see the module doc)."""

    stages: tuple[Stage, ...]  # (main,) or (helper, main)
    out: int  # output channels of the unit, from the expansion
    stride: int  # the unit's reduction (its first stage's stride)
    repeats: int  # cells of the main stage

    @property
    def main(self) -> Stage:
        return self.stages[-1]

    @property
    def helper(self) -> Stage | None:
        return self.stages[0] if len(self.stages) == 2 else None

    def describe(self) -> str:
        names = " + ".join(s.cell for s in self.stages)
        return f"{names} x{self.repeats}, {self.out} ch, stride {self.stride}"


def _never_repeats(stage: Stage) -> bool:
    return stage.cell in TEMPLATES and TEMPLATES.get(stage.cell).depth is None


def units(genome: Genome) -> list[Unit]:
    """The units of `genome`, in order, with output channels from its expansion."""
    plan = expand(genome)
    result: list[Unit] = []
    i = 0
    while i < len(genome.stages):
        stage = genome.stages[i]
        following = genome.stages[i + 1] if i + 1 < len(genome.stages) else None
        if (following is not None and _never_repeats(stage) and following.stride == 1 and following.out is None
                and following.cell not in genome.cells):
            group, last = (stage, following), i + 1
        else:
            group, last = (stage,), i
        result.append(Unit(group, plan.stages[last][-1].out_shape[0], group[0].stride, group[-1].repeats))
        i = last + 1
    return result


# ----- the replacement cells -----
def _explicit_roles(genome: Genome) -> tuple[str, str]:
    """(normal, reduction) explicit cell names of a micro-space genome."""
    outside = [s.cell for s in genome.stages if s.cell not in genome.cells]
    if outside:
        raise GenomeError("transplant", f"{genome.name}: stage cell {outside[0]!r} is not one of its explicit cells; "
                                        "a searched network either uses explicit cells in every stage or none")
    plain = [s.cell for s in genome.stages if s.stride == 1]
    strided = [s.cell for s in genome.stages if s.stride > 1]
    normal = plain[0] if plain else strided[0]
    return normal, strided[0] if strided else normal


def _explicit_stages(genome: Genome, width: int, stride: int, repeats: int) -> list[dict[str, Any]]:
    normal, reduce = _explicit_roles(genome)
    if stride == 1:
        return [{"cell": normal, "out": width, "repeats": repeats}]
    stages = [{"cell": reduce, "out": width, "stride": stride}]
    if repeats > 1:
        stages.append({"cell": normal, "out": width, "repeats": repeats - 1})
    return stages


def _scaled_widths(stage: Stage, factor: float) -> dict[str, Any]:
    """The stage's params with the template's width parameters multiplied by `factor` (at least 1)."""
    params = dict(stage.params)
    spec = TEMPLATES.get(stage.cell)
    for key in spec.widths:
        value = params.get(key, spec.defaults.get(key))
        if isinstance(value, int) and not isinstance(value, bool):
            params[key] = max(1, round(value * factor))
    return params


def _stage_dict(stage: Stage, **changes: Any) -> dict[str, Any]:
    spec = {**stage.to_dict(), **changes}
    return {k: v for k, v in spec.items() if v is not None and not (k == "params" and not v)}


def _template_stages(unit: Unit, width: int, stride: int, repeats: int, factor: float) -> list[dict[str, Any]]:
    """The searched `unit` at `width` channels, `stride` and `repeats`; `factor` = width over the unit's own."""
    main = unit.main
    if unit.helper is not None:  # the helper sets width and stride, the main stage keeps its own channel rule
        helper = _stage_dict(unit.helper, out=width, stride=stride)
        helper.pop("repeats", None)
        return [helper, _stage_dict(main, repeats=repeats, stride=None, params=_scaled_widths(main, factor))]
    if main.out is None:  # the template decides its channels: scale its width parameters
        return [_stage_dict(main, stride=stride, repeats=repeats, params=_scaled_widths(main, width / unit.out))]
    return [_stage_dict(main, out=width, stride=stride, repeats=repeats)]


def _two_input_cells(searched: Genome) -> tuple[dict[str, Any], Any] | None:
    """The cells (and ops) of a searched network in the DARTS form, None for any other network."""
    if not searched.cells or all(stage.reads == (1,) for stage in searched.stages):
        return None
    try:
        return darts.read_network(searched)
    except GenomeError as error:
        raise GenomeError("transplant", f"{searched.name}: cells that read earlier cells are transplanted in the "
                                        f"DARTS form (nas.darts) only: {error}") from None


def _two_input_layout(cells: dict[str, Any], skeleton_units: list[Unit], width: float,
                      divisor: int) -> list[tuple[bool, int]]:
    """(reduction, cell width) of each cell replacing the skeleton's units."""
    per_cell = len(cells["normal"][1]) if "normal" in cells else len(cells["reduce"][1])
    layout: list[tuple[bool, int]] = []
    for unit in skeleton_units:
        if unit.stride not in (1, 2) or (unit.stride == 2 and "reduce" not in cells):
            raise GenomeError("transplant", f"cannot fill a stride-{unit.stride} unit with the searched cells")
        channels = round_channels(unit.out * width / per_cell, divisor)
        kinds = [unit.stride == 2] + [False] * (unit.repeats - 1)
        if "normal" not in cells and not all(kinds):
            raise GenomeError("transplant", "the searched network has no normal cell")
        layout += [(reduction, channels) for reduction in kinds]
    return layout


def searched_unit_index(k: int, n: int, m: int) -> int:
    """Which of `m` searched units fills skeleton unit `k` of `n`: the one at the same relative depth."""
    return min(m - 1, math.floor((k + 0.5) * m / n))


def transplant_at(searched: Genome, skeleton: Genome, width: float = 1.0, *, divisor: int = 1,
                  name: str | None = None, skeleton_units: list[Unit] | None = None) -> Genome:
    """`skeleton` with `searched`'s cells in place of its own, unit widths times `width` (no matching).
    `skeleton_units` may pass `units(skeleton)` when it is already known."""
    skeleton_units = skeleton_units or units(skeleton)
    two_input = _two_input_cells(searched)
    if two_input is not None:
        stages, cells = darts.cell_stages(two_input[0], _two_input_layout(two_input[0], skeleton_units, width, divisor),
                                          two_input[1])
        spec = {**skeleton.to_dict(), "name": name or f"{searched.name}@{skeleton.name}", "stages": stages,
                "cells": cells}
        return Genome.from_dict(spec)
    explicit = bool(searched.cells)
    searched_units = [] if explicit else units(searched)
    stages: list[dict[str, Any]] = []
    for k, unit in enumerate(skeleton_units):
        channels = round_channels(unit.out * width, divisor)
        if explicit:
            stages += _explicit_stages(searched, channels, unit.stride, unit.repeats)
        else:
            source = searched_units[searched_unit_index(k, len(skeleton_units), len(searched_units))]
            stages += _template_stages(source, channels, unit.stride, unit.repeats, width)
    spec = skeleton.to_dict()
    spec["name"] = name or f"{searched.name}@{skeleton.name}"
    spec["stages"] = stages
    spec.pop("cells", None)
    if explicit:
        spec["cells"] = {key: value for key, value in searched.to_dict()["cells"].items()
                         if key in {s["cell"] for s in stages}}
    return Genome.from_dict(spec)


@dataclass(frozen=True)
class Transplant:
    """A transplanted genome and how well its parameter count matches the skeleton's."""

    genome: Genome
    searched: str
    skeleton: str
    width: float
    params: int
    skeleton_params: int
    tolerance: float
    mapping: list[str] = field(default_factory=list)  # per skeleton unit: "skeleton unit <- searched cell"

    @property
    def params_ratio(self) -> float:
        return self.params / self.skeleton_params

    @property
    def matched(self) -> bool:
        return abs(self.params_ratio - 1.0) <= self.tolerance

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.genome.name, "searched": self.searched, "skeleton": self.skeleton, "width": self.width,
                "params": self.params, "skeleton_params": self.skeleton_params, "params_ratio": self.params_ratio,
                "matched": self.matched, "tolerance": self.tolerance, "mapping": list(self.mapping)}


def _mapping(searched: Genome, skeleton_units: list[Unit]) -> list[str]:
    """Per skeleton unit, what replaced its cells: ``"basic x3, 32 ch, stride 2 <- reduce, normal x2"``."""
    lines = []
    searched_units = [] if searched.cells else units(searched)
    two_input = _two_input_cells(searched) is not None
    for k, unit in enumerate(skeleton_units):
        if two_input:
            rest = unit.repeats - (unit.stride > 1)
            used = ", ".join((["reduce"] if unit.stride > 1 else []) + ([f"normal x{rest}" if rest > 1 else "normal"]
                                                                        if rest else []))
        elif searched.cells:
            stages = _explicit_stages(searched, unit.out, unit.stride, unit.repeats)
            used = ", ".join(s["cell"] + (f" x{s['repeats']}" if s.get("repeats", 1) > 1 else "") for s in stages)
        else:
            used = searched_units[searched_unit_index(k, len(skeleton_units), len(searched_units))].describe()
        lines.append(f"{unit.describe()} <- {used}")
    return lines


def count_params(genome: Genome, input_shape: tuple[int, int, int] | None = None, num_classes: int | None = None) -> int:
    """Parameters of `genome` built (on the meta device: no memory) for `input_shape` and `num_classes`."""
    channels, size = (input_shape[0], input_shape[1:]) if input_shape else (None, None)
    return count_module_params(meta_network(genome, num_classes, channels, size)[1])


def transplant(searched: Genome, skeleton: Genome, *, match_params: bool = True, tolerance: float = 0.05,
               divisor: int = 1, max_steps: int = 12, input_shape: tuple[int, int, int] | None = None,
               num_classes: int | None = None, name: str | None = None) -> Transplant:
    """`searched`'s cells in `skeleton`, the width factor chosen so the parameter counts match.

    `input_shape` (C, H, W) and `num_classes` are the data set's (default: the skeleton's own);
    parameters are counted for them. `max_steps` bounds the widths tried after the first.
    """
    target = count_params(skeleton, input_shape, num_classes)
    skeleton_units = units(skeleton)
    tried: dict[float, tuple[Genome, int]] = {}

    def at(width: float) -> int:
        if width not in tried:
            genome = transplant_at(searched, skeleton, width, divisor=divisor, name=name, skeleton_units=skeleton_units)
            known = next((p for g, p in tried.values() if g == genome), None)  # same channels as an earlier width
            tried[width] = (genome, known if known is not None else count_params(genome, input_shape, num_classes))
        return tried[width][1]

    at(1.0)
    if match_params:
        _match(at, target, tolerance, max_steps)
    width, (genome, params) = min(tried.items(), key=lambda item: (abs(item[1][1] / target - 1.0), abs(math.log(item[0]))))
    return Transplant(genome, searched.name, skeleton.name, width, params, target, tolerance,
                      _mapping(searched, skeleton_units))


MIN_WIDTH, MAX_WIDTH = 1 / 64, 64.0


def _match(at: Callable[[float], int], target: int, tolerance: float, max_steps: int) -> None:
    """Try widths until one gives parameters within a quarter of `tolerance` of `target`: a secant method on
    log(params) against log(width) (parameters grow about as width squared), kept inside the bracket of
    widths known to give too few (`lo`) and too many (`hi`) parameters."""
    lo, hi = MIN_WIDTH, MAX_WIDTH
    last: tuple[float, float] | None = None  # (log width, log params) of the previous try
    width = 1.0
    for _ in range(max_steps + 1):
        params = at(width)
        if abs(params / target - 1.0) <= tolerance / 4:
            return
        if params < target:
            lo = max(lo, width)
        else:
            hi = min(hi, width)
        if hi / lo < 1.001:
            return
        point = (math.log(width), math.log(params))
        slope = 2.0
        if last is not None and point[0] != last[0] and (point[1] - last[1]) / (point[0] - last[0]) > 0.1:
            slope = (point[1] - last[1]) / (point[0] - last[0])
        last = point
        width = math.exp(point[0] + (math.log(target) - point[1]) / slope)
        if not lo < width < hi:
            width = math.sqrt(lo * hi)
